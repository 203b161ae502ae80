/** `type: accepted_values` — every non-NULL value of `column` is one of `values` (compared as text). */
import { sqlIdent, sqlString } from "../../warehouse/index.js";
import { type CheckKind, plural, rowsHave, sample } from "./check.js";
import { CheckSpecError } from "./fields.js";

interface Spec {
  column: string;
  values: string[];
}

export const acceptedValues: CheckKind<Spec> = {
  kind: "accepted_values",
  fields: ["column", "values"],
  parse(fields) {
    const column = fields.requiredString("column");
    const values = fields.values("values");
    if (!values) throw new CheckSpecError("values is required (the list of accepted values)");
    return { column, values };
  },
  defaultName: (spec) => `accepted_values(${spec.column})`,
  async run(spec, context) {
    const column = sqlIdent(spec.column);
    const others = `SELECT CAST(${column} AS VARCHAR) AS ${column}, count(*) AS rows FROM ${context.relation}
      WHERE ${column} IS NOT NULL AND CAST(${column} AS VARCHAR) NOT IN (${spec.values.map(sqlString).join(", ")})
      GROUP BY 1`;
    const result = await context.query(`SELECT count(*), coalesce(sum(rows), 0) FROM (${others})`);
    const [values, rows] = (result.rows[0] ?? [0, 0]).map(Number) as [number, number];
    return {
      passed: rows === 0,
      observed: rows,
      message:
        rows === 0
          ? `every ${spec.column} is one of ${spec.values.join(", ")}`
          : `${rowsHave(rows)} a value of ${spec.column} not in ${spec.values.join(", ")} (${plural(values, "other value")})`,
      sample: rows === 0 ? null : await sample(context, `${others} ORDER BY rows DESC`),
    };
  },
};
