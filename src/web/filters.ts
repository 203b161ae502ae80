/**
 * Dashboard filters applied to any panel's SQL. Each table the SQL reads gets a same-named CTE
 * that keeps only the rows the filters allow (`WITH events AS (SELECT * FROM events WHERE …)`:
 * inside its own definition the name still means the table), so a chart written as plain SQL
 * over `events` is filtered without being rewritten. A filter applies to the tables it can:
 * the date range to partitioned tables (by their timestamp) and tables with a `ts` column, a
 * property to tables with that column or with `properties`.
 *
 * Filters arrive as URL parameters: `from`, `to` (days, inclusive), `last` (`7d`, `24h`), and any
 * other `name=value` (`country=NL`, `country=NL,DE`).
 */
import type { TableDef } from "../catalog/index.js";
import { sqlIdent, sqlString } from "../warehouse/index.js";
import { AnalysisError, rangeConditions } from "./analyses.js";

export type Filters = Record<string, string>;

const RESERVED = new Set(["from", "to", "last", "refresh"]);
const PROPERTY_NAME = /^[A-Za-z_][A-Za-z0-9_.$-]{0,99}$/;

/** The filters among URL parameters (anything but empty values). */
export function filtersFromQuery(query: Record<string, unknown>): Filters {
  const filters: Filters = {};
  for (const [name, value] of Object.entries(query)) {
    if (name === "refresh") continue;
    const text = Array.isArray(value) ? value.join(",") : value;
    if (typeof text === "string" && text !== "") filters[name] = text;
  }
  return filters;
}

/** The SQL conditions a table's rows must meet under `filters` (empty when none applies). */
export function tableConditions(table: TableDef, filters: Filters): string[] {
  const columns = new Set(table.columns.map((column) => column.name));
  const conditions: string[] = [];
  const timestamp = table.partitionBy?.fromTimestamp ?? (columns.has("ts") ? "ts" : null);
  if (timestamp) {
    const last = filters.last === undefined ? undefined : parseLast(filters.last);
    if (last?.unit === "DAY") conditions.push(...rangeConditions({ last: last.amount }, timestamp));
    else if (last) conditions.push(`${sqlIdent(timestamp)} >= now() - INTERVAL ${last.amount} HOUR`);
    conditions.push(...rangeConditions({ from: filters.from, to: filters.to }, timestamp));
    // The same bounds on the partition column let DuckDB skip other days' files by their path
    // (the lake's own pruning cannot see through the CTE). dt is the UTC date of the timestamp.
    if (table.partitionBy) {
      const dt = sqlIdent(table.partitionBy.column);
      if (last) conditions.push(`${dt} >= CAST(now() - INTERVAL ${last.amount} ${last.unit} AS DATE)`);
      if (filters.from) conditions.push(`${dt} >= CAST(TIMESTAMPTZ ${sqlString(filters.from)} AS DATE)`);
      if (filters.to) conditions.push(`${dt} <= CAST(TIMESTAMPTZ ${sqlString(filters.to)} AS DATE)`);
    }
  }
  for (const [name, value] of Object.entries(filters)) {
    if (RESERVED.has(name)) continue;
    if (!PROPERTY_NAME.test(name)) throw new AnalysisError(`"${name}" is not a filter name`);
    const values = value
      .split(",")
      .map((one) => one.trim())
      .filter((one) => one !== "");
    if (values.length === 0) continue;
    const list = values.map(sqlString).join(", ");
    if (columns.has(name)) conditions.push(`${sqlIdent(name)}::VARCHAR IN (${list})`);
    else if (columns.has("properties")) conditions.push(`(properties->>${sqlString(name)}) IN (${list})`);
  }
  return conditions;
}

function parseLast(value: string): { amount: number; unit: "DAY" | "HOUR" } {
  const match = /^(\d{1,4})([dh])$/.exec(value);
  if (!match) throw new AnalysisError('"last" must be like 7d or 24h');
  return { amount: Number(match[1]), unit: match[2] === "d" ? "DAY" : "HOUR" };
}

/** Whether `sql` names `table` as a word (the warehouse's own test). */
const mentions = (sql: string, name: string): boolean =>
  new RegExp(`(^|[^A-Za-z0-9_$])${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}($|[^A-Za-z0-9_$])`, "i").test(
    sql,
  );

/** `sql` with the filters applied to every table it reads; unchanged when none applies. */
export function applyFilters(sql: string, filters: Filters, tables: TableDef[]): string {
  const body = sql.trim().replace(/;+\s*$/, "");
  const ctes: string[] = [];
  for (const table of tables) {
    if (!mentions(body, table.name)) continue;
    const conditions = tableConditions(table, filters);
    if (conditions.length === 0) continue;
    const name = sqlIdent(table.name);
    ctes.push(`${name} AS (SELECT * FROM ${name} WHERE ${conditions.join(" AND ")})`);
  }
  if (ctes.length === 0) return body;
  // Joined into the query's own WITH list when it has one; a RECURSIVE one would make ours recursive.
  const withList = /^WITH\s+(?!RECURSIVE\b)/i.exec(body);
  if (withList) return `WITH ${ctes.join(", ")}, ${body.slice(withList[0].length)}`;
  if (/^(SELECT|FROM)\b/i.test(body)) return `WITH ${ctes.join(", ")} ${body}`;
  return `WITH ${ctes.join(", ")} SELECT * FROM (${body})`;
}
