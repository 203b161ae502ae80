/**
 * Copy-on-write of a lake table's files, for forget and retention: whole files are dropped, files
 * holding rows to delete or change are rewritten without them (DuckDB COPY through `writeParquet`),
 * and the swap is one catalog commit, so a query sees the table all before or all after.
 *
 * Concurrency: the commit removes the rewritten files, and the catalog refuses a commit whose
 * removed files are no longer live (`CommitConflictError`), e.g. because the compactor merged them
 * meanwhile; the rewrite is then planned again on the new files. Files the loader adds meanwhile
 * do not conflict: they are not touched (see forget.ts for how events still on the bus are handled).
 */
import { rm } from "node:fs/promises";
import { join } from "node:path";
import type { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { type Catalog, CommitConflictError, type DataFile, type TableDef } from "../catalog/index.js";
import { writeParquet } from "../lake/index.js";
import { sqlIdent, sqlString } from "../warehouse/index.js";

export interface LakeAccess {
  catalog: Catalog;
  /** An unrestricted DuckDB (the load engine): it reads and writes lake files by path. */
  engine: DuckDBInstance;
  lakeRoot: string;
}

export interface TableRewrite {
  table: TableDef;
  /** A word for the snapshot log: forget, retention. */
  operation: string;
  /** Files removed whole, without reading them. */
  dropFile?: (file: DataFile) => boolean;
  /** Files that may hold rows to delete or change; default every file. */
  mayChange?: (file: DataFile) => boolean;
  /** SQL predicate over the table's columns: rows to delete. */
  deleteWhere?: string;
  /** column → SQL expression that replaces its value (scrubbing). */
  replace?: Record<string, string>;
  /** SQL predicate: the row is deleted or changed. Files with none are kept as they are. */
  changesWhere?: string;
}

export interface RewriteResult {
  table: string;
  /** Rows deleted: in dropped files and by `deleteWhere`. */
  rowsDeleted: number;
  /** Rows rewritten with replaced values. */
  rowsChanged: number;
  filesRemoved: number;
  filesWritten: number;
  /** The commit's snapshot; null when nothing needed changing. */
  snapshot: number | null;
}

const MAX_ATTEMPTS = 20;

export async function rewriteTable(lake: LakeAccess, rewrite: TableRewrite): Promise<RewriteResult> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await rewriteOnce(lake, rewrite);
    } catch (error) {
      if (!(error instanceof CommitConflictError) || attempt >= MAX_ATTEMPTS) throw error;
      await new Promise((resolve) => setTimeout(resolve, 20 * attempt));
    }
  }
}

async function rewriteOnce(lake: LakeAccess, rewrite: TableRewrite): Promise<RewriteResult> {
  const { catalog, engine, lakeRoot } = lake;
  const { table } = rewrite;
  const files = await catalog.liveFiles(table.name);
  const dropped = new Set(files.filter((file) => rewrite.dropFile?.(file) ?? false));
  const candidates = files.filter(
    (file) => !dropped.has(file) && rewrite.changesWhere !== undefined && (rewrite.mayChange?.(file) ?? true),
  );
  const droppedRows = [...dropped].reduce((sum, file) => sum + file.rows, 0);
  const result: RewriteResult = {
    table: table.name,
    rowsDeleted: droppedRows,
    rowsChanged: 0,
    filesRemoved: dropped.size,
    filesWritten: 0,
    snapshot: null,
  };
  const connection = await engine.connect();
  let written: DataFile[] = [];
  try {
    const affected: DataFile[] = [];
    let source = "";
    if (candidates.length > 0) {
      source = await typedSource(
        connection,
        table,
        candidates.map((file) => join(lakeRoot, file.path)),
      );
      const deleted = rewrite.deleteWhere === undefined ? "false" : `coalesce(${rewrite.deleteWhere}, false)`;
      const counts = await connection.runAndReadAll(
        `SELECT sluice_file, count(*) FILTER (WHERE ${deleted}), count(*) FILTER (WHERE NOT ${deleted})
         FROM (${source}) WHERE coalesce(${rewrite.changesWhere}, false) GROUP BY sluice_file`,
      );
      const byPath = new Map(candidates.map((file) => [join(lakeRoot, file.path), file]));
      for (const [path, deletes, changes] of counts.getRowsJson() as [string, string, string][]) {
        const file = byPath.get(path);
        if (file === undefined) continue;
        affected.push(file);
        result.rowsDeleted += Number(deletes);
        result.rowsChanged += Number(changes);
      }
    }
    if (dropped.size === 0 && affected.length === 0) return result;

    if (affected.length > 0) {
      const paths = affected.map((file) => sqlString(join(lakeRoot, file.path))).join(", ");
      const columns = table.columns
        .map((column) => {
          const expression = rewrite.replace?.[column.name];
          return expression === undefined
            ? sqlIdent(column.name)
            : `${expression} AS ${sqlIdent(column.name)}`;
        })
        .join(", ");
      const keep = rewrite.deleteWhere === undefined ? "true" : `NOT coalesce(${rewrite.deleteWhere}, false)`;
      written = await writeParquet(connection, {
        lakeRoot,
        table,
        prefix: rewrite.operation,
        selectSql: `SELECT ${columns} FROM (${source}) WHERE sluice_file IN (${paths}) AND ${keep}`,
      });
      const before = affected.reduce((sum, file) => sum + file.rows, 0);
      const after = written.reduce((sum, file) => sum + file.rows, 0);
      const expected = before - (result.rowsDeleted - droppedRows);
      if (after !== expected) {
        throw new Error(`rewriting ${table.name} wrote ${after} rows where ${expected} were expected`);
      }
    }
    result.filesRemoved += affected.length;
    result.filesWritten = written.length;
    result.snapshot = await catalog.commit({
      table: table.name,
      operation: rewrite.operation,
      add: written,
      remove: [...dropped, ...affected].map((file) => file.path),
    });
    return result;
  } catch (error) {
    for (const file of written) await rm(join(lakeRoot, file.path), { force: true });
    throw error;
  } finally {
    connection.closeSync();
  }
}

/**
 * The files as rows of the table's declared columns (a column a file lacks reads as NULL, as the
 * warehouse reads it), plus `sluice_file`, the path of each row's file.
 */
async function typedSource(connection: DuckDBConnection, table: TableDef, paths: string[]): Promise<string> {
  const scan = `read_parquet([${paths.map(sqlString).join(", ")}], union_by_name = true, hive_partitioning = false, filename = 'sluice_file')`;
  const described = await connection.runAndReadAll(`DESCRIBE SELECT * FROM ${scan}`);
  const present = new Set((described.getRowsJson() as string[][]).map((row) => row[0]));
  const columns = table.columns.map((column) => {
    const value = present.has(column.name) ? sqlIdent(column.name) : "NULL";
    return `CAST(${value} AS ${column.type}) AS ${sqlIdent(column.name)}`;
  });
  return `SELECT ${columns.join(", ")}, sluice_file FROM ${scan}`;
}

/** `expression IN (values)` as SQL text; false for no values. */
export function sqlIn(expression: string, values: readonly string[]): string {
  return values.length === 0 ? "false" : `${expression} IN (${values.map(sqlString).join(", ")})`;
}
