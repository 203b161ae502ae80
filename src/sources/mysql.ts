/**
 * MySQL and MariaDB as a sync source (mysql2). Rows are streamed from one query in a
 * consistent-snapshot transaction; the stream pauses the socket while batches are
 * staged, so a table of any size passes through bounded memory.
 */
import mysql, { type Connection, type RowDataPacket } from "mysql2";
import {
  connectionProblem,
  type ReadOptions,
  redactUrl,
  type SourceColumn,
  type SourceConnection,
  type SourceRows,
  type SourceTable,
  sourceColumn,
} from "./db-source.js";
import { Rejection } from "./rejection.js";
import type { ColumnType } from "./types.js";

interface MysqlColumnRow {
  name: string;
  /** information_schema.COLUMNS.DATA_TYPE: int, varchar, datetime, … */
  dataType: string;
  /** COLUMN_TYPE: `int(10) unsigned`, `tinyint(1)`, `decimal(12,2)`, `enum('a','b')`. */
  columnType: string;
  precision: number | null;
  scale: number | null;
  /** MariaDB's JSON is LONGTEXT with a json_valid() check. */
  json: boolean;
}

const quoteMysql = (name: string): string => `\`${name.replaceAll("`", "``")}\``;

const GEOMETRY = new Set([
  "geometry",
  "point",
  "linestring",
  "polygon",
  "multipoint",
  "multilinestring",
  "multipolygon",
  "geometrycollection",
  "geomcollection",
]);
const BINARY = new Set(["binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob"]);

/**
 * A MySQL/MariaDB column's lake type and how its value travels: as the text MySQL sends
 * (its text protocol), except binary values (hex), bits (numbers) and geometry (WKT).
 */
function mapMysqlColumn(row: MysqlColumnRow): SourceColumn {
  const column = quoteMysql(row.name);
  const unsigned = /\bunsigned\b/i.test(row.columnType);
  const mapped = sourceColumn(row.name, row.columnType, column);
  // MySQL's zero dates ("0000-00-00", "2026-00-00") stand for no date: NULL.
  const orNull = (type: ColumnType) => (v: string) => `TRY_CAST(${v} AS ${type.kind})`;
  switch (row.dataType) {
    case "tinyint":
      // tinyint(1) is MySQL's BOOLEAN.
      if (/^tinyint\(1\)$/i.test(row.columnType))
        return mapped({ kind: "BOOLEAN" }, column, (v) => `(${v} <> '0')`);
      return mapped({ kind: "INTEGER" });
    case "smallint":
    case "mediumint":
    case "year":
      return mapped({ kind: "INTEGER" });
    case "int":
    case "integer":
      return mapped({ kind: unsigned ? "BIGINT" : "INTEGER" });
    case "bigint":
      // Unsigned bigints go up to 2^64 - 1: 20 digits, held exactly.
      return mapped(unsigned ? { kind: "DECIMAL", precision: 20, scale: 0 } : { kind: "BIGINT" });
    case "decimal":
    case "numeric":
      if ((row.precision ?? 0) <= 38) {
        return mapped({ kind: "DECIMAL", precision: row.precision ?? 10, scale: row.scale ?? 0 });
      }
      return mapped({ kind: "DOUBLE" });
    case "float":
    case "double":
    case "real":
      return mapped({ kind: "DOUBLE" });
    case "bit": {
      const bits = Number(/\((\d+)\)/.exec(row.columnType)?.[1] ?? 1);
      const asNumber = `CAST(${column} AS UNSIGNED)`;
      if (bits === 1) return mapped({ kind: "BOOLEAN" }, asNumber, (v) => `(${v} <> '0')`);
      return mapped(bits < 64 ? { kind: "BIGINT" } : { kind: "DECIMAL", precision: 20, scale: 0 }, asNumber);
    }
    case "date":
      return mapped({ kind: "DATE" }, column, orNull({ kind: "DATE" }));
    case "datetime":
      return mapped({ kind: "TIMESTAMP" }, column, orNull({ kind: "TIMESTAMP" }));
    case "timestamp":
      // Read in a session at UTC (+00:00), so the text is UTC without an offset.
      return mapped({ kind: "TIMESTAMPTZ" }, column, (v) => `TRY_CAST(${v} || '+00' AS TIMESTAMPTZ)`);
    case "json":
      return mapped({ kind: "JSON" });
    case "uuid":
      return mapped({ kind: "UUID" });
    default:
      if (BINARY.has(row.dataType)) return mapped({ kind: "BLOB" }, `HEX(${column})`, (v) => `unhex(${v})`);
      if (GEOMETRY.has(row.dataType)) return mapped({ kind: "VARCHAR" }, `ST_AsText(${column})`);
      if (row.json) return mapped({ kind: "JSON" });
      // char, varchar, text, enum, set, and time, which is a duration in MySQL (up to 838:59:59).
      return mapped({ kind: "VARCHAR" });
  }
}

/** The SQL type to compare a watermark column with a text bookmark. */
function castFor(type: ColumnType): string {
  switch (type.kind) {
    case "INTEGER":
    case "BIGINT":
      return "SIGNED";
    case "DECIMAL":
      return `DECIMAL(${type.precision},${type.scale})`;
    case "DATE":
      return "DATE";
    case "TIMESTAMP":
    case "TIMESTAMPTZ":
      return "DATETIME(6)";
    default:
      return "DOUBLE";
  }
}

export async function connectMysql(url: string): Promise<SourceConnection> {
  const uri = url.replace(/^mariadb:/i, "mysql:");
  let connection: Connection;
  try {
    connection = mysql.createConnection({ uri, connectTimeout: 15_000 });
    // A dropped connection would otherwise be an unhandled 'error' event that ends the process.
    connection.on("error", () => {});
    await connection.promise().connect();
    await connection.promise().query("SET time_zone = '+00:00'");
  } catch (error) {
    throw connectionProblem(url, error);
  }
  const db = connection.promise();
  const relations = new Map<string, string>();
  /** The rows of the table from the bookmark on, streamed from one consistent snapshot. */
  async function* streamRows(table: SourceTable, options: ReadOptions): AsyncIterable<(string | null)[][]> {
    const from = relations.get(table.name);
    if (!from) throw new Error(`table ${table.name} was not described on this connection`);
    const since = options.since;
    const where = since
      ? ` WHERE ${quoteMysql(since.column.name)} >= CAST(? AS ${castFor(since.column.type)})`
      : "";
    const select = table.columns.map((column) => column.select).join(", ");
    await db.query("SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ");
    await db.query("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY");
    const query = connection.query({
      sql: `SELECT ${select} FROM ${from}${where}`,
      values: since ? [since.value] : [],
      rowsAsArray: true,
      // Every value as the text the server sent (decoded as UTF-8): DuckDB does the typing.
      typeCast: (field) => field.string("utf8"),
    });
    const stream = query.stream({ highWaterMark: options.batchRows });
    let finished = false;
    try {
      let batch: (string | null)[][] = [];
      for await (const row of stream as AsyncIterable<(string | null)[]>) {
        batch.push(row);
        if (batch.length >= options.batchRows) {
          options.signal?.throwIfAborted();
          yield batch;
          batch = [];
        }
      }
      options.signal?.throwIfAborted();
      if (batch.length > 0) yield batch;
      finished = true;
    } finally {
      // A result stopped half way still has rows in flight: only a closed connection ends it.
      if (finished) await db.query("ROLLBACK").catch(() => {});
      else connection.destroy();
    }
  }
  return {
    url: redactUrl(url),
    async describe(table: string): Promise<SourceTable> {
      const dot = table.indexOf(".");
      const [[current]] = await db.query<RowDataPacket[]>("SELECT DATABASE() AS name");
      const schema = dot < 0 ? (current?.name as string | null) : table.slice(0, dot);
      const name = dot < 0 ? table : table.slice(dot + 1);
      if (!schema)
        throw new Rejection(`${redactUrl(url)} names no database: write ${table} as database.${table}`);
      const [rows] = await db.query<RowDataPacket[]>(
        `SELECT COLUMN_NAME AS name, DATA_TYPE AS dataType, COLUMN_TYPE AS columnType,
           NUMERIC_PRECISION AS \`precision\`, NUMERIC_SCALE AS scale, COLUMN_KEY AS \`key\`
         FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION`,
        [schema, name],
      );
      if (rows.length === 0) throw new Rejection(`no table ${schema}.${name} in ${redactUrl(url)}`);
      const jsonColumns = await mariadbJsonColumns(db, schema, name);
      const [keys] = await db.query<RowDataPacket[]>(
        `SELECT COLUMN_NAME AS name FROM information_schema.KEY_COLUMN_USAGE
         WHERE TABLE_SCHEMA = ? AND TABLE_NAME = ? AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY ORDINAL_POSITION`,
        [schema, name],
      );
      const qualified = `${schema}.${name}`;
      relations.set(qualified, `${quoteMysql(schema)}.${quoteMysql(name)}`);
      return {
        name: qualified,
        columns: rows.map((row) =>
          mapMysqlColumn({
            name: String(row.name),
            dataType: String(row.dataType).toLowerCase(),
            columnType: String(row.columnType),
            precision: row.precision === null ? null : Number(row.precision),
            scale: row.scale === null ? null : Number(row.scale),
            json: jsonColumns.has(String(row.name)),
          }),
        ),
        primaryKey: keys.map((row) => String(row.name)),
      };
    },
    read(table: SourceTable, options: ReadOptions): SourceRows {
      return { batches: streamRows(table, options) };
    },
    async close() {
      await db.end().catch(() => connection.destroy());
    },
  };
}

/** Columns MariaDB declares as JSON (LONGTEXT with a `json_valid` check); MySQL's JSON has its own type. */
async function mariadbJsonColumns(
  db: ReturnType<Connection["promise"]>,
  schema: string,
  table: string,
): Promise<Set<string>> {
  try {
    const [checks] = await db.query<RowDataPacket[]>(
      "SELECT CHECK_CLAUSE AS clause FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = ? AND TABLE_NAME = ?",
      [schema, table],
    );
    const columns = new Set<string>();
    for (const check of checks) {
      const match = /^json_valid\(`((?:[^`]|``)+)`\)$/i.exec(String(check.clause).trim());
      if (match?.[1]) columns.add(match[1].replaceAll("``", "`"));
    }
    return columns;
  } catch {
    // MySQL's CHECK_CONSTRAINTS has no TABLE_NAME column, and MySQL needs none of this.
    return new Set();
  }
}
