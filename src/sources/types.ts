/**
 * The column types of loaded tables, how they are inferred from text, and which
 * changes between files are allowed.
 *
 * Inference runs over every value of a column, in SQL (DuckDB): a column is the
 * narrowest type all its non-empty values satisfy, in this order: BOOLEAN, INTEGER,
 * BIGINT, DECIMAL(18,s), DOUBLE, DATE, TIMESTAMP, TIMESTAMPTZ, else VARCHAR.
 * The same text predicates decide whether a later file's values fit a column's
 * existing type, so "what we infer" and "what we accept" cannot drift apart.
 */
import { sqlString } from "../warehouse/index.js";

export type TypeKind =
  | "BOOLEAN"
  | "INTEGER"
  | "BIGINT"
  | "DECIMAL"
  | "DOUBLE"
  | "DATE"
  | "TIMESTAMP"
  | "TIMESTAMPTZ"
  | "TIME"
  | "UUID"
  | "BLOB"
  | "VARCHAR"
  | "JSON";

export interface ColumnType {
  kind: TypeKind;
  /** DECIMAL only. */
  precision?: number;
  scale?: number;
}

export const TYPE_NAMES =
  "BOOLEAN, INTEGER, BIGINT, DECIMAL(p,s), DOUBLE, DATE, TIMESTAMP, TIMESTAMPTZ, TIME, UUID, BLOB, VARCHAR, JSON";

/** The DuckDB type name. */
export function typeSql(type: ColumnType): string {
  return type.kind === "DECIMAL" ? `DECIMAL(${type.precision},${type.scale})` : type.kind;
}

const ALIASES: Record<string, TypeKind> = {
  BOOLEAN: "BOOLEAN",
  BOOL: "BOOLEAN",
  INTEGER: "INTEGER",
  INT: "INTEGER",
  INT4: "INTEGER",
  BIGINT: "BIGINT",
  INT8: "BIGINT",
  LONG: "BIGINT",
  DOUBLE: "DOUBLE",
  FLOAT8: "DOUBLE",
  DATE: "DATE",
  TIMESTAMP: "TIMESTAMP",
  DATETIME: "TIMESTAMP",
  TIMESTAMPTZ: "TIMESTAMPTZ",
  "TIMESTAMP WITH TIME ZONE": "TIMESTAMPTZ",
  TIME: "TIME",
  UUID: "UUID",
  BLOB: "BLOB",
  BYTEA: "BLOB",
  VARCHAR: "VARCHAR",
  TEXT: "VARCHAR",
  STRING: "VARCHAR",
  JSON: "JSON",
};

/** Parses a type name as written in the configuration or stored in the catalog; null if not one of ours. */
export function parseType(name: string): ColumnType | null {
  const text = name.trim().toUpperCase().replace(/\s+/g, " ");
  const decimal = /^(?:DECIMAL|NUMERIC)\s*(?:\(\s*(\d+)\s*(?:,\s*(\d+)\s*)?\))?$/.exec(text);
  if (decimal) {
    const precision = Number(decimal[1] ?? 18);
    const scale = Number(decimal[2] ?? (decimal[1] ? 0 : 3));
    if (precision < 1 || precision > 38 || scale > precision) return null;
    return { kind: "DECIMAL", precision, scale };
  }
  const kind = ALIASES[text];
  return kind ? { kind } : null;
}

/**
 * Our type for a column DuckDB read with type `duckdbType` (Parquet, JSON): small
 * integers become INTEGER, floats DOUBLE, nested values JSON, anything else we do
 * not model (enums, intervals, TIME WITH TIME ZONE) VARCHAR.
 */
export function fromDuckDbType(duckdbType: string): ColumnType {
  const type = duckdbType.trim().toUpperCase();
  if (type.endsWith("]") || /^(STRUCT|MAP|UNION)\b/.test(type)) return { kind: "JSON" };
  if (["TINYINT", "SMALLINT", "INTEGER", "UTINYINT", "USMALLINT"].includes(type)) return { kind: "INTEGER" };
  if (["BIGINT", "UINTEGER"].includes(type)) return { kind: "BIGINT" };
  if (["UBIGINT", "HUGEINT", "UHUGEINT", "FLOAT", "DOUBLE", "VARINT", "BIGNUM"].includes(type)) {
    return { kind: "DOUBLE" };
  }
  if (type.startsWith("TIMESTAMP WITH TIME ZONE")) return { kind: "TIMESTAMPTZ" };
  if (/^TIMESTAMP(_NS|_MS|_S)?$/.test(type)) return { kind: "TIMESTAMP" };
  return parseType(type) ?? { kind: "VARCHAR" };
}

/** Whether DuckDB holds this column as a nested value that we store as JSON. */
export function isNested(duckdbType: string): boolean {
  return fromDuckDbType(duckdbType).kind === "JSON" && duckdbType.trim().toUpperCase() !== "JSON";
}

const sameType = (a: ColumnType, b: ColumnType): boolean => typeSql(a) === typeSql(b);

/** Digits before the decimal point an exact numeric type can hold. */
function integerDigits(type: ColumnType): number | null {
  switch (type.kind) {
    case "INTEGER":
      return 10;
    case "BIGINT":
      return 19;
    case "DECIMAL":
      return (type.precision ?? 18) - (type.scale ?? 0);
    default:
      return null;
  }
}

const NUMERIC = new Set<TypeKind>(["INTEGER", "BIGINT", "DECIMAL", "DOUBLE"]);
const TEMPORAL: TypeKind[] = ["DATE", "TIMESTAMP", "TIMESTAMPTZ"];

/** Whether every value of type `from` is a value of type `to` (a cast that loses nothing that matters). */
export function fitsIn(from: ColumnType, to: ColumnType): boolean {
  if (sameType(from, to) || to.kind === "VARCHAR") return true;
  if (NUMERIC.has(from.kind) && NUMERIC.has(to.kind)) {
    if (to.kind === "DOUBLE") return true;
    if (from.kind === "DOUBLE") return false;
    if (from.kind === "INTEGER" && to.kind === "BIGINT") return true;
    if (to.kind !== "DECIMAL") return false;
    return (integerDigits(from) ?? 0) <= (integerDigits(to) ?? 0) && (from.scale ?? 0) <= (to.scale ?? 0);
  }
  const fromRank = TEMPORAL.indexOf(from.kind);
  const toRank = TEMPORAL.indexOf(to.kind);
  return fromRank >= 0 && toRank >= 0 && fromRank <= toRank;
}

/**
 * The type a column of type `existing` widens to so that values of type `incoming` fit
 * too, or null when that is not a widening (text arriving in a number column, a number
 * in a date column). Widening stays within numbers (int → bigint → double; integers and
 * decimals → a decimal holding both, up to 38 digits) or within time (date → timestamp
 * → timestamptz).
 */
export function widen(existing: ColumnType, incoming: ColumnType): ColumnType | null {
  if (fitsIn(incoming, existing)) return existing;
  if (fitsIn(existing, incoming) && existing.kind !== "VARCHAR" && incoming.kind !== "VARCHAR") {
    return incoming;
  }
  if (NUMERIC.has(existing.kind) && NUMERIC.has(incoming.kind)) {
    // A fraction arriving in a BIGINT column: int → bigint → double.
    if (existing.kind === "BIGINT" || incoming.kind === "BIGINT") return { kind: "DOUBLE" };
    // Decimals of different widths (DECIMAL(18,1) and DECIMAL(18,2)): one holding both, exactly.
    const digits = Math.max(integerDigits(existing) ?? 0, integerDigits(incoming) ?? 0);
    const scale = Math.max(existing.scale ?? 0, incoming.scale ?? 0);
    return digits + scale <= 38 ? { kind: "DECIMAL", precision: digits + scale, scale } : { kind: "DOUBLE" };
  }
  return null;
}

const INT = "[+-]?(0|[1-9][0-9]*)";
const DEC = String.raw`[+-]?(0|[1-9][0-9]*)(\.[0-9]+)?`;
const DBL = String.raw`[+-]?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`;
const DATE_RE = "[0-9]{4}-[0-9]{2}-[0-9]{2}";
const CLOCK_RE = String.raw`[T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?`;
const ZONE_RE = "(Z|[+-][0-9]{2}(:?[0-9]{2})?)";
const TS_RE = `${DATE_RE}${CLOCK_RE}`;
const TSZ_RE = `${TS_RE}${ZONE_RE}`;
const TIME_RE = String.raw`[0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?`;
const TRUE_WORDS = "'true', 'yes'";
const FALSE_WORDS = "'false', 'no'";

const matches = (v: string, pattern: string) => `regexp_full_match(${v}, ${sqlString(pattern)})`;

/**
 * SQL that is true when the text `v` (trimmed, not empty) is a value of `type`.
 * Numbers must be plain (no leading zeros: "02134" is a code, not 2134), dates ISO 8601.
 */
export function accepts(type: ColumnType, v: string): string {
  switch (type.kind) {
    case "BOOLEAN":
      return `lower(${v}) IN (${TRUE_WORDS}, ${FALSE_WORDS})`;
    case "INTEGER":
    case "BIGINT":
      return `(${matches(v, INT)} AND TRY_CAST(${v} AS ${type.kind}) IS NOT NULL)`;
    case "DECIMAL": {
      // One pattern with the widths in it: a plain decimal with at most so many digits either side.
      const digits = integerDigits(type) ?? 0;
      const scale = type.scale ?? 0;
      if (digits < 1) return "false";
      const fraction = scale > 0 ? String.raw`(\.[0-9]{1,${scale}})?` : "";
      return matches(v, `[+-]?(0|[1-9][0-9]{0,${digits - 1}})${fraction}`);
    }
    case "DOUBLE":
      return `(${matches(v, DBL)} AND TRY_CAST(${v} AS DOUBLE) IS NOT NULL)`;
    case "DATE":
      return `(${matches(v, DATE_RE)} AND TRY_CAST(${v} AS DATE) IS NOT NULL)`;
    case "TIMESTAMP":
      // A date, or a date and time.
      return `(${matches(v, `${DATE_RE}(${CLOCK_RE})?`)} AND TRY_CAST(${v} AS TIMESTAMP) IS NOT NULL)`;
    case "TIMESTAMPTZ":
      // A date, a date and time, or a date and time with a zone.
      return `(${matches(v, `${DATE_RE}(${CLOCK_RE}${ZONE_RE}?)?`)} AND TRY_CAST(${v} AS TIMESTAMPTZ) IS NOT NULL)`;
    case "TIME":
      return `(${matches(v, TIME_RE)} AND TRY_CAST(${v} AS TIME) IS NOT NULL)`;
    case "UUID":
    case "BLOB":
      return `TRY_CAST(${v} AS ${type.kind}) IS NOT NULL`;
    case "VARCHAR":
      return "true";
    case "JSON":
      return `json_valid(${v})`;
  }
}

/** SQL converting the text `v`, which `accepts(type)`, to `type`. */
export function fromText(type: ColumnType, v: string): string {
  switch (type.kind) {
    case "BOOLEAN":
      return `CASE WHEN lower(${v}) IN (${TRUE_WORDS}) THEN true WHEN lower(${v}) IN (${FALSE_WORDS}) THEN false END`;
    case "VARCHAR":
      return v;
    case "JSON":
      return `json(${v})`;
    default:
      return `CAST(${v} AS ${typeSql(type)})`;
  }
}

/** What a value looks like, narrowest first. */
const SHAPES = [
  "boolean",
  "integer",
  "bigint",
  "decimal",
  "double",
  "date",
  "timestamp",
  "timestamptz",
  "text",
] as const;
type Shape = (typeof SHAPES)[number];

/**
 * SQL giving the shape of the text `v` as an index into SHAPES (NULL for NULL). One CASE
 * per value, so a value stops at the first shape it has instead of being tested against
 * every type: inference is one cheap scan even on wide files.
 */
function shapeSql(v: string): string {
  const shape = (name: Shape) => SHAPES.indexOf(name);
  return `CASE
    WHEN ${v} IS NULL THEN NULL
    WHEN lower(${v}) IN (${TRUE_WORDS}, ${FALSE_WORDS}) THEN ${shape("boolean")}
    WHEN ${matches(v, INT)} THEN CASE WHEN TRY_CAST(${v} AS INTEGER) IS NOT NULL THEN ${shape("integer")}
      WHEN TRY_CAST(${v} AS BIGINT) IS NOT NULL THEN ${shape("bigint")} ELSE ${shape("decimal")} END
    WHEN ${matches(v, DEC)} THEN ${shape("decimal")}
    WHEN ${accepts({ kind: "DOUBLE" }, v)} THEN ${shape("double")}
    WHEN ${accepts({ kind: "DATE" }, v)} THEN ${shape("date")}
    WHEN ${matches(v, TS_RE)} AND TRY_CAST(${v} AS TIMESTAMP) IS NOT NULL THEN ${shape("timestamp")}
    WHEN ${matches(v, TSZ_RE)} AND TRY_CAST(${v} AS TIMESTAMPTZ) IS NOT NULL THEN ${shape("timestamptz")}
    ELSE ${shape("text")} END`;
}

/** What a column's inference query returns: the shapes its values have, and the widths of its numbers. */
export interface TextProfile {
  values: number;
  /** Bit i set when some value has shape SHAPES[i]. */
  shapes: number;
  integerDigits: number;
  scale: number;
}

/**
 * Profiling the text column `v`: `inner` is the SELECT list item computing each value's
 * shape (aliased `k`), `outer` the aggregates over it, aliased `<prefix>_<field>`.
 */
export function profileSql(v: string, k: string, prefix: string): { inner: string; outer: string } {
  const numeric = `${k} BETWEEN ${SHAPES.indexOf("integer")} AND ${SHAPES.indexOf("decimal")}`;
  const outer = [
    `count(${k}) AS ${prefix}_values`,
    `coalesce(bit_or(1 << ${k}), 0) AS ${prefix}_shapes`,
    `coalesce(max(CASE WHEN ${numeric} THEN length(regexp_extract(${v}, '^[+-]?([0-9]*)', 1)) END), 0) AS ${prefix}_integerDigits`,
    `coalesce(max(CASE WHEN ${numeric} THEN length(regexp_extract(${v}, '\\.([0-9]*)$', 1)) END), 0) AS ${prefix}_scale`,
  ];
  return { inner: `${shapeSql(v)} AS ${k}`, outer: outer.join(",\n  ") };
}

/** Whether every value profiled has one of `shapes`. */
export function onlyShapes(profile: TextProfile, shapes: Shape[]): boolean {
  return SHAPES.every((shape, i) => shapes.includes(shape) || (profile.shapes & (1 << i)) === 0);
}

/** Decimals are inferred up to this many places; longer fractions (float noise like 0.30000000000000004) are DOUBLE. */
const MAX_INFERRED_SCALE = 9;

/**
 * The narrowest type of a text column. `temporalOnly` (strings in JSON, already typed
 * by their producer) considers only dates and timestamps. A column with no values is VARCHAR.
 */
export function inferType(profile: TextProfile, options: { temporalOnly?: boolean } = {}): ColumnType {
  const only = (...shapes: Shape[]) => onlyShapes(profile, shapes);
  if (profile.values === 0) return { kind: "VARCHAR" };
  if (!options.temporalOnly) {
    if (only("boolean")) return { kind: "BOOLEAN" };
    if (only("integer")) return { kind: "INTEGER" };
    if (only("integer", "bigint")) return { kind: "BIGINT" };
    if (only("integer", "bigint", "decimal")) {
      // Integers too long for BIGINT are identifiers (card, account numbers): keep every digit.
      if (profile.scale === 0) return { kind: "VARCHAR" };
      if (profile.scale <= MAX_INFERRED_SCALE && profile.integerDigits + profile.scale <= 18) {
        return { kind: "DECIMAL", precision: 18, scale: profile.scale };
      }
    }
    if (only("integer", "bigint", "decimal", "double")) return { kind: "DOUBLE" };
  }
  if (only("date")) return { kind: "DATE" };
  if (only("date", "timestamp")) return { kind: "TIMESTAMP" };
  if (only("date", "timestamp", "timestamptz")) return { kind: "TIMESTAMPTZ" };
  return { kind: "VARCHAR" };
}

/** A description of a type for messages: "an integer", "a date". */
export function typeNoun(type: ColumnType): string {
  switch (type.kind) {
    case "BOOLEAN":
      return "a boolean (true/false/yes/no)";
    case "INTEGER":
    case "BIGINT":
      return "an integer";
    case "DECIMAL":
      return `a number with at most ${type.scale} decimal places`;
    case "DOUBLE":
      return "a number";
    case "DATE":
      return "a date (YYYY-MM-DD)";
    case "TIMESTAMP":
    case "TIMESTAMPTZ":
      return "a timestamp (YYYY-MM-DD hh:mm:ss)";
    case "TIME":
      return "a time of day (hh:mm:ss)";
    case "UUID":
      return "a UUID";
    case "BLOB":
      return "binary data";
    case "VARCHAR":
      return "text";
    case "JSON":
      return "JSON";
  }
}
