/**
 * `type: anomaly` — the last complete day's metric against the same weekday of the previous
 * `weeks` weeks (default 10): fails when its z-score is beyond `z` (default 2). Comparing
 * Sundays with Sundays keeps normal weekly seasonality from alerting. `direction`: both
 * (default), drop or rise. Weeks before the metric's first day count as no history (a new
 * table is not an anomaly); days after it without rows count as 0. Fewer than `min_history`
 * weeks (default 4) pass, saying so.
 */
import { type CheckKind, formatNumber } from "./check.js";
import {
  addDays,
  dailySeries,
  lastCompleteDay,
  type MetricSpec,
  metricName,
  parseMetric,
  weekdayOf,
} from "./series.js";

interface Spec {
  metric: MetricSpec;
  weeks: number;
  z: number;
  minHistory: number;
  direction: "both" | "drop" | "rise";
}

export const anomaly: CheckKind<Spec> = {
  kind: "anomaly",
  fields: ["metric", "sql", "time_column", "weeks", "z", "min_history", "direction"],
  parse(fields) {
    const metric = parseMetric(fields);
    const weeks = fields.number("weeks", { min: 2, integer: true }) ?? 10;
    return {
      metric,
      weeks,
      z: fields.number("z", { min: 0 }) ?? 2,
      minHistory: Math.min(fields.number("min_history", { min: 2, integer: true }) ?? 4, weeks),
      direction: fields.choice("direction", ["both", "drop", "rise"] as const) ?? "both",
    };
  },
  defaultName: (spec) => `anomaly(${metricName(spec.metric)})`,
  async run(spec, context) {
    const day = lastCompleteDay(context.now);
    const from = addDays(day, -7 * spec.weeks);
    const series = await dailySeries(spec.metric, context, from, day);
    const firstDay = [...series.keys()].sort()[0];
    const history: number[] = [];
    for (let week = 1; week <= spec.weeks; week++) {
      const earlier = addDays(day, -7 * week);
      if (firstDay !== undefined && earlier >= firstDay) history.push(series.get(earlier) ?? 0);
    }
    const value = series.get(day) ?? 0;
    const weekday = weekdayOf(day);
    if (history.length < spec.minHistory) {
      return {
        passed: true,
        observed: null,
        message: `${weekday} ${day}: ${formatNumber(value)}; only ${history.length} earlier ${weekday}s to compare with (needs ${spec.minHistory})`,
      };
    }
    const mean = history.reduce((sum, x) => sum + x, 0) / history.length;
    const stddev = Math.sqrt(history.reduce((sum, x) => sum + (x - mean) ** 2, 0) / (history.length - 1));
    const z =
      stddev === 0
        ? value === mean
          ? 0
          : Math.sign(value - mean) * Number.POSITIVE_INFINITY
        : (value - mean) / stddev;
    const tooLow = z < -spec.z && spec.direction !== "rise";
    const tooHigh = z > spec.z && spec.direction !== "drop";
    const bound =
      spec.direction === "both"
        ? `|z| ≤ ${spec.z}`
        : spec.direction === "drop"
          ? `z ≥ -${spec.z}`
          : `z ≤ ${spec.z}`;
    return {
      passed: !tooLow && !tooHigh,
      observed: Number.isFinite(z) ? Math.round(z * 100) / 100 : null,
      message: `${weekday} ${day}: ${formatNumber(value)} against ${formatNumber(mean)} ± ${formatNumber(stddev)} on the previous ${history.length} ${weekday}s (z = ${Number.isFinite(z) ? formatNumber(z) : z > 0 ? "+∞" : "-∞"}); expected ${bound}`,
    };
  },
};
