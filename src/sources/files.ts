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
  type TableDef,
} from "../catalog/index.js";
import type { Config } from "../config/index.js";
import { writeParquet } from "../lake/index.js";
import type { Quality } from "../quality/index.js";
import { sqlIdent, sqlString } from "../warehouse/index.js";
import {
  detectFormat,
  type FileRows,
  type ProgressListener,
  readCsv,
  type Staged,
  type StageOptions,
  scanFile,
  stage,
  tracked,
} from "./formats.js";
import { columnNames, tableNameProblem } from "./names.js";
import { type IncomingColumn, planLoad, type ValueCheck } from "./plan.js";
import { duckDbMessage, Rejection } from "./rejection.js";
import { finishRun, type RunResult, recordedRun } from "./run.js";
import {
  accepts,
  type ColumnType,
  fitsIn,
  fromDuckDbType,
  fromText,
  inferType,
  isNested,
  onlyShapes,
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
  /**
   * Write-audit-publish: the table's quality checks run on the table as the load would leave
   * it (files written, not committed); an error-severity check that fails rejects the load,
   * naming the check. Set by the server and by `sluice load` when checks are declared.
   */
  quality?: Pick<Quality, "runChecks">;
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
/** A CSV file's types are first inferred from this many rows at its start. */
const SAMPLE_ROWS = 100_000;

/**
 * A value broke a guard of a write from a file read in place: it is not of the type inferred
 * from the file's first rows (`sample`), or does not fit the table's column (`table`).
 */
class UnfitValue extends Error {
  constructor(readonly against: "sample" | "table") {
    super(`a value does not fit the ${against === "sample" ? "sampled" : "table's"} type`);
  }

  static marker(against: UnfitValue["against"]): string {
    return `sluice: value unfit for the ${against} type`;
  }

  /** The UnfitValue a failed write stands for, if it failed on a guard. */
  static from(error: unknown): UnfitValue | null {
    const message = duckDbMessage(error);
    for (const against of ["sample", "table"] as const) {
      if (message.includes(UnfitValue.marker(against))) return new UnfitValue(against);
    }
    return null;
  }
}

/** What a guard lets through: values of a type, no value at all, or only digits. */
type GuardType = ColumnType | "all-null" | "integers";

/** SQL giving `value`, or failing the query (UnfitValue) when the text `text` is not of `type`. */
function guarded(value: string, text: string, type: GuardType, against: UnfitValue["against"]): string {
  if (typeof type === "object" && type.kind === "VARCHAR") return value;
  const fits =
    type === "all-null"
      ? "false"
      : type === "integers"
        ? `regexp_full_match(${text}, '[+-]?[0-9]+')`
        : accepts(type, text);
  return `CASE WHEN ${text} IS NULL OR ${fits} THEN ${value} ELSE error(${sqlString(UnfitValue.marker(against))}) END`;
}

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
      const detected = await detectFormat(path, run.file);
      const options: StageOptions = {
        path,
        name: run.file,
        scan,
        stagingDir,
        sheet: request.sheet,
        onProgress: request.onProgress,
      };
      let csv: FileRows | undefined;
      if (detected.format === "csv" && !request.sheet) {
        csv = await readCsv(connection, options, detected.tabs);
        const loaded = await this.#loadInPlace(connection, csv, configured, run, request.onProgress);
        if (loaded) return loaded;
      }
      // Staged, every row can be named: the file is rejected naming the first value that does not fit.
      const staged = await stage(connection, options, detected, csv);
      const incoming = await incomingColumns(connection, staged, configured, request.onProgress);
      return await this.#commit(connection, staged, incoming, run, request.onProgress, staged);
    } finally {
      connection.closeSync();
      await rm(stagingDir, { recursive: true, force: true });
    }
  }

  /**
   * Loads a CSV file without staging it: its types inferred from its first rows, then every
   * value checked to have them as it is written (one pass over the file); if one does not,
   * types from every value and a second pass. null when a value does not fit the table's
   * types: only a staged file names its row.
   */
  async #loadInPlace(
    connection: DuckDBConnection,
    csv: FileRows,
    configured: Map<string, ColumnType>,
    run: NewLoadRun,
    onProgress: ProgressListener | undefined,
  ): Promise<RunResult | null> {
    const head: FileRows = { ...csv, relation: `(SELECT * FROM ${csv.relation} LIMIT ${SAMPLE_ROWS})` };
    for (const sampled of [true, false]) {
      const incoming = await incomingColumns(
        connection,
        sampled ? head : csv,
        configured,
        onProgress,
        sampled,
      );
      try {
        return await this.#commit(connection, csv, incoming, run, onProgress, null);
      } catch (error) {
        if (!(error instanceof UnfitValue)) throw error;
        if (error.against === "table") return null;
      }
    }
    throw new Error(`types inferred from every value of ${run.file} do not fit its values`);
  }

  /**
   * Writes and commits, planning again when another load of the table got in first.
   * Returns the run; throws UnfitValue when a value breaks a guard of the write (`staged`
   * null), or a Rejection naming the first value that does not fit (`staged` set).
   */
  async #commit(
    connection: DuckDBConnection,
    rows: FileRows,
    incoming: IncomingColumn[],
    run: NewLoadRun,
    onProgress: ProgressListener | undefined,
    staged: Staged | null,
  ): Promise<RunResult> {
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      if (attempt > 1) {
        const skippedNow = await this.#skipIfLoaded(run);
        if (skippedNow) return skippedNow;
      }
      const committed = await this.#writeAndCommit(connection, rows, incoming, run, onProgress, staged);
      if (committed) return committed;
    }
    throw new Rejection(`table ${run.table} kept changing while the file was loaded: try again`);
  }

  /**
   * Plans against the table as it is now, writes, and commits; null when another commit got
   * in first. Values the plan must check are checked in the staged file (`staged`), naming
   * the row; else as they are written, where a failure throws UnfitValue.
   */
  async #writeAndCommit(
    connection: DuckDBConnection,
    rows: FileRows,
    incoming: IncomingColumn[],
    run: NewLoadRun,
    onProgress: ProgressListener | undefined,
    staged: Staged | null,
  ): Promise<RunResult | null> {
    const { catalog, dataDir } = this.#options;
    const { table, mode } = run;
    const snapshot = await catalog.tableSnapshot(table);
    const current = await this.#loadableTable(table);
    const plan = planLoad(table, mode === "replace" ? [] : (current?.columns ?? []), incoming);
    const select = plan.columns.map((column, i) => {
      const check = plan.checks.find((candidate) => candidate.column.name === column.name);
      const value =
        check && !staged
          ? guarded(plan.select[i] ?? "NULL", check.column.text, check.type, "table")
          : plan.select[i];
      return `${value} AS ${sqlIdent(column.name)}`;
    });
    if (staged) for (const check of plan.checks) await firstBadValue(connection, staged, check);
    const live = (await catalog.liveFiles(table)).map((file) => file.path);
    // A replace removes the table's files; otherwise they stay, and are audited with the new ones.
    const [removed, kept] = mode === "replace" ? [live, []] : [[], live];
    const tableDef: TableDef = { name: table, columns: plan.columns, partitionBy: null };
    const lakeRoot = join(dataDir, "lake");
    let files: DataFile[] = [];
    try {
      files = await tracked(connection, "writing", onProgress, () =>
        writeParquet(connection, {
          lakeRoot,
          table: tableDef,
          prefix: "load",
          selectSql: `SELECT ${select.join(", ")} FROM ${rows.relation}`,
        }),
      );
      const written = files.reduce((sum, file) => sum + file.rows, 0);
      if (rows.rows !== null && written !== rows.rows)
        throw new Error(`wrote ${written} rows of ${rows.rows}`);
      await this.#audit(tableDef, [...kept, ...files.map((file) => file.path)]);
      await catalog.commit({
        table,
        operation: "load",
        add: files,
        remove: removed,
        columns: plan.columns,
        ifTableSnapshot: snapshot,
        load: {
          ...run,
          status: "loaded",
          rows: written,
          changes: plan.changes,
          finishedAt: new Date().toISOString(),
        },
      });
    } catch (error) {
      // Nothing was committed: the files are nobody's (a write that failed removed its own).
      for (const file of files) await rm(join(lakeRoot, file.path), { force: true });
      if (error instanceof CommitConflictError) return null;
      throw UnfitValue.from(error) ?? error;
    }
    const loaded = await catalog.liveLoad(table, run.sha256 ?? "");
    if (!loaded) throw new Error(`load of ${run.file} committed but not in the history`);
    const details = [...(mode === "replace" ? ["replacing the previous rows"] : []), ...plan.changes];
    const message = `loaded ${loaded.rows.toLocaleString("en-US")} row${loaded.rows === 1 ? "" : "s"} from ${run.file} into ${table}${
      details.length > 0 ? ` (${details.join("; ")})` : ""
    }`;
    return { run: loaded, message };
  }

  /** Runs the table's checks on `paths` (lake files) as the table; a blocking failure rejects the load. */
  async #audit(table: TableDef, paths: string[]): Promise<void> {
    const { quality, dataDir } = this.#options;
    if (!quality) return;
    const audit = await quality.runChecks(table.name, {
      trigger: "audit",
      candidate: { table, paths: paths.map((path) => join(dataDir, "lake", path)) },
    });
    if (!audit.blocking) return;
    const failed = audit.results.filter((result) => result.severity === "error" && result.status !== "pass");
    const reasons = failed.map(
      (result) =>
        // An error's message says it could not run.
        `quality check "${result.check}" ${result.status === "error" ? "" : "failed: "}${result.message}`,
    );
    throw new Rejection(`${reasons.join("; ")}; nothing was loaded`);
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
 * numbers), or inferred from every value in one scan. `sampled`: `rows` are a sample of the
 * file, and each inferred column's value is guarded (UnfitValue) so that the write stops
 * at a value that would have made the type inferred from every value another.
 */
async function incomingColumns(
  connection: DuckDBConnection,
  rows: FileRows,
  configured: Map<string, ColumnType>,
  onProgress: ProgressListener | undefined,
  sampled = false,
): Promise<IncomingColumn[]> {
  const names = columnNames(rows.columns.map((column) => column.header));
  const texts = rows.columns.map((column) => trimmedText(`CAST(${sqlIdent(column.source)} AS VARCHAR)`));
  const profiled = rows.columns.flatMap((column, i) => (column.infer ? [i] : []));
  const profiles = new Map<number, TextProfile>();
  if (profiled.length > 0 && rows.rows !== 0) {
    const sql = profiled.map((i) => profileSql(`v${i}`, `k${i}`, `p${i}`));
    const values = profiled.map((i) => `${texts[i]} AS v${i}`).join(", ");
    const reader = await tracked(connection, "inferring types", onProgress, () =>
      connection.runAndReadAll(`
      SELECT ${sql.map((part) => part.outer).join(",\n  ")}
      FROM (SELECT *, ${sql.map((part) => part.inner).join(",\n  ")} FROM (SELECT ${values} FROM ${rows.relation}))`),
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
  return rows.columns.map((column, i) => {
    const name = names[i] ?? `column_${i + 1}`;
    const text = texts[i] ?? "NULL";
    const source = sqlIdent(column.source);
    const base = { name, header: column.header, text };
    const profile = profiles.get(i) ?? emptyProfile;
    const temporalOnly = column.infer === "temporal";
    const fileType = column.infer ? inferType(profile, { temporalOnly }) : fromDuckDbType(column.duckdbType);
    const guard = sampled && column.infer ? sampleGuard(profile, fileType, temporalOnly) : null;
    // Trimming costs: where the guard checks a type, a value with spaces around fails it (and the
    // file is then read with every value trimmed), so the values it lets through need none.
    const typedText =
      guard !== null && typeof guard === "object" && guard.kind !== "VARCHAR"
        ? `NULLIF(CAST(${source} AS VARCHAR), '')`
        : text;
    let fileValue = column.infer
      ? fromText(fileType, typedText)
      : isNested(column.duckdbType)
        ? `to_json(${source})`
        : `CAST(${source} AS ${typeSql(fileType)})`;
    if (guard) fileValue = guarded(fileValue, typedText, guard, "sample");
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

/**
 * What every value of a column must be for the type inferred from a sample (`inferred`) to be
 * the type inferred from all of them. Inference only widens as values are added, so a value
 * of the inferred type keeps it; but a column empty in the sample could be anything, and long
 * integers are text only while no value has a fraction.
 */
function sampleGuard(profile: TextProfile, inferred: ColumnType, temporalOnly: boolean): GuardType {
  if (profile.values === 0) return "all-null";
  if (inferred.kind !== "VARCHAR") return inferred;
  return !temporalOnly && onlyShapes(profile, ["integer", "bigint", "decimal"])
    ? "integers"
    : { kind: "VARCHAR" };
}

/**
 * SQL giving the text `v` trimmed, NULL when empty. trim() costs more than the rest of a
 * value's checks together, so only values that may start or end with a space go through it.
 */
function trimmedText(v: string): string {
  return `CASE WHEN ${v} LIKE ' %' OR ${v} LIKE '% ' OR NOT (${v}[1] < chr(128) AND ${v}[-1] < chr(128))
    THEN NULLIF(trim(${v}), '') ELSE NULLIF(${v}, '') END`;
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
