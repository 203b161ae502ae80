import { join } from "node:path";
import type { DuckDBConnection, DuckDBInstance, DuckDBResultReader } from "@duckdb/node-api";
import type { Catalog, DataFile, ReadLease, TableDef } from "../catalog/index.js";
import { sqlIdent, sqlString } from "./engine.js";

interface ViewSchema {
  name: string;
  key: string;
  snapshot: number;
  /** Queries running on it. */
  users: number;
  ready: Promise<void>;
}

export interface QueryResult {
  columns: { name: string; type: string }[];
  rows: unknown[][];
  /** True when the result had more than `maxRows` rows and was cut. */
  truncated?: boolean;
}

/** An error in the user's SQL (DuckDB's message): the HTTP API answers 400. */
export class QueryError extends Error {}

export interface WarehouseOptions {
  catalog: Catalog;
  engine: DuckDBInstance;
  lakeRoot: string;
  /** Queries running longer are interrupted. */
  timeoutMs?: number;
  /** Results are cut after this many rows (`truncated: true`). */
  maxRows?: number;
}

let warehouses = 0;

const INTEGER_TYPES = new Set(["BIGINT", "UBIGINT", "HUGEINT", "UHUGEINT"]);

/**
 * SQL over the lake. Each query pins the catalog's current snapshot (so files
 * it reads are not deleted under it), opens its own DuckDB connection, and
 * resolves table names in a schema of views over exactly that snapshot's
 * files: concurrent queries never see each other's snapshots.
 */
export class Warehouse {
  readonly #options: Required<Omit<WarehouseOptions, "engine" | "catalog">> & WarehouseOptions;
  /** View schemas by snapshot and pruning choice, shared by the queries that pin that snapshot. */
  readonly #schemas = new Map<string, ViewSchema>();
  #latestSnapshot = 0;
  /** Tells apart the schemas of warehouses sharing one engine. */
  readonly #id = ++warehouses;

  constructor(options: WarehouseOptions) {
    this.#options = { timeoutMs: 300_000, maxRows: 100_000, ...options };
  }

  async query(sql: string, options: { maxRows?: number } = {}): Promise<QueryResult> {
    const maxRows = options.maxRows ?? this.#options.maxRows;
    const lease = await this.#options.catalog.lease(this.#options.timeoutMs + 60_000);
    const connection = await this.#options.engine.connect();
    const timer = setTimeout(() => connection.interrupt(), this.#options.timeoutMs);
    let schema: ViewSchema | null = null;
    try {
      schema = await this.#acquireSchema(connection, lease, sql);
      await connection.run(`SET search_path = ${sqlString(schema.name)}`);
      let reader: DuckDBResultReader;
      try {
        reader = await connection.streamAndReadUntil(sql, maxRows + 1);
      } catch (error) {
        throw new QueryError(error instanceof Error ? error.message : String(error));
      }
      return toResult(reader, maxRows);
    } finally {
      clearTimeout(timer);
      connection.closeSync();
      if (schema) this.#releaseSchema(schema);
      await lease.release();
    }
  }

  /**
   * The schema whose views read exactly the lease's snapshot. Creating views binds
   * every file list, so it happens once per snapshot (and pruning choice), not per query.
   */
  async #acquireSchema(connection: DuckDBConnection, lease: ReadLease, sql: string): Promise<ViewSchema> {
    const tables = await this.#options.catalog.tables();
    const candidates = tables.filter((table) => mentions(sql, table.partitionBy?.fromTimestamp));
    const filtered = candidates.length > 0 ? await constantFilterColumns(connection, sql) : new Set<string>();
    const pruned = candidates.filter((table) => {
      const column = table.partitionBy?.fromTimestamp ?? "";
      return filtered.has(column) || filtered.has("*");
    });
    const key = `${lease.snapshot}:${pruned.map((table) => table.name).join(",")}`;
    let schema = this.#schemas.get(key);
    if (!schema) {
      const name = ["snapshot", this.#id, lease.snapshot, ...pruned.map((table) => table.name)].join("_");
      const views = tables.map((table) => {
        const select = this.tableSql(table, lease.files(table.name), {
          pruneByTimestamp: pruned.includes(table),
        });
        return `CREATE VIEW ${sqlIdent(name)}.${sqlIdent(table.name)} AS ${select}`;
      });
      const created = this.#run([`CREATE SCHEMA ${sqlIdent(name)}`, ...views].join(";\n"));
      schema = { name, key, snapshot: lease.snapshot, users: 0, ready: created };
      this.#schemas.set(key, schema);
    }
    this.#latestSnapshot = Math.max(this.#latestSnapshot, lease.snapshot);
    schema.users++;
    try {
      await schema.ready;
    } catch (error) {
      this.#schemas.delete(key);
      this.#releaseSchema(schema);
      throw error;
    }
    return schema;
  }

  /** Drops view schemas of past snapshots once no query uses them. */
  #releaseSchema(schema: ViewSchema): void {
    schema.users--;
    for (const stale of this.#schemas.values()) {
      if (stale.users > 0 || stale.snapshot >= this.#latestSnapshot) continue;
      this.#schemas.delete(stale.key);
      stale.ready
        .then(() => this.#run(`DROP SCHEMA IF EXISTS ${sqlIdent(stale.name)} CASCADE`))
        .catch(() => {
          // A schema that failed to be created, or is already gone, needs no cleanup.
        });
    }
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
   * The SELECT that reads a table's files: its columns, then the partition column.
   * A filter on `dt` prunes files through the Hive path. DuckDB cannot infer `dt`
   * from a filter on `ts`, so with `pruneByTimestamp` a partitioned table becomes a
   * UNION ALL of one scan per day, each bounded to its day on the timestamp: the
   * optimizer then drops the days a `ts` filter excludes. That form costs a bind
   * per day and a range check on every row, so it is used only when the query
   * compares the timestamp column with a constant; otherwise one scan reads every file.
   */
  tableSql(table: TableDef, files: DataFile[], options: { pruneByTimestamp?: boolean } = {}): string {
    const columns = table.columns.map((column) => sqlIdent(column.name));
    const partition = table.partitionBy;
    if (files.length === 0) {
      const nulls = table.columns.map((column) => `CAST(NULL AS ${column.type}) AS ${sqlIdent(column.name)}`);
      if (partition) nulls.push(`CAST(NULL AS DATE) AS ${sqlIdent(partition.column)}`);
      return `SELECT ${nulls.join(", ")} WHERE false`;
    }
    const list = (group: DataFile[]) =>
      `[${group.map((file) => sqlString(join(this.#options.lakeRoot, file.path))).join(", ")}]`;
    if (!partition) return `SELECT ${columns.join(", ")} FROM read_parquet(${list(files)})`;
    const hive = `hive_partitioning = true, hive_types = {${sqlString(partition.column)}: 'DATE'}`;
    const select = [...columns, sqlIdent(partition.column)].join(", ");
    if (!options.pruneByTimestamp) return `SELECT ${select} FROM read_parquet(${list(files)}, ${hive})`;

    const byPartition = new Map<string, DataFile[]>();
    for (const file of files)
      byPartition.set(file.partition, [...(byPartition.get(file.partition) ?? []), file]);
    const ts = sqlIdent(partition.fromTimestamp);
    return [...byPartition]
      .map(([day, group]) => {
        const start = `TIMESTAMPTZ ${sqlString(`${day} 00:00:00+00`)}`;
        return `SELECT ${select} FROM read_parquet(${list(group)}, ${hive}) WHERE ${ts} >= ${start} AND ${ts} < ${start} + INTERVAL 1 DAY`;
      })
      .join("\nUNION ALL\n");
  }
}

/** Whether `sql` contains `name` as a word (case-insensitive); a false positive only costs speed. */
function mentions(sql: string, name: string | undefined): boolean {
  if (!name) return false;
  return new RegExp(`(^|[^A-Za-z0-9_$])${name}($|[^A-Za-z0-9_$])`, "i").test(sql);
}

/**
 * The columns the query compares with constants (`ts >= now() - INTERVAL 1 HOUR`,
 * `ts BETWEEN a AND b`), found in DuckDB's own parse tree. When the statement
 * cannot be serialised (not a SELECT), answers "*": any column might be filtered.
 */
async function constantFilterColumns(connection: DuckDBConnection, sql: string): Promise<Set<string>> {
  const select = sql.replace(/^\s*EXPLAIN(\s+ANALY[SZ]E)?\s+/i, "");
  const reader = await connection.runAndReadAll("SELECT json_serialize_sql($1::VARCHAR)", [select]);
  const tree = JSON.parse(String(reader.getRowsJson()[0]?.[0])) as { error: boolean };
  const columns = new Set<string>();
  if (tree.error) return new Set(["*"]);
  const columnOf = (node: unknown): string | null => {
    const ref = node as { class?: string; column_names?: string[] };
    return ref?.class === "COLUMN_REF" ? (ref.column_names?.at(-1)?.toLowerCase() ?? null) : null;
  };
  const hasColumn = (node: unknown): boolean =>
    typeof node === "object" &&
    node !== null &&
    ((node as { class?: string }).class === "COLUMN_REF" || Object.values(node).some(hasColumn));
  const visit = (node: unknown): void => {
    if (typeof node !== "object" || node === null) return;
    const expression = node as {
      class?: string;
      left?: unknown;
      right?: unknown;
      input?: unknown;
      lower?: unknown;
      upper?: unknown;
    };
    if (expression.class === "COMPARISON") {
      const left = columnOf(expression.left);
      const right = columnOf(expression.right);
      if (left && !hasColumn(expression.right)) columns.add(left);
      if (right && !hasColumn(expression.left)) columns.add(right);
    } else if (expression.class === "BETWEEN") {
      const input = columnOf(expression.input);
      if (input && !hasColumn(expression.lower) && !hasColumn(expression.upper)) columns.add(input);
    }
    for (const child of Object.values(node)) visit(child);
  };
  visit(tree);
  return columns;
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
