/**
 * Reading a file, whatever its format, into a staged relation DuckDB can scan:
 * the file's columns (text to infer types from, or typed by the file) and a row
 * number for messages. CSV, JSON and Excel are first copied to a staging Parquet
 * file, in file order, so that every later pass (inference, checks, the final
 * write) reads a compact columnar file and can name a row exactly. A CSV file can
 * also be read where it lies (`readCsv`), which is how files.ts loads it first.
 */
import { isUtf8 } from "node:buffer";
import { createHash, randomUUID } from "node:crypto";
import { createReadStream, createWriteStream } from "node:fs";
import { open } from "node:fs/promises";
import { extname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import type { DuckDBConnection } from "@duckdb/node-api";
import { sqlIdent, sqlString } from "../warehouse/index.js";
import { readSheet } from "./excel.js";
import { duckDbMessage, Rejection } from "./rejection.js";

export type Format = "csv" | "json" | "parquet" | "xlsx";

export interface StagedColumn {
  /** The column's name in the staged relation. */
  source: string;
  /** The header as the file had it. */
  header: string;
  /** DuckDB's type of the staged column. */
  duckdbType: string;
  /**
   * Which types to infer from the column's text: all of them (CSV, Excel), only dates and
   * timestamps (JSON strings), or none (the file typed it: Parquet, JSON numbers).
   */
  infer: "all" | "temporal" | null;
}

/** A file's rows as DuckDB reads them. */
export interface FileRows {
  /** SQL to select from. */
  relation: string;
  columns: StagedColumn[];
  /** The row count; null when the file is read in place, where counting would cost a pass. */
  rows: number | null;
}

export interface Staged extends FileRows {
  format: Format;
  /** SQL for a row's number in the file, for messages. */
  rowNumber: string;
  /** How messages name row `n`: "row 3", "row 7 of sheet Sales". */
  rowLabel(n: number): string;
  rows: number;
}

/** What one read of the file tells: its identity (sha256) and its text encoding. */
export interface FileScan {
  sha256: string;
  bytes: number;
  /** From a byte-order mark, else utf-8 when every byte sequence is valid UTF-8, else windows-1252. */
  encoding: "utf-8" | "utf-16le" | "utf-16be" | "windows-1252";
  /** Whether a zero byte occurs: no 8-bit text has one. */
  zeroBytes: boolean;
}

export type ProgressListener = (phase: string, fraction: number | null) => void;

/** Hashes the file and finds its encoding in the same single read. */
export async function scanFile(path: string, onProgress?: ProgressListener): Promise<FileScan> {
  const hash = createHash("sha256");
  let valid = true;
  let zeroBytes = false;
  let bytes = 0;
  let head: Buffer | null = null;
  // The start of a character the previous chunk cut off, validated with the next chunk.
  let carried: Buffer = Buffer.alloc(0);
  const handle = await open(path);
  try {
    const size = (await handle.stat()).size;
    for await (const chunk of handle.createReadStream({ highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>) {
      hash.update(chunk);
      head ??= chunk.subarray(0, 4);
      zeroBytes ||= chunk.includes(0);
      if (valid) {
        const text = carried.length > 0 ? Buffer.concat([carried, chunk]) : chunk;
        const cut = text.length - unfinishedCharacter(text);
        valid = isUtf8(text.subarray(0, cut));
        carried = Buffer.from(text.subarray(cut));
      }
      bytes += chunk.length;
      onProgress?.("reading", size > 0 ? bytes / size : null);
    }
  } finally {
    await handle.close();
  }
  valid &&= carried.length === 0;
  let encoding: FileScan["encoding"] = valid ? "utf-8" : "windows-1252";
  if (head?.[0] === 0xff && head[1] === 0xfe) encoding = "utf-16le";
  if (head?.[0] === 0xfe && head[1] === 0xff) encoding = "utf-16be";
  return { sha256: hash.digest("hex"), bytes, encoding, zeroBytes };
}

/** How many bytes at the end of `bytes` begin a UTF-8 character that needs bytes after them. */
function unfinishedCharacter(bytes: Buffer): number {
  for (let back = 1; back <= Math.min(3, bytes.length); back++) {
    const byte = bytes[bytes.length - back] as number;
    if ((byte & 0xc0) === 0x80) continue; // a continuation byte: the lead byte is further back
    const length = byte >= 0xf0 ? 4 : byte >= 0xe0 ? 3 : byte >= 0xc0 ? 2 : 1;
    return length > back ? back : 0;
  }
  return 0;
}

/** The format by the file's name, else by its first bytes. */
export async function detectFormat(path: string, name: string): Promise<{ format: Format; tabs: boolean }> {
  const extension = extname(name).toLowerCase();
  switch (extension) {
    case ".csv":
    case ".txt":
      return { format: "csv", tabs: false };
    case ".tsv":
    case ".tab":
      return { format: "csv", tabs: true };
    case ".json":
    case ".ndjson":
    case ".jsonl":
      return { format: "json", tabs: false };
    case ".parquet":
    case ".pq":
      return { format: "parquet", tabs: false };
    case ".xlsx":
    case ".xlsm":
      return { format: "xlsx", tabs: false };
    case ".xls":
      throw new Rejection("old binary .xls workbooks are not supported: save the file as .xlsx");
  }
  const handle = await open(path);
  const head = Buffer.alloc(64);
  try {
    await handle.read(head, 0, head.length, 0);
  } finally {
    await handle.close();
  }
  if (head.subarray(0, 4).toString("latin1") === "PAR1") return { format: "parquet", tabs: false };
  if (head.subarray(0, 4).equals(Buffer.from([0x50, 0x4b, 0x03, 0x04])))
    return { format: "xlsx", tabs: false };
  if (/^\s*[[{]/.test(head.toString("utf8"))) return { format: "json", tabs: false };
  return { format: "csv", tabs: false };
}

export interface StageOptions {
  path: string;
  name: string;
  scan: FileScan;
  /** Where staging files go; the caller removes the folder. */
  stagingDir: string;
  /** Excel: the sheet to read (default: the first visible one). */
  sheet?: string;
  onProgress?: ProgressListener;
}

/**
 * Reads the file, of the format `detectFormat` found, into a staged relation; throws Rejection
 * when it cannot be read. `csv`: the file as `readCsv` read it already.
 */
export async function stage(
  connection: DuckDBConnection,
  options: StageOptions,
  { format, tabs }: { format: Format; tabs: boolean },
  csv?: FileRows,
): Promise<Staged> {
  if (options.sheet && format !== "xlsx") throw new Rejection("a sheet can only be chosen for an .xlsx file");
  try {
    switch (format) {
      case "csv":
        return await copyToStaging(
          connection,
          options,
          "csv",
          `SELECT * FROM ${(csv ?? (await readCsv(connection, options, tabs))).relation}`,
          "all",
        );
      case "json":
        return await stageJson(connection, options);
      case "parquet":
        return await stageParquet(connection, options);
      case "xlsx":
        return await stageExcel(connection, options);
    }
  } catch (error) {
    if (error instanceof Rejection) throw error;
    throw new Rejection(`cannot read it as ${format.toUpperCase()}: ${duckDbMessage(error)}`);
  }
}

/**
 * The CSV file read in place (after converting it to UTF-8 if it is not): every column as
 * text, in file order. Throws Rejection when it cannot be read.
 */
export async function readCsv(
  connection: DuckDBConnection,
  options: StageOptions,
  tabs: boolean,
): Promise<FileRows> {
  if (options.scan.zeroBytes && !options.scan.encoding.startsWith("utf-16")) {
    throw new Rejection("this is not a text file (it has zero bytes): expected CSV or TSV");
  }
  let path = options.path;
  if (options.scan.encoding !== "utf-8") {
    // DuckDB reads UTF-8 (and a few others); Windows exports in windows-1252 (€, curly quotes)
    // and UTF-16 are converted first so that every character survives.
    path = join(options.stagingDir, `${randomUUID()}.csv`);
    await transcode(options.path, path, options.scan.encoding);
  }
  try {
    // skip = 0: the sniffer may otherwise take leading lines for a preamble and drop them.
    let source = `read_csv(${sqlString(path)}, all_varchar = true, skip = 0${tabs ? ", delim = '\t'" : ""})`;
    let columns = await describe(connection, `SELECT * FROM ${source}`);
    const only = columns.length === 1 ? columns[0]?.name : undefined;
    const delimiter = only ? /[,;\t|]/.exec(only)?.[0] : undefined;
    if (only && delimiter && !tabs) {
      // One column whose header holds a delimiter: the sniffer gave up on rows of uneven width.
      // Reading with that delimiter and the header's columns makes DuckDB name the first bad line.
      const spec = only.split(delimiter).map((header) => `${sqlString(header)}: 'VARCHAR'`);
      source = `read_csv(${sqlString(path)}, auto_detect = false, header = true, skip = 0, delim = ${sqlString(delimiter)},
        quote = '"', escape = '"', columns = {${spec.join(", ")}})`;
      await connection.run(`SELECT count(*) FROM ${source}`);
      columns = await describe(connection, `SELECT * FROM ${source}`);
    }
    return {
      relation: source,
      columns: columns.map(({ name, type }) => ({
        source: name,
        header: name,
        duckdbType: type,
        infer: "all",
      })),
      rows: null,
    };
  } catch (error) {
    if (error instanceof Rejection) throw error;
    throw new Rejection(`cannot read it as CSV: ${duckDbMessage(error)}`);
  }
}

async function stageJson(connection: DuckDBConnection, options: StageOptions): Promise<Staged> {
  const file = sqlString(options.path);
  let columns: { name: string; type: string }[];
  try {
    columns = await describe(
      connection,
      `SELECT * FROM read_json(${file}, sample_size = -1, records = true)`,
    );
  } catch (error) {
    if (/expected records/.test(duckDbMessage(error))) {
      throw new Rejection("expected JSON objects: one per line, or an array of objects");
    }
    throw error;
  }
  // Dates and timestamps DuckDB spotted in strings are read back as the strings they were,
  // so that JSON and CSV follow one set of rules (and a zone offset is not silently dropped).
  const declared = columns.map(({ name, type }) => {
    const temporal = /^(DATE|TIMESTAMP)/.test(type);
    return { name, type: temporal ? "VARCHAR" : type, infer: temporal || type === "VARCHAR" };
  });
  const spec = declared.map(({ name, type }) => `${sqlString(name)}: ${sqlString(type)}`).join(", ");
  const staged = await copyToStaging(
    connection,
    options,
    "json",
    `SELECT * FROM read_json(${file}, columns = {${spec}}, records = true)`,
    null,
  );
  const inferable = new Set(declared.filter((column) => column.infer).map((column) => column.name));
  for (const column of staged.columns) if (inferable.has(column.source)) column.infer = "temporal";
  return staged;
}

async function stageParquet(connection: DuckDBConnection, options: StageOptions): Promise<Staged> {
  const relation = `read_parquet(${sqlString(options.path)}, file_row_number = true)`;
  const columns = (await describe(connection, `SELECT * FROM read_parquet(${sqlString(options.path)})`)).map(
    ({ name, type }) => ({ source: name, header: name, duckdbType: type, infer: null }),
  );
  return {
    format: "parquet",
    relation,
    rowNumber: "file_row_number + 1",
    rowLabel: (n) => `row ${n}`,
    columns,
    rows: await count(connection, relation),
  };
}

async function stageExcel(connection: DuckDBConnection, options: StageOptions): Promise<Staged> {
  options.onProgress?.("reading workbook", null);
  const table = await readSheet(options.path, options.sheet);
  const name = `sheet_${randomUUID().replaceAll("-", "")}`;
  const names = table.headers.map((_, i) => `c${i}`);
  await connection.run(
    `CREATE TEMP TABLE ${sqlIdent(name)} (__row INTEGER, ${names.map((column) => `${sqlIdent(column)} VARCHAR`).join(", ")})`,
  );
  try {
    const appender = await connection.createAppender(name, "main", "temp");
    for (const row of table.rows) {
      appender.appendInteger(row.sheetRow);
      for (const value of row.values) {
        if (value === null) appender.appendNull();
        else appender.appendVarchar(value);
      }
      appender.endRow();
    }
    appender.closeSync();
    const staged = await copyToStaging(
      connection,
      options,
      "xlsx",
      `SELECT * FROM temp.main.${sqlIdent(name)} ORDER BY __row`,
      "all",
    );
    const headers = new Map(names.map((column, i) => [column, table.headers[i] ?? ""]));
    return {
      ...staged,
      rowNumber: "__row",
      rowLabel: (n) => `row ${n} of sheet "${table.sheet}"`,
      columns: staged.columns
        .filter((column) => column.source !== "__row")
        .map((column) => ({ ...column, header: headers.get(column.source) ?? "" })),
    };
  } finally {
    await connection.run(`DROP TABLE IF EXISTS temp.main.${sqlIdent(name)}`);
  }
}

/** Copies `select` (in order) to a staging Parquet file and describes it. */
async function copyToStaging(
  connection: DuckDBConnection,
  options: StageOptions,
  format: Format,
  select: string,
  infer: StagedColumn["infer"],
): Promise<Staged> {
  const path = join(options.stagingDir, `${randomUUID()}.parquet`);
  await tracked(connection, "staging", options.onProgress, () =>
    connection.run(`COPY (${select}) TO ${sqlString(path)} (FORMAT parquet)`),
  );
  const relation = `read_parquet(${sqlString(path)}, file_row_number = true)`;
  const columns = (await describe(connection, `SELECT * FROM read_parquet(${sqlString(path)})`)).map(
    ({ name, type }) => ({ source: name, header: name, duckdbType: type, infer }),
  );
  return {
    format,
    relation,
    rowNumber: "file_row_number + 1",
    rowLabel: (n) => `row ${n}`,
    columns,
    rows: await count(connection, relation),
  };
}

async function describe(
  connection: DuckDBConnection,
  select: string,
): Promise<{ name: string; type: string }[]> {
  const reader = await connection.runAndReadAll(`DESCRIBE ${select}`);
  return (reader.getRowsJson() as string[][]).map(([name, type]) => ({ name: name ?? "", type: type ?? "" }));
}

async function count(connection: DuckDBConnection, relation: string): Promise<number> {
  const reader = await connection.runAndReadAll(`SELECT count(*) FROM ${relation}`);
  return Number(reader.getRowsJson()[0]?.[0] ?? 0);
}

/**
 * Runs `work` on `connection`, reporting DuckDB's progress on the query it runs
 * (percent of rows scanned) every 250 ms.
 */
export async function tracked<T>(
  connection: DuckDBConnection,
  phase: string,
  onProgress: ProgressListener | undefined,
  work: () => Promise<T>,
): Promise<T> {
  if (!onProgress) return work();
  await connection.run("SET enable_progress_bar = true; SET enable_progress_bar_print = false");
  onProgress(phase, null);
  const timer = setInterval(() => {
    const { percentage } = connection.progress;
    if (percentage >= 0) onProgress(phase, percentage / 100);
  }, 250);
  try {
    return await work();
  } finally {
    clearInterval(timer);
  }
}

async function transcode(from: string, to: string, encoding: FileScan["encoding"]): Promise<void> {
  const decoder = new TextDecoder(encoding);
  await pipeline(
    createReadStream(from),
    async function* (chunks: AsyncIterable<Buffer>) {
      for await (const chunk of chunks) yield decoder.decode(chunk, { stream: true });
      yield decoder.decode();
    },
    createWriteStream(to),
  );
}
