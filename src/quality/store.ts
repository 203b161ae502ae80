/**
 * Quality's own state, in `<data-dir>/quality.db` (SQLite, WAL): profile history, check
 * results, and which checks are alerting. Kept apart from the catalog because none of it
 * takes part in a table's snapshots: losing it loses history, never data.
 */
import { join } from "node:path";
import Database from "better-sqlite3";
import type { CheckResult, CheckStatus, NewCheckResult, Profile } from "./model.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS profiles (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  table_name TEXT NOT NULL,
  partition TEXT NOT NULL,
  snapshot INTEGER NOT NULL,
  profiled_at TEXT NOT NULL,
  rows INTEGER NOT NULL,
  sampled_rows INTEGER,
  duration_ms REAL NOT NULL,
  columns TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS profiles_by_table ON profiles (table_name, partition, id);
CREATE TABLE IF NOT EXISTS check_results (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  table_name TEXT NOT NULL,
  check_name TEXT NOT NULL,
  kind TEXT NOT NULL,
  severity TEXT NOT NULL,
  status TEXT NOT NULL,
  observed REAL,
  message TEXT NOT NULL,
  sample TEXT,
  trigger TEXT NOT NULL,
  ran_at TEXT NOT NULL,
  duration_ms REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS check_results_by_table ON check_results (table_name, check_name, id);
CREATE TABLE IF NOT EXISTS alerts (
  table_name TEXT NOT NULL,
  check_name TEXT NOT NULL,
  since TEXT NOT NULL,
  result_id INTEGER NOT NULL,
  PRIMARY KEY (table_name, check_name)
);
CREATE TABLE IF NOT EXISTS cursors (
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL
);
`;

interface ProfileRow {
  id: number;
  table_name: string;
  partition: string;
  snapshot: number;
  profiled_at: string;
  rows: number;
  sampled_rows: number | null;
  duration_ms: number;
  columns: string;
}

const toProfile = (row: ProfileRow): Profile => ({
  id: row.id,
  table: row.table_name,
  partition: row.partition,
  snapshot: row.snapshot,
  profiledAt: row.profiled_at,
  rows: row.rows,
  sampledRows: row.sampled_rows,
  durationMs: row.duration_ms,
  columns: JSON.parse(row.columns),
});

interface ResultRow {
  id: number;
  table_name: string;
  check_name: string;
  kind: string;
  severity: CheckResult["severity"];
  status: CheckStatus;
  observed: number | null;
  message: string;
  sample: string | null;
  trigger: string;
  ran_at: string;
  duration_ms: number;
}

const toResult = (row: ResultRow): CheckResult => ({
  id: row.id,
  table: row.table_name,
  check: row.check_name,
  kind: row.kind,
  severity: row.severity,
  status: row.status,
  observed: row.observed,
  message: row.message,
  sample: row.sample === null ? null : JSON.parse(row.sample),
  trigger: row.trigger,
  ranAt: row.ran_at,
  durationMs: row.duration_ms,
});

export interface ResultSearch {
  table?: string;
  /** A part of the check's name (case-insensitive). */
  check?: string;
  status?: CheckStatus;
  limit?: number;
}

/** An open alert: the check failed, people were told, and it has not recovered yet. */
export interface OpenAlert {
  table: string;
  check: string;
  since: string;
  resultId: number;
}

/** Where a data dir keeps quality's state. */
export function qualityDbPath(dataDir: string): string {
  return join(dataDir, "quality.db");
}

export class QualityStore {
  readonly #db: Database.Database;
  readonly #statements;

  constructor(file: string) {
    this.#db = new Database(file);
    this.#db.pragma("busy_timeout = 10000");
    this.#db.pragma("journal_mode = WAL");
    this.#db.exec(SCHEMA);
    const db = this.#db;
    this.#statements = {
      addProfile: db.prepare(`
        INSERT INTO profiles (table_name, partition, snapshot, profiled_at, rows, sampled_rows, duration_ms, columns)
        VALUES (@table, @partition, @snapshot, @profiledAt, @rows, @sampledRows, @durationMs, @columns)`),
      profileById: db.prepare("SELECT * FROM profiles WHERE id = ?"),
      // A streaming partition is profiled every minute: history keeps the last profile of each hour.
      thinHour: db.prepare(`
        DELETE FROM profiles WHERE table_name = ? AND partition = ? AND partition <> ''
          AND substr(profiled_at, 1, 13) = substr(?, 1, 13) AND id <> ?`),
      pruneProfiles: db.prepare(`
        DELETE FROM profiles WHERE profiled_at < ?
          AND id NOT IN (SELECT max(id) FROM profiles GROUP BY table_name, partition)`),
      pruneResults: db.prepare(`
        DELETE FROM check_results WHERE ran_at < ?
          AND id NOT IN (SELECT max(id) FROM check_results GROUP BY table_name, check_name)`),
      latestProfiles: db.prepare(`
        SELECT p.* FROM profiles p
        JOIN (SELECT max(id) AS id FROM profiles WHERE table_name = ? GROUP BY partition) latest USING (id)
        ORDER BY p.partition`),
      latestOfEachTable: db.prepare(`
        SELECT p.* FROM profiles p
        JOIN (SELECT max(id) AS id FROM profiles GROUP BY table_name) latest USING (id)
        ORDER BY p.table_name`),
      history: db.prepare("SELECT * FROM profiles WHERE table_name = ? ORDER BY id DESC LIMIT ?"),
      historyOfPartition: db.prepare(
        "SELECT * FROM profiles WHERE table_name = ? AND partition = ? ORDER BY id DESC LIMIT ?",
      ),
      before: db.prepare(
        "SELECT * FROM profiles WHERE table_name = ? AND snapshot < ? ORDER BY snapshot DESC, id DESC LIMIT 1",
      ),
      addResult: db.prepare(`
        INSERT INTO check_results (table_name, check_name, kind, severity, status, observed, message, sample,
          trigger, ran_at, duration_ms)
        VALUES (@table, @check, @kind, @severity, @status, @observed, @message, @sample, @trigger, @ranAt,
          @durationMs)`),
      resultById: db.prepare("SELECT * FROM check_results WHERE id = ?"),
      search: db.prepare(`
        SELECT * FROM check_results
        WHERE (@table IS NULL OR table_name = @table)
          AND (@check IS NULL OR instr(lower(check_name), lower(@check)) > 0)
          AND (@status IS NULL OR status = @status)
        ORDER BY id DESC LIMIT @limit`),
      latestResults: db.prepare(`
        SELECT r.* FROM check_results r
        JOIN (SELECT max(id) AS id FROM check_results WHERE (@table IS NULL OR table_name = @table)
              GROUP BY table_name, check_name) latest USING (id)
        ORDER BY r.table_name, r.check_name`),
      openAlert: db.prepare("SELECT * FROM alerts WHERE table_name = ? AND check_name = ?"),
      openAlerts: db.prepare("SELECT * FROM alerts ORDER BY table_name, check_name"),
      raise: db.prepare(
        "INSERT OR REPLACE INTO alerts (table_name, check_name, since, result_id) VALUES (?, ?, ?, ?)",
      ),
      clear: db.prepare("DELETE FROM alerts WHERE table_name = ? AND check_name = ?"),
      cursor: db.prepare("SELECT value FROM cursors WHERE name = ?"),
      setCursor: db.prepare(
        "INSERT INTO cursors (name, value) VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
      ),
    };
  }

  addProfile(profile: Omit<Profile, "id">): Profile {
    const id = this.#statements.addProfile.run({
      ...profile,
      columns: JSON.stringify(profile.columns),
    }).lastInsertRowid;
    this.#statements.thinHour.run(profile.table, profile.partition, profile.profiledAt, id);
    return toProfile(this.#statements.profileById.get(id) as ProfileRow);
  }

  /** Forgets profiles and results older than `before` (ISO time), but never the latest of each. */
  prune(before: string): { profiles: number; results: number } {
    return {
      profiles: this.#statements.pruneProfiles.run(before).changes,
      results: this.#statements.pruneResults.run(before).changes,
    };
  }

  /** The newest profile of each of the table's partitions ("" for an unpartitioned table). */
  latestProfiles(table: string): Profile[] {
    return (this.#statements.latestProfiles.all(table) as ProfileRow[]).map(toProfile);
  }

  /** The newest profile of every table (of any partition). */
  latestOfEachTable(): Profile[] {
    return (this.#statements.latestOfEachTable.all() as ProfileRow[]).map(toProfile);
  }

  /** Profiles newest first, of one partition or all. */
  history(table: string, options: { partition?: string; limit?: number } = {}): Profile[] {
    const limit = options.limit ?? 100;
    const rows =
      options.partition === undefined
        ? this.#statements.history.all(table, limit)
        : this.#statements.historyOfPartition.all(table, options.partition, limit);
    return (rows as ProfileRow[]).map(toProfile);
  }

  /** The newest profile taken at a snapshot of the table older than `snapshot`. */
  profileBefore(table: string, snapshot: number): Profile | null {
    const row = this.#statements.before.get(table, snapshot) as ProfileRow | undefined;
    return row ? toProfile(row) : null;
  }

  addResult(result: NewCheckResult): CheckResult {
    const id = this.#statements.addResult.run({
      ...result,
      sample: result.sample === null ? null : JSON.stringify(result.sample),
    }).lastInsertRowid;
    return toResult(this.#statements.resultById.get(id) as ResultRow);
  }

  /** Check results newest first. */
  results(search: ResultSearch = {}): CheckResult[] {
    const rows = this.#statements.search.all({
      table: search.table ?? null,
      check: search.check ?? null,
      status: search.status ?? null,
      limit: search.limit ?? 100,
    });
    return (rows as ResultRow[]).map(toResult);
  }

  /** The latest result of every check (of one table, or all). */
  latestResults(table?: string): CheckResult[] {
    return (this.#statements.latestResults.all({ table: table ?? null }) as ResultRow[]).map(toResult);
  }

  openAlert(table: string, check: string): OpenAlert | null {
    const row = this.#statements.openAlert.get(table, check) as
      | { table_name: string; check_name: string; since: string; result_id: number }
      | undefined;
    return row
      ? { table: row.table_name, check: row.check_name, since: row.since, resultId: row.result_id }
      : null;
  }

  openAlerts(): OpenAlert[] {
    const rows = this.#statements.openAlerts.all() as {
      table_name: string;
      check_name: string;
      since: string;
      result_id: number;
    }[];
    return rows.map((row) => ({
      table: row.table_name,
      check: row.check_name,
      since: row.since,
      resultId: row.result_id,
    }));
  }

  raiseAlert(result: CheckResult): void {
    this.#statements.raise.run(result.table, result.check, result.ranAt, result.id);
  }

  clearAlert(table: string, check: string): void {
    this.#statements.clear.run(table, check);
  }

  /** A named position of a follower (e.g. the last load it handled); null before the first. */
  cursor(name: string): number | null {
    const row = this.#statements.cursor.get(name) as { value: number } | undefined;
    return row ? row.value : null;
  }

  setCursor(name: string, value: number): void {
    this.#statements.setCursor.run(name, value);
  }

  /**
   * Replaces these values (a forgotten user's ids, privacy/forget.ts) wherever profiles' top values
   * and check results' samples hold them, with "(forgotten)": viewers read both. Returns how many
   * profiles and results changed.
   */
  forgetValues(values: readonly string[]): number {
    const forgotten = new Set(values);
    const needles = values.map((value) => JSON.stringify(value));
    if (needles.length === 0) return 0;
    let changed = 0;
    for (const [table, column] of [
      ["profiles", "columns"],
      ["check_results", "sample"],
    ] as const) {
      const holding = needles.map(() => `instr(${column}, ?) > 0`).join(" OR ");
      const rows = this.#db
        .prepare(`SELECT id, ${column} AS text FROM ${table} WHERE ${holding}`)
        .all(...needles) as { id: number; text: string }[];
      const update = this.#db.prepare(`UPDATE ${table} SET ${column} = ? WHERE id = ?`);
      this.#db.transaction(() => {
        for (const row of rows) {
          const scrubbed = JSON.stringify(withoutValues(JSON.parse(row.text), forgotten));
          if (scrubbed === row.text) continue;
          update.run(scrubbed, row.id);
          changed++;
        }
      })();
    }
    return changed;
  }

  close(): void {
    this.#db.close();
  }
}

/** `value` with every string in `forgotten` replaced by "(forgotten)", at any depth. */
function withoutValues(value: unknown, forgotten: ReadonlySet<string>): unknown {
  if (typeof value === "string") return forgotten.has(value) ? "(forgotten)" : value;
  if (Array.isArray(value)) return value.map((item) => withoutValues(item, forgotten));
  if (value !== null && typeof value === "object") {
    return Object.fromEntries(
      Object.entries(value).map(([key, item]) => [key, withoutValues(item, forgotten)]),
    );
  }
  return value;
}
