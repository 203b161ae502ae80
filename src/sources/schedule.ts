/**
 * Runs the configured database syncs on their schedules while the server runs: `every: 5m`
 * (the next run starts that long after the previous one started, or right after it ends
 * if it took longer) or `cron: "0 * * * *"` (croner, in the server's local time zone).
 *
 * Syncs run one at a time, in the order they fell due, so that copying a big table never
 * takes more than one of the server's cores. A source that falls due while its previous
 * run is still waiting or running is not queued twice.
 */
import { Cron } from "croner";
import { DbSync, type DbSyncOptions } from "./db.js";
import type { DbSourceSpec } from "./db-config.js";

export class DbSyncScheduler {
  readonly #sync: DbSync;
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #crons: Cron[] = [];
  /** Sources waiting or running. */
  readonly #due = new Set<string>();
  /** `<source>.<table>` → the reason its latest run failed. */
  readonly #failing = new Map<string, string>();
  #queue: Promise<void> = Promise.resolve();
  #abort = new AbortController();
  #stopped = true;

  /** Throws ConfigError when `db_sources` is not valid, so a bad configuration stops the server starting. */
  constructor(options: DbSyncOptions) {
    this.#sync = new DbSync(options);
  }

  /** Starts the schedules: `every` sources run now and then every interval; `cron` sources at their times. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#abort = new AbortController();
    for (const source of this.#sync.sources) {
      const schedule = source.schedule;
      if (!schedule) continue;
      if ("cron" in schedule) {
        this.#crons.push(new Cron(schedule.cron, () => void this.#enqueue(source)));
        continue;
      }
      const tick = async () => {
        const started = Date.now();
        await this.#enqueue(source);
        if (this.#stopped) return;
        const timer = setTimeout(
          () => {
            this.#timers.delete(timer);
            void tick();
          },
          Math.max(0, started + schedule.everyMs - Date.now()),
        );
        this.#timers.add(timer);
      };
      void tick();
    }
  }

  /** Stops the schedules; a sync in progress is abandoned between batches (nothing of it is committed). */
  async stop(): Promise<void> {
    this.#stopped = true;
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    for (const cron of this.#crons.splice(0)) cron.stop();
    this.#abort.abort(new Error("the server is stopping"));
    await this.#queue;
  }

  /** Why the tables whose latest run failed failed (`<source>.<table>: reason; …`), or null when none did. */
  lastError(): string | null {
    return this.#failing.size > 0 ? [...this.#failing.values()].join("; ") : null;
  }

  #enqueue(source: DbSourceSpec): Promise<void> {
    if (this.#due.has(source.name)) return this.#queue;
    this.#due.add(source.name);
    this.#queue = this.#queue.then(async () => {
      try {
        for (const table of source.tables) {
          if (this.#stopped) return;
          const outcome = await this.#sync.sync(table, { origin: "schedule", signal: this.#abort.signal });
          // A run abandoned by stop() is in the history, but it is not the table's failure.
          if (this.#abort.signal.aborted) return;
          if (outcome.run.status === "failed") this.#failing.set(outcome.run.file, outcome.message);
          else this.#failing.delete(outcome.run.file);
        }
      } catch (error) {
        // The catalog itself failed (a sync's own failures are outcomes): the next run tries again.
        this.#failing.set(source.name, `${source.name}: ${(error as Error).message}`);
      } finally {
        this.#due.delete(source.name);
      }
    });
    return this.#queue;
  }
}
