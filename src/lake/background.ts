/**
 * A task repeated in the background until stopped, `intervalMs` after the start of
 * each run (at least 10 ms apart). A failing run is remembered, not thrown: the next
 * run retries, and `lastError` tells health checks.
 */
export class Background {
  #running: Promise<void> | null = null;
  #stopping = false;
  #wake: (() => void) | null = null;
  #lastError: string | null = null;

  constructor(
    private readonly task: () => Promise<unknown>,
    private readonly intervalMs: number,
  ) {}

  start(): void {
    this.#running ??= this.#loop();
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    this.#wake?.();
    await this.#running;
    this.#running = null;
  }

  /** The last run's error, or null once a run succeeded. */
  lastError(): string | null {
    return this.#lastError;
  }

  async #loop(): Promise<void> {
    while (!this.#stopping) {
      const started = Date.now();
      try {
        await this.task();
        this.#lastError = null;
      } catch (error) {
        this.#lastError = error instanceof Error ? error.message : String(error);
      }
      if (this.#stopping) break;
      const wait = Math.max(10, this.intervalMs - (Date.now() - started));
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, wait);
        this.#wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.#wake = null;
    }
  }
}
