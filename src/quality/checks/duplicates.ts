/**
 * `type: duplicates` — rows sharing the values of `columns` (or one `column`): at most `max_count`
 * extra rows (default 0). Rows whose key columns are all NULL are not compared.
 */
import { sqlIdent } from "../../warehouse/index.js";
import { type CheckKind, formatNumber, plural, sample } from "./check.js";
import { CheckSpecError } from "./fields.js";

interface Spec {
  columns: string[];
  maxCount: number;
}

export const duplicates: CheckKind<Spec> = {
  kind: "duplicates",
  fields: ["column", "columns", "max_count"],
  parse(fields) {
    const one = fields.string("column");
    const many = fields.strings("columns");
    if (one && many) throw new CheckSpecError("set column or columns, not both");
    const columns = many ?? (one ? [one] : undefined);
    if (!columns) throw new CheckSpecError("columns is required (the columns that identify a row)");
    return { columns, maxCount: fields.number("max_count", { min: 0, integer: true }) ?? 0 };
  },
  defaultName: (spec) => `duplicates(${spec.columns.join(", ")})`,
  async run(spec, context) {
    const keys = spec.columns.map(sqlIdent).join(", ");
    const notAllNull = spec.columns.map((column) => `${sqlIdent(column)} IS NOT NULL`).join(" OR ");
    const groups = `SELECT ${keys}, count(*) AS occurrences FROM ${context.relation} WHERE ${notAllNull}
      GROUP BY ${keys} HAVING count(*) > 1`;
    const result = await context.query(`SELECT count(*), coalesce(sum(occurrences - 1), 0) FROM (${groups})`);
    const [values, extra] = (result.rows[0] ?? [0, 0]).map(Number) as [number, number];
    const passed = extra <= spec.maxCount;
    return {
      passed,
      observed: extra,
      message:
        extra === 0
          ? `every ${spec.columns.join(", ")} is unique`
          : `${plural(values, "value")} of ${spec.columns.join(", ")} ${values === 1 ? "occurs" : "occur"} more than once (${plural(extra, "extra row")}); expected at most ${formatNumber(spec.maxCount)}`,
      sample: passed ? null : await sample(context, `${groups} ORDER BY occurrences DESC`),
    };
  },
};
