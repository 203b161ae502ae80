/**
 * PostgreSQL as a sync source (node-postgres). Rows are read in one REPEATABLE READ
 * transaction: one consistent snapshot of the table, as CSV from `COPY … TO STDOUT`, which
 * PostgreSQL formats itself, streaming a table of any size through bounded memory.
 */
import pg from "pg";
import { type CopyToStreamQuery, to as copyTo } from "pg-copy-streams";
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

interface PgColumnRow {
  name: string;
  /** `format_type` of the column: `numeric(12,2)`, `timestamp with time zone`, a domain's or enum's name. */
  declared: string;
  /** The type's name (for a domain, its base type's): int4, numeric, _text, … */
  base: string;
  /** pg_type.typtype of the base type: b base, e enum, c composite, r range. */
  kind: string;
  /** pg_type.typcategory: A for arrays. */
  category: string;
  /** `format_type` of the base type with the column's (or domain's) modifier: `numeric(12,2)`. */
  baseDeclared: string;
}

const COLUMNS_SQL = `
  SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS declared,
    bt.typname AS base, bt.typtype AS kind, bt.typcategory AS category,
    format_type(bt.oid, CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END) AS "baseDeclared"
  FROM pg_attribute a
  JOIN pg_type t ON t.oid = a.atttypid
  JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
  WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
  ORDER BY a.attnum`;

const PRIMARY_KEY_SQL = `
  SELECT a.attname AS name
  FROM pg_index i CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, position)
  JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
  WHERE i.indrelid = $1::regclass AND i.indisprimary
  ORDER BY k.position`;

/**
 * A PostgreSQL column's lake type and how its value travels: as text, which COPY writes and
 * DuckDB casts exactly; arrays and composite values as JSON, bytea as hex. Numbers, times,
 * JSON, UUIDs and text are written as they are (their output is their text); other types
 * through their cast to text, which differs from their output for some (booleans are "true",
 * char(n) loses its padding).
 */
function mapPostgresColumn(row: PgColumnRow): SourceColumn {
  const column = pg.escapeIdentifier(row.name);
  const mapped = sourceColumn(row.name, row.declared, `${column}::text`);
  if (row.category === "A" || row.kind === "c") return mapped({ kind: "JSON" }, `to_json(${column})`);
  switch (row.base) {
    case "int2":
    case "int4":
      return mapped({ kind: "INTEGER" }, column);
    case "int8":
    case "oid":
      return mapped({ kind: "BIGINT" }, column);
    case "numeric": {
      // numeric without a precision holds any number: DOUBLE, as DuckDB's DECIMAL stops at 38 digits.
      const [, precision, scale] = /^numeric\((\d+),(\d+)\)$/.exec(row.baseDeclared) ?? [];
      if (precision && Number(precision) <= 38) {
        return mapped({ kind: "DECIMAL", precision: Number(precision), scale: Number(scale) }, column);
      }
      return mapped({ kind: "DOUBLE" }, column);
    }
    case "money":
      // money's text output follows the locale ("$1,234.56"); numeric's does not.
      return mapped({ kind: "DECIMAL", precision: 19, scale: 2 }, `${column}::numeric`);
    case "float4":
    case "float8":
      return mapped({ kind: "DOUBLE" }, column);
    case "bool":
      return mapped({ kind: "BOOLEAN" });
    case "date":
      return mapped({ kind: "DATE" }, column);
    case "time":
      return mapped({ kind: "TIME" }, column);
    case "timestamp":
      return mapped({ kind: "TIMESTAMP" }, column);
    case "timestamptz":
      return mapped({ kind: "TIMESTAMPTZ" }, column);
    case "json":
    case "jsonb":
      return mapped({ kind: "JSON" }, column);
    case "uuid":
      return mapped({ kind: "UUID" }, column);
    case "bytea":
      return mapped({ kind: "BLOB" }, `encode(${column}, 'hex')`, (v) => `unhex(${v})`);
    case "text":
    case "varchar":
      return mapped({ kind: "VARCHAR" }, column);
    default:
      // char, enums, citext, inet, interval, timetz, ranges, xml: their text.
      return mapped({ kind: "VARCHAR" });
  }
}

export async function connectPostgres(url: string): Promise<SourceConnection> {
  const client = new pg.Client({
    connectionString: url,
    application_name: "sluice",
    connectionTimeoutMillis: 15_000,
  });
  // A dropped connection would otherwise be an unhandled 'error' event that ends the process.
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (error) {
    await client.end().catch(() => {});
    throw connectionProblem(url, error);
  }
  const relations = new Map<string, string>();
  /** The SELECT of the table's columns, each formatted as text, from the bookmark on. */
  const selectSql = (table: SourceTable, options: ReadOptions): string => {
    const from = relations.get(table.name);
    if (!from) throw new Error(`table ${table.name} was not described on this connection`);
    const where = options.since
      ? ` WHERE ${pg.escapeIdentifier(options.since.column.name)} >= ${pg.escapeLiteral(options.since.value)}::${options.since.column.declared}`
      : "";
    return `SELECT ${table.columns.map((column) => column.select).join(", ")} FROM ${from}${where}`;
  };
  /** Starts a read's transaction: one snapshot; UTC and ISO output, so timestamps with a time zone arrive as "2026-11-25 10:00:00+00". */
  const snapshot = async (): Promise<void> => {
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    await client.query(
      "SET LOCAL TimeZone = 'UTC'; SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL IntervalStyle = 'postgres'",
    );
  };
  /** The rows of `select` as CSV, written by PostgreSQL (COPY … TO STDOUT) in one snapshot. */
  async function* copyCsv(select: string, options: ReadOptions): AsyncIterable<Buffer> {
    let copy: CopyToStreamQuery | null = null;
    try {
      await snapshot();
      copy = client.query(copyTo(`COPY (${select}) TO STDOUT (FORMAT csv)`));
      for await (const chunk of copy as AsyncIterable<Buffer>) {
        options.signal?.throwIfAborted();
        yield chunk;
      }
    } finally {
      // A copy stopped half way goes on until the end of the table: closing the connection ends it.
      if (!copy || copy.readableEnded) await client.query("ROLLBACK").catch(() => {});
      else await client.end().catch(() => {});
    }
  }
  return {
    url: redactUrl(url),
    async describe(table: string): Promise<SourceTable> {
      const found = await client.query<{ oid: string | null; name: string | null; sql: string | null }>(
        `SELECT c.oid::text AS oid, n.nspname || '.' || c.relname AS name,
           quote_ident(n.nspname) || '.' || quote_ident(c.relname) AS sql
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = to_regclass($1)`,
        [table],
      );
      const relation = found.rows[0];
      if (!relation?.oid || !relation.name || !relation.sql) {
        throw new Rejection(`no table ${table} in ${redactUrl(url)}`);
      }
      relations.set(relation.name, relation.sql);
      const columns = await client.query<PgColumnRow>(COLUMNS_SQL, [relation.oid]);
      const key = await client.query<{ name: string }>(PRIMARY_KEY_SQL, [relation.oid]);
      return {
        name: relation.name,
        columns: columns.rows.map(mapPostgresColumn),
        primaryKey: key.rows.map((row) => row.name),
      };
    },
    read(table: SourceTable, options: ReadOptions): SourceRows {
      return { csv: copyCsv(selectSql(table, options), options) };
    },
    async close() {
      await client.end().catch(() => {});
    },
  };
}
