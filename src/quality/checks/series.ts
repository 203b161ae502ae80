/**
 * A daily metric for the anomaly and change checks: the row count per UTC day of a time
 * column (`metric: row_count`, the default), or any query returning (day, value) rows (`sql`).
 */
import type { TableDef } from "../../catalog/index.js";
import { sqlIdent } from "../../warehouse/index.js";
import type { CheckContext } from "./check.js";
import { CheckSpecError, type Fields } from "./fields.js";

export interface MetricSpec {
  /** A query returning (day, value) rows; else the row count per day of `timeColumn`. */
  sql?: string;
  timeColumn?: string;
}

export function parseMetric(fields: Fields): MetricSpec {
  const metric = fields.choice("metric", ["row_count"] as const);
  const sql = fields.string("sql");
  const timeColumn = fields.string("time_column");
  if (sql && metric) throw new CheckSpecError("set metric or sql, not both");
  if (sql && timeColumn) throw new CheckSpecError("time_column applies to metric: row_count, not to sql");
  return { sql: sql?.trim().replace(/;\s*$/, ""), timeColumn };
}

export function metricName(spec: MetricSpec): string {
  return spec.sql ? "sql" : `row_count${spec.timeColumn ? `(${spec.timeColumn})` : ""}`;
}

/** Days from `from` to `to` (inclusive, `YYYY-MM-DD`) → value; days without rows are absent. */
export async function dailySeries(
  spec: MetricSpec,
  context: CheckContext,
  from: string,
  to: string,
): Promise<Map<string, number>> {
  const sql = spec.sql
    ? userSeriesSql(spec.sql, from, to)
    : rowCountSql(context.table, spec, context.relation, from, to);
  const result = await context.query(sql);
  const series = new Map<string, number>();
  for (const [day, value] of result.rows) {
    if (day === null || day === undefined) continue;
    series.set(String(day).slice(0, 10), value === null ? 0 : Number(value));
  }
  return series;
}

function rowCountSql(table: TableDef, spec: MetricSpec, relation: string, from: string, to: string): string {
  const column = spec.timeColumn ?? table.partitionBy?.fromTimestamp;
  if (!column) throw new Error(`table ${table.name} is not partitioned by time: set time_column`);
  const partition = table.partitionBy;
  // The partition column is the UTC date of its timestamp: grouping by it reads no timestamps.
  const day =
    partition && partition.fromTimestamp === column
      ? sqlIdent(partition.column)
      : `CAST(${sqlIdent(column)} AS DATE)`;
  return `SELECT CAST(${day} AS VARCHAR) AS day, count(*) AS value FROM ${relation}
    WHERE ${day} BETWEEN DATE '${from}' AND DATE '${to}' GROUP BY 1`;
}

function userSeriesSql(sql: string, from: string, to: string): string {
  // The query's first two columns, whatever their names.
  return `SELECT CAST(CAST(day AS DATE) AS VARCHAR), CAST(value AS DOUBLE)
    FROM (${sql}) AS metric(day, value)
    WHERE CAST(day AS DATE) BETWEEN DATE '${from}' AND DATE '${to}'`;
}

/** The last complete UTC day before `now`. */
export const lastCompleteDay = (now: Date): string => addDays(now.toISOString().slice(0, 10), -1);

export function addDays(day: string, days: number): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) + days * 86_400_000).toISOString().slice(0, 10);
}

export const WEEKDAYS = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];

export const weekdayOf = (day: string): string =>
  WEEKDAYS[new Date(`${day}T00:00:00Z`).getUTCDay()] as string;
