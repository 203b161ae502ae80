/**
 * Worker threads running `prepare` (prepare.ts), so parsing and encoding large bodies uses the
 * other cores while the main thread commits. Bodies go to a worker and bus lines come back by
 * transfer, without copying. A worker that dies fails only its own in-flight requests (the
 * collector answers them 503; nothing of them was stored) and is replaced.
 */
import { extname } from "node:path";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { type PreparedRequest, type PrepareSettings, prepare, type RequestToPrepare } from "./prepare.js";

/** main → worker */
export interface PrepareTask {
  id: number;
  request: RequestToPrepare;
}

/** worker → main */
export interface PrepareResult {
  id: number;
  prepared: PreparedRequest;
}

/** A request lost with the worker preparing it. */
export class PrepareWorkerError extends Error {
  override name = "PrepareWorkerError";
}

export interface PreparePoolOptions {
  workers: number;
  settings: PrepareSettings;
  /** The worker's module; tests pass one that can be made to crash. */
  workerUrl?: URL;
}

interface Pending {
  resolve(prepared: PreparedRequest): void;
  reject(error: Error): void;
}

/** The worker's module next to this one: .ts when run from source (tests, `tsx`), .js from dist/. */
const PREPARE_WORKER_URL = new URL(
  `./prepare-worker${extname(fileURLToPath(import.meta.url))}`,
  import.meta.url,
);

/** A worker that dies sooner than this after starting is restarted only after this long. */
const RESTART_DELAY_MS = 1000;

export class PreparePool {
  private readonly settings: PrepareSettings;
  private readonly workerUrl: URL;
  /** One per slot; null while a dead worker awaits its restart. */
  private readonly workers: (PoolWorker | null)[] = [];
  private readonly restarts = new Set<NodeJS.Timeout>();
  private nextId = 0;
  private closed = false;

  constructor(options: PreparePoolOptions) {
    this.settings = options.settings;
    this.workerUrl = options.workerUrl ?? PREPARE_WORKER_URL;
    for (let slot = 0; slot < options.workers; slot++) this.workers.push(this.startWorker(slot));
  }

  /**
   * Prepares a request on the least busy worker; rejects with PrepareWorkerError if that worker dies.
   * With no worker alive (all restarting) it prepares on this thread rather than wait.
   */
  prepare(request: RequestToPrepare): Promise<PreparedRequest> {
    if (this.closed) return Promise.reject(new PrepareWorkerError("The prepare pool is closed."));
    const worker = this.leastBusy();
    if (worker === null) return Promise.resolve(prepare(request, this.settings));
    const id = this.nextId++;
    const body = ownedBytes(request.body);
    const task: PrepareTask = { id, request: { ...request, body } };
    return new Promise((resolve, reject) => {
      worker.pending.set(id, { resolve, reject });
      worker.thread.postMessage(task, [body.buffer as ArrayBuffer]);
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const timer of this.restarts) clearTimeout(timer);
    await Promise.all(this.workers.map((worker) => worker?.thread.terminate()));
  }

  private leastBusy(): PoolWorker | null {
    let best: PoolWorker | null = null;
    for (const worker of this.workers) {
      if (worker !== null && (best === null || worker.pending.size < best.pending.size)) best = worker;
    }
    return best;
  }

  private startWorker(slot: number): PoolWorker {
    const worker: PoolWorker = {
      thread: spawnWorker(this.workerUrl, this.settings),
      pending: new Map(),
      startedAt: Date.now(),
    };
    worker.thread.on("message", ({ id, prepared }: PrepareResult) => {
      const pending = worker.pending.get(id);
      worker.pending.delete(id);
      prepared.eventLines = asBuffer(prepared.eventLines);
      prepared.rejectedLines = asBuffer(prepared.rejectedLines);
      pending?.resolve(prepared);
    });
    // An uncaught error ends the worker: 'exit' follows and does the clean-up.
    worker.thread.on("error", (error) => {
      console.error(`sluice: a collector worker failed and is restarted: ${error.message}`);
    });
    worker.thread.on("exit", (code) => {
      this.workers[slot] = null;
      const lost = new PrepareWorkerError(`A collector worker exited (code ${code}).`);
      for (const pending of worker.pending.values()) pending.reject(lost);
      worker.pending.clear();
      if (!this.closed) this.restartLater(slot, Date.now() - worker.startedAt < RESTART_DELAY_MS);
    });
    return worker;
  }

  /** Restarts a slot's worker, after a pause when it keeps dying (e.g. cannot load). */
  private restartLater(slot: number, pause: boolean): void {
    const timer = setTimeout(
      () => {
        this.restarts.delete(timer);
        if (!this.closed) this.workers[slot] = this.startWorker(slot);
      },
      pause ? RESTART_DELAY_MS : 0,
    );
    this.restarts.add(timer);
  }
}

interface PoolWorker {
  thread: Worker;
  /** Requests sent to this worker and not answered yet, by id. */
  pending: Map<number, Pending>;
  startedAt: number;
}

function spawnWorker(url: URL, settings: PrepareSettings): Worker {
  const options = { workerData: settings };
  if (!url.pathname.endsWith(".ts")) return new Worker(url, options);
  // Node 20 does not apply `--import tsx` to worker threads: register tsx in the worker first.
  const tsx = import.meta.resolve("tsx/esm/api");
  const bootstrap = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(url.href)}); });`;
  return new Worker(bootstrap, { ...options, eval: true });
}

/**
 * The bytes in a Buffer that owns its whole ArrayBuffer, so the ArrayBuffer can be transferred:
 * `bytes` itself, or a copy when it is a slice of a larger (e.g. pooled) allocation.
 */
export function ownedBytes(bytes: Buffer): Buffer {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength) return bytes;
  const copy = Buffer.allocUnsafeSlow(bytes.length);
  bytes.copy(copy);
  return copy;
}

/** Structured cloning delivers Buffers as plain Uint8Arrays; this views the same memory as a Buffer. */
export function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}
