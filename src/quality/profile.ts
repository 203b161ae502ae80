/**
 * Profiles: what a table's (or a partition's) data looks like, in one aggregate query over
 * its Parquet files (a sample of them when large) and one counting the values of its
 * low-cardinality columns. Per column: NULLs, approximate distinct count (HyperLogLog), min/max/mean/
 * stddev of numbers, min/max of dates and times, lengths of text, and the most frequent values
 * of low-cardinality columns.
 *
 * Counting values (a `GROUP BY` per column) is cheap on a column with few distinct values and
 * expensive on one with millions, and a single pass cannot know which is which. So values are
 * counted, in a second pass over the same rows (one grouping set per column), only of columns
 * the table's profiles found low-cardinality (their distinct count is then exact) and of columns
 * the first pass just found to have few values.
 *
 * Reading values is what costs, and the unit of reading is not the row: a Parquet column chunk
 * (a row group's values of one column, zstd) is decompressed whole as soon as one of its rows is
 * wanted, and opening a file has a cost of its own. So a partition larger than the sample budget
 * is profiled on a sample of contiguous blocks (`sampleBlocks`): whole files when they are small
 * (a loader's or the events writer's files), else row ranges of at most one row group, evenly
 * spread over the partition's files in their order, about `budget` rows in all. The reader skips
 * the files and row groups no block touches, unread. Its row count stays exact (the catalog's);
 * NULLs and value counts are scaled up to it, and the distinct count of a column whose sample was
 * nearly all distinct is scaled too. Cost per profile is then bounded, however large a partition
 * grows.
 */
import type { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import type { TableColumn } from "../catalog/index.js";
import { sqlIdent } from "../warehouse/index.js";
import type { ColumnProfile } from "./model.js";

/** Columns with at most this many distinct values get their top values counted. */
const LOW_CARDINALITY = 50;
/** How many of the most frequent values a profile keeps. */
const TOP_VALUES = 10;
/** DuckDB's vector: the smallest block a sample takes. */
const SAMPLE_VECTOR = 2048;
/** DuckDB's Parquet row group (the lake writer's): the largest block a sample takes. */
export const ROW_GROUP_ROWS = 122_880;

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
    // A counted column's distinct values are counted exactly, by `countValues`.
    if (category !== "json" && category !== "other" && !counted.has(column.name))
      add("distinct", `approx_count_distinct(${name})`);
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
  });
  return list;
}

/** A column's number of distinct values, and the most frequent ones with their counts. */
type ValueCounts = { distinct: number; values: { value: unknown; count: number }[] };

/**
 * The values of `columns` with their counts, in one more pass over `relation` (one grouping set
 * per column: hash aggregation, cheaper than a `histogram` per column in the main query). Per
 * column: how many distinct non-null values, and the most frequent of them (at most
 * `LOW_CARDINALITY` + 1, so that a column that stopped being low-cardinality costs little).
 */
async function countValues(
  connection: DuckDBConnection,
  relation: string,
  columns: TableColumn[],
): Promise<Map<string, ValueCounts>> {
  const names = columns.map((column) => sqlIdent(column.name));
  const result = await connection.runAndReadAll(
    `SELECT *, count(*) OVER (PARTITION BY "$set") AS "$groups" FROM (
      SELECT ${names.join(", ")}, GROUPING(${names.join(", ")}) AS "$set", count(*) AS "$count"
      FROM (${relation}) GROUP BY GROUPING SETS (${names.map((name) => `(${name})`).join(", ")})
    ) WHERE ${names.map((name) => `${name} IS NOT NULL`).join(" OR ")}
    QUALIFY row_number() OVER (PARTITION BY "$set" ORDER BY "$count" DESC) <= ${LOW_CARDINALITY + 1}`,
  );
  const counts = new Map<string, ValueCounts>();
  for (const row of result.getRowsJson() as unknown[][]) {
    const index = row.slice(0, columns.length).findIndex((value) => value !== null);
    const name = columns[index]?.name as string;
    const entry = counts.get(name) ?? { distinct: Number(row[columns.length + 2]), values: [] };
    entry.values.push({ value: row[index], count: Number(row[columns.length + 1]) });
    counts.set(name, entry);
  }
  return counts;
}

/**
 * The columns worth counting values of: those with few values (at most `LOW_CARDINALITY`, each
 * seen at least twice on average) in the profile that saw most of the column's values. A small
 * partition, where every column has few values, must not make an id column one: counting the
 * values of an id column in a large partition would cost more than the rest of its profile.
 */
export function lowCardinalityColumns(profiles: { rows: number; columns: ColumnProfile[] }[]): Set<string> {
  const best = new Map<string, { values: number; low: boolean }>();
  for (const profile of profiles) {
    for (const column of profile.columns) {
      if (column.distinct === undefined) continue;
      const values = profile.rows - column.nulls;
      if ((best.get(column.name)?.values ?? -1) >= values) continue;
      best.set(column.name, {
        values,
        low: column.distinct <= LOW_CARDINALITY && values >= 2 * column.distinct,
      });
    }
  }
  return new Set([...best].filter(([, verdict]) => verdict.low).map(([name]) => name));
}

/** Rows `from` to `to` (exclusive) of one file, `path`, read for a sample. */
export interface SampleBlock {
  path: string;
  from: number;
  to: number;
  /** The block is the whole file. */
  whole: boolean;
}

/**
 * The blocks a sample of about `budget` of the files' rows reads, or null to read them all
 * (`budget` 0, or no more rows than it). Files are cut into blocks of a quarter of the budget
 * (whole vectors, at most a row group; a smaller file is one block), and blocks are taken
 * evenly spread over the files in their order (systematic sampling by rows), so that the
 * sample spans the partition (for a time-ordered partition, its whole day) while reading as
 * few files and row groups as it can.
 */
export function sampleBlocks(files: { path: string; rows: number }[], budget: number): SampleBlock[] | null {
  const total = files.reduce((sum, file) => sum + file.rows, 0);
  if (budget <= 0 || total <= budget) return null;
  const size = Math.min(
    ROW_GROUP_ROWS,
    Math.max(SAMPLE_VECTOR, Math.floor(budget / 4 / SAMPLE_VECTOR) * SAMPLE_VECTOR),
  );
  const fraction = budget / total;
  const blocks: SampleBlock[] = [];
  let credit = 0;
  for (const file of files) {
    for (let from = 0; from < file.rows; from += size) {
      const to = Math.min(file.rows, from + size);
      credit += (to - from) * fraction;
      if (credit >= (to - from) / 2) {
        credit -= to - from;
        blocks.push({ path: file.path, from, to, whole: from === 0 && to === file.rows });
      }
    }
  }
  const sampled = blocks.reduce((sum, block) => sum + block.to - block.from, 0);
  return sampled === 0 || sampled >= total ? null : blocks;
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
  // Booleans are always counted; other columns when the previous profiles found few values.
  const counted = new Set(
    columns
      .filter(
        (column) =>
          categoryOf(column.type) === "boolean" || (lowCardinality.has(column.name) && countable(column)),
      )
      .map((column) => column.name),
  );
  const list = stats(columns, counted);
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
      ...(counted.has(column.name) ? { distinct: 0 } : {}),
    }));
    list.forEach((stat, index) => {
      const profile = profiles[stat.column] as ColumnProfile;
      const value = row[index + 1];
      if (stat.key === "count") {
        profile.nulls = rows - Number(value ?? 0);
        profile.nullPercent = rows === 0 ? 0 : round((profile.nulls / rows) * 100);
      } else if (stat.key === "min" || stat.key === "max") {
        profile[stat.key] = typeof value === "number" ? round(value) : ((value as string | null) ?? null);
      } else {
        (profile as unknown as Record<string, unknown>)[stat.key] =
          value === null || value === undefined ? null : round(Number(value));
      }
    });
    // Count the values of the counted columns, and of those seen for the first time that have
    // few values, in one more pass.
    const toCount = columns.filter(
      (column, index) =>
        counted.has(column.name) ||
        (countable(column) && (profiles[index]?.distinct ?? Number.POSITIVE_INFINITY) <= LOW_CARDINALITY),
    );
    if (toCount.length > 0 && rows > 0) {
      const counts = new Map<string, ValueCounts>();
      // GROUPING() is a 64-bit mask: at most that many columns per pass.
      for (let start = 0; start < toCount.length; start += 60) {
        const chunk = await countValues(connection, relation, toCount.slice(start, start + 60));
        for (const [name, count] of chunk) counts.set(name, count);
      }
      for (const column of toCount) {
        const profile = profiles.find((candidate) => candidate.name === column.name) as ColumnProfile;
        const count = counts.get(column.name);
        if (counted.has(column.name)) profile.distinct = count?.distinct ?? 0;
        profile.topValues = topValues(count?.values ?? []);
      }
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

/** Values with their counts → the most frequent first. */
function topValues(values: { value: unknown; count: number }[]): ColumnProfile["topValues"] {
  return values
    .map((entry) => ({ value: entry.value as string | number | boolean | null, count: entry.count }))
    .sort((a, b) => b.count - a.count || String(a.value).localeCompare(String(b.value)))
    .slice(0, TOP_VALUES);
}

const round = (value: number): number => Math.round(value * 1e6) / 1e6;
