/**
 * `type: sql` — a query returning the failing rows; passes when it returns at most `max_count`
 * rows (default 0). `{{ table }}` in the query stands for the rows being checked (the table,
 * or the candidate files of an audit), with the check's `where` applied.
 */
import { type CheckKind, formatNumber, plural, sample } from "./check.js";

interface Spec {
  sql: string;
  maxCount: number;
}

const TABLE_PLACEHOLDER = /\{\{\s*table\s*\}\}/g;

export const customSql: CheckKind<Spec> = {
  kind: "sql",
  fields: ["sql", "max_count"],
  parse(fields) {
    return {
      sql: fields.requiredString("sql", "a query returning the failing rows").trim().replace(/;\s*$/, ""),
      maxCount: fields.number("max_count", { min: 0, integer: true }) ?? 0,
    };
  },
  defaultName: () => "sql",
  async run(spec, context) {
    const query = spec.sql.replace(TABLE_PLACEHOLDER, context.relation);
    const rows = Number((await context.query(`SELECT count(*) FROM (${query})`)).rows[0]?.[0] ?? 0);
    const passed = rows <= spec.maxCount;
    return {
      passed,
      observed: rows,
      message: `the query returned ${plural(rows, "failing row")}; expected at most ${formatNumber(spec.maxCount)}`,
      sample: rows === 0 ? null : await sample(context, query),
    };
  },
};
