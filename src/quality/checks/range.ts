/**
 * `type: range` — every non-NULL value of `column` is within `min` and/or `max` (inclusive).
 * Bounds are numbers, or dates and times in quotes, compared in the column's own type.
 */
import { sqlIdent, sqlString } from "../../warehouse/index.js";
import { type CheckKind, rowsHave, sample } from "./check.js";
import { CheckSpecError } from "./fields.js";

interface Spec {
  column: string;
  min?: number | string;
  max?: number | string;
}

export const range: CheckKind<Spec> = {
  kind: "range",
  fields: ["column", "min", "max"],
  parse(fields) {
    const spec = {
      column: fields.requiredString("column"),
      min: fields.bound("min"),
      max: fields.bound("max"),
    };
    if (spec.min === undefined && spec.max === undefined) throw new CheckSpecError("set min, max or both");
    return spec;
  },
  defaultName: (spec) => `range(${spec.column})`,
  async run(spec, context) {
    const column = sqlIdent(spec.column);
    const type = context.table.columns.find((candidate) => candidate.name === spec.column)?.type;
    const literal = (bound: number | string) =>
      typeof bound === "number" ? String(bound) : `CAST(${sqlString(bound)} AS ${type ?? "VARCHAR"})`;
    const outside = [
      spec.min !== undefined ? `${column} < ${literal(spec.min)}` : "",
      spec.max !== undefined ? `${column} > ${literal(spec.max)}` : "",
    ].filter(Boolean);
    const failing = `SELECT ${column} FROM ${context.relation} WHERE ${outside.join(" OR ")}`;
    const rows = Number((await context.query(`SELECT count(*) FROM (${failing})`)).rows[0]?.[0] ?? 0);
    const bounds = [
      spec.min !== undefined ? `at least ${spec.min}` : "",
      spec.max !== undefined ? `at most ${spec.max}` : "",
    ]
      .filter(Boolean)
      .join(" and ");
    return {
      passed: rows === 0,
      observed: rows,
      message:
        rows === 0
          ? `every ${spec.column} is ${bounds}`
          : `${rowsHave(rows)} a value of ${spec.column} outside the range (expected ${bounds})`,
      sample: rows === 0 ? null : await sample(context, `${failing} ORDER BY ${column}`),
    };
  },
};
