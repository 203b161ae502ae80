import { randomUUID } from "node:crypto";
import Database from "better-sqlite3";
import {
  type Catalog,
  type Commit,
  CommitConflictError,
  type DataFile,
  type ReadLease,
  type TableDef,
} from "./catalog.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS tables (
  name TEXT PRIMARY KEY,
  columns TEXT NOT NULL,
  partition_by TEXT
);
CREATE TABLE IF NOT EXISTS snapshots (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  table_name TEXT NOT NULL,
  operation TEXT NOT NULL,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS files (
  path TEXT PRIMARY KEY,
  table_name TEXT NOT NULL,
  partition TEXT NOT NULL,
  rows INTEGER NOT NULL,
  bytes INTEGER NOT NULL,
  added_snapshot INTEGER NOT NULL,
  removed_snapshot INTEGER,
  removed_at INTEGER
);
CREATE INDEX IF NOT EXISTS files_live ON files (table_name, removed_snapshot);
CREATE TABLE IF NOT EXISTS offsets (
  consumer TEXT PRIMARY KEY,
  position INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
  id TEXT PRIMARY KEY,
  snapshot INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
`;

interface FileRow {
  path: string;
  table_name: string;
  partition: string;
  rows: number;
  bytes: number;
}

const toDataFile = (row: FileRow): DataFile => ({
  table: row.table_name,
  path: row.path,
  partition: row.partition,
  rows: row.rows,
  bytes: row.bytes,
});

/**
 * Opens (creating if needed) the SQLite catalog. WAL mode lets the CLI read
 * while the server writes; `busy_timeout` makes concurrent writers wait
 * instead of failing.
 */
export function openSqliteCatalog(file: string, options: { readonly?: boolean } = {}): Catalog {
  const db = new Database(file, { readonly: options.readonly ?? false });
  db.pragma("busy_timeout = 10000");
  if (!options.readonly) {
    db.pragma("journal_mode = WAL");
    // NORMAL in WAL mode is durable against process crashes (kill -9); FULL adds power-loss safety.
    db.pragma("synchronous = FULL");
    db.exec(SCHEMA);
  }

  // Leases are only meaningful while their process lives, so they skip the fsync that
  // catalog commits pay: a separate connection with synchronous = OFF keeps queries cheap.
  const leaseDb = new Database(file, { readonly: options.readonly ?? false });
  leaseDb.pragma("busy_timeout = 10000");
  if (!options.readonly) leaseDb.pragma("synchronous = OFF");

  const statements = {
    upsertTable: db.prepare(
      "INSERT INTO tables (name, columns, partition_by) VALUES (?, ?, ?) ON CONFLICT(name) DO UPDATE SET columns = excluded.columns, partition_by = excluded.partition_by",
    ),
    tables: db.prepare("SELECT name, columns, partition_by FROM tables ORDER BY name"),
    current: db.prepare("SELECT COALESCE(MAX(id), 0) AS id FROM snapshots"),
    live: db.prepare(
      "SELECT path, table_name, partition, rows, bytes FROM files WHERE table_name = ? AND removed_snapshot IS NULL ORDER BY path",
    ),
    newSnapshot: db.prepare("INSERT INTO snapshots (table_name, operation, created_at) VALUES (?, ?, ?)"),
    addFile: db.prepare(
      "INSERT INTO files (path, table_name, partition, rows, bytes, added_snapshot) VALUES (?, ?, ?, ?, ?, ?)",
    ),
    removeFile: db.prepare(
      "UPDATE files SET removed_snapshot = ?, removed_at = ? WHERE path = ? AND table_name = ? AND removed_snapshot IS NULL",
    ),
    setOffset: db.prepare(
      "INSERT INTO offsets (consumer, position) VALUES (?, ?) ON CONFLICT(consumer) DO UPDATE SET position = excluded.position",
    ),
    getOffset: db.prepare("SELECT position FROM offsets WHERE consumer = ?"),
    addLease: leaseDb.prepare("INSERT INTO leases (id, snapshot, expires_at) VALUES (?, ?, ?)"),
    dropLease: leaseDb.prepare("DELETE FROM leases WHERE id = ?"),
    leaseCurrent: leaseDb.prepare("SELECT COALESCE(MAX(id), 0) AS id FROM snapshots"),
    leaseLiveAt: leaseDb.prepare(
      "SELECT path, table_name, partition, rows, bytes FROM files WHERE added_snapshot <= ? AND (removed_snapshot IS NULL OR removed_snapshot > ?) ORDER BY path",
    ),
    dropExpiredLeases: db.prepare("DELETE FROM leases WHERE expires_at < ?"),
    // A removed file is garbage once its grace period passed and no lease pins a snapshot that still sees it.
    garbage: db.prepare(`
      SELECT path, table_name, partition, rows, bytes FROM files f
      WHERE removed_snapshot IS NOT NULL AND removed_at <= ?
        AND NOT EXISTS (
          SELECT 1 FROM leases l
          WHERE l.expires_at >= ? AND l.snapshot >= f.added_snapshot AND l.snapshot < f.removed_snapshot
        )`),
    listed: db.prepare("SELECT path FROM files WHERE table_name = ?"),
    forget: db.prepare("DELETE FROM files WHERE path = ? AND removed_snapshot IS NOT NULL"),
  };

  const commitTx = db.transaction((change: Commit): number => {
    const now = Date.now();
    const snapshot = Number(statements.newSnapshot.run(change.table, change.operation, now).lastInsertRowid);
    for (const path of change.remove ?? []) {
      if (statements.removeFile.run(snapshot, now, path, change.table).changes !== 1) {
        throw new CommitConflictError(`file ${path} is no longer live in table ${change.table}`);
      }
    }
    for (const file of change.add) {
      statements.addFile.run(file.path, change.table, file.partition, file.rows, file.bytes, snapshot);
    }
    if (change.offset) statements.setOffset.run(change.offset.consumer, change.offset.position);
    return snapshot;
  });

  const leaseTx = leaseDb.transaction((ttlMs: number) => {
    const snapshot = (statements.leaseCurrent.get() as { id: number }).id;
    const files = statements.leaseLiveAt.all(snapshot, snapshot) as FileRow[];
    const id = randomUUID();
    statements.addLease.run(id, snapshot, Date.now() + ttlMs);
    return { id, snapshot, files };
  });

  return {
    async ensureTable(def: TableDef) {
      statements.upsertTable.run(
        def.name,
        JSON.stringify(def.columns),
        def.partitionBy ? JSON.stringify(def.partitionBy) : null,
      );
    },
    async tables() {
      const rows = statements.tables.all() as {
        name: string;
        columns: string;
        partition_by: string | null;
      }[];
      return rows.map((row) => ({
        name: row.name,
        columns: JSON.parse(row.columns),
        partitionBy: row.partition_by ? JSON.parse(row.partition_by) : null,
      }));
    },
    async currentSnapshot() {
      return (statements.current.get() as { id: number }).id;
    },
    async liveFiles(table: string) {
      return (statements.live.all(table) as FileRow[]).map(toDataFile);
    },
    async commit(change: Commit) {
      return commitTx.immediate(change);
    },
    async offset(consumer: string) {
      const row = statements.getOffset.get(consumer) as { position: number } | undefined;
      return row ? row.position : null;
    },
    async lease(ttlMs: number): Promise<ReadLease> {
      const { id, snapshot, files } = leaseTx.immediate(ttlMs);
      const byTable = new Map<string, DataFile[]>();
      for (const row of files) {
        const list = byTable.get(row.table_name) ?? [];
        list.push(toDataFile(row));
        byTable.set(row.table_name, list);
      }
      let released = false;
      return {
        snapshot,
        files: (table) => byTable.get(table) ?? [],
        async release() {
          if (released) return;
          released = true;
          statements.dropLease.run(id);
        },
      };
    },
    async garbage(graceMs: number) {
      const now = Date.now();
      statements.dropExpiredLeases.run(now);
      return (statements.garbage.all(now - graceMs, now) as FileRow[]).map(toDataFile);
    },
    async forget(paths: string[]) {
      db.transaction(() => {
        for (const path of paths) statements.forget.run(path);
      })();
    },
    async listedPaths(table: string) {
      return (statements.listed.all(table) as { path: string }[]).map((row) => row.path);
    },
    async close() {
      leaseDb.close();
      db.close();
    },
  };
}
