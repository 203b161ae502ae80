import { createHash } from "node:crypto";
import { mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import {
  type DuckDBConnection,
  type DuckDBInstance,
  type DuckDBPreparedStatement,
  type DuckDBResultReader,
  type DuckDBType,
  DuckDBTypeId,
  type DuckDBValue,
  StatementType,
} from "@duckdb/node-api";
import type { Catalog, ReadLease, TableDef } from "../catalog/index.js";
import { sqlIdent, sqlString } from "./engine.js";
import {
  notOnlySelects,
  type ParseTree,
  parseTree,
  type Restriction,
  restrictionProblem,
} from "./restrict.js";
import { dayInRange, mentions, TimeRanges } from "./time-range.js";

export interface QueryResult {
  columns: { name: string; type: string }[];
  rows: unknown[][];
  /** True when the result had more than `maxRows` rows and was cut. */
  truncated?: boolean;
}

/** An error in the user's SQL (DuckDB's message): the HTTP API answers 400. */
export class QueryError extends Error {}

/** What a query runs as: everyone's SQL is read-only; a restriction narrows it to tables by name (restrict.ts). */
export interface AccessOptions {
  /** For non-admins; none: an admin's SQL, which may read the lake's files directly. */
  restriction?: Restriction;
}

/** SQL refused because of who runs it (a restricted reader), not because it is wrong. */
export class AccessError extends QueryError {}

/** A query stopped because it ran past the timeout (`query_timeout_ms`). */
export class QueryTimeout extends QueryError {
  constructor(timeoutMs: number) {
    super(
      `canceling statement due to statement timeout: it ran longer than ${timeoutMs} ms (query_timeout_ms)`,
    );
  }
}

export interface RowsOptions extends AccessOptions {
  /** Values of `$1`, `$2`, … as text (cast to the type the statement expects), bytes (BLOB), or null. */
  params?: (string | Uint8Array | null)[];
  maxRows?: number;
  /** Interrupts the query. */
  signal?: AbortSignal;
}

export interface ResultColumn {
  name: string;
  type: DuckDBType;
}

export interface RowsResult {
  columns: ResultColumn[];
  rows: DuckDBValue[][];
  truncated: boolean;
}

export interface StatementDescription {
  /** DuckDB's type of each `$n` parameter; INVALID when the statement leaves it open. */
  parameters: DuckDBTypeId[];
  columns: ResultColumn[];
}

export interface WarehouseOptions {
  catalog: Catalog;
  engine: DuckDBInstance;
  lakeRoot: string;
  /** Queries running longer are interrupted. */
  timeoutMs?: number;
  /** Results are cut after this many rows (`truncated: true`). */
  maxRows?: number;
}

const CHECKED_STATEMENTS = 1024;
const INTEGER_TYPES = new Set(["BIGINT", "UBIGINT", "HUGEINT", "UHUGEINT"]);

/**
 * SQL over the lake. Every table is a view in DuckDB's `main` schema whose Parquet
 * file list is a variable of the connection (`getvariable('sluice_files_<table>')`).
 * Each query pins the catalog's current snapshot (so the files it reads are not
 * deleted under it), takes a connection of its own and sets the lists of that snapshot:
 * concurrent queries never see each other's snapshots, and every client, BI tools'
 * catalog introspection included, sees the tables under stable names.
 */
export class Warehouse {
  readonly #options: Required<Omit<WarehouseOptions, "engine" | "catalog">> & WarehouseOptions;
  /** Each table's view, by the definition it was created for; DDL runs one statement at a time. */
  readonly #views = new Map<string, View>();
  /**
   * Connections kept between queries, with the file lists they hold: a query on an unchanged
   * snapshot then costs no extra round trip. Safe to share because users' SQL cannot change a
   * connection's state (only SELECT and EXPLAIN run).
   */
  readonly #idle: PooledConnection[] = [];
  #ddl: Promise<void> = Promise.resolve();
  readonly #timeRanges = new TimeRanges();
  /** SQL texts found read-only: a statement's type does not change, so each is checked once. */
  readonly #readOnlyChecked = new Set<string>();
  /** Restriction-and-SQL keys found within the restriction. */
  readonly #withinRestriction = new Set<string>();

  constructor(options: WarehouseOptions) {
    this.#options = { timeoutMs: 300_000, maxRows: 100_000, ...options };
  }

  async query(sql: string, options: { maxRows?: number } & AccessOptions = {}): Promise<QueryResult> {
    const maxRows = options.maxRows ?? this.#options.maxRows;
    const reader = await this.#inSnapshot(sql, options, (connection) =>
      connection.streamAndReadUntil(sql, maxRows + 1),
    );
    return toResult(reader, maxRows);
  }

  /**
   * Runs one statement with `$1…` parameters given as text (DuckDB casts each to the type the
   * statement expects) and returns DuckDB's own values: for protocols that format them
   * themselves, such as the Postgres wire protocol.
   */
  async rows(sql: string, options: RowsOptions = {}): Promise<RowsResult> {
    const maxRows = options.maxRows ?? this.#options.maxRows;
    const reader = await this.#inSnapshot(sql, options, async (connection) => {
      const params = options.params ?? [];
      if (params.length === 0) return connection.streamAndReadUntil(sql, maxRows + 1);
      return (await prepareWith(connection, sql, params)).streamAndReadUntil(maxRows + 1);
    });
    const rows = reader.getRows();
    const truncated = rows.length > maxRows;
    if (truncated) rows.length = maxRows;
    return { columns: describeColumns(reader.columnNames(), reader.columnTypes()), rows, truncated };
  }

  /**
   * Runs SQL and hands its rows to `sink` chunk by chunk as DuckDB produces them (no row limit:
   * for downloads), awaiting each `rows` call so a slow reader slows the query down; `rows`
   * returning false stops the query there. Returns the number of rows handed over.
   */
  async stream(
    sql: string,
    sink: {
      start(columns: ResultColumn[]): void | Promise<void>;
      rows(rows: DuckDBValue[][]): unknown;
    },
    options: { signal?: AbortSignal; params?: RowsOptions["params"] } & AccessOptions = {},
  ): Promise<number> {
    return this.#inSnapshot(sql, options, async (connection) => {
      const params = options.params ?? [];
      const result =
        params.length === 0
          ? await connection.stream(sql)
          : await (await prepareWith(connection, sql, params)).stream();
      await sink.start(describeColumns(result.columnNames(), result.columnTypes()));
      let count = 0;
      for await (const rows of result.yieldRows()) {
        count += rows.length;
        if ((await sink.rows(rows)) === false) break;
      }
      return count;
    });
  }

  /** The parameters and result columns of one statement, without running it. */
  async describe(
    sql: string,
    options: AccessOptions & { params?: RowsOptions["params"] } = {},
  ): Promise<StatementDescription> {
    return this.#inSnapshot(sql, options, async (connection) => {
      const prepared = await connection.prepare(sql);
      const parameters: DuckDBTypeId[] = [];
      for (let index = 1; index <= prepared.parameterCount; index++) {
        parameters.push(prepared.parameterTypeId(index));
      }
      const columnTypes = Array.from({ length: prepared.columnCount }, (_, index) =>
        prepared.columnTypeId(index),
      );
      if (!columnTypes.includes(DuckDBTypeId.INVALID)) {
        const names = columnTypes.map((_, index) => prepared.columnName(index));
        return {
          parameters,
          columns: describeColumns(
            names,
            columnTypes.map((_, index) => prepared.columnType(index)),
          ),
        };
      }
      // Result types that hang on parameters (`SELECT $1 AS who`) are known only once bound. Bind
      // an empty read of the statement, which runs nothing: the values the statement will run with
      // when known, else untyped parameters as text (as rows() binds them), typed ones as NULL.
      const empty = await connection.prepare(`SELECT * FROM (${sql.replace(/[\s;]+$/, "")}) LIMIT 0`);
      if (options.params) bindParams(empty, options.params);
      else {
        parameters.forEach((type, index) => {
          if (type === DuckDBTypeId.INVALID) empty.bindVarchar(index + 1, "");
          else empty.bindNull(index + 1);
        });
      }
      const reader = await empty.runAndReadAll();
      return { parameters, columns: describeColumns(reader.columnNames(), reader.columnTypes()) };
    });
  }

  /** DuckDB's parse tree of `sql` (SELECTs only; an error otherwise): parsing reads and runs nothing. */
  async parse(sql: string): Promise<ParseTree> {
    const pooled = await this.#borrow();
    try {
      return (await parseTree(pooled.connection, sql)).tree;
    } finally {
      this.#giveBack(pooled);
    }
  }

  /** An idle connection of the pool, or a new one. */
  async #borrow(): Promise<PooledConnection> {
    return this.#idle.pop() ?? { connection: await this.#options.engine.connect(), lists: new Map() };
  }

  /** Back to the pool, or closed when the pool is full. */
  #giveBack(pooled: PooledConnection): void {
    if (this.#idle.length < IDLE_CONNECTIONS) this.#idle.push(pooled);
    else pooled.connection.closeSync();
  }

  /**
   * Runs `work` on a connection whose table names resolve to the current snapshot's files (pinned
   * until it is done), once the SQL is known to be read-only; DuckDB's errors become QueryErrors.
   */
  async #inSnapshot<T>(
    sql: string,
    options: { signal?: AbortSignal } & AccessOptions,
    work: (connection: DuckDBConnection) => Promise<T>,
  ): Promise<T> {
    options.signal?.throwIfAborted();
    const lease = await this.#options.catalog.lease(this.#options.timeoutMs + 60_000);
    const pooled = await this.#borrow();
    const { connection } = pooled;
    const interrupt = () => connection.interrupt();
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      interrupt();
    }, this.#options.timeoutMs);
    options.signal?.addEventListener("abort", interrupt);
    try {
      await this.#useSnapshot(pooled, lease, sql);
      try {
        // A restriction is checked on the parse tree, before binding reaches any file.
        if (options.restriction) await this.#checkRestriction(connection, sql, options.restriction);
        await this.#checkReadOnly(connection, sql);
        const result = await work(connection);
        // An interrupted stream may just end: its rows must not pass for the whole result.
        if (timedOut) throw new QueryTimeout(this.#options.timeoutMs);
        options.signal?.throwIfAborted();
        return result;
      } catch (error) {
        if (timedOut) throw new QueryTimeout(this.#options.timeoutMs);
        throw error instanceof QueryError
          ? error
          : new QueryError(error instanceof Error ? error.message : String(error));
      }
    } finally {
      clearTimeout(timer);
      options.signal?.removeEventListener("abort", interrupt);
      this.#giveBack(pooled);
      await lease.release();
    }
  }

  /**
   * Refuses every statement but SELECT (SHOW, DESCRIBE, SUMMARIZE and PIVOT are SELECTs) and
   * EXPLAIN: SQL through the warehouse reads; tables change only through loads and models.
   */
  async #checkReadOnly(connection: DuckDBConnection, sql: string): Promise<void> {
    if (this.#readOnlyChecked.has(sql)) return;
    let statements: Awaited<ReturnType<DuckDBConnection["extractStatements"]>>;
    try {
      statements = await connection.extractStatements(sql);
    } catch (error) {
      // DuckDB wraps parser errors; users should see the parser's own message.
      throw new QueryError(String((error as Error).message).replace(/^Failed to extract statements: /, ""));
    }
    for (let index = 0; index < statements.count; index++) {
      let type: StatementType;
      try {
        type = (await statements.prepare(index)).statementType;
      } catch (error) {
        // A write that does not bind (UPDATE of a view) would be refused by its binder error:
        // say what matters instead, when the parser alone knows it is no SELECT.
        if (notOnlySelects((await parseTree(connection, sql)).tree)) {
          const which = statements.count === 1 ? "this statement is not" : "not every statement is";
          throw new QueryError(`Only read-only queries (SELECT, EXPLAIN) can run here; ${which} a SELECT.`);
        }
        throw error;
      }
      if (type !== StatementType.SELECT && type !== StatementType.EXPLAIN) {
        // DuckDB's name for INSTALL is LOAD; the others read as SQL once spaced (VARIABLE_SET).
        const name =
          type === StatementType.LOAD
            ? "INSTALL/LOAD"
            : (StatementType[type] ?? String(type)).replaceAll("_", " ");
        throw new QueryError(
          `Only read-only queries (SELECT, EXPLAIN) can run here; statement ${index + 1} is ${name}.`,
        );
      }
    }
    if (this.#readOnlyChecked.size >= CHECKED_STATEMENTS) this.#readOnlyChecked.clear();
    this.#readOnlyChecked.add(sql);
  }

  /** Refuses what a restricted reader may not reach; SQL found within a restriction is not checked again. */
  async #checkRestriction(
    connection: DuckDBConnection,
    sql: string,
    restriction: Restriction,
  ): Promise<void> {
    const key = `${restriction.hiddenTables.join(",")}\u0000${sql}`;
    if (this.#withinRestriction.has(key)) return;
    const problem = await restrictionProblem(connection, sql, restriction);
    if (problem) throw new AccessError(`Not allowed: ${problem}.`);
    if (this.#withinRestriction.size >= CHECKED_STATEMENTS) this.#withinRestriction.clear();
    this.#withinRestriction.add(key);
  }

  /**
   * Points the connection's views at the lease's snapshot: sets the file list of every table the
   * SQL mentions (pruned to the days its `ts` bounds allow), creating or updating views first.
   */
  async #useSnapshot(pooled: PooledConnection, lease: ReadLease, sql: string): Promise<void> {
    // Every table has its view, so catalog queries (information_schema, SHOW TABLES) list them all.
    const all = await this.#options.catalog.tables();
    const views = await Promise.all(all.map((table) => this.#ensureView(table)));
    const mentioned = all.filter((table) => mentions(sql, table.name));
    const ranges = await this.#timeRanges.ranges(pooled.connection, sql, mentioned);
    const assignments: string[] = [];
    const lists = new Map<string, string>();
    for (const [index, table] of all.entries()) {
      const { emptyFile } = views[index] as View;
      const variable = filesVariable(table);
      let paths: string[];
      if (mentioned.includes(table)) {
        const range = ranges.get(table.name.toLowerCase());
        const files = lease.files(table.name);
        const read = range ? files.filter((file) => dayInRange(file.partition, range)) : files;
        paths = read.length > 0 ? read.map((file) => join(this.#options.lakeRoot, file.path)) : [emptyFile];
      } else if (pooled.lists.has(variable)) {
        // A reused connection must not keep an earlier snapshot's files for a table it does not read now.
        paths = [emptyFile];
      } else continue;
      const list = `[${paths.map(sqlString).join(", ")}]`;
      lists.set(variable, list);
      if (pooled.lists.get(variable) !== list)
        assignments.push(`SET VARIABLE ${sqlIdent(variable)} = ${list}`);
    }
    if (assignments.length > 0) await pooled.connection.run(assignments.join("; "));
    for (const [variable, list] of lists) pooled.lists.set(variable, list);
  }

  /** The view of a table, created (or re-created, when its definition changed) first. */
  async #ensureView(table: TableDef): Promise<View> {
    const definition = JSON.stringify(table);
    const name = table.name.toLowerCase();
    let view = this.#views.get(name);
    if (view?.definition !== definition) {
      const emptyFile = this.#emptyFile(table, definition);
      const ready = this.#ddl.catch(() => {}).then(() => this.#createView(table, emptyFile));
      this.#ddl = ready;
      view = { definition, emptyFile, ready };
      this.#views.set(name, view);
      ready.catch(() => {
        if (this.#views.get(name)?.ready === ready) this.#views.delete(name); // retried by the next query
      });
    }
    await view.ready;
    return view;
  }

  /**
   * A view binds its file list when created, and a table may have no files yet: each definition
   * gets an empty Parquet file with its columns, read whenever a table (or a pruned query) has none.
   */
  async #createView(table: TableDef, emptyFile: string): Promise<void> {
    const columns = table.columns.map((column) => `CAST(NULL AS ${column.type}) AS ${sqlIdent(column.name)}`);
    const statements = [
      `COPY (SELECT ${columns.join(", ")} WHERE false) TO ${sqlString(emptyFile)} (FORMAT parquet)`,
      `SET VARIABLE ${sqlIdent(filesVariable(table))} = [${sqlString(emptyFile)}]`,
      `CREATE OR REPLACE VIEW main.${sqlIdent(table.name)} AS ${this.tableSql(table, `getvariable(${sqlString(filesVariable(table))})`)}`,
      // Descriptions reach tools through information_schema and the Postgres port's pg_description.
      ...table.columns
        .filter((column) => column.description)
        .map(
          (column) =>
            `COMMENT ON COLUMN main.${sqlIdent(table.name)}.${sqlIdent(column.name)} IS ${sqlString(column.description ?? "")}`,
        ),
    ];
    await mkdir(dirname(emptyFile), { recursive: true });
    await this.#run(statements.join(";\n"));
  }

  /** Where a definition's empty file goes (under a `dt=` folder for partitioned tables). */
  #emptyFile(table: TableDef, definition: string): string {
    const hash = createHash("sha256").update(definition).digest("hex").slice(0, 16);
    const dir = join(this.#options.lakeRoot, EMPTY_FILES_DIR, `${table.name}-${hash}`);
    return table.partitionBy
      ? join(dir, `${table.partitionBy.column}=1970-01-01`, "empty.parquet")
      : join(dir, "empty.parquet");
  }

  async #run(sql: string): Promise<void> {
    const connection = await this.#options.engine.connect();
    try {
      await connection.run(sql);
    } finally {
      connection.closeSync();
    }
  }

  /**
   * The SELECT that reads a table from the Parquet files `list` (an SQL expression of a list of
   * paths): its columns, then the partition column, whose value comes from the Hive path (so a
   * filter on `dt` skips files by their path).
   */
  tableSql(table: TableDef, list: string): string {
    const columns = table.columns.map((column) => sqlIdent(column.name));
    const partition = table.partitionBy;
    if (!partition) {
      // Unpartitioned tables are loaded from files and gain columns or widen types over time:
      // files are read by column name, a typed row that matches nothing (WHERE false) supplies
      // columns no file has yet, and each column is cast to its declared type. DuckDB drops the
      // empty branch and still pushes projections and filters into the Parquet scan.
      const typed = table.columns.map((column) => `CAST(NULL AS ${column.type}) AS ${sqlIdent(column.name)}`);
      const casts = table.columns.map(
        (column) => `CAST(${sqlIdent(column.name)} AS ${column.type}) AS ${sqlIdent(column.name)}`,
      );
      return `SELECT ${casts.join(", ")} FROM (SELECT ${typed.join(", ")} WHERE false UNION ALL BY NAME SELECT * FROM read_parquet(${list}, union_by_name = true))`;
    }
    const hive = `hive_partitioning = true, hive_types = {${sqlString(partition.column)}: 'DATE'}`;
    const select = [...columns, sqlIdent(partition.column)].join(", ");
    return `SELECT ${select} FROM read_parquet(${list}, ${hive})`;
  }
}

interface View {
  /** The table definition (JSON) the view was created for. */
  definition: string;
  /** The empty Parquet file with that definition's columns. */
  emptyFile: string;
  ready: Promise<void>;
}

interface PooledConnection {
  connection: DuckDBConnection;
  /** Variable → the list literal last set on this connection. */
  lists: Map<string, string>;
}

const IDLE_CONNECTIONS = 4;

/** Where each table definition's empty Parquet file lives, under the lake root. */
export const EMPTY_FILES_DIR = "_empty";

const filesVariable = (table: TableDef): string => `sluice_files_${table.name.toLowerCase()}`;

/** `sql` prepared with `$1…` bound: text (cast to the type the statement expects), bytes as a BLOB, or NULL. */
async function prepareWith(
  connection: DuckDBConnection,
  sql: string,
  params: readonly (string | Uint8Array | null)[],
): Promise<DuckDBPreparedStatement> {
  const prepared = await connection.prepare(sql);
  bindParams(prepared, params);
  return prepared;
}

function bindParams(
  prepared: DuckDBPreparedStatement,
  params: readonly (string | Uint8Array | null)[],
): void {
  params.forEach((value, index) => {
    if (value === null) prepared.bindNull(index + 1);
    else if (typeof value === "string") prepared.bindVarchar(index + 1, value);
    else prepared.bindBlob(index + 1, value);
  });
}

function describeColumns(names: string[], types: DuckDBType[]): ResultColumn[] {
  return names.map((name, index) => ({ name, type: types[index] as DuckDBType }));
}

function toResult(reader: DuckDBResultReader, maxRows: number): QueryResult {
  const names = reader.columnNames();
  const types = reader.columnTypes().map((type) => type.toString());
  const rows = reader.getRowsJson() as unknown[][];
  const truncated = rows.length > maxRows;
  if (truncated) rows.length = maxRows;
  // DuckDB's JSON form gives 64-bit and wider integers as strings; numbers are what
  // clients expect for counts and sums, so convert whenever the value is exact.
  const numeric = types.map((type) => INTEGER_TYPES.has(type) || type.startsWith("DECIMAL"));
  for (const row of rows) {
    for (let i = 0; i < row.length; i++) {
      const value = row[i];
      if (numeric[i] && typeof value === "string") {
        const number = Number(value);
        if (!types[i]?.startsWith("DECIMAL") && !Number.isSafeInteger(number)) continue;
        row[i] = number;
      }
    }
  }
  const result: QueryResult = { columns: names.map((name, i) => ({ name, type: types[i] ?? "" })), rows };
  if (truncated) result.truncated = true;
  return result;
}
