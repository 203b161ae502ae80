/**
 * Schema evolution: how a file's columns meet the table's. Pure (no DuckDB): it
 * decides the table's columns after the load, the SQL for each written column,
 * and which columns need every value checked first.
 */
import type { TableColumn } from "../catalog/index.js";
import { Rejection } from "./rejection.js";
import { type ColumnType, fitsIn, fromText, parseType, typeSql, widen } from "./types.js";

/** A column of the file, with its inferred (or configured) type. */
export interface IncomingColumn {
  /** Normalized (snake_case) name. */
  name: string;
  /** The header in the file. */
  header: string;
  type: ColumnType;
  /** SQL giving the value as `type`. */
  value: string;
  /** SQL giving the value as trimmed text, NULL when empty. */
  text: string;
  /** Set when the type comes from `load_column_types`. */
  configured: boolean;
  /** The configured type was not inferred: each value must be checked to be of it. */
  verify: boolean;
}

/** Every non-empty value of `column` must be text of `type`, or the file is rejected. */
export interface ValueCheck {
  column: IncomingColumn;
  type: ColumnType;
  /** How the message names the expectation: `is INTEGER in table orders`. */
  expectation: string;
}

export interface Plan {
  /** The table's columns after the load. */
  columns: TableColumn[];
  /** SQL per table column, in `columns` order, over the staged relation. */
  select: string[];
  checks: ValueCheck[];
  /** Sentences for the run history: "added column region (VARCHAR)". */
  changes: string[];
}

/**
 * Matches the file's columns with the table's (`existing`, empty for a new table or a
 * replace): same types are kept; narrower incoming values are cast up; a widening
 * (int → bigint → decimal → double, date → timestamp) changes the column; new columns are
 * appended (earlier rows read NULL); a column the file lacks is NULL in its rows. Anything
 * else must be proven value by value (`checks`), so a file with text in an integer column
 * is rejected naming the first bad row.
 */
export function planLoad(table: string, existing: TableColumn[], incoming: IncomingColumn[]): Plan {
  const byName = new Map(incoming.map((column) => [column.name, column]));
  const plan: Plan = { columns: [], select: [], checks: [], changes: [] };
  for (const column of incoming) {
    if (column.verify) {
      plan.checks.push({
        column,
        type: column.type,
        expectation: `must be ${typeSql(column.type)} (load_column_types)`,
      });
    }
  }
  for (const column of existing) {
    const current = parseType(column.type);
    const file = byName.get(column.name);
    if (!current) throw new Error(`table ${table}: column ${column.name} has unknown type ${column.type}`);
    plan.columns.push(column);
    if (!file) {
      plan.select.push(`CAST(NULL AS ${column.type})`);
      continue;
    }
    byName.delete(column.name);
    if (file.configured && typeSql(file.type) !== typeSql(current)) {
      const widened = widen(current, file.type);
      if (!widened || typeSql(widened) !== typeSql(file.type)) {
        throw new Rejection(
          `column "${column.name}" is ${column.type} in table ${table}, but load_column_types makes it ${typeSql(file.type)}: load with --mode replace to change its type`,
        );
      }
    }
    if (fitsIn(file.type, current)) {
      plan.select.push(cast(file.value, file.type, current));
      continue;
    }
    const widened = widen(current, file.type);
    if (widened) {
      const type = typeSql(widened);
      plan.columns[plan.columns.length - 1] = { ...column, type };
      plan.select.push(cast(file.value, file.type, widened));
      plan.changes.push(`widened column ${column.name} from ${column.type} to ${type}`);
      continue;
    }
    plan.checks.push({ column: file, type: current, expectation: `is ${column.type} in table ${table}` });
    plan.select.push(fromText(current, file.text));
  }
  for (const file of byName.values()) {
    const type = typeSql(file.type);
    plan.columns.push({ name: file.name, type, description: file.header });
    plan.select.push(file.value);
    if (existing.length > 0) plan.changes.push(`added column ${file.name} (${type})`);
  }
  return plan;
}

const cast = (value: string, from: ColumnType, to: ColumnType): string =>
  typeSql(from) === typeSql(to) ? value : `CAST(${value} AS ${typeSql(to)})`;
