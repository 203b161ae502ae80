import { mkdir, open, stat } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import type { DuckDBConnection } from "@duckdb/node-api";
import type { DataFile, TableDef } from "../catalog/index.js";
import { sqlIdent, sqlString } from "../warehouse/index.js";

/** How a lake table is partitioned: `dt` is the UTC date of a timestamp column. */
export interface PartitionSpec {
  column: "dt";
  fromTimestamp: string;
}

/**
 * Writes the rows produced by `selectSql` (which must yield the table's columns)
 * as zstd Parquet under `<lakeRoot>/<table>/dt=YYYY-MM-DD/part-<uuid>.parquet`,
 * sorted by the partition timestamp so row-group statistics prune time filters.
 * Files are fsynced before returning: the caller commits them to the catalog next,
 * and a committed file must survive a power loss.
 */
export async function writeParquet(
  connection: DuckDBConnection,
  options: { lakeRoot: string; table: TableDef; partition: PartitionSpec; selectSql: string; prefix: string },
): Promise<DataFile[]> {
  const { lakeRoot, table, partition } = options;
  const tableDir = join(lakeRoot, table.name);
  await mkdir(tableDir, { recursive: true });
  const columns = table.columns.map((column) => sqlIdent(column.name)).join(", ");
  const ts = sqlIdent(partition.fromTimestamp);
  const copy = await connection.runAndReadAll(`
    COPY (
      SELECT ${columns}, CAST(${ts} AS DATE) AS ${sqlIdent(partition.column)}
      FROM (${options.selectSql}) ORDER BY ${ts}
    ) TO ${sqlString(tableDir)} (
      FORMAT parquet, COMPRESSION zstd, PARTITION_BY (${sqlIdent(partition.column)}),
      FILENAME_PATTERN ${sqlString(`${options.prefix}-{uuid}`)}, OVERWRITE_OR_IGNORE, RETURN_FILES
    )`);
  const row = copy.getRowsJson()[0] as [string, string[] | null] | undefined;
  const paths = row?.[1] ?? [];
  if (paths.length === 0) return [];
  const counts = await connection.runAndReadAll(
    `SELECT file_name, num_rows FROM parquet_file_metadata([${paths.map(sqlString).join(", ")}])`,
  );
  const rowsByPath = new Map((counts.getRowsJson() as [string, string][]).map(([path, rows]) => [path, Number(rows)]));
  const files: DataFile[] = [];
  for (const dir of new Set(paths.map((path) => dirname(path)))) await fsync(dir);
  for (const path of paths) {
    await fsync(path);
    const relativePath = relative(lakeRoot, path);
    files.push({
      table: table.name,
      path: relativePath,
      partition: partitionValue(relativePath),
      rows: rowsByPath.get(path) ?? 0,
      bytes: (await stat(path)).size,
    });
  }
  return files;
}

/** The value of the `dt=` path segment, or "" when the path has none. */
export function partitionValue(path: string): string {
  const match = /(?:^|\/)dt=([^/]+)\//.exec(path);
  return match?.[1] ?? "";
}

/** Flushes a file's data, or a directory's entries, to disk. */
async function fsync(path: string): Promise<void> {
  const handle = await open(path, "r");
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
