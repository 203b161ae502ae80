import { randomUUID } from "node:crypto";
import { copyFile, link, mkdir, readdir, rm, stat } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import type { DuckDBConnection } from "@duckdb/node-api";
import { fsyncPath } from "../bus/index.js";
import type { DataFile, TableDef } from "../catalog/index.js";
import { sqlIdent, sqlString } from "../warehouse/index.js";

/**
 * Writes the rows produced by `selectSql` (which must yield the table's columns)
 * as zstd Parquet: `<lakeRoot>/<table>/dt=YYYY-MM-DD/<prefix>-<uuid>.parquet` for a
 * partitioned table, sorted by the partition timestamp so row-group statistics
 * prune time filters; `<lakeRoot>/<table>/<prefix>-<uuid>.parquet` otherwise.
 * Files and their directories are fsynced before returning: the caller commits
 * them to the catalog next, and a committed file must survive a power loss.
 *
 * `unsorted` skips the sort, for files that compaction will rewrite sorted anyway: a loader's
 * micro-batch fits in one row group, whose statistics a sort does not narrow, and sorting wide
 * rows is a third of the cost of writing them.
 *
 * A COPY that fails (a bad value, a full disk, a cast that a caller made fail on purpose) can
 * leave part of its output behind: this write's files are named with an id of its own, so they
 * are removed before the error is passed on, and other writers' files are never touched.
 */
export async function writeParquet(
  connection: DuckDBConnection,
  options: {
    lakeRoot: string;
    table: TableDef;
    selectSql: string;
    prefix: string;
    unsorted?: boolean;
    /**
     * The partition value (`2026-12-03`) of every row, when the caller knows there is one: the
     * rows are then written as one plain file into its folder, which costs DuckDB about half of
     * a PARTITION_BY write (that one copies every row into per-partition buffers first).
     */
    onePartition?: string;
  },
): Promise<DataFile[]> {
  const { lakeRoot, table, onePartition } = options;
  const tableDir = join(lakeRoot, table.name);
  const columns = table.columns.map((column) => sqlIdent(column.name)).join(", ");
  const partition = table.partitionBy;
  const writePrefix = `${options.prefix}-${randomUUID().slice(0, 8)}`;
  const order = partition && !options.unsorted ? ` ORDER BY ${sqlIdent(partition.fromTimestamp)}` : "";
  const fileDir =
    partition && onePartition !== undefined
      ? join(tableDir, `${partition.column}=${onePartition}`)
      : tableDir;
  await mkdir(fileDir, { recursive: true });
  const sql =
    partition && onePartition === undefined
      ? `COPY (
        SELECT ${columns}, CAST(${sqlIdent(partition.fromTimestamp)} AS DATE) AS ${sqlIdent(partition.column)}
        FROM (${options.selectSql})${order}
      ) TO ${sqlString(tableDir)} (
        FORMAT parquet, COMPRESSION zstd, PARTITION_BY (${sqlIdent(partition.column)}),
        FILENAME_PATTERN ${sqlString(`${writePrefix}-{uuid}`)}, OVERWRITE_OR_IGNORE, RETURN_FILES
      )`
      : `COPY (SELECT ${columns} FROM (${options.selectSql})${order})
       TO ${sqlString(join(fileDir, `${writePrefix}.parquet`))}
       (FORMAT parquet, COMPRESSION zstd, RETURN_FILES)`;
  let copy: Awaited<ReturnType<DuckDBConnection["runAndReadAll"]>>;
  try {
    copy = await connection.runAndReadAll(sql);
  } catch (error) {
    await removeOutput(tableDir, writePrefix);
    throw error;
  }
  const [written, returned] = (copy.getRowsJson()[0] ?? [0, []]) as [string | number, string[] | null];
  const paths = returned ?? [];
  if (Number(written) === 0) {
    // An empty unpartitioned COPY still creates a file; keep the lake free of empty files.
    for (const path of paths) await rm(path, { force: true });
    return [];
  }
  const rowsByPath = await rowsPerFile(connection, paths, Number(written));
  const files: DataFile[] = [];
  for (const dir of new Set(paths.map((path) => dirname(path)))) await fsyncPath(dir);
  for (const path of paths) {
    await fsyncPath(path);
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

/** Each written file's row count: the COPY's own count for one file, else from the files' footers. */
async function rowsPerFile(
  connection: DuckDBConnection,
  paths: readonly string[],
  written: number,
): Promise<Map<string, number>> {
  if (paths.length === 1) return new Map([[paths[0] as string, written]]);
  const counts = await connection.runAndReadAll(
    `SELECT file_name, num_rows FROM parquet_file_metadata([${paths.map(sqlString).join(", ")}])`,
  );
  return new Map((counts.getRowsJson() as [string, string][]).map(([path, rows]) => [path, Number(rows)]));
}

/** Removes a write's files (`<prefix>…` in the table's folder or its partition folders). */
async function removeOutput(tableDir: string, prefix: string): Promise<void> {
  const entries = await readdir(tableDir, { withFileTypes: true, recursive: true }).catch(() => []);
  for (const entry of entries) {
    if (entry.isFile() && entry.name.startsWith(prefix)) {
      await rm(join(entry.parentPath, entry.name), { force: true });
    }
  }
}

/** Errors of `link` that mean this file system cannot link here, where a copy does the job. */
const CANNOT_LINK = new Set(["EXDEV", "EPERM", "ENOTSUP", "EMLINK"]);

/**
 * Makes `to` a durable second name of the finished file `from`: a hard link (no data written),
 * or a copy where the two are on different file systems or links are not supported. The caller
 * fsyncs the target's folder before committing.
 */
export async function linkOrCopy(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch (error) {
    if (!CANNOT_LINK.has((error as NodeJS.ErrnoException).code ?? "")) throw error;
    await copyFile(from, to);
  }
  await fsyncPath(to);
}

/**
 * Makes finished Parquet files lake files of `table`, as they are: each linked (or copied, see
 * `linkOrCopy`) into the table's folder under a fresh `<prefix>-<uuid>.parquet` name, then the
 * folder flushed to disk. Returns them as data files to commit, each with its source's rows, bytes
 * and partition; on failure the new names are removed and the sources are left alone.
 */
export async function adoptFiles(
  lakeRoot: string,
  table: string,
  prefix: string,
  sources: readonly { path: string; file: Omit<DataFile, "table" | "path"> }[],
): Promise<DataFile[]> {
  const dir = join(lakeRoot, table);
  await mkdir(dir, { recursive: true });
  const files: DataFile[] = [];
  try {
    for (const { path: from, file } of sources) {
      const path = `${table}/${prefix}-${randomUUID()}.parquet`;
      await linkOrCopy(from, join(lakeRoot, path));
      files.push({ ...file, table, path });
    }
    await fsyncPath(dir);
  } catch (error) {
    for (const file of files) await rm(join(lakeRoot, file.path), { force: true });
    throw error;
  }
  return files;
}

/** The value of the `dt=` path segment, or "" when the path has none. */
export function partitionValue(path: string): string {
  const match = /(?:^|\/)dt=([^/]+)\//.exec(path);
  return match?.[1] ?? "";
}
