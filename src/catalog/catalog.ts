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
  columns: ColumnDef[];
  /** Partitioning: the Hive path column `dt`, the UTC date of a timestamp column. */
  partitionBy: Partitioning | null;
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
}

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
  close(): Promise<void>;
}

export class CommitConflictError extends Error {}
