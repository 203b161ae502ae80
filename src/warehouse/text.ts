/**
 * Values as text, for formats that carry text: CSV downloads and the CLI. DuckDB's own
 * rendering for its types (timestamps, decimals, lists), `true`/`false`, and NULL as null.
 */
import { DuckDBBlobValue, type DuckDBValue } from "@duckdb/node-api";

export function valueText(value: DuckDBValue): string | null {
  if (value === null) return null;
  if (typeof value === "string") return value;
  if (value instanceof DuckDBBlobValue) return `\\x${Buffer.from(value.bytes).toString("hex")}`;
  return String(value);
}

/**
 * One CSV record (RFC 4180 quoting: fields with a comma, quote or line break are quoted, quotes
 * doubled; NULL is empty), ending in "\n" as DuckDB's own CSV does.
 */
export function csvLine(fields: readonly (string | null)[]): string {
  return `${fields.map((field) => (field === null ? "" : /[",\r\n]/.test(field) ? `"${field.replaceAll('"', '""')}"` : field)).join(",")}\n`;
}
