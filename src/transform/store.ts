/**
 * What transformations remember between builds: the run history of every model, seed and
 * test, and each node's checksum at its last successful build (for `state:modified`).
 * Embedded default: tables of their own (`transform_*`) in the catalog's SQLite file, so a
 * data dir stays one database; a PostgreSQL catalog would implement the same interface.
 */
import Database from "better-sqlite3";

export type RunStatus = "success" | "error" | "failed_tests" | "skipped" | "up_to_date";

export interface TestOutcome {
  name: string;
  severity: "error" | "warn";
  /** skipped: a table it reads is built later in the same build (not there yet), so it could not run. */
  status: "pass" | "fail" | "warn" | "error" | "skipped";
  /** Failing rows (0 when it passed). */
  failures: number;
  /** Where the first failing rows were kept (JSON), or null. */
  failuresFile: string | null;
  message: string | null;
}

export interface ModelRun {
  id: number;
  /** One id per `sluice build` (or trigger run); its nodes share it. */
  invocation: string;
  env: string;
  node: string;
  kind: "model" | "seed";
  /** The lake table written. */
  table: string;
  status: RunStatus;
  rows: number;
  durationMs: number;
  startedAt: string;
  finishedAt: string;
  /** The catalog snapshot that published the table, when one did. */
  snapshot: number | null;
  message: string | null;
  tests: TestOutcome[];
  /** cli, schedule, on_load, api */
  trigger: string;
}

export type NewModelRun = Omit<ModelRun, "id">;

export interface TransformStore {
  recordRun(run: NewModelRun): Promise<ModelRun>;
  runs(options?: { node?: string; env?: string; limit?: number }): Promise<ModelRun[]>;
  /** The latest run of each node in `env`. */
  latestRuns(env: string): Promise<Map<string, ModelRun>>;
  /** Checksums of each node at its last successful build in `env`. */
  builtChecksums(env: string): Promise<Map<string, string>>;
  setBuiltChecksum(env: string, node: string, checksum: string): Promise<void>;
  /** Lake tables written by models and seeds (table → node), in every env. */
  ownedTables(): Promise<Map<string, { env: string; node: string }>>;
  claimTable(table: string, env: string, node: string): Promise<void>;
  close(): Promise<void>;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS transform_runs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  invocation TEXT NOT NULL,
  env TEXT NOT NULL,
  node TEXT NOT NULL,
  kind TEXT NOT NULL,
  table_name TEXT NOT NULL,
  status TEXT NOT NULL,
  rows INTEGER NOT NULL,
  duration_ms INTEGER NOT NULL,
  started_at TEXT NOT NULL,
  finished_at TEXT NOT NULL,
  snapshot INTEGER,
  message TEXT,
  tests TEXT NOT NULL,
  trigger TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS transform_runs_by_node ON transform_runs (env, node, id);
CREATE TABLE IF NOT EXISTS transform_state (
  env TEXT NOT NULL,
  node TEXT NOT NULL,
  checksum TEXT NOT NULL,
  PRIMARY KEY (env, node)
);
CREATE TABLE IF NOT EXISTS transform_tables (
  table_name TEXT PRIMARY KEY,
  env TEXT NOT NULL,
  node TEXT NOT NULL
);
`;

interface RunRow {
  id: number;
  invocation: string;
  env: string;
  node: string;
  kind: ModelRun["kind"];
  table_name: string;
  status: RunStatus;
  rows: number;
  duration_ms: number;
  started_at: string;
  finished_at: string;
  snapshot: number | null;
  message: string | null;
  tests: string;
  trigger: string;
}

const toRun = (row: RunRow): ModelRun => ({
  id: row.id,
  invocation: row.invocation,
  env: row.env,
  node: row.node,
  kind: row.kind,
  table: row.table_name,
  status: row.status,
  rows: row.rows,
  durationMs: row.duration_ms,
  startedAt: row.started_at,
  finishedAt: row.finished_at,
  snapshot: row.snapshot,
  message: row.message,
  tests: JSON.parse(row.tests),
  trigger: row.trigger,
});

export function openSqliteTransformStore(file: string): TransformStore {
  const db = new Database(file);
  db.pragma("busy_timeout = 10000");
  db.pragma("journal_mode = WAL");
  db.exec(SCHEMA);
  const statements = {
    insert: db.prepare(`
      INSERT INTO transform_runs (invocation, env, node, kind, table_name, status, rows, duration_ms,
        started_at, finished_at, snapshot, message, tests, trigger)
      VALUES (@invocation, @env, @node, @kind, @table, @status, @rows, @durationMs, @startedAt,
        @finishedAt, @snapshot, @message, @tests, @trigger)`),
    byId: db.prepare("SELECT * FROM transform_runs WHERE id = ?"),
    latest: db.prepare(
      "SELECT * FROM transform_runs WHERE id IN (SELECT MAX(id) FROM transform_runs WHERE env = ? GROUP BY node)",
    ),
    checksums: db.prepare("SELECT node, checksum FROM transform_state WHERE env = ?"),
    setChecksum: db.prepare(
      "INSERT INTO transform_state (env, node, checksum) VALUES (?, ?, ?) ON CONFLICT(env, node) DO UPDATE SET checksum = excluded.checksum",
    ),
    owned: db.prepare("SELECT table_name, env, node FROM transform_tables"),
    claim: db.prepare(
      "INSERT INTO transform_tables (table_name, env, node) VALUES (?, ?, ?) ON CONFLICT(table_name) DO UPDATE SET env = excluded.env, node = excluded.node",
    ),
  };
  return {
    async recordRun(run) {
      const id = Number(statements.insert.run({ ...run, tests: JSON.stringify(run.tests) }).lastInsertRowid);
      return toRun(statements.byId.get(id) as RunRow);
    },
    async runs(options = {}) {
      const where: string[] = [];
      const params: (string | number)[] = [];
      if (options.node) {
        where.push("node = ?");
        params.push(options.node);
      }
      if (options.env) {
        where.push("env = ?");
        params.push(options.env);
      }
      const sql = `SELECT * FROM transform_runs ${where.length > 0 ? `WHERE ${where.join(" AND ")}` : ""} ORDER BY id DESC LIMIT ?`;
      return (db.prepare(sql).all(...params, options.limit ?? 100) as RunRow[]).map(toRun);
    },
    async latestRuns(env) {
      const rows = statements.latest.all(env) as RunRow[];
      return new Map(rows.map((row) => [row.node, toRun(row)]));
    },
    async builtChecksums(env) {
      const rows = statements.checksums.all(env) as { node: string; checksum: string }[];
      return new Map(rows.map((row) => [row.node, row.checksum]));
    },
    async setBuiltChecksum(env, node, checksum) {
      statements.setChecksum.run(env, node, checksum);
    },
    async ownedTables() {
      const rows = statements.owned.all() as { table_name: string; env: string; node: string }[];
      return new Map(rows.map((row) => [row.table_name, { env: row.env, node: row.node }]));
    },
    async claimTable(table, env, node) {
      statements.claim.run(table, env, node);
    },
    async close() {
      db.close();
    },
  };
}
