/**
 * The catalog: which tables exist, their columns, and which Parquet files are
 * live in each snapshot. DuckDB only computes; the catalog is the truth.
 *
 * A file is live in snapshot S when `added_snapshot <= S` and it was not
 * removed at or before S. Every change (a load, a compaction) is one commit
 * that creates one snapshot, so readers never see half of it. Consumers store
 * their bus position in the same commit as their output files, which is what
 * makes loading exactly-once.
 *
 * Embedded default: SQLite (`catalog.db` in the data dir). A PostgreSQL
 * implementation will sit behind the same interface, hence the promises.
 */
import type { ColumnDef } from "../collect/model.js";

export interface TableDef {
  name: string;
  columns: TableColumn[];
  /** Partitioning: the Hive path column `dt`, the UTC date of a timestamp column. */
  partitionBy: Partitioning | null;
}

export interface TableColumn extends ColumnDef {
  /** What the column holds; for a loaded file, the header it came from (`Order ID` for `order_id`). */
  description?: string;
}

export interface Partitioning {
  column: "dt";
  /** The timestamp column whose UTC date is the partition value. */
  fromTimestamp: string;
}

export interface DataFile {
  table: string;
  /** Path relative to the lake root, e.g. `events/dt=2026-11-25/part-….parquet`. */
  path: string;
  /** Partition value (e.g. `2026-11-25`), or "" for unpartitioned tables. */
  partition: string;
  rows: number;
  bytes: number;
}

export interface Commit {
  table: string;
  /** A word for the snapshot log: load, compact, … */
  operation: string;
  add: DataFile[];
  /** Paths that stop being live in this snapshot; each must be live now. */
  remove?: string[];
  /** A consumer's bus position, stored atomically with the files. */
  offset?: { consumer: string; position: number };
  /**
   * The table's columns from this snapshot on (a load that adds or widens columns). A table
   * not yet in the catalog is created, unpartitioned.
   */
  columns?: TableColumn[];
  /**
   * Optimistic concurrency: commit only if the table's latest snapshot (`tableSnapshot`) is
   * still this one, else throw CommitConflictError. A change planned from what the table
   * looked like (its columns, its live files) then cannot overwrite a concurrent one.
   */
  ifTableSnapshot?: number;
  /** A successful load, recorded in the same transaction as its files. */
  load?: NewLoadRun;
  /**
   * The table's bookmark from this snapshot on: how far an incremental source has been read,
   * stored with the rows it covers so that a crash before the commit re-reads them. A `replace`
   * load that carries none drops the table's bookmark, since the rows it stood for are gone.
   */
  bookmark?: string;
}

export type LoadStatus = "loaded" | "skipped" | "failed";

/** One attempt to load a file or sync a database table: the run history of batch sources. */
export interface LoadRun {
  id: number;
  table: string;
  /** The file's name (no directories), or the database table synced: `<source>.<table>`. */
  file: string;
  /** The content's sha256 (hex); null when the file could not be read at all. */
  sha256: string | null;
  bytes: number;
  /** append and replace for files; replace (full) and merge (incremental) for database tables. */
  mode: "append" | "replace" | "merge";
  /** Where the run came from: cli, upload or landing for files; sync (the CLI) or schedule for databases. */
  origin: string;
  status: LoadStatus;
  /** Rows written (files) or read from the source (databases). */
  rows: number;
  /** Schema changes the load made, e.g. "added column region (VARCHAR)". */
  changes: string[];
  /** Why a load failed, or why it was skipped. */
  message: string | null;
  startedAt: string;
  finishedAt: string;
  /** The snapshot that made the rows visible (loaded runs only). */
  snapshot: number | null;
}

export type NewLoadRun = Omit<LoadRun, "id" | "snapshot">;

/** A pinned snapshot: its files stay on disk until `release()` (or the lease expires). */
export interface ReadLease {
  snapshot: number;
  files(table: string): DataFile[];
  release(): Promise<void>;
}

export interface Catalog {
  ensureTable(def: TableDef): Promise<void>;
  tables(): Promise<TableDef[]>;
  currentSnapshot(): Promise<number>;
  liveFiles(table: string): Promise<DataFile[]>;
  /** Applies a change atomically; returns the new snapshot id. Throws CommitConflictError if a removed file is no longer live. */
  commit(change: Commit): Promise<number>;
  offset(consumer: string): Promise<number | null>;
  /** Pins the current snapshot for a reader, for at most `ttlMs`. */
  lease(ttlMs: number): Promise<ReadLease>;
  /**
   * Files removed at least `graceMs` ago that no live lease can still read.
   * The caller deletes them, then calls `forget`.
   */
  garbage(graceMs: number): Promise<DataFile[]>;
  forget(paths: string[]): Promise<void>;
  /** Every file the catalog still knows in a table, live or awaiting deletion. */
  listedPaths(table: string): Promise<string[]>;
  /** The latest snapshot that changed `table`; 0 when none did. */
  tableSnapshot(table: string): Promise<number>;
  /**
   * The load whose rows are in `table` now with this content hash: a successful load not
   * superseded since by a `replace` load. Null when that content is not in the table.
   */
  liveLoad(table: string, sha256: string): Promise<LoadRun | null>;
  /** Records a load that committed nothing (skipped or failed). */
  recordLoad(run: NewLoadRun): Promise<LoadRun>;
  /** The run history, newest first. */
  loads(options?: { table?: string; limit?: number }): Promise<LoadRun[]>;
  /** The table's bookmark (see `Commit.bookmark`), or null when it has none. */
  bookmark(table: string): Promise<string | null>;
  close(): Promise<void>;
}

export class CommitConflictError extends Error {}
