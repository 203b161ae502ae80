import { randomUUID } from "node:crypto";
import Database from "better-sqlite3";
import {
  type Catalog,
  type Commit,
  CommitConflictError,
  type DataFile,
  type LoadRun,
  type NewLoadRun,
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
CREATE INDEX IF NOT EXISTS snapshots_by_table ON snapshots (table_name, id);
CREATE TABLE IF NOT EXISTS loads (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  table_name TEXT NOT NULL,
  file TEXT NOT NULL,
  sha256 TEXT,
  bytes INTEGER NOT NULL,
  mode TEXT NOT NULL,
  origin TEXT NOT NULL,
  status TEXT NOT NULL,
  rows INTEGER NOT NULL,
  changes TEXT NOT NULL,
  message TEXT,
  started_at TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  snapshot INTEGER,
  replaced_snapshot INTEGER
);
CREATE INDEX IF NOT EXISTS loads_by_table ON loads (table_name, id);
CREATE TABLE IF NOT EXISTS bookmarks (
  table_name TEXT PRIMARY KEY,
  value TEXT NOT NULL
);
-- The same content is in a table at most once: the backstop of exactly-once file loads.
CREATE UNIQUE INDEX IF NOT EXISTS loads_live_content ON loads (table_name, sha256)
  WHERE status = 'loaded' AND replaced_snapshot IS NULL;
`;

interface LoadRow {
  id: number;
  table_name: string;
  file: string;
  sha256: string | null;
  bytes: number;
  mode: LoadRun["mode"];
  origin: string;
  status: LoadRun["status"];
  rows: number;
  changes: string;
  message: string | null;
  started_at: string;
  finished_at: string;
  snapshot: number | null;
}

const toLoadRun = (row: LoadRow): LoadRun => ({
  id: row.id,
  table: row.table_name,
  file: row.file,
  sha256: row.sha256,
  bytes: row.bytes,
  mode: row.mode,
  origin: row.origin,
  status: row.status,
  rows: row.rows,
  changes: JSON.parse(row.changes),
  message: row.message,
  startedAt: row.started_at,
  finishedAt: row.finished_at,
  snapshot: row.snapshot,
});

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
    tableSnapshot: db.prepare("SELECT COALESCE(MAX(id), 0) AS id FROM snapshots WHERE table_name = ?"),
    setColumns: db.prepare(
      "INSERT INTO tables (name, columns, partition_by) VALUES (?, ?, NULL) ON CONFLICT(name) DO UPDATE SET columns = excluded.columns",
    ),
    addLoad: db.prepare(`
      INSERT INTO loads (table_name, file, sha256, bytes, mode, origin, status, rows, changes, message,
        started_at, finished_at, snapshot)
      VALUES (@table, @file, @sha256, @bytes, @mode, @origin, @status, @rows, @changes, @message,
        @startedAt, @finishedAt, @snapshot)`),
    supersedeLoads: db.prepare(
      "UPDATE loads SET replaced_snapshot = ? WHERE table_name = ? AND status = 'loaded' AND replaced_snapshot IS NULL",
    ),
    liveLoad: db.prepare(
      "SELECT * FROM loads WHERE table_name = ? AND sha256 = ? AND status = 'loaded' AND replaced_snapshot IS NULL",
    ),
    loadById: db.prepare("SELECT * FROM loads WHERE id = ?"),
    loads: db.prepare("SELECT * FROM loads ORDER BY id DESC LIMIT ?"),
    loadsOf: db.prepare("SELECT * FROM loads WHERE table_name = ? ORDER BY id DESC LIMIT ?"),
    forget: db.prepare("DELETE FROM files WHERE path = ? AND removed_snapshot IS NOT NULL"),
    setBookmark: db.prepare(
      "INSERT INTO bookmarks (table_name, value) VALUES (?, ?) ON CONFLICT(table_name) DO UPDATE SET value = excluded.value",
    ),
    dropBookmark: db.prepare("DELETE FROM bookmarks WHERE table_name = ?"),
    bookmark: db.prepare("SELECT value FROM bookmarks WHERE table_name = ?"),
  };

  const insertLoad = (run: NewLoadRun, snapshot: number | null): LoadRun => {
    const id = Number(
      statements.addLoad.run({ ...run, changes: JSON.stringify(run.changes), snapshot }).lastInsertRowid,
    );
    return toLoadRun(statements.loadById.get(id) as LoadRow);
  };

  const commitTx = db.transaction((change: Commit): number => {
    const now = Date.now();
    if (change.ifTableSnapshot !== undefined) {
      const latest = (statements.tableSnapshot.get(change.table) as { id: number }).id;
      if (latest !== change.ifTableSnapshot) {
        throw new CommitConflictError(
          `table ${change.table} changed since snapshot ${change.ifTableSnapshot}`,
        );
      }
    }
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
    if (change.columns) statements.setColumns.run(change.table, JSON.stringify(change.columns));
    if (change.load) {
      if (change.load.mode === "replace") statements.supersedeLoads.run(snapshot, change.table);
      insertLoad(change.load, snapshot);
    }
    if (change.bookmark !== undefined) statements.setBookmark.run(change.table, change.bookmark);
    else if (change.load?.mode === "replace") statements.dropBookmark.run(change.table);
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
    async tableSnapshot(table: string) {
      return (statements.tableSnapshot.get(table) as { id: number }).id;
    },
    async liveLoad(table: string, sha256: string) {
      const row = statements.liveLoad.get(table, sha256) as LoadRow | undefined;
      return row ? toLoadRun(row) : null;
    },
    async recordLoad(run: NewLoadRun) {
      return insertLoad(run, null);
    },
    async loads(options: { table?: string; limit?: number } = {}) {
      const limit = options.limit ?? 100;
      const rows = options.table ? statements.loadsOf.all(options.table, limit) : statements.loads.all(limit);
      return (rows as LoadRow[]).map(toLoadRun);
    },
    async bookmark(table: string) {
      const row = statements.bookmark.get(table) as { value: string } | undefined;
      return row ? row.value : null;
    },
    async close() {
      leaseDb.close();
      db.close();
    },
  };
}
