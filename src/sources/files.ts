/**
 * Loading one file into a lake table, exactly once per content: read (any format),
 * infer types, evolve the table's schema, write zstd Parquet, commit. A rejected file
 * loads nothing. Every outcome, loaded, skipped or failed, goes to the run history
 * in the catalog and to the configured webhook (see run.ts).
 */
import { randomUUID } from "node:crypto";
import { mkdir, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import type { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import {
  type Catalog,
  CommitConflictError,
  type DataFile,
  type LoadRun,
  type NewLoadRun,
} from "../catalog/index.js";
import type { Config } from "../config/index.js";
import { writeParquet } from "../lake/index.js";
import { sqlIdent } from "../warehouse/index.js";
import { type ProgressListener, type Staged, scanFile, stage, tracked } from "./formats.js";
import { columnNames, tableNameProblem } from "./names.js";
import { type IncomingColumn, planLoad, type ValueCheck } from "./plan.js";
import { Rejection } from "./rejection.js";
import { finishRun, type RunResult, recordedRun } from "./run.js";
import {
  accepts,
  type ColumnType,
  fitsIn,
  fromDuckDbType,
  fromText,
  inferType,
  isNested,
  parseType,
  profileSql,
  type TextProfile,
  TYPE_NAMES,
  typeNoun,
  typeSql,
} from "./types.js";

export type LoadMode = "append" | "replace";
export const LOAD_MODES: readonly LoadMode[] = ["append", "replace"];

export interface FileLoaderOptions {
  /** The data dir: the lake is `<dataDir>/lake`, staging files go to `<dataDir>/landing/.staging`. */
  dataDir: string;
  catalog: Catalog;
  engine: DuckDBInstance;
  config: Pick<Config, "load_webhook_url" | "load_column_types">;
}

export interface LoadRequest {
  table: string;
  /** append (default) adds the file's rows; replace makes them the table's only rows, in one commit. */
  mode?: LoadMode;
  /** Excel: the sheet to load (default: the first visible one). */
  sheet?: string;
  /** Where the file came from, for the history: cli, upload, landing. */
  origin: string;
  /** The file's name for the history and for telling its format (default: the path's base name). */
  name?: string;
  onProgress?: ProgressListener;
}

export interface LoadOutcome {
  run: LoadRun;
  /** One line for a person: what was loaded, why nothing was, or why the file was rejected. */
  message: string;
  /** Set when the webhook could not be told. */
  webhookError: string | null;
}

/** Commits planned on a table that another load changed meanwhile are redone this many times. */
const MAX_ATTEMPTS = 5;

export class FileLoader {
  readonly #options: FileLoaderOptions;

  constructor(options: FileLoaderOptions) {
    this.#options = options;
  }

  /** Loads the file at `path`. Never throws for a bad file: the outcome says `failed` and why. */
  async load(path: string, request: LoadRequest): Promise<LoadOutcome> {
    const run: NewLoadRun = {
      table: request.table,
      file: request.name ?? basename(path),
      sha256: null,
      bytes: 0,
      mode: request.mode ?? "append",
      origin: request.origin,
      status: "failed",
      rows: 0,
      changes: [],
      message: null,
      startedAt: new Date().toISOString(),
      finishedAt: "",
    };
    return recordedRun(
      {
        catalog: this.#options.catalog,
        webhookUrl: this.#options.config.load_webhook_url,
        failedAs: "rejected",
      },
      run,
      () => this.#load(path, request, run),
    );
  }

  async #load(path: string, request: LoadRequest, run: NewLoadRun): Promise<RunResult> {
    const { table } = request;
    const problem = tableNameProblem(table);
    if (problem) throw new Rejection(problem);
    if (!(LOAD_MODES as readonly string[]).includes(run.mode))
      throw new Rejection(`mode must be append or replace, not "${run.mode}"`);
    await this.#loadableTable(table);
    const configured = configuredTypes(this.#options.config.load_column_types, table);
    const scan = await scanFile(path, request.onProgress);
    run.sha256 = scan.sha256;
    run.bytes = scan.bytes;
    if (scan.bytes === 0) throw new Rejection("the file is empty");
    const skipped = await this.#skipIfLoaded(run);
    if (skipped) return skipped;

    const stagingDir = join(this.#options.dataDir, "landing", ".staging", randomUUID());
    await mkdir(stagingDir, { recursive: true });
    const connection = await this.#options.engine.connect();
    try {
      const staged = await stage(connection, {
        path,
        name: run.file,
        scan,
        stagingDir,
        sheet: request.sheet,
        onProgress: request.onProgress,
      });
      const incoming = await incomingColumns(connection, staged, configured, request.onProgress);
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        if (attempt > 1) {
          const skippedNow = await this.#skipIfLoaded(run);
          if (skippedNow) return skippedNow;
        }
        const committed = await this.#writeAndCommit(connection, staged, incoming, run, request.onProgress);
        if (committed) return committed;
      }
      throw new Rejection(`table ${table} kept changing while the file was loaded: try again`);
    } finally {
      connection.closeSync();
      await rm(stagingDir, { recursive: true, force: true });
    }
  }

  /** Plans against the table as it is now, writes, and commits; null when another commit got in first. */
  async #writeAndCommit(
    connection: DuckDBConnection,
    staged: Staged,
    incoming: IncomingColumn[],
    run: NewLoadRun,
    onProgress: ProgressListener | undefined,
  ): Promise<RunResult | null> {
    const { catalog, dataDir } = this.#options;
    const { table, mode } = run;
    const snapshot = await catalog.tableSnapshot(table);
    const current = await this.#loadableTable(table);
    const plan = planLoad(table, mode === "replace" ? [] : (current?.columns ?? []), incoming);
    for (const check of plan.checks) await firstBadValue(connection, staged, check);
    const removed = mode === "replace" ? (await catalog.liveFiles(table)).map((file) => file.path) : [];
    const lakeRoot = join(dataDir, "lake");
    const select = plan.columns.map((column, i) => `${plan.select[i]} AS ${sqlIdent(column.name)}`);
    let files: DataFile[] = [];
    try {
      files = await tracked(connection, "writing", onProgress, () =>
        writeParquet(connection, {
          lakeRoot,
          table: { name: table, columns: plan.columns, partitionBy: null },
          prefix: "load",
          selectSql: `SELECT ${select.join(", ")} FROM ${staged.relation}`,
        }),
      );
      const rows = files.reduce((sum, file) => sum + file.rows, 0);
      if (rows !== staged.rows) throw new Error(`wrote ${rows} rows of ${staged.rows}`);
      await catalog.commit({
        table,
        operation: "load",
        add: files,
        remove: removed,
        columns: plan.columns,
        ifTableSnapshot: snapshot,
        load: { ...run, status: "loaded", rows, changes: plan.changes, finishedAt: new Date().toISOString() },
      });
    } catch (error) {
      // Nothing was committed: the files are nobody's.
      for (const file of files) await rm(join(lakeRoot, file.path), { force: true });
      if (error instanceof CommitConflictError) return null;
      throw error;
    }
    const loaded = await catalog.liveLoad(table, run.sha256 ?? "");
    if (!loaded) throw new Error(`load of ${run.file} committed but not in the history`);
    const details = [...(mode === "replace" ? ["replacing the previous rows"] : []), ...plan.changes];
    const message = `loaded ${loaded.rows.toLocaleString("en-US")} row${loaded.rows === 1 ? "" : "s"} from ${run.file} into ${table}${
      details.length > 0 ? ` (${details.join("; ")})` : ""
    }`;
    return { run: loaded, message };
  }

  /** The table if it exists; a table the collector feeds (partitioned by time) is not for files. */
  async #loadableTable(table: string) {
    const current = (await this.#options.catalog.tables()).find((def) => def.name === table);
    if (current?.partitionBy) {
      throw new Rejection(`table ${table} is fed by the collector: load files into a table of their own`);
    }
    return current;
  }

  /** The same content already in the table makes the load a no-op that says so. */
  async #skipIfLoaded(run: NewLoadRun): Promise<RunResult | null> {
    const { catalog } = this.#options;
    const previous = await catalog.liveLoad(run.table, run.sha256 ?? "");
    if (!previous) return null;
    const message = `${run.file} is already in table ${run.table} (load #${previous.id} of ${previous.file} at ${previous.finishedAt}): nothing to do`;
    return { run: await finishRun(catalog, run, "skipped", message), message };
  }
}

/** `load_column_types` entries for `table`: column → type. */
function configuredTypes(types: Record<string, string>, table: string): Map<string, ColumnType> {
  const configured = new Map<string, ColumnType>();
  for (const [key, name] of Object.entries(types)) {
    if (!key.startsWith(`${table}.`)) continue;
    const type = parseType(name);
    if (!type)
      throw new Rejection(`load_column_types: "${key}" has unknown type "${name}" (use ${TYPE_NAMES})`);
    configured.set(key.slice(table.length + 1), type);
  }
  return configured;
}

/**
 * The file's columns with their types: configured, typed by the file (Parquet, JSON
 * numbers), or inferred from every value in one scan.
 */
async function incomingColumns(
  connection: DuckDBConnection,
  staged: Staged,
  configured: Map<string, ColumnType>,
  onProgress: ProgressListener | undefined,
): Promise<IncomingColumn[]> {
  const names = columnNames(staged.columns.map((column) => column.header));
  const texts = staged.columns.map(
    (column) => `NULLIF(trim(CAST(${sqlIdent(column.source)} AS VARCHAR)), '')`,
  );
  const profiled = staged.columns.flatMap((column, i) => (column.infer ? [i] : []));
  const profiles = new Map<number, TextProfile>();
  if (profiled.length > 0 && staged.rows > 0) {
    const sql = profiled.map((i) => profileSql(`v${i}`, `k${i}`, `p${i}`));
    const values = profiled.map((i) => `${texts[i]} AS v${i}`).join(", ");
    const reader = await tracked(connection, "inferring types", onProgress, () =>
      connection.runAndReadAll(`
      SELECT ${sql.map((part) => part.outer).join(",\n  ")}
      FROM (SELECT *, ${sql.map((part) => part.inner).join(",\n  ")} FROM (SELECT ${values} FROM ${staged.relation}))`),
    );
    const row = reader.getRowObjectsJson()[0] ?? {};
    for (const i of profiled) {
      const field = (name: keyof TextProfile) => Number(row[`p${i}_${name}`] ?? 0);
      profiles.set(i, {
        values: field("values"),
        shapes: field("shapes"),
        integerDigits: field("integerDigits"),
        scale: field("scale"),
      });
    }
  }
  return staged.columns.map((column, i) => {
    const name = names[i] ?? `column_${i + 1}`;
    const text = texts[i] ?? "NULL";
    const source = sqlIdent(column.source);
    const base = { name, header: column.header, text };
    const profile = profiles.get(i);
    const fileType = column.infer
      ? inferType(profile ?? emptyProfile, { temporalOnly: column.infer === "temporal" })
      : fromDuckDbType(column.duckdbType);
    const fileValue = column.infer
      ? fromText(fileType, text)
      : isNested(column.duckdbType)
        ? `to_json(${source})`
        : `CAST(${source} AS ${typeSql(fileType)})`;
    const wanted = configured.get(name);
    if (!wanted) return { ...base, type: fileType, value: fileValue, configured: false, verify: false };
    // A configured type the values already have needs no check (a typed file, or text inferred narrower).
    if (fitsIn(fileType, wanted) && (column.infer || fileType.kind !== "VARCHAR")) {
      return {
        ...base,
        type: wanted,
        value: `CAST(${fileValue} AS ${typeSql(wanted)})`,
        configured: true,
        verify: false,
      };
    }
    return { ...base, type: wanted, value: fromText(wanted, text), configured: true, verify: true };
  });
}

const emptyProfile: TextProfile = { values: 0, shapes: 0, integerDigits: 0, scale: 0 };

/** Rejects the file at the first value of the column that is not of the type, naming column and row. */
async function firstBadValue(connection: DuckDBConnection, staged: Staged, check: ValueCheck): Promise<void> {
  const reader = await connection.runAndReadAll(`
    SELECT n, v FROM (SELECT ${staged.rowNumber} AS n, ${check.column.text} AS v FROM ${staged.relation})
    WHERE v IS NOT NULL AND NOT (${accepts(check.type, "v")})
    ORDER BY n LIMIT 1`);
  const bad = reader.getRowsJson()[0];
  if (!bad) return;
  const value = String(bad[1]);
  const shown = value.length > 60 ? `${value.slice(0, 57)}...` : value;
  throw new Rejection(
    `column "${check.column.name}" ${check.expectation}, but ${staged.rowLabel(Number(bad[0]))} has ${JSON.stringify(shown)}, which is not ${typeNoun(check.type)}`,
  );
}
