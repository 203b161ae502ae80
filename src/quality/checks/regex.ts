/**
 * `type: regex` — every non-NULL value of `column` (as text) matches `pattern` somewhere (RE2
 * syntax, as DuckDB's `regexp_matches`; anchor it with ^…$ to match the whole value).
 */
import { sqlIdent, sqlString } from "../../warehouse/index.js";
import { type CheckKind, rowsHave, sample } from "./check.js";

interface Spec {
  column: string;
  pattern: string;
}

export const regex: CheckKind<Spec> = {
  kind: "regex",
  fields: ["column", "pattern"],
  parse(fields) {
    return { column: fields.requiredString("column"), pattern: fields.requiredString("pattern") };
  },
  defaultName: (spec) => `regex(${spec.column})`,
  async run(spec, context) {
    const column = sqlIdent(spec.column);
    const failing = `SELECT * FROM ${context.relation}
      WHERE ${column} IS NOT NULL AND NOT regexp_matches(CAST(${column} AS VARCHAR), ${sqlString(spec.pattern)})`;
    const rows = Number((await context.query(`SELECT count(*) FROM (${failing})`)).rows[0]?.[0] ?? 0);
    return {
      passed: rows === 0,
      observed: rows,
      message:
        rows === 0
          ? `every ${spec.column} matches ${spec.pattern}`
          : `${rowsHave(rows)} a value of ${spec.column} that does not match ${spec.pattern}`,
      sample: rows === 0 ? null : await sample(context, `SELECT ${column} FROM (${failing})`),
    };
  },
};
