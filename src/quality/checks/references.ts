/**
 * `type: references` — referential integrity: every non-NULL `column` exists as `to`
 * (`table.column`) in another table, e.g. `column: customer_id, to: customers.id`.
 */
import { sqlIdent } from "../../warehouse/index.js";
import { type CheckKind, plural, sample } from "./check.js";
import { CheckSpecError } from "./fields.js";

interface Spec {
  column: string;
  table: string;
  toColumn: string;
}

export const references: CheckKind<Spec> = {
  kind: "references",
  fields: ["column", "to"],
  parse(fields) {
    const column = fields.requiredString("column");
    const to = fields.requiredString("to", "the referenced table.column, e.g. customers.id");
    const dot = to.lastIndexOf(".");
    if (dot <= 0 || dot === to.length - 1)
      throw new CheckSpecError(`to must be table.column (e.g. customers.id), not "${to}"`);
    return { column, table: to.slice(0, dot), toColumn: to.slice(dot + 1) };
  },
  defaultName: (spec) => `references(${spec.column} → ${spec.table}.${spec.toColumn})`,
  async run(spec, context) {
    const column = sqlIdent(spec.column);
    const orphans = `SELECT ${column}, count(*) AS rows FROM ${context.relation} child
      WHERE ${column} IS NOT NULL AND NOT EXISTS (
        SELECT 1 FROM ${sqlIdent(spec.table)} parent WHERE parent.${sqlIdent(spec.toColumn)} = child.${column})
      GROUP BY 1`;
    const result = await context.query(`SELECT count(*), coalesce(sum(rows), 0) FROM (${orphans})`);
    const [values, rows] = (result.rows[0] ?? [0, 0]).map(Number) as [number, number];
    return {
      passed: rows === 0,
      observed: rows,
      message:
        rows === 0
          ? `every ${spec.column} exists in ${spec.table}.${spec.toColumn}`
          : `${plural(rows, "row")} (${plural(values, "value")}) ${rows === 1 ? "has" : "have"} a value of ${spec.column} not found in ${spec.table}.${spec.toColumn}`,
      sample: rows === 0 ? null : await sample(context, `${orphans} ORDER BY rows DESC`),
    };
  },
};
