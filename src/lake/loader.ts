import { mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { DuckDBInstance } from "@duckdb/node-api";
import type { Topic } from "../bus/index.js";
import type { Catalog, DataFile, TableDef } from "../catalog/index.js";
import { sqlString } from "../warehouse/index.js";
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
  readonly #stagingDir: string;
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
        ? new Sessionizer(options.table, this.#options.sessionTimeoutMs)
        : null;
    this.#consumer = `loader:${options.table.name}`;
    this.#stagingDir = join(options.lakeRoot, "_staging");
    this.#background = new Background(() => this.#loadBatch(), this.#options.flushIntervalMs);
  }

  /** Reads the committed position; call once before `loadAvailable` or `start`. */
  async init(): Promise<void> {
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

  async #loadBatch(): Promise<number> {
    const { topic, catalog, engine, lakeRoot, table, maxBatchBytes } = this.#options;
    const chunks: Buffer[] = [];
    let size = 0;
    let count = 0;
    let next = this.#position;
    while (size < maxBatchBytes && topic.end() > next) {
      const batch = await topic.read(next, maxBatchBytes - size);
      if (batch.count === 0) break;
      chunks.push(batch.lines);
      size += batch.lines.length;
      count += batch.count;
      next = batch.next;
    }
    if (count === 0) return 0;

    const start = this.#position;
    const staging = join(this.#stagingDir, `${table.name}-${start}.ndjson`);
    await mkdir(this.#stagingDir, { recursive: true });
    await writeFile(staging, Buffer.concat(chunks, size));
    const connection = await engine.connect();
    let files: DataFile[] = [];
    try {
      const columns = table.columns.map((column) => `${sqlString(column.name)}: ${sqlString(column.type)}`);
      let selectSql = `SELECT * FROM read_json(${sqlString(staging)}, format = 'newline_delimited', columns = {${columns.join(", ")}}, maximum_object_size = 67108864)`;
      if (this.#sessions) {
        // Sessions need the batch twice (to assign them, then to write it): it is read once, into memory.
        await connection.run(`CREATE OR REPLACE TEMP TABLE ${BATCH} AS ${selectSql}`);
        selectSql = await this.#sessions.sessionize(connection, BATCH);
      }
      try {
        files = await writeParquet(connection, {
          lakeRoot,
          table,
          prefix: `part-${String(start).padStart(16, "0")}`,
          selectSql,
          unsorted: true,
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
      await this.#sessions?.remember(connection);
    } finally {
      connection.closeSync();
      await rm(staging, { force: true });
    }
    this.#loaded += count;
    this.#lastLoadAt = new Date().toISOString();
    await topic.release(next);
    return count;
  }
}
