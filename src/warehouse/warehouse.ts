import { join } from "node:path";
import type { DuckDBConnection, DuckDBInstance, DuckDBResultReader } from "@duckdb/node-api";
import type { Catalog, DataFile, ReadLease, TableDef } from "../catalog/index.js";
import { sqlIdent, sqlString } from "./engine.js";

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

const INTEGER_TYPES = new Set(["BIGINT", "UBIGINT", "HUGEINT", "UHUGEINT"]);

/**
 * SQL over the lake. Each query pins the catalog's current snapshot (so files
 * it reads are not deleted under it), opens its own DuckDB connection, and
 * defines each lake table as a connection-local view over exactly that
 * snapshot's files: concurrent queries never see each other's snapshots.
 */
export class Warehouse {
  readonly #options: Required<Omit<WarehouseOptions, "engine" | "catalog">> & WarehouseOptions;

  constructor(options: WarehouseOptions) {
    this.#options = { timeoutMs: 300_000, maxRows: 100_000, ...options };
  }

  async query(sql: string, options: { maxRows?: number } = {}): Promise<QueryResult> {
    const maxRows = options.maxRows ?? this.#options.maxRows;
    const lease = await this.#options.catalog.lease(this.#options.timeoutMs + 60_000);
    const connection = await this.#options.engine.connect();
    const timer = setTimeout(() => connection.interrupt(), this.#options.timeoutMs);
    try {
      await this.#defineTables(connection, lease);
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
      await lease.release();
    }
  }

  async #defineTables(connection: DuckDBConnection, lease: ReadLease): Promise<void> {
    const statements = (await this.#options.catalog.tables()).map(
      (table) =>
        `CREATE OR REPLACE TEMP VIEW ${sqlIdent(table.name)} AS ${this.tableSql(table, lease.files(table.name))}`,
    );
    if (statements.length > 0) await connection.run(statements.join(";\n"));
  }

  /**
   * The SELECT that reads a table's files: its columns, then the partition column.
   * A partitioned table is a UNION ALL of one scan per partition, each bounded by
   * its day on the partition timestamp: the optimizer drops the branches a filter
   * on `ts` excludes (DuckDB cannot infer `dt` from `ts` by itself), and a filter
   * on `dt` prunes files through the Hive path.
   */
  tableSql(table: TableDef, files: DataFile[]): string {
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

    const byPartition = new Map<string, DataFile[]>();
    for (const file of files)
      byPartition.set(file.partition, [...(byPartition.get(file.partition) ?? []), file]);
    const select = [...columns, sqlIdent(partition.column)].join(", ");
    const ts = sqlIdent(partition.fromTimestamp);
    return [...byPartition]
      .map(([day, group]) => {
        const start = `TIMESTAMPTZ ${sqlString(`${day} 00:00:00+00`)}`;
        return `SELECT ${select} FROM read_parquet(${list(group)}, hive_partitioning = true, hive_types = {${sqlString(partition.column)}: 'DATE'}) WHERE ${ts} >= ${start} AND ${ts} < ${start} + INTERVAL 1 DAY`;
      })
      .join("\nUNION ALL\n");
  }
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
