/** `type: row_count` — the number of rows is within `min` and/or `max`. */
import { type CheckKind, formatNumber, plural, scalar } from "./check.js";
import { CheckSpecError } from "./fields.js";

interface Spec {
  min?: number;
  max?: number;
}

export const rowCount: CheckKind<Spec> = {
  kind: "row_count",
  fields: ["min", "max"],
  parse(fields) {
    const spec = { min: fields.number("min", { min: 0 }), max: fields.number("max", { min: 0 }) };
    if (spec.min === undefined && spec.max === undefined) throw new CheckSpecError("set min, max or both");
    if (spec.min !== undefined && spec.max !== undefined && spec.min > spec.max)
      throw new CheckSpecError("min is larger than max");
    return spec;
  },
  defaultName: () => "row_count",
  async run(spec, context) {
    const rows = await scalar(context, `SELECT count(*) FROM ${context.relation}`);
    const low = spec.min !== undefined && rows < spec.min;
    const high = spec.max !== undefined && rows > spec.max;
    const bounds = [
      spec.min !== undefined ? `at least ${formatNumber(spec.min)}` : "",
      spec.max !== undefined ? `at most ${formatNumber(spec.max)}` : "",
    ]
      .filter(Boolean)
      .join(" and ");
    return {
      passed: !low && !high,
      observed: rows,
      message: `${plural(rows, "row")}; expected ${bounds}`,
    };
  },
};
