/**
 * Excel workbooks as people export them: a title above the table, blank rows and
 * columns, headers merged over two rows ("Q1" over "Revenue" and "Units"), a
 * totals row, notes below. This finds the table in the sheet and returns its
 * header and data rows as text, each with its sheet row number for messages.
 */
import ExcelJS from "exceljs";
import { Rejection } from "./rejection.js";

export interface SheetTable {
  sheet: string;
  /** Header text per column, as in the sheet; "" for a column without one. */
  headers: string[];
  rows: { sheetRow: number; values: (string | null)[] }[];
}

type Kind = "text" | "number" | "date" | "boolean";

interface Cell {
  text: string | null;
  kind: Kind | null;
  /** A copy of a merged range's value, in a cell other than its top-left one. */
  mergedFrom: "left" | "above" | null;
}

/** "Total", "Grand total:", "Subtotal", "Sum" alone in a cell: a row of sums, not data. */
const TOTALS = /^(grand\s+|sub-?\s*)?totals?\s*:?$|^sum\s*:?$/i;

/** Reads the first visible sheet (or the one named `sheetName`) and cleans it into a table. */
export async function readSheet(path: string, sheetName?: string): Promise<SheetTable> {
  const workbook = new ExcelJS.Workbook();
  try {
    await workbook.xlsx.readFile(path);
  } catch (error) {
    throw new Rejection(`not a readable .xlsx workbook (${(error as Error).message})`);
  }
  const sheets = workbook.worksheets;
  const sheet = sheetName
    ? workbook.getWorksheet(sheetName)
    : (sheets.find((candidate) => candidate.state === "visible") ?? sheets[0]);
  if (!sheet) {
    throw new Rejection(
      sheetName
        ? `no sheet named "${sheetName}" in the workbook (sheets: ${sheets.map((s) => s.name).join(", ")})`
        : "the workbook has no sheets",
    );
  }
  return cleanTable(sheet.name, grid(sheet));
}

/** The sheet's cells, rows then columns (0-based; sheet row = index + 1). */
function grid(sheet: ExcelJS.Worksheet): Cell[][] {
  const cells: Cell[][] = [];
  for (let r = 1; r <= sheet.rowCount; r++) {
    const row = sheet.getRow(r);
    const line: Cell[] = [];
    for (let c = 1; c <= sheet.columnCount; c++) {
      const cell = row.getCell(c);
      const { text, kind } = cellText(cell.value);
      const copy = cell.type === ExcelJS.ValueType.Merge;
      line.push({ text, kind, mergedFrom: copy ? (Number(cell.master.row) === r ? "left" : "above") : null });
    }
    cells.push(line);
  }
  return cells;
}

function cellText(value: ExcelJS.CellValue): { text: string | null; kind: Kind | null } {
  if (value === null || value === undefined) return { text: null, kind: null };
  if (value instanceof Date) return { text: isoDateTime(value), kind: "date" };
  if (typeof value === "number") {
    return Number.isFinite(value) ? { text: String(value), kind: "number" } : { text: null, kind: null };
  }
  if (typeof value === "boolean") return { text: String(value), kind: "boolean" };
  if (typeof value === "string") {
    const text = value.trim();
    return text ? { text, kind: "text" } : { text: null, kind: null };
  }
  if ("richText" in value) return cellText(value.richText.map((part) => part.text).join(""));
  if ("formula" in value || "sharedFormula" in value) return cellText(value.result ?? null);
  if ("hyperlink" in value) return cellText(value.text);
  return { text: null, kind: null }; // #N/A, #REF! and other errors
}

/** Excel dates have no zone; ExcelJS gives them as UTC. Midnight is a date, anything else a timestamp. */
function isoDateTime(date: Date): string {
  const iso = date.toISOString();
  if (iso.endsWith("T00:00:00.000Z")) return iso.slice(0, 10);
  return iso.replace("T", " ").replace(/\.000Z$|Z$/, "");
}

const owns = (cell: Cell | undefined): boolean => !!cell && cell.text !== null && cell.mergedFrom === null;
const ownCount = (row: Cell[]): number => row.filter(owns).length;

function cleanTable(sheet: string, cells: Cell[][]): SheetTable {
  const rows = [...cells.keys()].filter((r) => ownCount(cells[r] ?? []) > 0);
  if (rows.length === 0) throw new Rejection(`sheet "${sheet}" is empty`);

  // The header is the first row that spans the table: title rows above it fill one or two cells.
  const width = Math.max(...rows.map((r) => ownCount(cells[r] ?? [])));
  const needed = width <= 1 ? 1 : Math.max(2, Math.ceil(width / 2));
  const headerIndex = rows.findIndex((r) => ownCount(cells[r] ?? []) >= needed);
  const header = cells[rows[headerIndex] ?? 0] ?? [];
  let dataStart = headerIndex + 1;
  // The table's columns: those with a value from the header down (a title in column A does not count).
  const below = rows.slice(headerIndex).map((r) => cells[r] ?? []);
  const columns = [...header.keys()].filter((c) => below.some((row) => owns(row[c])));

  // A header cell merged across columns ("Q1" over "Revenue", "Units") names a group whose
  // columns are named on the next row: the two rows together make the header.
  const subRow = cells[rows[dataStart] ?? -1];
  const grouped = header.some((cell) => cell.mergedFrom === "left");
  const sub = grouped && subRow?.every((cell) => !owns(cell) || cell.kind === "text") ? subRow : null;
  if (sub) dataStart++;
  const headers = columns.map((c) => {
    const parts = [header[c]?.text, sub?.[c]?.text].filter((part): part is string => !!part);
    return parts.filter((part, i) => part !== parts[i - 1]).join(" ");
  });

  const data = rows.slice(dataStart).filter((r) => {
    const row = cells[r] ?? [];
    const own = columns.map((c) => row[c]).filter(owns) as Cell[];
    if (own.some((cell) => cell.kind === "text" && TOTALS.test(cell.text ?? ""))) return false;
    // A label merged across the row ("Region: North") heads a section; it is not a record.
    if (own.length === 1 && columns.some((c) => row[c]?.mergedFrom === "left")) return false;
    // Page headers repeated down the sheet.
    return !columns.every((c) => (row[c]?.text ?? "") === (header[c]?.text ?? ""));
  });
  // Notes below the table ("Source: finance, exported 3 May"): rows of one text cell at the end.
  while (columns.length >= 3 && data.length > 0) {
    const row = cells[data[data.length - 1] ?? 0] ?? [];
    const own = columns.map((c) => row[c]).filter(owns) as Cell[];
    if (own.length !== 1 || own[0]?.kind !== "text") break;
    data.pop();
  }

  return {
    sheet,
    headers,
    rows: data.map((r) => ({
      sheetRow: r + 1,
      // A value merged down over several rows belongs to each of them.
      values: columns.map((c) => {
        const cell = cells[r]?.[c];
        return cell && cell.mergedFrom !== "left" ? cell.text : null;
      }),
    })),
  };
}
