/**
 * Statements a PostgreSQL client sends as part of talking to a server rather than to
 * ask for data: transactions, session settings, SHOW of server parameters, version().
 * They are answered here, as PostgreSQL would, instead of reaching DuckDB (where they
 * would be refused as writes or answered in DuckDB's terms).
 */
import { QueryError } from "../warehouse/index.js";

/** An error the Postgres port raises itself, with PostgreSQL's SQLSTATE for it. */
export class PgError extends QueryError {
  constructor(
    message: string,
    readonly code: string,
  ) {
    super(message);
  }
}

/** A name as PostgreSQL reads it: "Quoted" as written, a bare one folded to lower case. */
export const identifierName = (name: string): string =>
  name.startsWith('"') ? name.slice(1, -1).replaceAll('""', '"') : name.toLowerCase();

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
  "time zone": "UTC",
  "transaction isolation level": "repeatable read",
  transaction_isolation: "repeatable read",
  default_transaction_read_only: "on",
  transaction_read_only: "on",
  max_identifier_length: "63",
  search_path: "main",
  lc_collate: "C",
  lc_ctype: "C",
  bytea_output: "hex",
  extra_float_digits: "1",
  client_min_messages: "notice",
  statement_timeout: "0",
  server_version_num: "160000",
};

/** The column SHOW names its answer by, as PostgreSQL does: the parameter's own spelling. */
function columnOfShow(name: string): string {
  if (name === "transaction isolation level") return "transaction_isolation";
  const canonical = name === "time zone" ? "timezone" : name;
  return Object.keys(SERVER_PARAMETERS).find((key) => key.toLowerCase() === canonical) ?? canonical;
}

/** Every server parameter with its value, as pg_settings lists them. */
export const serverParameters = (): [string, string][] =>
  Object.entries(SHOWABLE).filter(([name]) => !name.includes(" "));

/** The value of a server parameter, by any spelling of its name; undefined for one we do not know. */
export const parameterValue = (name: string): string | undefined => SHOWABLE[name.toLowerCase()];

/** DuckDB settings that are also PostgreSQL parameters: a SET of them is a harmless no-op. */
const SHARED_PARAMETERS = new Set(["timezone", "search_path", "schema"]);

export const VERSION = "PostgreSQL 16.0 (Sluice, on DuckDB) - compatible wire protocol";

export interface LocalAnswer {
  tag: string;
  columns: string[];
  rows: string[][];
  /** A transaction statement: reads already see one snapshot per statement, so only the status changes. */
  transaction?: "begin" | "end";
  /** What the session drops: DISCARD ALL everything, DEALLOCATE one prepared statement or all. */
  drops?: "everything" | "statements" | { statement: string };
}

/**
 * The answer to `sql` when it is one of the session statements, else null (DuckDB answers).
 * `engineSettings` are the query engine's own settings (lower case): a SET or RESET of one is
 * refused, so nobody believes the sandbox's limits could be lifted.
 */
export function answerLocally(sql: string, engineSettings: ReadonlySet<string>): LocalAnswer | null {
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
  const setting = /^(set|reset) (?:(?:session|local|global) )?"?([\w.]+)/.exec(lower);
  if (setting) {
    const name = setting[2] as string;
    if (engineSettings.has(name) && !SHARED_PARAMETERS.has(name)) throw new SettingRefused(name);
    return { tag: setting[1] === "set" ? "SET" : "RESET", columns: [], rows: [] };
  }
  if (/^discard\b/.test(lower)) {
    return {
      tag: lower.toUpperCase(),
      columns: [],
      rows: [],
      drops: lower === "discard all" ? "everything" : undefined,
    };
  }
  const deallocate = /^deallocate\s+(?:prepare\s+)?("(?:[^"]|"")+"|\S+)$/i.exec(text);
  if (deallocate) {
    const name = deallocate[1] as string;
    const drops = name.toLowerCase() === "all" ? "statements" : { statement: identifierName(name) };
    return { tag: "DEALLOCATE", columns: [], rows: [], drops };
  }
  const show = /^show (.+)$/.exec(lower)?.[1]?.replaceAll('"', "");
  const shown = show === undefined ? undefined : parameterValue(show);
  if (show !== undefined && shown !== undefined) {
    return { tag: "SHOW", columns: [columnOfShow(show)], rows: [[shown]] };
  }
  if (/^select (pg_catalog\.)?version\(\)$/.test(lower))
    return { tag: "SELECT 1", columns: ["version"], rows: [[VERSION]] };
  return null;
}

/** A SET or RESET of one of the query engine's own settings. */
export class SettingRefused extends PgError {
  constructor(readonly setting: string) {
    super(
      `permission denied to set parameter "${setting}": the query engine's settings are fixed by the server`,
      "42501",
    );
  }
}

/**
 * The statements of a simple query, split at semicolons outside literals, quoted names and
 * comments; statements that are only comments or blanks are left out.
 */
export function splitStatements(sql: string): string[] {
  const statements: string[] = [];
  let start = 0;
  let index = 0;
  let meaningful = false;
  const push = (end: number) => {
    if (meaningful) statements.push(sql.slice(start, end).trim());
    start = end + 1;
    meaningful = false;
  };
  while (index < sql.length) {
    const char = sql[index] as string;
    const next = sql[index + 1];
    if (char === "-" && next === "-") {
      const end = sql.indexOf("\n", index);
      index = end === -1 ? sql.length : end + 1;
    } else if (char === "/" && next === "*") {
      const end = sql.indexOf("*/", index + 2);
      index = end === -1 ? sql.length : end + 2;
    } else if (char === "'" || char === '"') {
      meaningful = true;
      // In E'...' a backslash escapes the next character, a quote too.
      const escapes = char === "'" && /(?:^|[^\w])e$/i.test(sql.slice(Math.max(0, index - 2), index));
      let end = index + 1;
      while (end < sql.length && !(sql[end] === char && sql[end + 1] !== char)) {
        end += sql[end] === char || (escapes && sql[end] === "\\") ? 2 : 1;
      }
      index = end + 1;
    } else if (char === "$" && /^\$(?:[a-z_]\w*)?\$/i.test(sql.slice(index))) {
      meaningful = true;
      const tag = (/^\$(?:[a-z_]\w*)?\$/i.exec(sql.slice(index)) as RegExpExecArray)[0];
      const end = sql.indexOf(tag, index + tag.length);
      index = end === -1 ? sql.length : end + tag.length;
    } else if (char === ";") {
      push(index);
      index++;
    } else {
      if (!/\s/.test(char)) meaningful = true;
      index++;
    }
  }
  push(sql.length);
  return statements;
}
