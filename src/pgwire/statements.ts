/**
 * Statements a PostgreSQL client sends as part of talking to a server rather than to
 * ask for data: transactions, session settings, SHOW of server parameters, version().
 * They are answered here, as PostgreSQL would, instead of reaching DuckDB (where they
 * would be refused as writes or answered in DuckDB's terms).
 */

/** What the server reports at login and to SHOW. */
export const SERVER_PARAMETERS: Record<string, string> = {
  server_version: "16.0",
  server_encoding: "UTF8",
  client_encoding: "UTF8",
  DateStyle: "ISO, MDY",
  IntervalStyle: "postgres",
  TimeZone: "UTC",
  integer_datetimes: "on",
  standard_conforming_strings: "on",
  is_superuser: "off",
  application_name: "",
};

const SHOWABLE: Record<string, string> = {
  ...Object.fromEntries(
    Object.entries(SERVER_PARAMETERS).map(([name, value]) => [name.toLowerCase(), value]),
  ),
  "transaction isolation level": "repeatable read",
  transaction_isolation: "repeatable read",
  default_transaction_read_only: "on",
  transaction_read_only: "on",
  max_identifier_length: "63",
  search_path: "main",
  lc_collate: "C",
  lc_ctype: "C",
};

export const VERSION = "PostgreSQL 16.0 (Sluice, on DuckDB) - compatible wire protocol";

export interface LocalAnswer {
  tag: string;
  columns: string[];
  rows: string[][];
  /** A transaction statement: reads already see one snapshot per statement, so only the status changes. */
  transaction?: "begin" | "end";
}

/** The answer to `sql` when it is one of the session statements, else null (DuckDB answers). */
export function answerLocally(sql: string): LocalAnswer | null {
  const text = sql
    .trim()
    .replace(/;+\s*$/, "")
    .trim();
  if (text.includes(";")) return null;
  const lower = text.toLowerCase().replace(/\s+/g, " ");
  if (/^(begin|start transaction)\b/.test(lower))
    return { tag: "BEGIN", columns: [], rows: [], transaction: "begin" };
  if (/^(commit|end)\b/.test(lower)) return { tag: "COMMIT", columns: [], rows: [], transaction: "end" };
  if (/^(rollback|abort)\b/.test(lower))
    return { tag: "ROLLBACK", columns: [], rows: [], transaction: "end" };
  if (/^set\b/.test(lower)) return { tag: "SET", columns: [], rows: [] };
  if (/^reset\b/.test(lower)) return { tag: "RESET", columns: [], rows: [] };
  if (/^discard\b/.test(lower)) return { tag: lower.toUpperCase(), columns: [], rows: [] };
  if (/^deallocate\b/.test(lower)) return { tag: "DEALLOCATE", columns: [], rows: [] };
  const show = /^show (.+)$/.exec(lower);
  const shown = show?.[1] === undefined ? undefined : SHOWABLE[show[1].replaceAll('"', "")];
  if (show?.[1] !== undefined && shown !== undefined) {
    return { tag: "SHOW", columns: [show[1].replaceAll('"', "")], rows: [[shown]] };
  }
  if (/^select (pg_catalog\.)?version\(\)$/.test(lower))
    return { tag: "SELECT 1", columns: ["version"], rows: [[VERSION]] };
  return null;
}
