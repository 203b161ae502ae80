/**
 * Copying a database table into a lake table: a sync. The rows are read from one
 * consistent snapshot of the source in batches, staged as typed Parquet, then:
 *
 * - full: they replace the lake table's rows;
 * - incremental: only rows whose watermark is at or past the bookmark (less any lookback)
 *   are read, and merged by primary key: a row replaces the lake's row with its key unless
 *   that one has a later watermark. Files holding replaced rows are rewritten, the others
 *   kept.
 *
 * Either way the new files, the removed ones, the table's columns, the run's history row
 * and the new bookmark are one catalog commit. A crash before it leaves the table and the
 * bookmark as they were, so the next run reads the same rows again: exactly once. A run
 * that would change nothing commits nothing and says so.
 */
import { randomUUID } from "node:crypto";
import { mkdir, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import {
  type Catalog,
  CommitConflictError,
  type DataFile,
  type LoadRun,
  type NewLoadRun,
  type TableColumn,
} from "../catalog/index.js";
import type { Config } from "../config/index.js";
import { adoptFiles, writeParquet } from "../lake/index.js";
import { sqlIdent, sqlString } from "../warehouse/index.js";
import { endsQuoted, lastRowEnd } from "./csv-rows.js";
import { type DbSourceSpec, type DbTableSpec, parseDbSources, selectTables } from "./db-config.js";
import {
  redactUrl,
  type SourceColumn,
  type SourceConnection,
  type SourceTable,
  sourceKind,
} from "./db-source.js";
import { connectMysql } from "./mysql.js";
import { columnNames } from "./names.js";
import { type IncomingColumn, planLoad } from "./plan.js";
import { connectPostgres } from "./postgres.js";
import { duckDbMessage, Rejection } from "./rejection.js";
import { finishRun, type RunResult, recordedRun } from "./run.js";
import { type ColumnType, type TypeKind, typeSql } from "./types.js";

export interface DbSyncOptions {
  /** The data dir: the lake is `<dataDir>/lake`, staging files go to `<dataDir>/landing/.staging`. */
  dataDir: string;
  catalog: Catalog;
  engine: DuckDBInstance;
  config: Pick<Config, "db_sources" | "load_webhook_url" | "compaction_target_bytes">;
  /** Where the sources' `url_env` variables are read (default: process.env). */
  env?: NodeJS.ProcessEnv;
  /** Rows per batch read from a source (default 10,000). */
  batchRows?: number;
  /** Bytes of text (CSV or JSON) per staged part (default 32 MB). */
  partBytes?: number;
}

export interface SyncRequest {
  /** Who ran it, for the history: sync (the CLI) or schedule (the server). */
  origin: string;
  /** Read the whole table and replace the lake table's rows and columns, also for an incremental table. */
  fullRefresh?: boolean;
  /** Aborting stops the read between batches; nothing is committed. */
  signal?: AbortSignal;
}

export interface SyncOutcome {
  run: LoadRun;
  /** One line for a person: what the sync did, why it did nothing, or why it failed. */
  message: string;
  /** Set when the webhook could not be told. */
  webhookError: string | null;
}

/** What an incremental table stores as its bookmark (JSON in the catalog). */
interface Bookmark {
  /** `<source>.<table>`: a bookmark of another source or column is not this table's. */
  source: string;
  watermark: string;
  /**
   * The largest watermark merged, as text the source compares with (UTC for timestamps); null
   * after a reset to the beginning: the next sync reads every row.
   */
  value: string | null;
  /** Paused: syncs read from the bookmark but leave it where it is (`sluice bookmark pause`). */
  paused?: boolean;
}

/** A table's bookmark as `sluice bookmark` shows it. */
export interface BookmarkState {
  /** `<source>.<table>`. */
  table: string;
  into: string;
  watermark: string;
  /** null: no bookmark yet, or reset to the beginning. */
  value: string | null;
  paused: boolean;
}

/** Rows read from the source, staged as typed Parquet with the lake's column names. */
interface Staged {
  /** SQL to select from. */
  relation: string;
  rows: number;
  /** The Parquet parts (zstd, the source's columns under their lake names and types). */
  parts: StagedPart[];
}

interface StagedPart {
  path: string;
  rows: number;
}

/** What a sync is working with once the source table is described. */
interface Context {
  spec: DbTableSpec;
  run: NewLoadRun;
  incoming: IncomingColumn[];
  /** Lake names of the key columns (incremental tables only). */
  key: string[];
  /** The watermark column: its lake name, type and source column (incremental tables only). */
  watermark: { name: string; type: ColumnType; source: SourceColumn } | null;
  stagingDir: string;
}

/** Commits planned on a table that another writer changed meanwhile are redone this many times. */
const MAX_ATTEMPTS = 5;
const WATERMARK_KINDS = new Set<TypeKind>([
  "INTEGER",
  "BIGINT",
  "DECIMAL",
  "DOUBLE",
  "DATE",
  "TIMESTAMP",
  "TIMESTAMPTZ",
]);
const TEMPORAL_KINDS = new Set<TypeKind>(["DATE", "TIMESTAMP", "TIMESTAMPTZ"]);
/** By default, a staged part is written once this much text (CSV or JSON) has arrived, whatever the row count. */
const PART_BYTES = 32 * 1024 * 1024;
/** The largest value (a document, a blob in hex) a staged part may hold. */
const MAX_VALUE_BYTES = 512 * 1024 * 1024;
/**
 * The column giving each lake row's file in merges (read_parquet's `filename`). Loaded column
 * names never start with "_" (see names.ts), so this and the merge's other helper columns
 * cannot meet a real one.
 */
const FILE_COLUMN = "_sluice_file";

export class DbSync {
  readonly sources: DbSourceSpec[];
  readonly #options: DbSyncOptions;

  /** Throws ConfigError when `db_sources` is not valid. */
  constructor(options: DbSyncOptions) {
    this.#options = options;
    this.sources = parseDbSources(options.config.db_sources);
  }

  /** The tables `target` names: all (none given), a source's (`shop`), or one (`shop.orders`). */
  tables(target?: string): DbTableSpec[] {
    return selectTables(this.sources, target);
  }

  /** Syncs one table. Never throws for a problem with the source or the data: the outcome says `failed` and why. */
  async sync(spec: DbTableSpec, request: SyncRequest): Promise<SyncOutcome> {
    const run: NewLoadRun = {
      table: spec.into,
      file: `${spec.source}.${spec.table}`,
      sha256: null,
      bytes: 0,
      mode: spec.mode === "full" || request.fullRefresh ? "replace" : "merge",
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
        failedAs: "failed",
        signal: request.signal,
      },
      run,
      () => this.#sync(spec, request, run),
    );
  }

  async #sync(spec: DbTableSpec, request: SyncRequest, run: NewLoadRun): Promise<RunResult> {
    const url = this.#sourceUrl(spec);
    await this.#syncableTable(spec.into);
    const connection = await connectSource(url);
    const duck = await this.#options.engine.connect();
    const stagingDir = join(this.#options.dataDir, "landing", ".staging", randomUUID());
    try {
      const table = await connection.describe(spec.table);
      const context = syncContext(spec, table, run, stagingDir);
      const since = run.mode === "merge" ? await this.#since(duck, context) : null;
      await mkdir(stagingDir, { recursive: true });
      const staged = await stage(duck, connection, table, context, since, {
        batchRows: this.#options.batchRows ?? 10_000,
        partBytes: this.#options.partBytes ?? PART_BYTES,
        signal: request.signal,
      });
      run.rows = staged.rows;
      for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
        const done = await this.#writeAndCommit(duck, staged, context);
        if (done) return done;
      }
      throw new Rejection(`table ${spec.into} kept changing while it was synced: try again`);
    } finally {
      duck.closeSync();
      await connection.close();
      await rm(stagingDir, { recursive: true, force: true });
    }
  }

  /** The value rows are read from: the table's bookmark less the lookback, or null to read all. */
  async #since(duck: DuckDBConnection, context: Context): Promise<string | null> {
    const bookmark = await this.#bookmark(context);
    const watermark = context.watermark;
    if (bookmark?.value == null || !watermark) return null;
    const lookback = context.spec.lookback;
    let start = bookmarkValue(bookmark.value, watermark.type);
    if (lookback && "micros" in lookback) {
      start = `${start} - to_microseconds(${lookback.micros})`;
      if (watermark.type.kind === "DATE") start = `CAST(${start} AS DATE)`;
    } else if (lookback) {
      start = `${start} - ${lookback.amount}`;
    }
    const reader = await duck.runAndReadAll(`SELECT ${bookmarkText(start, watermark.type)}`);
    return String(reader.getRowsJson()[0]?.[0]);
  }

  /** The table's bookmark when it is this source's and this watermark's. */
  async #bookmark(context: Context): Promise<Bookmark | null> {
    const stored = await this.#options.catalog.bookmark(context.spec.into);
    if (!stored || !context.spec.watermark) return null;
    const bookmark = JSON.parse(stored) as Bookmark;
    return bookmark.source === context.run.file && bookmark.watermark === context.spec.watermark
      ? bookmark
      : null;
  }

  /**
   * Plans against the table as it is now, writes, and commits; null when another commit got in
   * first (the staged rows are then merged again into the table as that commit left it).
   */
  async #writeAndCommit(duck: DuckDBConnection, staged: Staged, context: Context): Promise<RunResult | null> {
    const { catalog, dataDir } = this.#options;
    const { spec, run } = context;
    const snapshot = await catalog.tableSnapshot(spec.into);
    const current = await this.#syncableTable(spec.into);
    const replace = run.mode === "replace";
    const plan = planLoad(spec.into, replace ? [] : (current?.columns ?? []), context.incoming);
    const check = plan.checks[0];
    if (check) {
      const source = context.incoming.find((column) => column.name === check.column.name);
      throw new Rejection(
        `column "${check.column.name}" ${check.expectation}, but the source's ${source?.header ?? check.column.name} is now ${typeSql(check.column.type)}, which does not widen to it: run \`sluice sync ${run.file} --full-refresh\` to rebuild the table with the source's types`,
      );
    }
    const changes = replace ? columnChanges(current?.columns ?? [], plan.columns) : plan.changes;
    const lakeRoot = join(dataDir, "lake");
    const live = await catalog.liveFiles(spec.into);
    const previous = await this.#bookmark(context);
    const bookmark = previous?.paused
      ? previous
      : await newBookmark(duck, staged, context, replace ? null : previous);
    const bookmarkMoved = bookmark?.value !== previous?.value;
    const newRows = newRowsSql(staged, plan, context);
    const lake = lakeRowsSql(
      plan.columns,
      live.map((file) => join(lakeRoot, file.path)),
    );
    const tableDef = { name: spec.into, columns: plan.columns, partitionBy: null };
    const unchangedColumns =
      current !== undefined && JSON.stringify(current.columns) === JSON.stringify(plan.columns);

    let remove: string[] = [];
    let selectSql: string | null;
    let summary: string;
    if (replace) {
      if (unchangedColumns && !bookmarkMoved && (await sameRows(duck, newRows, lake))) {
        return this.#skip(run, `${run.file} has not changed since the last sync: nothing to do`);
      }
      remove = live.map((file) => file.path);
      selectSql = newRows;
      summary = `${count(staged.rows, "row")}${current ? ", replacing the previous rows" : ""}`;
    } else {
      const merge = await mergeInto(duck, {
        newRows,
        lake,
        live,
        lakeRoot,
        columns: plan.columns,
        context,
        smallFileBytes: this.#options.config.compaction_target_bytes,
      });
      if (merge.inserted + merge.updated === 0 && plan.changes.length === 0 && !bookmarkMoved) {
        return this.#skip(
          run,
          `nothing new in ${run.file}${previous?.value ? ` since ${spec.watermark} ${previous.value}` : ""}${
            staged.rows > 0 ? ` (${count(staged.rows, "row")} read again, unchanged)` : ""
          }`,
        );
      }
      remove = merge.rewrite.map((file) => file.path);
      selectSql = merge.selectSql;
      summary = `read ${count(staged.rows, "row")}: ${merge.inserted.toLocaleString("en-US")} new, ${merge.updated.toLocaleString("en-US")} updated`;
    }
    // A full copy that keeps the source's columns as they are staged needs no second write.
    const asStaged =
      replace &&
      context.key.length === 0 &&
      staged.parts.length > 0 &&
      plan.columns.every((column, i) => plan.select[i] === sqlIdent(column.name));
    let add: DataFile[] = [];
    let committed: number;
    try {
      if (asStaged) add = await adoptParts(staged.parts, lakeRoot, spec.into);
      else if (selectSql)
        add = await writeParquet(duck, { lakeRoot, table: tableDef, prefix: "load", selectSql });
      committed = await catalog.commit({
        table: spec.into,
        operation: "sync",
        add,
        remove,
        columns: plan.columns,
        ifTableSnapshot: snapshot,
        load: { ...run, status: "loaded", changes, finishedAt: new Date().toISOString() },
        bookmark: bookmark ? JSON.stringify(bookmark) : undefined,
      });
    } catch (error) {
      // Nothing was committed: the files are nobody's.
      for (const file of add) await rm(join(lakeRoot, file.path), { force: true });
      if (error instanceof CommitConflictError) return null;
      throw error;
    }
    // Other writers may have recorded runs since: this one is the run of the snapshot just made.
    const loaded = (await catalog.loads({ table: spec.into, limit: 20 })).find(
      (candidate) => candidate.snapshot === committed,
    );
    if (!loaded) throw new Error(`sync of ${run.file} committed but not in the history`);
    const details = [
      ...changes,
      ...(bookmark && bookmarkMoved ? [`bookmark ${spec.watermark} = ${bookmark.value}`] : []),
      ...(previous?.paused
        ? [`bookmark paused at ${spec.watermark} = ${previous.value ?? "the beginning"}`]
        : []),
    ];
    return {
      run: loaded,
      message: `synced ${run.file} into ${spec.into}: ${summary}${details.length > 0 ? ` (${details.join("; ")})` : ""}`,
    };
  }

  /** The bookmark of an incremental table. */
  async bookmark(spec: DbTableSpec): Promise<BookmarkState> {
    const watermark = incrementalWatermark(spec);
    const stored = await this.#ownBookmark(spec);
    return {
      table: `${spec.source}.${spec.table}`,
      into: spec.into,
      watermark,
      value: stored?.value ?? null,
      paused: stored?.paused ?? false,
    };
  }

  /**
   * Moves the bookmark back (or on) to `to`, or to the beginning (null): the next sync reads
   * from there. `to` is checked against the watermark column's type in the source.
   */
  async resetBookmark(spec: DbTableSpec, to: string | null): Promise<BookmarkState> {
    const watermark = incrementalWatermark(spec);
    let value: string | null = null;
    if (to !== null) {
      const source = await this.#describe(spec);
      const column = source.watermark as NonNullable<Context["watermark"]>;
      const duck = await this.#options.engine.connect();
      try {
        const reader = await duck.runAndReadAll(
          `SELECT ${bookmarkText(bookmarkValue(to, column.type), column.type)}`,
        );
        value = String(reader.getRowsJson()[0]?.[0]);
      } catch {
        throw new Rejection(
          `"${to}" is not a value of watermark column ${watermark} (${column.source.declared})`,
        );
      } finally {
        duck.closeSync();
      }
    }
    const current = await this.bookmark(spec);
    return this.#storeBookmark(spec, { ...current, value });
  }

  /** Pauses the bookmark (syncs read from it and leave it there) or lets it move again. */
  async pauseBookmark(spec: DbTableSpec, paused: boolean): Promise<BookmarkState> {
    const current = await this.bookmark(spec);
    return this.#storeBookmark(spec, { ...current, paused });
  }

  async #storeBookmark(spec: DbTableSpec, state: BookmarkState): Promise<BookmarkState> {
    const { catalog } = this.#options;
    if (!(await catalog.tables()).some((table) => table.name === spec.into)) {
      throw new Rejection(`${state.table} has not been synced yet: run \`sluice sync ${state.table}\` first`);
    }
    const bookmark: Bookmark = {
      source: state.table,
      watermark: state.watermark,
      value: state.value,
      ...(state.paused ? { paused: true } : {}),
    };
    for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
      try {
        await catalog.commit({
          table: spec.into,
          operation: "bookmark",
          add: [],
          bookmark: JSON.stringify(bookmark),
          ifTableSnapshot: await catalog.tableSnapshot(spec.into),
        });
        return state;
      } catch (error) {
        if (!(error instanceof CommitConflictError)) throw error;
      }
    }
    throw new Rejection(`table ${spec.into} kept changing: try again`);
  }

  /** The stored bookmark when it is this table's and its watermark's. */
  async #ownBookmark(spec: DbTableSpec): Promise<Bookmark | null> {
    const stored = await this.#options.catalog.bookmark(spec.into);
    if (!stored) return null;
    const bookmark = JSON.parse(stored) as Bookmark;
    return bookmark.source === `${spec.source}.${spec.table}` && bookmark.watermark === spec.watermark
      ? bookmark
      : null;
  }

  /** The connection URL of the table's source, from its environment variable. */
  #sourceUrl(spec: DbTableSpec): string {
    const source = this.sources.find((candidate) => candidate.name === spec.source);
    if (!source) throw new Error(`no source ${spec.source}`);
    const url = (this.#options.env ?? process.env)[source.urlEnv];
    if (!url) {
      throw new Rejection(
        `the environment variable ${source.urlEnv} (db_sources.${source.name}.url_env) is not set: it holds the connection URL`,
      );
    }
    return url;
  }

  /** The source table's sync context, for checks that need its column types. */
  async #describe(spec: DbTableSpec): Promise<Context> {
    const connection = await connectSource(this.#sourceUrl(spec));
    try {
      const run = { file: `${spec.source}.${spec.table}` } as NewLoadRun;
      return syncContext(spec, await connection.describe(spec.table), run, "");
    } finally {
      await connection.close();
    }
  }

  async #skip(run: NewLoadRun, message: string): Promise<RunResult> {
    return { run: await finishRun(this.#options.catalog, run, "skipped", message), message };
  }

  /** The lake table if it exists; a table the collector feeds (partitioned by time) is not for syncs. */
  async #syncableTable(table: string) {
    const current = (await this.#options.catalog.tables()).find((def) => def.name === table);
    if (current?.partitionBy) {
      throw new Rejection(`table ${table} is fed by the collector: sync into a table of its own (into: …)`);
    }
    return current;
  }
}

/** The watermark of an incremental table; a full copy has no bookmark. */
function incrementalWatermark(spec: DbTableSpec): string {
  if (spec.mode !== "incremental" || !spec.watermark) {
    throw new Rejection(`${spec.source}.${spec.table} is copied in full: it has no bookmark`);
  }
  return spec.watermark;
}

/** Opens a connection to the database at `url`, by its scheme. */
function connectSource(url: string): Promise<SourceConnection> {
  try {
    new URL(url);
  } catch {
    throw new Rejection(
      `"${redactUrl(url)}" is not a URL (postgres://user:password@host:5432/db, mysql://…)`,
    );
  }
  switch (sourceKind(url)) {
    case "postgres":
      return connectPostgres(url);
    case "mysql":
      return connectMysql(url);
    default:
      throw new Rejection(
        `"${redactUrl(url)}" is not a postgres://, postgresql://, mysql:// or mariadb:// URL`,
      );
  }
}

/**
 * The sync's view of the source table: its columns under lake names (snake_case, the
 * source's name kept as description), and the key and watermark columns checked.
 */
function syncContext(spec: DbTableSpec, table: SourceTable, run: NewLoadRun, stagingDir: string): Context {
  const names = columnNames(table.columns.map((column) => column.name));
  const incoming = table.columns.map((column, i): IncomingColumn => {
    const name = names[i] ?? column.name;
    return {
      name,
      header: column.name,
      type: column.type,
      value: sqlIdent(name),
      text: `CAST(${sqlIdent(name)} AS VARCHAR)`,
      configured: false,
      verify: false,
    };
  });
  const find = (configured: string, role: string): number => {
    let index = table.columns.findIndex((column) => column.name === configured);
    if (index < 0)
      index = table.columns.findIndex((column) => column.name.toLowerCase() === configured.toLowerCase());
    if (index < 0) {
      throw new Rejection(
        `${role} column "${configured}" is not in ${table.name} (columns: ${table.columns.map((column) => column.name).join(", ")})`,
      );
    }
    return index;
  };
  let key: string[] = [];
  if (spec.mode === "incremental") {
    const configured = spec.primaryKey ?? table.primaryKey;
    if (configured.length === 0) {
      throw new Rejection(`${table.name} has no primary key: set primary_key for ${run.file} in db_sources`);
    }
    key = configured.map((column) => names[find(column, "primary key")] ?? column);
  }
  let watermark: Context["watermark"] = null;
  if (spec.watermark) {
    const index = find(spec.watermark, "watermark");
    const column = table.columns[index] as SourceColumn;
    if (!WATERMARK_KINDS.has(column.type.kind)) {
      throw new Rejection(
        `watermark column "${column.name}" is ${column.declared}: use a timestamp, a date or an increasing number`,
      );
    }
    const temporal = TEMPORAL_KINDS.has(column.type.kind);
    if (spec.lookback && "micros" in spec.lookback !== temporal) {
      throw new Rejection(
        `lookback for ${run.file} must be ${temporal ? "a duration such as 10m" : "a number"}, as watermark column "${column.name}" is ${column.declared}`,
      );
    }
    watermark = { name: names[index] ?? column.name, type: column.type, source: column };
  }
  return { spec, run, incoming, key, watermark, stagingDir };
}

/** Streams the source's rows into staged Parquet parts, from CSV or from batches of rows. */
async function stage(
  duck: DuckDBConnection,
  connection: SourceConnection,
  table: SourceTable,
  context: Context,
  since: string | null,
  options: { batchRows: number; partBytes: number; signal?: AbortSignal },
): Promise<Staged> {
  const watermark = context.watermark;
  const read = {
    since: since !== null && watermark ? { column: watermark.source, value: since } : undefined,
    batchRows: options.batchRows,
    signal: options.signal,
  };
  const names = context.incoming.map((column) => column.name);
  const part = { columns: table.columns, names, stagingDir: context.stagingDir };
  const rows = connection.read(table, read);
  const staged =
    "csv" in rows
      ? await stageCsv(duck, rows.csv, { ...part, partBytes: options.partBytes })
      : await stageRows(duck, rows.batches, { ...part, ...options });
  const empty = table.columns.map(
    (column, i) => `CAST(NULL AS ${typeSql(column.type)}) AS ${sqlIdent(names[i] ?? column.name)}`,
  );
  return {
    relation:
      staged.parts.length > 0
        ? `read_parquet([${staged.parts.map((part) => sqlString(part.path)).join(", ")}])`
        : `(SELECT ${empty.join(", ")} WHERE false)`,
    rows: staged.rows,
    parts: staged.parts,
  };
}

/** Where staged parts go, and the columns they hold: the source's, under their lake names. */
interface PartOptions {
  columns: SourceColumn[];
  names: string[];
  stagingDir: string;
  partBytes: number;
}

/**
 * Cuts the CSV text into parts of about `partBytes` at row ends, each cast to the lake types
 * by DuckDB's CSV reader while the next part arrives.
 */
async function stageCsv(
  duck: DuckDBConnection,
  csv: AsyncIterable<Buffer>,
  { columns, names, stagingDir, partBytes }: PartOptions,
): Promise<{ parts: StagedPart[]; rows: number }> {
  const parts: StagedPart[] = [];
  let rows = 0;
  let converting: Promise<void> = Promise.resolve();
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let quoted = false;
  const cut = async (): Promise<void> => {
    const text = join(stagingDir, `part-${parts.length}.csv`);
    const part: StagedPart = { path: join(stagingDir, `part-${parts.length}.parquet`), rows: 0 };
    parts.push(part);
    await writeFile(text, pending);
    pending = [];
    pendingBytes = 0;
    // One part converts while the next is read; a failed conversion ends the read at the next cut.
    await converting;
    converting = convertPart(duck, csvReader(text, columns), part.path, columns, names).then(
      async (count) => {
        part.rows = count;
        rows += count;
        await rm(text);
      },
    );
    // Handled here so that it is not an unhandled rejection meanwhile; awaited at the next cut.
    converting.catch(() => {});
  };
  try {
    for await (const chunk of csv) {
      // A part is cut in the first chunk past partBytes where a row ends.
      const end = pendingBytes + chunk.length >= partBytes ? lastRowEnd(chunk, quoted) : 0;
      quoted = endsQuoted(chunk, quoted);
      if (end > 0) {
        pending.push(chunk.subarray(0, end));
        pendingBytes += end;
        await cut();
      }
      pending.push(chunk.subarray(end));
      pendingBytes += chunk.length - end;
    }
    if (pendingBytes > 0) await cut();
    await converting;
  } finally {
    // A read that failed waits for the part in conversion: the connection is closed after.
    await converting.catch(() => {});
  }
  return { parts, rows };
}

/** The SQL reading a CSV part, every column as text: `c0`, `c1`, … */
function csvReader(path: string, columns: SourceColumn[]): string {
  // Quoted empty fields are empty text, not NULL; large values (documents, blobs in hex) make long lines.
  return `read_csv(${sqlString(path)}, columns = {${textColumns(columns)}}, header = false, auto_detect = false, delim = ',',
    quote = '"', escape = '"', allow_quoted_nulls = false, max_line_size = ${MAX_VALUE_BYTES}, buffer_size = ${2 * MAX_VALUE_BYTES})`;
}

/** The columns a staged text part is read with: `c0`, `c1`, … as VARCHAR. */
function textColumns(columns: SourceColumn[]): string {
  return columns.map((_, i) => `'c${i}': 'VARCHAR'`).join(", ");
}

/**
 * Each batch of rows is appended to a newline-delimited JSON buffer of text values, which
 * DuckDB casts to the lake types (its C++ JSON reader does the parsing) whenever a part's
 * worth has arrived.
 */
async function stageRows(
  duck: DuckDBConnection,
  read: AsyncIterable<(string | null)[][]>,
  { columns, names, stagingDir, partBytes, batchRows }: PartOptions & { batchRows: number },
): Promise<{ parts: StagedPart[]; rows: number }> {
  const keys = columns.map((_, i) => `${i === 0 ? "{" : ","}"c${i}":`);
  const parts: StagedPart[] = [];
  let lines: string[] = [];
  let bytes = 0;
  let rows = 0;
  const flush = async () => {
    if (lines.length === 0) return;
    const json = join(stagingDir, `part-${parts.length}.json`);
    const part = join(stagingDir, `part-${parts.length}.parquet`);
    await writeFile(json, lines.join("\n"));
    lines = [];
    bytes = 0;
    const reader = `read_json(${sqlString(json)}, format = 'newline_delimited', columns = {${textColumns(columns)}}, maximum_object_size = ${MAX_VALUE_BYTES})`;
    parts.push({ path: part, rows: await convertPart(duck, reader, part, columns, names) });
    await rm(json);
  };
  for await (const batch of read) {
    for (const row of batch) {
      let line = "";
      for (let i = 0; i < keys.length; i++) {
        const value = row[i];
        line += keys[i] + (value === null || value === undefined ? "null" : JSON.stringify(value));
      }
      line += "}";
      lines.push(line);
      bytes += line.length;
    }
    rows += batch.length;
    if (bytes >= partBytes || lines.length >= batchRows * 10) await flush();
  }
  await flush();
  return { parts, rows };
}

/**
 * Casts one part of text rows (`read`: SQL reading columns `c0`, `c1`, … as text) to the lake
 * types, as a Parquet part; a value that does not cast is named. Returns the part's row count.
 */
async function convertPart(
  duck: DuckDBConnection,
  read: string,
  part: string,
  columns: SourceColumn[],
  names: string[],
): Promise<number> {
  const value = (i: number) => (columns[i] as SourceColumn).fromText(sqlIdent(`c${i}`));
  const select = columns.map((column, i) => `${value(i)} AS ${sqlIdent(names[i] ?? column.name)}`);
  try {
    const copied = await duck.runAndReadAll(
      `COPY (SELECT ${select.join(", ")} FROM ${read}) TO ${sqlString(part)} (FORMAT parquet, COMPRESSION zstd)`,
    );
    return Number(copied.getRowsJson()[0]?.[0] ?? 0);
  } catch (error) {
    for (const [i, column] of columns.entries()) {
      const fails = await duck.run(`SELECT count(${value(i)}) FROM ${read}`).then(
        () => false,
        () => true,
      );
      if (!fails) continue;
      const bad = await duck.runAndReadAll(
        `SELECT c${i} FROM ${read} WHERE c${i} IS NOT NULL AND TRY(${value(i)}) IS NULL LIMIT 1`,
      );
      const text = String(bad.getRowsJson()[0]?.[0] ?? "");
      const shown = text.length > 60 ? `${text.slice(0, 57)}...` : text;
      throw new Rejection(
        `column "${column.name}" (${column.declared}) has ${JSON.stringify(shown)}, which cannot be read as ${typeSql(column.type)}: ${duckDbMessage(error)}`,
      );
    }
    throw error;
  }
}

/**
 * Makes the staged parts lake files of `table` as they are (linked, no copy). The staged names
 * stay, for another attempt if the commit is refused.
 */
async function adoptParts(parts: StagedPart[], lakeRoot: string, table: string): Promise<DataFile[]> {
  const sources = await Promise.all(
    parts.map(async (part) => ({
      path: part.path,
      file: { partition: "", rows: part.rows, bytes: (await stat(part.path)).size },
    })),
  );
  return adoptFiles(lakeRoot, table, "load", sources);
}

/** The staged rows with the table's columns after the plan, one per key (the latest) when there is a key. */
function newRowsSql(
  staged: Staged,
  plan: { columns: TableColumn[]; select: string[] },
  context: Context,
): string {
  const select = plan.columns.map((column, i) => `${plan.select[i]} AS ${sqlIdent(column.name)}`);
  const rows = `SELECT ${select.join(", ")} FROM ${staged.relation}`;
  if (context.key.length === 0) return rows;
  const order = context.watermark ? `${sqlIdent(context.watermark.name)} DESC NULLS LAST` : "1";
  return `SELECT * FROM (${rows}) QUALIFY row_number() OVER (PARTITION BY ${context.key.map(sqlIdent).join(", ")} ORDER BY ${order}) = 1`;
}

/**
 * The rows of the lake files `paths` as `columns` (files from before a column was added read
 * NULL there; narrower types are cast up), with each row's file in FILE_COLUMN.
 */
function lakeRowsSql(columns: TableColumn[], paths: string[]): string {
  const typed = columns.map((column) => `CAST(NULL AS ${column.type}) AS ${sqlIdent(column.name)}`);
  const file = `CAST(NULL AS VARCHAR) AS ${FILE_COLUMN}`;
  if (paths.length === 0) return `(SELECT ${[...typed, file].join(", ")} WHERE false)`;
  const casts = columns.map(
    (column) => `CAST(${sqlIdent(column.name)} AS ${column.type}) AS ${sqlIdent(column.name)}`,
  );
  return `(SELECT ${[...casts, FILE_COLUMN].join(", ")} FROM (
    SELECT ${[...typed, file].join(", ")} WHERE false
    UNION ALL BY NAME
    SELECT * FROM read_parquet([${paths.map(sqlString).join(", ")}], union_by_name = true, filename = '${FILE_COLUMN}')))`;
}

/** Whether the new rows are exactly the lake's rows (as a multiset). */
async function sameRows(duck: DuckDBConnection, newRows: string, lake: string): Promise<boolean> {
  const reader = await duck.runAndReadAll(`
    SELECT (SELECT count(*) FROM (${newRows})) = (SELECT count(*) FROM ${lake})
      AND NOT EXISTS (SELECT * FROM (${newRows}) EXCEPT ALL SELECT * EXCLUDE (${FILE_COLUMN}) FROM ${lake})`);
  return reader.getRowsJson()[0]?.[0] === true;
}

/**
 * Merges the new rows into the lake by key. A new row counts when its key is new, or when
 * it differs from the lake's row and that row's watermark is not later (rows read again
 * through the lookback, or by a slower concurrent sync, change nothing). Those rows are
 * staged; the files holding their keys, and small files (so that frequent syncs do not pile
 * up tiny files), are rewritten with them, each key's changed row replacing the old one.
 */
async function mergeInto(
  duck: DuckDBConnection,
  options: {
    newRows: string;
    lake: string;
    live: DataFile[];
    lakeRoot: string;
    columns: TableColumn[];
    context: Context;
    smallFileBytes: number;
  },
): Promise<{ inserted: number; updated: number; rewrite: DataFile[]; selectSql: string | null }> {
  const { context, columns, lakeRoot } = options;
  const watermark = context.watermark;
  if (!watermark) throw new Error("a merge needs a watermark");
  if (options.live.length === 0) {
    // Nothing to merge with (the first sync): every row is new.
    const rows = await duck.runAndReadAll(`SELECT count(*) FROM (${options.newRows})`);
    const inserted = Number(rows.getRowsJson()[0]?.[0] ?? 0);
    return { inserted, updated: 0, rewrite: [], selectSql: inserted > 0 ? options.newRows : null };
  }
  const key = context.key.map(sqlIdent);
  const wm = sqlIdent(watermark.name);
  const on = key.map((column) => `n.${column} = l.${column}`).join(" AND ");
  const same = columns.map(
    (column) => `n.${sqlIdent(column.name)} IS NOT DISTINCT FROM l.${sqlIdent(column.name)}`,
  );
  const changed = sqlString(join(context.stagingDir, `changed-${randomUUID()}.parquet`));
  await duck.run(`COPY (
    SELECT n.*, l.${FILE_COLUMN} IS NULL AS _sluice_inserted
    FROM (${options.newRows}) n LEFT JOIN ${options.lake} l ON ${on}
    WHERE l.${FILE_COLUMN} IS NULL OR (coalesce(n.${wm} >= l.${wm}, l.${wm} IS NULL) AND NOT (${same.join(" AND ")}))
  ) TO ${changed} (FORMAT parquet)`);
  const keyTuple = key.length === 1 ? (key[0] as string) : `row(${key.join(", ")})`;
  const counts = await duck.runAndReadAll(`
    SELECT count(DISTINCT ${keyTuple}) FILTER (WHERE _sluice_inserted), count(DISTINCT ${keyTuple}) FILTER (WHERE NOT _sluice_inserted)
    FROM read_parquet(${changed})`);
  const [inserted, updated] = (counts.getRowsJson()[0] ?? [0, 0]).map(Number) as [number, number];
  if (inserted + updated === 0) return { inserted, updated, rewrite: [], selectSql: null };

  const holding = await duck.runAndReadAll(`
    SELECT DISTINCT l.${FILE_COLUMN} FROM ${options.lake} l SEMI JOIN read_parquet(${changed}) n ON ${on}`);
  const paths = new Set((holding.getRowsJson() as [string][]).map(([path]) => path));
  const rewrite = options.live.filter(
    (file) => paths.has(join(lakeRoot, file.path)) || file.bytes < options.smallFileBytes,
  );
  const names = columns.map((column) => sqlIdent(column.name)).join(", ");
  const kept = lakeRowsSql(
    columns,
    rewrite.map((file) => join(lakeRoot, file.path)),
  );
  const anyNullKey = key.map((column) => `${column} IS NULL`).join(" OR ");
  const selectSql = `SELECT ${names} FROM (
      SELECT ${names}, 1 AS _sluice_rank FROM read_parquet(${changed})
      UNION ALL
      SELECT ${names}, 0 AS _sluice_rank FROM ${kept})
    QUALIFY ${anyNullKey} OR row_number() OVER (PARTITION BY ${key.join(", ")} ORDER BY _sluice_rank DESC, ${wm} DESC NULLS LAST) = 1`;
  return { inserted, updated, rewrite, selectSql };
}

/** The bookmark after this sync: the largest watermark read, or the previous one if that is larger. */
async function newBookmark(
  duck: DuckDBConnection,
  staged: Staged,
  context: Context,
  previous: Bookmark | null,
): Promise<Bookmark | null> {
  const watermark = context.watermark;
  if (!watermark || !context.spec.watermark) return null;
  const before = previous?.value != null ? bookmarkValue(previous.value, watermark.type) : "NULL";
  const reader = await duck.runAndReadAll(
    `SELECT ${bookmarkText(`greatest(max(${sqlIdent(watermark.name)}), ${before})`, watermark.type)} FROM ${staged.relation}`,
  );
  const value = reader.getRowsJson()[0]?.[0];
  if (value === null || value === undefined) return null;
  return { source: context.run.file, watermark: context.spec.watermark, value: String(value) };
}

/** DuckDB SQL formatting a watermark value as the text sources compare with: timestamps in UTC, without offset. */
function bookmarkText(value: string, type: ColumnType): string {
  switch (type.kind) {
    case "TIMESTAMPTZ":
      return `strftime((${value}) AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S.%f')`;
    case "TIMESTAMP":
      return `strftime(${value}, '%Y-%m-%d %H:%M:%S.%f')`;
    default:
      return `CAST(${value} AS VARCHAR)`;
  }
}

/** DuckDB SQL reading a bookmark's text back as a value of the watermark's type. */
function bookmarkValue(text: string, type: ColumnType): string {
  if (type.kind === "TIMESTAMPTZ") return `CAST(${sqlString(`${text}+00`)} AS TIMESTAMPTZ)`;
  return `CAST(${sqlString(text)} AS ${typeSql(type)})`;
}

/** The schema changes a full sync makes to the table, for the history. */
function columnChanges(before: TableColumn[], after: TableColumn[]): string[] {
  if (before.length === 0) return [];
  const old = new Map(before.map((column) => [column.name, column.type]));
  const changes: string[] = [];
  for (const column of after) {
    const type = old.get(column.name);
    if (type === undefined) changes.push(`added column ${column.name} (${column.type})`);
    else if (type !== column.type)
      changes.push(`changed column ${column.name} from ${type} to ${column.type}`);
    old.delete(column.name);
  }
  for (const name of old.keys()) changes.push(`dropped column ${name}`);
  return changes;
}

const count = (n: number, noun: string): string =>
  `${n.toLocaleString("en-US")} ${noun}${n === 1 ? "" : "s"}`;
