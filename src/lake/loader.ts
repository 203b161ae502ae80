import { createHash } from "node:crypto";
import { accessSync, constants } from "node:fs";
import { mkdir, open, readdir, rm } from "node:fs/promises";
import { join, resolve } from "node:path";
import type { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import type { Topic } from "../bus/index.js";
import type { Catalog, DataFile, TableDef } from "../catalog/index.js";
import { sqlIdent, sqlString } from "../warehouse/index.js";
import { Background } from "./background.js";
import { hasSessionColumns, Sessionizer } from "./sessions.js";
import { writeParquet } from "./writer.js";

export interface LoaderOptions {
  topic: Topic;
  catalog: Catalog;
  engine: DuckDBInstance;
  lakeRoot: string;
  table: TableDef;
  /** How often to look for new records when idle. */
  flushIntervalMs?: number;
  /** Upper bound of one micro-batch. */
  maxBatchBytes?: number;
  /**
   * Inactivity that ends a session, for tables with session columns (`events`): events without
   * a session id get one (see sessions.ts). 0 leaves session ids as the clients sent them.
   */
  sessionTimeoutMs?: number;
}

export interface LoaderStatus {
  table: string;
  healthy: boolean;
  lastError: string | null;
  /** Bus position loaded up to. */
  position: number;
  /** Bytes on the bus not yet in the lake. */
  lagBytes: number;
  loadedRecords: number;
  lastLoadAt: string | null;
}

/** The temp table of a batch, when sessions are assigned. */
const BATCH = "loader_batch";

/** How much of a batch is read from the bus at a time on its way to the staging file. */
const STAGING_PIECE_BYTES = 1024 * 1024;

/** Memory-backed storage for staging files, where the system has it. */
const SHARED_MEMORY = "/dev/shm";

/**
 * Where a lake's loaders stage each batch for DuckDB's JSON reader: in shared memory when there
 * is some, else in the lake. A batch staged on the lake's disk is up to 64 MB of dirty pages,
 * which ext4's ordered journal writes out at the bus's next fdatasync: the collector's
 * acknowledgements then waited for the loader's staging writes (fsync stalls of 10-100 ms).
 * File names start with a hash of the lake, so servers on other data dirs never touch them.
 */
export function stagingFor(lakeRoot: string, table: string): { dir: string; prefix: string } {
  try {
    accessSync(SHARED_MEMORY, constants.W_OK);
  } catch {
    return { dir: join(lakeRoot, "_staging"), prefix: `${table}-` };
  }
  const lake = createHash("sha256").update(resolve(lakeRoot)).digest("hex").slice(0, 16);
  return { dir: SHARED_MEMORY, prefix: `sluice-${lake}-${table}-` };
}

/**
 * Moves records from a bus topic into a lake table in micro-batches.
 * Exactly-once: the Parquet files and the new bus position are committed to
 * the catalog in one transaction, and a batch always starts at the committed
 * position. A crash before the commit leaves only unlisted files (swept at
 * start-up); a crash after it resumes past the batch.
 */
export class Loader {
  readonly #options: Required<LoaderOptions>;
  readonly #sessions: Sessionizer | null;
  readonly #consumer: string;
  readonly #staging: { dir: string; prefix: string };
  #position = 0;
  #loaded = 0;
  #lastLoadAt: string | null = null;
  /**
   * One batch per tick, of everything available: looping straight on would commit a stream
   * of tiny batches under load, each paying the fixed cost of a Parquet file. A failed batch
   * keeps the position, so the next tick retries it.
   */
  readonly #background: Background;

  constructor(options: LoaderOptions) {
    this.#options = {
      flushIntervalMs: 250,
      maxBatchBytes: 64 * 1024 * 1024,
      sessionTimeoutMs: 0,
      ...options,
    };
    this.#sessions =
      this.#options.sessionTimeoutMs > 0 && hasSessionColumns(options.table)
        ? new Sessionizer(this.#options.sessionTimeoutMs)
        : null;
    this.#consumer = `loader:${options.table.name}`;
    this.#staging = stagingFor(options.lakeRoot, options.table.name);
    this.#background = new Background(() => this.#loadBatch(), this.#options.flushIntervalMs);
  }

  /** Reads the committed position; call once before `loadAvailable` or `start`. */
  async init(): Promise<void> {
    await this.#removeStagingLeftovers();
    await this.#options.catalog.ensureTable(this.#options.table);
    this.#position = (await this.#options.catalog.offset(this.#consumer)) ?? this.#options.topic.start();
    if (this.#sessions) {
      const { catalog, engine, table, lakeRoot } = this.#options;
      const connection = await engine.connect();
      try {
        await this.#sessions.restore(connection, catalog, table, lakeRoot);
      } finally {
        connection.closeSync();
      }
    }
  }

  /** Loads everything durable on the bus now; returns the number of records loaded. */
  async loadAvailable(): Promise<number> {
    let total = 0;
    while (this.#options.topic.end() > this.#position) {
      total += await this.#loadBatch();
    }
    return total;
  }

  /** Runs in the background until `stop()`, loading once every `flushIntervalMs`. */
  start(): void {
    this.#background.start();
  }

  stop(): Promise<void> {
    return this.#background.stop();
  }

  /** Visitors whose latest session carries over to the next batch (0 without sessions). */
  sessionVisitors(): number {
    return this.#sessions?.visitors ?? 0;
  }

  status(): LoaderStatus {
    const lastError = this.#background.lastError();
    return {
      table: this.#options.table.name,
      healthy: lastError === null,
      lastError,
      position: this.#position,
      lagBytes: Math.max(0, this.#options.topic.end() - this.#position),
      loadedRecords: this.#loaded,
      lastLoadAt: this.#lastLoadAt,
    };
  }

  /** Staging files of this table left by a crashed process (the file of a batch is removed after it). */
  async #removeStagingLeftovers(): Promise<void> {
    const { dir, prefix } = this.#staging;
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names) {
      if (name.startsWith(prefix)) await rm(join(dir, name), { force: true });
    }
  }

  /**
   * Copies the next records, up to `maxBatchBytes`, from the bus into a staging file, a piece at
   * a time. Reading a whole batch into one buffer and joining the reads faulted in two fresh
   * copies of it, which cost a third of the loader's CPU (7 of 21 µs per event) on a VM whose
   * page faults are dear; pieces of 1 MB are reused by the allocator.
   */
  async #stage(path: string): Promise<{ count: number; next: number }> {
    const { topic, maxBatchBytes } = this.#options;
    await mkdir(this.#staging.dir, { recursive: true });
    const file = await open(path, "w");
    try {
      let size = 0;
      let count = 0;
      let next = this.#position;
      while (size < maxBatchBytes && topic.end() > next) {
        const batch = await topic.read(next, Math.min(STAGING_PIECE_BYTES, maxBatchBytes - size));
        if (batch.count === 0) break;
        await file.write(batch.lines);
        size += batch.lines.length;
        count += batch.count;
        next = batch.next;
      }
      return { count, next };
    } finally {
      await file.close();
    }
  }

  async #loadBatch(): Promise<number> {
    if (this.#options.topic.end() <= this.#position) return 0;
    const start = this.#position;
    const staging = join(this.#staging.dir, `${this.#staging.prefix}${start}.ndjson`);
    try {
      const { count, next } = await this.#stage(staging);
      if (count > 0) await this.#load(staging, start, count, next);
      return count;
    } finally {
      await rm(staging, { force: true });
    }
  }

  /** Loads the `count` records staged at `staging` and commits them with the bus position `next`. */
  async #load(staging: string, start: number, count: number, next: number): Promise<void> {
    const { topic, catalog, engine, lakeRoot, table } = this.#options;
    const connection = await engine.connect();
    let files: DataFile[] = [];
    try {
      const columns = table.columns.map((column) => `${sqlString(column.name)}: ${sqlString(column.type)}`);
      let selectSql = `SELECT * FROM read_json(${sqlString(staging)}, format = 'newline_delimited', columns = {${columns.join(", ")}}, maximum_object_size = 67108864)`;
      let onePartition: string | undefined;
      if (this.#sessions) {
        // Sessions need the batch twice (to assign them, then to write it): it is read once, into memory.
        await connection.run(`CREATE OR REPLACE TEMP TABLE ${BATCH} AS ${selectSql}`);
        selectSql = await this.#sessions.sessionize(connection, BATCH);
        onePartition = await onePartitionOf(connection, BATCH, table);
      }
      try {
        files = await writeParquet(connection, {
          lakeRoot,
          table,
          prefix: `part-${String(start).padStart(16, "0")}`,
          selectSql,
          unsorted: true,
          onePartition,
        });
        const rows = files.reduce((sum, file) => sum + file.rows, 0);
        if (rows !== count) throw new Error(`loaded ${rows} rows from ${count} records at position ${start}`);
        await catalog.commit({
          table: table.name,
          operation: "load",
          add: files,
          offset: { consumer: this.#consumer, position: next },
        });
      } catch (error) {
        // Nothing was committed: drop this attempt's files; the batch is redone from the same position.
        for (const file of files) await rm(join(lakeRoot, file.path), { force: true });
        throw error;
      }
      this.#position = next;
      this.#sessions?.remember();
    } finally {
      connection.closeSync();
    }
    this.#loaded += count;
    this.#lastLoadAt = new Date().toISOString();
    await topic.release(next);
  }
}

/**
 * The partition value of every row of temp table `batch`, when there is one (a micro-batch of
 * live traffic usually falls on one day); undefined when there are more, or none.
 */
async function onePartitionOf(
  connection: DuckDBConnection,
  batch: string,
  table: TableDef,
): Promise<string | undefined> {
  const partition = table.partitionBy;
  if (partition === null) return undefined;
  const ts = sqlIdent(partition.fromTimestamp);
  const reader = await connection.runAndReadAll(
    `SELECT CAST(CAST(min(${ts}) AS DATE) AS VARCHAR), CAST(CAST(max(${ts}) AS DATE) AS VARCHAR) FROM ${sqlIdent(batch)}`,
  );
  const [first, last] = (reader.getRowsJson()[0] ?? []) as [string | null, string | null];
  return first !== null && first === last ? first : undefined;
}
