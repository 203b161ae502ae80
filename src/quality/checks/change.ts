/**
 * `type: change` — the metric's % change against the previous period: the last complete day
 * against the day before (`period: day`, the default), or the last 7 complete days against
 * the 7 before (`period: week`). Fails beyond `max_drop_percent` and/or `max_increase_percent`.
 */
import { type CheckKind, formatNumber } from "./check.js";
import { CheckSpecError } from "./fields.js";
import { addDays, dailySeries, lastCompleteDay, type MetricSpec, metricName, parseMetric } from "./series.js";

interface Spec {
  metric: MetricSpec;
  period: "day" | "week";
  maxDrop?: number;
  maxIncrease?: number;
}

export const change: CheckKind<Spec> = {
  kind: "change",
  fields: ["metric", "sql", "time_column", "period", "max_drop_percent", "max_increase_percent"],
  parse(fields) {
    const spec = {
      metric: parseMetric(fields),
      period: fields.choice("period", ["day", "week"] as const) ?? "day",
      maxDrop: fields.number("max_drop_percent", { min: 0 }),
      maxIncrease: fields.number("max_increase_percent", { min: 0 }),
    };
    if (spec.maxDrop === undefined && spec.maxIncrease === undefined)
      throw new CheckSpecError("set max_drop_percent, max_increase_percent or both");
    return spec;
  },
  defaultName: (spec) => `change(${metricName(spec.metric)})`,
  async run(spec, context) {
    const last = lastCompleteDay(context.now);
    const days = spec.period === "day" ? 1 : 7;
    const series = await dailySeries(spec.metric, context, addDays(last, -2 * days + 1), last);
    let current = 0;
    let previous = 0;
    for (let offset = 0; offset < days; offset++) {
      current += series.get(addDays(last, -offset)) ?? 0;
      previous += series.get(addDays(last, -offset - days)) ?? 0;
    }
    const percent =
      previous === 0
        ? current === 0
          ? 0
          : Number.POSITIVE_INFINITY
        : ((current - previous) / previous) * 100;
    const tooLow = spec.maxDrop !== undefined && percent < -spec.maxDrop;
    const tooHigh = spec.maxIncrease !== undefined && percent > spec.maxIncrease;
    const period =
      spec.period === "day" ? `${last} against the day before` : `the 7 days to ${last} against the 7 before`;
    const limits = [
      spec.maxDrop !== undefined ? `a drop of at most ${formatNumber(spec.maxDrop)}%` : "",
      spec.maxIncrease !== undefined ? `a rise of at most ${formatNumber(spec.maxIncrease)}%` : "",
    ]
      .filter(Boolean)
      .join(" and ");
    const shown = Number.isFinite(percent)
      ? `${percent >= 0 ? "+" : ""}${formatNumber(percent)}%`
      : "new (none before)";
    return {
      passed: !tooLow && !tooHigh,
      observed: Number.isFinite(percent) ? Math.round(percent * 100) / 100 : null,
      message: `${period}: ${formatNumber(current)} vs ${formatNumber(previous)}, ${shown}; expected ${limits}`,
    };
  },
};
