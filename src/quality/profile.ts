/**
 * Profiles: what a table's (or a partition's) data looks like, in one aggregate query over
 * its Parquet files. Per column: NULLs, approximate distinct count (HyperLogLog), min/max/mean/
 * stddev of numbers, min/max of dates and times, lengths of text, and the most frequent values
 * of low-cardinality columns.
 *
 * Counting values (DuckDB's `histogram`) is cheap on a column with few distinct values and
 * expensive on one with millions, and a single pass cannot know which is which. So the query
 * counts values only of columns that the table's previous profile found low-cardinality;
 * a column not profiled before that turns out low-cardinality gets one small follow-up query.
 *
 * Reading every value is what costs (decompressing zstd pages), so a partition larger than the
 * sample budget is profiled on an evenly spread sample: one 2048-row vector in every `stride`
 * rows of each file (`file_row_number`, which DuckDB's Parquet reader filters before it
 * decompresses the other columns). Its row count stays exact (the catalog's); NULLs and value
 * counts are scaled up to it, and the distinct count of a column whose sample was nearly all
 * distinct is scaled too. Cost per profile is then bounded, however large a partition grows.
 */
import type { DuckDBInstance } from "@duckdb/node-api";
import type { TableColumn } from "../catalog/index.js";
import { sqlIdent } from "../warehouse/index.js";
import type { ColumnProfile } from "./model.js";

/** Columns with at most this many distinct values get their top values counted. */
export const LOW_CARDINALITY = 50;
/** How many of the most frequent values a profile keeps. */
const TOP_VALUES = 10;
/** DuckDB's vector: the unit a sample takes, so that whole vectors are skipped. */
export const SAMPLE_VECTOR = 2048;

type Category = "number" | "time" | "text" | "boolean" | "json" | "other";

const NUMBER_TYPE =
  /^(TINYINT|SMALLINT|INTEGER|INT|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|REAL|DOUBLE|DECIMAL.*|NUMERIC.*)$/;
const INTEGER_TYPE = /^(TINYINT|SMALLINT|INTEGER|INT|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT)$/;
const TIME_TYPE = /^(DATE|TIME|TIMESTAMP.*|DATETIME)$/;

export function categoryOf(type: string): Category {
  const upper = type.toUpperCase().trim();
  if (NUMBER_TYPE.test(upper)) return "number";
  if (TIME_TYPE.test(upper)) return "time";
  if (upper === "VARCHAR" || upper === "TEXT" || upper === "STRING" || upper === "UUID") return "text";
  if (upper === "BOOLEAN" || upper === "BOOL") return "boolean";
  if (upper === "JSON") return "json";
  return "other";
}

/** Whether a column's values may be worth counting (text, booleans, whole numbers). */
function countable(column: TableColumn): boolean {
  const category = categoryOf(column.type);
  return category === "text" || category === "boolean" || INTEGER_TYPE.test(column.type.toUpperCase().trim());
}

interface Stat {
  column: number;
  key: keyof ColumnProfile | "count";
  sql: string;
}

/** The aggregates of one profile query: one row, one value per stat. */
function stats(columns: TableColumn[], counted: Set<string>): Stat[] {
  const list: Stat[] = [];
  columns.forEach((column, index) => {
    const name = sqlIdent(column.name);
    const add = (key: Stat["key"], sql: string) => list.push({ column: index, key, sql });
    const category = categoryOf(column.type);
    add("count", `count(${name})`);
    if (category !== "json" && category !== "other") add("distinct", `approx_count_distinct(${name})`);
    if (category === "number") {
      add("min", `CAST(min(${name}) AS DOUBLE)`);
      add("max", `CAST(max(${name}) AS DOUBLE)`);
      add("mean", `CAST(avg(${name}) AS DOUBLE)`);
      add("stddev", `CAST(stddev_samp(${name}) AS DOUBLE)`);
    } else if (category === "time") {
      add("min", `CAST(min(${name}) AS VARCHAR)`);
      add("max", `CAST(max(${name}) AS VARCHAR)`);
    } else if (category === "text" || category === "json") {
      const length = `length(CAST(${name} AS VARCHAR))`;
      add("minLength", `min(${length})`);
      add("maxLength", `max(${length})`);
      add("meanLength", `CAST(avg(${length}) AS DOUBLE)`);
    }
    if (category === "boolean" || (counted.has(column.name) && countable(column))) {
      add("topValues", `histogram(${name})`);
    }
  });
  return list;
}

/**
 * The `file_row_number` stride that samples about `budget` of `rows` rows (0: read them all).
 * A multiple of the vector size, so every sampled vector is whole.
 */
export function sampleStride(rows: number, budget: number): number {
  if (budget <= 0 || rows <= budget) return 0;
  return Math.ceil(rows / budget) * SAMPLE_VECTOR;
}

/**
 * Profiles the rows `relation` (SQL of a SELECT, e.g. over a partition's files) yields.
 * `lowCardinality`: columns the previous profile found to have few distinct values.
 * `totalRows`: when `relation` is a sample, the exact number of rows it was drawn from.
 */
export async function profileRows(
  engine: DuckDBInstance,
  relation: string,
  columns: TableColumn[],
  lowCardinality: Set<string>,
  totalRows?: number,
): Promise<{ rows: number; sampledRows: number | null; columns: ColumnProfile[] }> {
  const list = stats(columns, lowCardinality);
  const connection = await engine.connect();
  try {
    const sql = `SELECT count(*), ${list.map((stat) => stat.sql).join(", ")} FROM (${relation})`;
    const row = ((await connection.runAndReadAll(sql)).getRowsJson()[0] ?? []) as unknown[];
    const rows = Number(row[0] ?? 0);
    const profiles: ColumnProfile[] = columns.map((column) => ({
      name: column.name,
      type: column.type,
      nulls: 0,
      nullPercent: 0,
    }));
    list.forEach((stat, index) => {
      const profile = profiles[stat.column] as ColumnProfile;
      const value = row[index + 1];
      if (stat.key === "count") {
        profile.nulls = rows - Number(value ?? 0);
        profile.nullPercent = rows === 0 ? 0 : round((profile.nulls / rows) * 100);
      } else if (stat.key === "topValues") {
        profile.topValues = topValues(value);
      } else if (stat.key === "min" || stat.key === "max") {
        profile[stat.key] = typeof value === "number" ? round(value) : ((value as string | null) ?? null);
      } else {
        (profile as unknown as Record<string, unknown>)[stat.key] =
          value === null || value === undefined ? null : round(Number(value));
      }
    });
    // Columns seen for the first time that have few values: count them now, in one more pass.
    const newlyLow = columns.filter(
      (column, index) =>
        countable(column) &&
        !lowCardinality.has(column.name) &&
        categoryOf(column.type) !== "boolean" &&
        (profiles[index]?.distinct ?? Number.POSITIVE_INFINITY) <= LOW_CARDINALITY,
    );
    if (newlyLow.length > 0 && rows > 0) {
      const histograms = newlyLow.map((column) => `histogram(${sqlIdent(column.name)})`).join(", ");
      const counts = ((
        await connection.runAndReadAll(`SELECT ${histograms} FROM (${relation})`)
      ).getRowsJson()[0] ?? []) as unknown[];
      newlyLow.forEach((column, index) => {
        const profile = profiles.find((candidate) => candidate.name === column.name) as ColumnProfile;
        profile.topValues = topValues(counts[index]);
      });
    }
    // A column counted because it used to be low-cardinality but no longer is keeps no top values.
    for (const profile of profiles) {
      if (profile.topValues && (profile.distinct ?? 0) > LOW_CARDINALITY) delete profile.topValues;
    }
    if (totalRows === undefined || totalRows === rows) return { rows, sampledRows: null, columns: profiles };
    scaleUp(profiles, rows, totalRows);
    return { rows: totalRows, sampledRows: rows, columns: profiles };
  } finally {
    connection.closeSync();
  }
}

/** Turns a sample's counts into estimates for all `total` rows. */
function scaleUp(profiles: ColumnProfile[], sampled: number, total: number): void {
  const factor = sampled === 0 ? 0 : total / sampled;
  for (const profile of profiles) {
    const nonNull = sampled - profile.nulls;
    profile.nulls = Math.round(profile.nulls * factor);
    // A column whose sampled values were (nearly) all different is an id-like one: it keeps
    // growing with the rows. Any other column's distinct values are mostly all in the sample.
    if (profile.distinct !== undefined && nonNull > 0 && profile.distinct >= 0.9 * nonNull) {
      profile.distinct = Math.round(Math.min(profile.distinct * factor, total - profile.nulls));
    }
    for (const top of profile.topValues ?? []) top.count = Math.round(top.count * factor);
  }
}

/** DuckDB's histogram (a MAP, as [{key, value}] in JSON) → the most frequent values first. */
function topValues(histogram: unknown): ColumnProfile["topValues"] {
  if (!Array.isArray(histogram)) return [];
  return (histogram as { key: string | number | boolean | null; value: string | number }[])
    .map((entry) => ({ value: entry.key, count: Number(entry.value) }))
    .sort((a, b) => b.count - a.count || String(a.value).localeCompare(String(b.value)))
    .slice(0, TOP_VALUES);
}

const round = (value: number): number => Math.round(value * 1e6) / 1e6;
