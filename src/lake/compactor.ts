import { readdir, rm, stat } from "node:fs/promises";
import { join, relative } from "node:path";
import type { DuckDBInstance } from "@duckdb/node-api";
import { type Catalog, CommitConflictError, type DataFile, type TableDef } from "../catalog/index.js";
import { sqlString } from "../warehouse/index.js";
import { Background } from "./background.js";
import { writeParquet } from "./writer.js";

export interface CompactorOptions {
  catalog: Catalog;
  engine: DuckDBInstance;
  lakeRoot: string;
  tables: TableDef[];
  /** Files at least this big are left alone. */
  targetBytes?: number;
  /** A size tier is merged once it holds this many files. */
  minFiles?: number;
  /** A partition with no new file for this long has all its small files merged into one. */
  coldAfterMs?: number;
  /** Replaced files are deleted this long after their removal, once no reader pins them. */
  deleteGraceMs?: number;
  intervalMs?: number;
  /**
   * Merging waits while this says so (the lake process passes "a loader is behind"): a merge
   * rewrites data, competing with loading for the lake process's CPU share and with the bus's
   * fsyncs for the disk, so during an ingest burst small files wait until loading caught up.
   * Garbage is still deleted. Never by default.
   */
  deferWhile?: () => boolean;
}

export interface CompactionResult {
  merged: number;
  written: number;
  deleted: number;
}

/**
 * Merges the loader's small Parquet files into large ones, per partition, in
 * the background. Size-tiered (like an LSM tree): files of similar size merge
 * together, so each row is rewritten O(log n) times, not once per micro-batch.
 * The swap is one catalog commit; replaced files are deleted only after the
 * grace period and once no reader's snapshot lease still covers them.
 */
export class Compactor {
  readonly #options: Required<CompactorOptions>;
  readonly #background: Background;

  constructor(options: CompactorOptions) {
    this.#options = {
      targetBytes: 64 * 1024 * 1024,
      minFiles: 8,
      coldAfterMs: 10 * 60_000,
      deleteGraceMs: 60_000,
      intervalMs: 5_000,
      deferWhile: () => false,
      ...options,
    };
    this.#background = new Background(() => this.runOnce(), this.#options.intervalMs);
  }

  /** One pass over every table: merge what is due, then delete what is garbage. */
  async runOnce(options: { force?: boolean } = {}): Promise<CompactionResult> {
    const result: CompactionResult = { merged: 0, written: 0, deleted: 0 };
    const deferred = !options.force && this.#options.deferWhile();
    for (const table of deferred ? [] : this.#options.tables) {
      const files = await this.#options.catalog.liveFiles(table.name);
      for (const group of this.#groupsToMerge(files, options.force ?? false)) {
        if (await this.#merge(table, group)) {
          result.merged += group.length;
          result.written += 1;
        }
      }
    }
    result.deleted = await this.deleteGarbage();
    return result;
  }

  /** Deletes replaced files no reader can use any more. */
  async deleteGarbage(): Promise<number> {
    const garbage = await this.#options.catalog.garbage(this.#options.deleteGraceMs);
    for (const file of garbage) await rm(join(this.#options.lakeRoot, file.path), { force: true });
    await this.#options.catalog.forget(garbage.map((file) => file.path));
    return garbage.length;
  }

  /**
   * Deletes Parquet files under the lake that the catalog does not list: the
   * output of a load or compaction that crashed before its commit. Only safe
   * while no other process writes to the lake (the caller owns the bus lock).
   */
  async sweepOrphans(): Promise<number> {
    let removed = 0;
    for (const table of this.#options.tables) {
      const listed = new Set(await this.#options.catalog.listedPaths(table.name));
      for (const path of await listParquet(join(this.#options.lakeRoot, table.name))) {
        if (listed.has(relative(this.#options.lakeRoot, path))) continue;
        await rm(path, { force: true });
        removed++;
      }
    }
    await rm(join(this.#options.lakeRoot, "_staging"), { recursive: true, force: true });
    return removed;
  }

  start(): void {
    this.#background.start();
  }

  stop(): Promise<void> {
    return this.#background.stop();
  }

  /** The last background pass's error, or null. */
  lastError(): string | null {
    return this.#background.lastError();
  }

  #groupsToMerge(files: DataFile[], force: boolean): DataFile[][] {
    const { targetBytes, minFiles, coldAfterMs } = this.#options;
    const byPartition = new Map<string, DataFile[]>();
    for (const file of files) {
      if (file.bytes >= targetBytes) continue;
      const list = byPartition.get(file.partition) ?? [];
      list.push(file);
      byPartition.set(file.partition, list);
    }
    const groups: DataFile[][] = [];
    const now = Date.now();
    for (const [partition, small] of byPartition) {
      if (small.length < 2) continue;
      const cold =
        force || (partition !== "" && now - Date.parse(`${partition}T00:00:00Z`) > 86_400_000 + coldAfterMs);
      if (cold) {
        groups.push(...packBySize(small, targetBytes));
        continue;
      }
      // Tiers by powers of 8 of the file size: a tier with enough files merges into the next.
      const tiers = new Map<number, DataFile[]>();
      for (const file of small) {
        const tier = Math.floor(Math.log(Math.max(file.bytes, 1)) / Math.log(8));
        const list = tiers.get(tier) ?? [];
        list.push(file);
        tiers.set(tier, list);
      }
      for (const tier of tiers.values())
        if (tier.length >= minFiles) groups.push(...packBySize(tier, targetBytes));
    }
    return groups.filter((group) => group.length >= 2);
  }

  async #merge(table: TableDef, group: DataFile[]): Promise<boolean> {
    const { catalog, engine, lakeRoot } = this.#options;
    const paths = group.map((file) => sqlString(join(lakeRoot, file.path))).join(", ");
    const connection = await engine.connect();
    let written: DataFile[] = [];
    try {
      written = await writeParquet(connection, {
        lakeRoot,
        table,
        prefix: "compact",
        selectSql: `SELECT * FROM read_parquet([${paths}], hive_partitioning = false)`,
        // A group is the files of one partition (`#groupsToMerge`).
        onePartition: table.partitionBy && group[0]?.partition ? group[0].partition : undefined,
      });
      const before = group.reduce((sum, file) => sum + file.rows, 0);
      const after = written.reduce((sum, file) => sum + file.rows, 0);
      if (before !== after) throw new Error(`compaction of ${table.name} wrote ${after} rows from ${before}`);
      await catalog.commit({
        table: table.name,
        operation: "compact",
        add: written,
        remove: group.map((file) => file.path),
      });
      return true;
    } catch (error) {
      for (const file of written) await rm(join(lakeRoot, file.path), { force: true });
      if (error instanceof CommitConflictError) return false;
      throw error;
    } finally {
      connection.closeSync();
    }
  }
}

/** Splits files into groups whose total stays under `limit` bytes (oldest first). */
function packBySize(files: DataFile[], limit: number): DataFile[][] {
  const sorted = [...files].sort((a, b) => a.path.localeCompare(b.path));
  const groups: DataFile[][] = [];
  let current: DataFile[] = [];
  let size = 0;
  for (const file of sorted) {
    if (current.length > 0 && size + file.bytes > limit * 2) {
      groups.push(current);
      current = [];
      size = 0;
    }
    current.push(file);
    size += file.bytes;
  }
  groups.push(current);
  return groups;
}

async function listParquet(dir: string): Promise<string[]> {
  const found: string[] = [];
  let entries: import("node:fs").Dirent[];
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return found;
  }
  for (const entry of entries) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await listParquet(path)));
    else if (entry.name.endsWith(".parquet") && (await stat(path)).isFile()) found.push(path);
  }
  return found;
}
