/**
 * Materializations: how a model's rows become Parquet files of its table. A full build
 * writes the whole table; incremental strategies compute which files to add and which
 * live files they replace (copy-on-write). Nothing here commits: the builder audits the
 * result first.
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { DuckDBConnection } from "@duckdb/node-api";
import type { DataFile, TableColumn, TableDef } from "../catalog/index.js";
import { writeParquet } from "../lake/index.js";
import { type Compiled, quote, sqlError } from "./compile.js";
import { TransformError } from "./errors.js";
import { findLine, type ProjectNode } from "./project.js";

/** The table a model is being written into, on a connection whose views hold its inputs. */
export interface Target {
  connection: DuckDBConnection;
  lakeRoot: string;
  node: ProjectNode;
  /** The table as it will be (name and the model's columns). */
  def: TableDef;
  compiled: Compiled;
}

/** Files to add, live paths they replace, and the rows the model produced. */
export interface Change {
  add: DataFile[];
  remove: string[];
  rows: number;
}

/** The partition value of rows whose partition column is NULL. */
const NULL_PARTITION = "__null__";

export const literal = (value: string): string => `'${value.replaceAll("'", "''")}'`;

/** Incremental strategies: the files to add and remove, and the rows the model produced. */
export async function incrementalChange(target: Target, select: string, live: DataFile[]): Promise<Change> {
  const { connection, node, def, lakeRoot } = target;
  const { strategy, uniqueKey, partitionBy } = node.config;
  if (strategy === "append") {
    const add = await writeRows(target, select, partitionBy);
    return { add, remove: [], rows: add.reduce((sum, file) => sum + file.rows, 0) };
  }
  await runSql(target, `CREATE OR REPLACE TEMP TABLE __sluice_new AS ${select}`);
  const rows = await count(connection, "SELECT count(*) FROM __sluice_new");
  if (rows === 0) return { add: [], remove: [], rows: 0 };
  const columns = def.columns.map((column) => quote(column.name)).join(", ");
  const livePaths = live.map((file) => join(lakeRoot, file.path));
  const existing =
    livePaths.length > 0
      ? `read_parquet([${livePaths.map(literal).join(", ")}], union_by_name = true, filename = true)`
      : null;

  if (strategy === "insert_overwrite") {
    const partition = partitionBy as string;
    if (live.some((file) => file.partition === "")) {
      throw new TransformError(
        `${node.name} was built without partition_by, so its partitions cannot be replaced: rebuild it with --full-refresh`,
        node.path,
      );
    }
    const reader = await connection.runAndReadAll(
      `SELECT DISTINCT coalesce(CAST(${quote(partition)} AS VARCHAR), '${NULL_PARTITION}') FROM __sluice_new`,
    );
    const partitions = new Set((reader.getRowsJson() as string[][]).map((row) => String(row[0])));
    const replaced = live.filter((file) => partitions.has(file.partition));
    if (
      await sameRows(
        connection,
        columns,
        "__sluice_new",
        replaced.map((file) => join(lakeRoot, file.path)),
      )
    ) {
      return { add: [], remove: [], rows };
    }
    const add = await writeRows(target, "SELECT * FROM __sluice_new", partition);
    return { add, remove: replaced.map((file) => file.path), rows };
  }

  // merge and delete+insert, by unique_key
  const keys = uniqueKey.map(quote);
  if (strategy === "merge") await checkUniqueKey(connection, node, "__sluice_new", "the new rows");
  const on = keys.map((key) => `old.${key} = new.${key}`).join(" AND ");
  let affected: string[] = [];
  if (existing) {
    const reader = await connection.runAndReadAll(
      `SELECT DISTINCT old.filename FROM ${existing} AS old SEMI JOIN __sluice_new AS new ON ${on}`,
    );
    affected = (reader.getRowsJson() as string[][]).map((row) => String(row[0]));
  }
  const affectedList = `[${affected.map(literal).join(", ")}]`;
  if (affected.length > 0) {
    const matched = `(SELECT ${columns} FROM read_parquet(${affectedList}, union_by_name = true) AS old SEMI JOIN __sluice_new AS new ON ${on})`;
    const difference = await count(
      connection,
      `SELECT (SELECT count(*) FROM (SELECT ${columns} FROM __sluice_new EXCEPT ALL SELECT * FROM ${matched}))
            + (SELECT count(*) FROM (SELECT * FROM ${matched} EXCEPT ALL SELECT ${columns} FROM __sluice_new))`,
    );
    if (difference === 0) return { add: [], remove: [], rows };
  }
  const kept =
    affected.length > 0
      ? `SELECT ${columns} FROM read_parquet(${affectedList}, union_by_name = true) AS old ANTI JOIN __sluice_new AS new ON ${on} UNION ALL `
      : "";
  const add = await writeRows(target, `${kept}SELECT ${columns} FROM __sluice_new`, partitionBy);
  const byPath = new Map(live.map((file) => [join(lakeRoot, file.path), file.path]));
  return { add, remove: affected.map((path) => byPath.get(path) ?? path), rows };
}

/** Writes rows as Parquet; with partition_by, one file per value (recorded as the file's partition). */
export async function writeRows(
  target: Target,
  selectSql: string,
  partitionBy: string | null,
): Promise<DataFile[]> {
  const { connection, node, def, lakeRoot } = target;
  const options = { lakeRoot: lakeRoot, table: def, prefix: node.kind === "seed" ? "seed" : "model" };
  if (!partitionBy) {
    try {
      return await writeParquet(connection, { ...options, selectSql });
    } catch (error) {
      throw sqlError(error, node.path, node.raw, target.compiled);
    }
  }
  if (!def.columns.some((column) => column.name === partitionBy)) {
    throw new TransformError(`partition_by ${partitionBy} is not a column of ${node.name}`, node.path);
  }
  await runSql(target, `CREATE OR REPLACE TEMP TABLE __sluice_partitioned AS ${selectSql}`);
  const reader = await connection.runAndReadAll(
    `SELECT DISTINCT CAST(${quote(partitionBy)} AS VARCHAR) AS value FROM __sluice_partitioned ORDER BY value NULLS LAST`,
  );
  const files: DataFile[] = [];
  try {
    for (const [value] of reader.getRowsJson() as (string | null)[][]) {
      const filter = value === null || value === undefined ? "IS NULL" : `= ${literal(value)}`;
      const written = await writeParquet(connection, {
        ...options,
        selectSql: `SELECT * FROM __sluice_partitioned WHERE CAST(${quote(partitionBy)} AS VARCHAR) ${filter}`,
      });
      files.push(...written.map((file) => ({ ...file, partition: value ?? NULL_PARTITION })));
    }
  } catch (error) {
    await discard(lakeRoot, files);
    throw error;
  }
  return files;
}

/** The model's columns and types, from DuckDB's binding of its SQL (nothing runs). */
export async function modelColumns(
  connection: DuckDBConnection,
  node: ProjectNode,
  compiled: Compiled,
): Promise<TableColumn[]> {
  let prepared: Awaited<ReturnType<DuckDBConnection["prepare"]>>;
  try {
    prepared = await connection.prepare(compiled.sql);
  } catch (error) {
    throw sqlError(error, node.path, node.raw, compiled);
  }
  const columns: TableColumn[] = [];
  const seen = new Set<string>();
  for (let index = 0; index < prepared.columnCount; index++) {
    const name = prepared.columnName(index);
    if (seen.has(name)) {
      throw new TransformError(
        `${node.name} returns column ${name} twice: give each column its own name`,
        node.path,
      );
    }
    seen.add(name);
    columns.push({ name, type: prepared.columnType(index).toString() });
  }
  return columns;
}

/** An incremental run's SQL: only rows past the watermark (`>`; `>=` when rows may be merged again). */
export function withWatermark(node: ProjectNode, sql: string, bound: string | null): string {
  if (!bound || !node.config.watermark) return sql;
  const operator = node.config.strategy === "append" ? ">" : ">=";
  // The model's SQL stays on the statement's first line, so DuckDB's line numbers still match the file.
  return `SELECT * FROM (${sql}) AS __sluice_model WHERE ${quote(node.config.watermark)} ${operator} ${bound}\n`;
}

/** Runs a statement of the model, its errors named by file and line. */
async function runSql(target: Target, sql: string): Promise<void> {
  try {
    await target.connection.run(sql);
  } catch (error) {
    throw sqlError(error, target.node.path, target.node.raw, target.compiled);
  }
}

export async function discard(lakeRoot: string, files: DataFile[]): Promise<void> {
  for (const file of files) await rm(join(lakeRoot, file.path), { force: true });
}

/** Rejects a merge model's rows with a NULL or repeated unique_key, naming examples. */
export async function checkUniqueKey(
  connection: DuckDBConnection,
  node: ProjectNode,
  relation: string,
  what: string,
): Promise<void> {
  const { uniqueKey } = node.config;
  const keys = uniqueKey.map(quote);
  const nulls = await count(
    connection,
    `SELECT count(*) FROM ${relation} WHERE ${keys.map((key) => `${key} IS NULL`).join(" OR ")}`,
  );
  if (nulls > 0) {
    throw new TransformError(
      `unique_key ${uniqueKey.join(", ")} is NULL in ${nulls} row${nulls === 1 ? "" : "s"} of ${what} of ${node.name}: a merge needs a key on every row`,
      node.path,
      findLine(node.raw, /unique_key/),
    );
  }
  const duplicates = await connection.runAndReadAll(
    `SELECT ${keys.join(", ")}, count(*) AS n FROM ${relation} GROUP BY ALL HAVING count(*) > 1 ORDER BY n DESC, 1 LIMIT 3`,
  );
  const examples = duplicates.getRowsJson() as unknown[][];
  if (examples.length > 0) {
    const shown = examples
      .map((row) => `${row.slice(0, -1).map(String).join(", ")} (${row.at(-1)} rows)`)
      .join("; ");
    throw new TransformError(
      `unique_key ${uniqueKey.join(", ")} is not unique in ${what} of ${node.name}: ${shown}; make the key unique or use incremental_strategy delete+insert`,
      node.path,
      findLine(node.raw, /unique_key/),
    );
  }
}

export async function count(connection: DuckDBConnection, sql: string): Promise<number> {
  const reader = await connection.runAndReadAll(sql);
  return Number(reader.getRowsJson()[0]?.[0] ?? 0);
}

/** Whether `relation` holds exactly the rows of `paths` (as a multiset): then rewriting changes nothing. */
async function sameRows(
  connection: DuckDBConnection,
  columns: string,
  relation: string,
  paths: string[],
): Promise<boolean> {
  if (paths.length === 0) return false;
  const old = `(SELECT ${columns} FROM read_parquet([${paths.map(literal).join(", ")}], union_by_name = true))`;
  return (
    (await count(
      connection,
      `SELECT (SELECT count(*) FROM (SELECT ${columns} FROM ${relation} EXCEPT ALL SELECT * FROM ${old}))
            + (SELECT count(*) FROM (SELECT * FROM ${old} EXCEPT ALL SELECT ${columns} FROM ${relation}))`,
    )) === 0
  );
}

export function checkSameColumns(node: ProjectNode, before: TableColumn[], after: TableColumn[]): void {
  const changes: string[] = [];
  for (const column of after) {
    const old = before.find((candidate) => candidate.name === column.name);
    if (!old) changes.push(`added ${column.name} ${column.type}`);
    else if (old.type !== column.type) changes.push(`${column.name} ${old.type} → ${column.type}`);
  }
  for (const column of before) {
    if (!after.some((candidate) => candidate.name === column.name)) changes.push(`removed ${column.name}`);
  }
  if (changes.length > 0) {
    throw new TransformError(
      `the columns of incremental model ${node.name} changed (${changes.join("; ")}): rebuild it with --full-refresh`,
      node.path,
    );
  }
}

export function describeChange(node: ProjectNode): string {
  switch (node.config.strategy) {
    case "append":
      return "appended";
    case "merge":
      return "merged";
    case "delete+insert":
      return "replaced by key";
    case "insert_overwrite":
      return "in overwritten partitions";
  }
}
