/**
 * Runs the loaders and the compactor in a child process at a lower CPU priority than the
 * server. Collecting acknowledges events once they are on the bus; loading them into
 * Parquet is the heavier work (DuckDB: JSON parsing, sorting, zstd), and on a small machine
 * it competed with collecting for the same cores. Niced, it takes whatever CPU collecting
 * leaves: a burst is acknowledged at the collector's full speed and loaded right after.
 *
 * The server stays the bus's only writer: it sends the child the durable end of each topic
 * and deletes the segments the child releases. If the child dies, it is started again; its
 * loads resume from the positions committed in the catalog.
 */
import { type ChildProcess, fork } from "node:child_process";
import { getPriority, setPriority } from "node:os";
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import type { Topic } from "../bus/index.js";
import { busOwnerPid } from "../bus/index.js";
import type { TableDef } from "../catalog/index.js";
import type { LoaderStatus } from "./loader.js";

/** What the child needs to start. */
export interface LakeProcessSettings {
  busDir: string;
  catalogPath: string;
  lakeRoot: string;
  tables: TableDef[];
  /** Durable end of each topic at start. */
  ends: Record<string, number>;
  flushIntervalMs: number;
  sessionTimeoutMs: number;
  duckdbThreads?: number;
  memoryLimit?: string;
  /** Where DuckDB spills. */
  tempDir?: string;
  compaction: {
    targetBytes: number;
    minFiles: number;
    intervalMs: number;
    deleteGraceMs: number;
  };
}

export type ServerMessage =
  | { type: "start"; settings: LakeProcessSettings }
  | { type: "ends"; ends: Record<string, number> }
  | { type: "stop" };

export type LakeProcessMessage =
  | { type: "ready" }
  | { type: "status"; loaders: LoaderStatus[]; compactorError: string | null }
  | { type: "release"; topic: string; position: number }
  | { type: "failed"; error: string };

export interface LakeProcessOptions {
  settings: Omit<LakeProcessSettings, "ends">;
  /** The bus topics the child loads, as the server writes them. */
  topics: Topic[];
  /** Added to the server's nice value (0-19); 0 runs the child at the server's priority. */
  niceness: number;
  /** Where to say what happened to the child. */
  log: (message: string) => void;
}

export interface LakeStatus {
  running: boolean;
  loaders: LoaderStatus[];
  lastError: string | null;
  compactorError: string | null;
}

/** The child's module next to this one: .ts when run from source (tests, `tsx`), .js from dist/. */
const ENTRY = fileURLToPath(
  new URL(`./process-main${extname(fileURLToPath(import.meta.url))}`, import.meta.url),
);
const ENDS_INTERVAL_MS = 20;
const RESTART_DELAYS_MS = [100, 1_000, 5_000, 30_000];
const STOP_TIMEOUT_MS = 60_000;

export class LakeProcess {
  #child: ChildProcess | null = null;
  #status: LakeStatus;
  #sentEnds = new Map<string, number>();
  #ends: ReturnType<typeof setInterval> | null = null;
  #restarts = 0;
  #restartTimer: ReturnType<typeof setTimeout> | null = null;
  #stopping = false;

  private constructor(private readonly options: LakeProcessOptions) {
    this.#status = { running: false, loaders: [], lastError: null, compactorError: null };
  }

  /** Starts the child and waits until it is loading. */
  static async start(options: LakeProcessOptions): Promise<LakeProcess> {
    const lake = new LakeProcess(options);
    await lake.#spawn();
    lake.#ends = setInterval(() => lake.#sendEnds(), ENDS_INTERVAL_MS);
    return lake;
  }

  /** The child's last report, with each loader's lag measured against the bus's end now. */
  status(): LakeStatus {
    const loaders = this.#status.loaders.map((loader) => {
      const topic = this.options.topics.find((candidate) => candidate.name === loader.table);
      return topic ? { ...loader, lagBytes: Math.max(0, topic.end() - loader.position) } : loader;
    });
    return { ...this.#status, loaders };
  }

  /** Stops the child once its current batch is committed (killed if it takes too long). */
  async stop(): Promise<void> {
    this.#stopping = true;
    if (this.#ends) clearInterval(this.#ends);
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    this.#send(child, { type: "stop" });
    const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
    await exited;
    clearTimeout(timer);
  }

  async #spawn(): Promise<void> {
    // A child of an earlier server that is still finishing (its server was killed) must be gone
    // first: two loaders on one bus position would load the same events twice.
    await waitUntilGone(this.options.settings.lakeRoot);
    const tsx = extname(ENTRY) === ".ts" ? ["--import", "tsx"] : [];
    const child = fork(ENTRY, [], { execArgv: tsx, stdio: ["ignore", "inherit", "inherit", "ipc"] });
    this.#child = child;
    // A message sent just as the child dies fails with EPIPE, emitted here: the 'exit' handler
    // restarts the child, so the error itself needs no more than a note (unhandled, it would
    // end the server).
    child.on("error", (error) => this.options.log(`lake process: ${error.message}`));
    if (child.pid !== undefined && this.options.niceness > 0) {
      try {
        setPriority(child.pid, Math.min(19, getPriority() + this.options.niceness));
      } catch {
        // Not permitted here: the child runs at the server's priority, which is only slower.
      }
    }
    const ends = Object.fromEntries(this.options.topics.map((topic) => [topic.name, topic.end()]));
    for (const [topic, end] of Object.entries(ends)) this.#sentEnds.set(topic, end);
    const ready = new Promise<void>((resolve, reject) => {
      child.on("message", (message: LakeProcessMessage) => {
        if (message.type === "ready") {
          this.#restarts = 0;
          this.#status = { ...this.#status, running: true, lastError: null };
          resolve();
        } else if (message.type === "failed") {
          this.#status = { ...this.#status, lastError: message.error };
          reject(new Error(`the lake process failed to start: ${message.error}`));
        } else this.#handle(message);
      });
      child.once("exit", (code, signal) => {
        this.#status = { ...this.#status, running: false };
        reject(new Error(`the lake process exited (${signal ?? `code ${code}`}) before it was ready`));
        if (!this.#stopping) this.#restart(`exited (${signal ?? `code ${code}`})`);
      });
    });
    this.#send(child, { type: "start", settings: { ...this.options.settings, ends } });
    await ready;
  }

  #handle(message: LakeProcessMessage): void {
    if (message.type === "status") {
      this.#status = { ...this.#status, loaders: message.loaders, compactorError: message.compactorError };
    } else if (message.type === "release") {
      const topic = this.options.topics.find((candidate) => candidate.name === message.topic);
      topic?.release(message.position).catch((error: Error) => {
        this.options.log(`could not release bus segments of ${message.topic}: ${error.message}`);
      });
    }
  }

  #restart(why: string): void {
    const delay = RESTART_DELAYS_MS[Math.min(this.#restarts, RESTART_DELAYS_MS.length - 1)] ?? 30_000;
    this.#restarts++;
    this.#status = { ...this.#status, lastError: `the lake process ${why}; restarting in ${delay} ms` };
    this.options.log(`lake process ${why}; restarting in ${delay} ms`);
    this.#restartTimer = setTimeout(() => {
      this.#spawn().catch((error: Error) => {
        this.#status = { ...this.#status, lastError: error.message };
      });
    }, delay);
  }

  /** Sends a message; one the child can no longer take is dropped (its restart resends the state). */
  #send(child: ChildProcess, message: ServerMessage): void {
    if (!child.connected) return;
    child.send(message, (error) => {
      if (error) this.options.log(`lake process: ${error.message}`);
    });
  }

  #sendEnds(): void {
    const child = this.#child;
    if (!child?.connected) return;
    const changed: Record<string, number> = {};
    for (const topic of this.options.topics) {
      const end = topic.end();
      if (this.#sentEnds.get(topic.name) === end) continue;
      this.#sentEnds.set(topic.name, end);
      changed[topic.name] = end;
    }
    if (Object.keys(changed).length > 0) this.#send(child, { type: "ends", ends: changed });
  }
}

/** Waits for the process holding the lake's lock, if any, to exit; kills it after a grace period. */
export async function waitUntilGone(lakeRoot: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (let owner = busOwnerPid(lakeRoot); owner !== null; owner = busOwnerPid(lakeRoot)) {
    if (owner === process.pid) return;
    if (Date.now() > deadline) {
      try {
        process.kill(owner, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
