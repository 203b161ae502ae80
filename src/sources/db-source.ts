/**
 * What a sync needs from a database, whatever its kind: a table's columns with their
 * lake types, and its rows in batches from one consistent snapshot. Every value travels
 * as text in a form DuckDB reads exactly (the source formats it, DuckDB casts it), so
 * no number, timestamp or byte passes through a JavaScript value on the way.
 */
import { Rejection } from "./rejection.js";
import { type ColumnType, fromText } from "./types.js";

export interface SourceColumn {
  /** The column's name in the source. */
  name: string;
  /** Its declared type in the source, for messages: `numeric(12,2)`. */
  declared: string;
  /** The lake type it maps to. */
  type: ColumnType;
  /** Source SQL giving the value as text (or NULL) in the form `fromText` reads. */
  select: string;
  /** DuckDB SQL converting that text, `v`, to `type`. */
  fromText(v: string): string;
}

/**
 * Builds the source column `name` (declared as `declared`) for a lake type: selected by
 * `select` (default `defaultSelect`) and read with `read` (default `fromText` of the type).
 */
export function sourceColumn(name: string, declared: string, defaultSelect: string) {
  return (
    type: ColumnType,
    select = defaultSelect,
    read = (v: string) => fromText(type, v),
  ): SourceColumn => ({ name, declared, type, select, fromText: read });
}

export interface SourceTable {
  /** The table's name for messages: `public.orders`. */
  name: string;
  columns: SourceColumn[];
  /** The source's primary key (empty when it has none). */
  primaryKey: string[];
}

export interface ReadOptions {
  /** Only rows whose column is at least this value (the bookmark, less any lookback), as DuckDB formats it. */
  since?: { column: SourceColumn; value: string };
  batchRows: number;
  /** Checked between batches: an aborted read ends with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * How a database hands over rows: as CSV text it writes itself, which is far cheaper than
 * rows in JavaScript (no header, `,` and `"`, NULL an unquoted empty field and empty text
 * `""`), or in batches of at most `batchRows` rows.
 */
export type SourceRows = { csv: AsyncIterable<Buffer> } | { batches: AsyncIterable<(string | null)[][]> };

export interface SourceConnection {
  /** The connection URL without its password, for messages. */
  url: string;
  /** The table's columns and key; a Rejection when there is no such table. */
  describe(table: string): Promise<SourceTable>;
  /** Its rows, each value the text `select` gives, or null, in `columns` order. */
  read(table: SourceTable, options: ReadOptions): SourceRows;
  close(): Promise<void>;
}

export type SourceKind = "postgres" | "mysql";

/** The kind of database a URL points at, from its scheme. */
export function sourceKind(url: string): SourceKind | null {
  const scheme = /^([a-z][a-z0-9+.-]*):\/\//i.exec(url)?.[1]?.toLowerCase();
  if (scheme === "postgres" || scheme === "postgresql") return "postgres";
  if (scheme === "mysql" || scheme === "mariadb") return "mysql";
  return null;
}

/** The URL with its password replaced by `***`, safe to print. */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@]*@/, "//$1:***@");
  }
}

/** A driver's connection error as a one-line reason naming the source. */
export function connectionProblem(url: string, error: unknown): Rejection {
  const err = error as Error & { code?: string; errors?: Error[] };
  // Node reports a refused dual-stack connection as an AggregateError with an empty message.
  const message =
    err.message || err.errors?.map((inner) => inner.message).join("; ") || err.code || String(error);
  return new Rejection(`cannot connect to ${redactUrl(url)}: ${message}`);
}
