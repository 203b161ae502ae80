/**
 * The landing folder: drop a file into `landing/<table>/` and it is loaded into
 * that table (append), then moved to `_done/`, or to `_failed/` with the reason
 * beside it in `<name>.error.txt`.
 *
 * A file is taken once it stopped changing between two looks (a copy in progress
 * is left alone). A crash after the commit but before the move is harmless: the
 * next look loads the same content, which is a no-op, and moves the file.
 */
import { mkdir, readdir, rename, rm, stat, writeFile } from "node:fs/promises";
import { extname, join } from "node:path";
import type { DuckDBInstance } from "@duckdb/node-api";
import type { Catalog } from "../catalog/index.js";
import type { Config } from "../config/index.js";
import { FileLoader, type FileLoaderOptions, type LoadOutcome } from "./files.js";

export const landingPath = (dataDir: string): string => join(dataDir, "landing");

export interface LandingWatcherOptions {
  dataDir: string;
  catalog: Catalog;
  /** DuckDB for loading; a few threads are plenty. */
  engine: DuckDBInstance;
  config: Pick<Config, "load_webhook_url" | "load_column_types" | "landing_poll_interval_ms">;
  /** Told of every file processed (the server logs them). */
  onLoad?: (outcome: LoadOutcome, path: string) => void;
  /** Audits each load before it is committed (see FileLoaderOptions); a failed audit sends the file to `_failed/`. */
  quality?: FileLoaderOptions["quality"];
}

/** Names that are not (yet) files to load: hidden, Excel's lock files, partial downloads. */
const IGNORED = /^[._]|^~\$|\.(tmp|part|partial|crdownload|download)$/i;
/** Leftovers untouched this long were left by a crash. */
const STALE_MS = 60 * 60_000;

export class LandingWatcher {
  readonly #options: LandingWatcherOptions;
  readonly #loader: FileLoader;
  /** Size and modification time of each file at the previous look. */
  #seen = new Map<string, string>();
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<unknown> | null = null;
  #stopped = true;
  #lastError: string | null = null;

  constructor(options: LandingWatcherOptions) {
    this.#options = options;
    this.#loader = new FileLoader(options);
  }

  /** Looks into the landing folders every `landing_poll_interval_ms` until `stop()`. */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    const tick = async () => {
      try {
        await this.scanOnce();
        this.#lastError = null;
      } catch (error) {
        this.#lastError = (error as Error).message;
      }
      if (!this.#stopped) this.#timer = setTimeout(run, this.#options.config.landing_poll_interval_ms);
    };
    const run = () => {
      this.#running = tick();
    };
    this.#running = this.#sweep()
      .catch((error: Error) => {
        this.#lastError = `cleaning up after crashed loads: ${error.message}`;
      })
      .then(tick);
  }

  /** Stops looking; waits for a load in progress to finish. */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#running;
  }

  /** The last look's error (e.g. the landing folder is unreadable), or null. */
  lastError(): string | null {
    return this.#lastError;
  }

  /**
   * One look: loads every file that has not changed since the previous look, one at a
   * time; returns their outcomes. A file seen for the first time waits for the next look.
   */
  async scanOnce(): Promise<LoadOutcome[]> {
    const root = landingPath(this.#options.dataDir);
    const outcomes: LoadOutcome[] = [];
    const seen = new Map<string, string>();
    for (const table of await entries(root, "directory")) {
      const folder = join(root, table);
      for (const name of await entries(folder, "file")) {
        const path = join(folder, name);
        const info = await stat(path).catch(() => null);
        if (!info) continue;
        const signature = `${info.size}:${info.mtimeMs}`;
        seen.set(path, signature);
        if (this.#seen.get(path) !== signature) continue;
        seen.delete(path);
        const outcome = await this.#loader.load(path, { table, origin: "landing" });
        await this.#archive(folder, name, outcome);
        this.#options.onLoad?.(outcome, path);
        outcomes.push(outcome);
      }
    }
    this.#seen = seen;
    return outcomes;
  }

  async #archive(folder: string, name: string, outcome: LoadOutcome): Promise<void> {
    const failed = outcome.run.status === "failed";
    const target = join(folder, failed ? "_failed" : "_done");
    await mkdir(target, { recursive: true });
    const destination = await freeName(target, name);
    await rename(join(folder, name), join(target, destination));
    if (failed) await writeFile(join(target, `${destination}.error.txt`), `${outcome.message}\n`);
  }

  /**
   * Removes what loads that crashed left behind: staging files, and Parquet files written
   * into a loaded table's folder but never committed. Other processes may be loading right
   * now, so only files untouched for an hour go (a load commits seconds after its last write).
   */
  async #sweep(): Promise<void> {
    const { catalog, dataDir } = this.#options;
    const old = async (path: string) => {
      const info = await stat(path).catch(() => null);
      return info !== null && Date.now() - info.mtimeMs > STALE_MS;
    };
    const staging = join(landingPath(dataDir), ".staging");
    await mkdir(staging, { recursive: true });
    for (const name of await readdir(staging)) {
      const path = join(staging, name);
      if (await old(path)) await rm(path, { recursive: true, force: true });
    }
    const lakeRoot = join(dataDir, "lake");
    for (const table of await catalog.tables()) {
      if (table.partitionBy) continue;
      const listed = new Set(await catalog.listedPaths(table.name));
      for (const name of await entries(join(lakeRoot, table.name), "file")) {
        const path = join(table.name, name);
        if (name.startsWith("load-") && !listed.has(path) && (await old(join(lakeRoot, path)))) {
          await rm(join(lakeRoot, path), { force: true });
        }
      }
    }
  }
}

async function entries(dir: string, kind: "directory" | "file"): Promise<string[]> {
  const found = await readdir(dir, { withFileTypes: true }).catch(() => []);
  return found
    .filter(
      (entry) => (kind === "directory" ? entry.isDirectory() : entry.isFile()) && !IGNORED.test(entry.name),
    )
    .map((entry) => entry.name)
    .sort();
}

/** `name` if free in `dir`, else `name` with a UTC timestamp before its extension. */
async function freeName(dir: string, name: string): Promise<string> {
  const taken = await stat(join(dir, name)).then(
    () => true,
    () => false,
  );
  if (!taken) return name;
  const extension = extname(name);
  const stamp = new Date()
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d+Z$/, "Z");
  return `${name.slice(0, name.length - extension.length)}.${stamp}${extension}`;
}
