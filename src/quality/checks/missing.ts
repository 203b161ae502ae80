/** `type: missing` — NULLs in `column`: at most `max_count` rows (default 0) or `max_percent` of rows. */
import { sqlIdent } from "../../warehouse/index.js";
import { type CheckKind, formatNumber, plural } from "./check.js";
import { CheckSpecError } from "./fields.js";

interface Spec {
  column: string;
  maxCount?: number;
  maxPercent?: number;
}

export const missing: CheckKind<Spec> = {
  kind: "missing",
  fields: ["column", "max_count", "max_percent"],
  parse(fields) {
    const spec = {
      column: fields.requiredString("column"),
      maxCount: fields.number("max_count", { min: 0, integer: true }),
      maxPercent: fields.number("max_percent", { min: 0 }),
    };
    if (spec.maxCount !== undefined && spec.maxPercent !== undefined)
      throw new CheckSpecError("set max_count or max_percent, not both");
    return spec;
  },
  defaultName: (spec) => `missing(${spec.column})`,
  async run(spec, context) {
    const result = await context.query(
      `SELECT count(*) FILTER (WHERE ${sqlIdent(spec.column)} IS NULL), count(*) FROM ${context.relation}`,
    );
    const [nulls, rows] = (result.rows[0] ?? [0, 0]).map(Number) as [number, number];
    const percent = rows === 0 ? 0 : (nulls / rows) * 100;
    const passed = spec.maxPercent !== undefined ? percent <= spec.maxPercent : nulls <= (spec.maxCount ?? 0);
    const limit =
      spec.maxPercent !== undefined
        ? `at most ${formatNumber(spec.maxPercent)}%`
        : `at most ${formatNumber(spec.maxCount ?? 0)}`;
    return {
      passed,
      observed: spec.maxPercent !== undefined ? percent : nulls,
      message: `${formatNumber(nulls)} of ${plural(rows, "row")} (${formatNumber(percent)}%) ${nulls === 1 ? "has" : "have"} no ${spec.column}; expected ${limit}`,
    };
  },
};
