/**
 * The contract of a check kind: one file per kind in this folder, listed in `registry.ts`.
 * A kind validates its YAML fields (`parse`), names itself when the YAML gives no name, and
 * judges the data (`run`). Judging never throws for bad data: a broken rule is a failed
 * outcome; a throw (bad SQL, a missing column) becomes an `error` result naming the reason.
 */
import type { TableDef } from "../../catalog/index.js";
import type { QueryResult } from "../../warehouse/index.js";
import type { Fields } from "./fields.js";

export interface CheckContext {
  table: TableDef;
  /**
   * SQL of the rows to check, usable after FROM: the table (or, when auditing, the candidate's
   * files), with the check's `where` applied.
   */
  relation: string;
  /** Runs a read-only query over the lake (other tables by name). */
  query(sql: string): Promise<QueryResult>;
  /** The time the run counts as now (the last complete day is the day before it, in UTC). */
  now: Date;
  /** The table's columns as profiled before its latest change; null when there is no such profile. */
  previousColumns(): Promise<{ columns: { name: string; type: string }[]; profiledAt: string } | null>;
}

export interface Outcome {
  passed: boolean;
  observed: number | null;
  message: string;
  sample?: { columns: string[]; rows: unknown[][] } | null;
}

export interface CheckKind<Spec> {
  /** The name used in YAML: `type: missing`. */
  kind: string;
  /** Its own YAML fields (besides type, name, severity and where). */
  fields: readonly string[];
  /** Validates the check's own fields; unknown fields and wrong types throw CheckSpecError. */
  parse(fields: Fields): Spec;
  /** The check's name when the YAML gives none, e.g. `missing(email)`. */
  defaultName(spec: Spec): string;
  run(spec: Spec, context: CheckContext): Promise<Outcome>;
}

/** Reads the first value of the first row as a number (0 when empty). */
export async function scalar(context: CheckContext, sql: string): Promise<number> {
  const result = await context.query(sql);
  const value = result.rows[0]?.[0];
  return value === null || value === undefined ? 0 : Number(value);
}

/** Up to `limit` rows of a query, as a sample for the result. */
export async function sample(
  context: CheckContext,
  sql: string,
  limit = 5,
): Promise<{ columns: string[]; rows: unknown[][] }> {
  const result = await context.query(`SELECT * FROM (${sql}) LIMIT ${limit}`);
  return { columns: result.columns.map((column) => column.name), rows: result.rows };
}

/** 1234567 → "1,234,567"; fractions to at most 2 decimals. */
export function formatNumber(value: number): string {
  return value.toLocaleString("en-US", { maximumFractionDigits: 2 });
}

export const plural = (count: number, noun: string): string =>
  `${formatNumber(count)} ${noun}${count === 1 ? "" : "s"}`;

/** "1 row has", "3 rows have". */
export const rowsHave = (count: number): string => `${plural(count, "row")} ${count === 1 ? "has" : "have"}`;
