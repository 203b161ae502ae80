import { csvLine, type QueryResult } from "../warehouse/index.js";

export const FORMATS = ["table", "json", "csv"] as const;
export type Format = (typeof FORMATS)[number];

export function formatResult(result: QueryResult, format: Format): string {
  switch (format) {
    case "json":
      return JSON.stringify(result);
    case "csv":
      return toCsv(result);
    case "table":
      return toTable(result);
  }
}

function text(value: unknown): string {
  if (value === null || value === undefined) return "";
  return typeof value === "object" ? JSON.stringify(value) : String(value);
}

function toCsv(result: QueryResult): string {
  const lines = [csvLine(result.columns.map((column) => column.name))];
  for (const row of result.rows) {
    lines.push(csvLine(row.map((value) => (value === null || value === undefined ? null : text(value)))));
  }
  return lines.join("").trimEnd();
}

/** An aligned text table; numbers right-aligned, NULL shown as such. */
function toTable(result: QueryResult): string {
  const headers = result.columns.map((column) => column.name);
  const cells = result.rows.map((row) =>
    row.map((value) =>
      value === null || value === undefined ? "NULL" : text(value).replaceAll("\n", "\\n"),
    ),
  );
  const numeric = result.columns.map((_, i) =>
    result.rows.every((row) => row[i] === null || typeof row[i] === "number"),
  );
  const widths = headers.map((header, i) =>
    Math.max(header.length, ...cells.map((row) => row[i]?.length ?? 0)),
  );
  const line = (values: string[]) =>
    values
      .map((value, i) => (numeric[i] ? value.padStart(widths[i] ?? 0) : value.padEnd(widths[i] ?? 0)))
      .join(" │ ");
  const rule = widths.map((width) => "─".repeat(width)).join("─┼─");
  const footer = `(${result.rows.length} row${result.rows.length === 1 ? "" : "s"}${result.truncated ? ", truncated" : ""})`;
  return [line(headers), rule, ...cells.map(line), footer].join("\n");
}
