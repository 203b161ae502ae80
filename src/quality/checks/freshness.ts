/**
 * `type: freshness` — the newest `column` (default: the timestamp a partitioned table is
 * partitioned by) is at most `max_age` old (`90m`, `2h`, `1d`; a number means minutes).
 */
import { sqlIdent } from "../../warehouse/index.js";
import type { CheckKind } from "./check.js";
import { CheckSpecError } from "./fields.js";

interface Spec {
  column?: string;
  maxAgeMs: number;
}

export const freshness: CheckKind<Spec> = {
  kind: "freshness",
  fields: ["column", "max_age"],
  parse(fields) {
    const maxAgeMs = fields.duration("max_age");
    if (maxAgeMs === undefined) throw new CheckSpecError("max_age is required (e.g. 30m, 2h, 1d)");
    return { column: fields.string("column"), maxAgeMs };
  },
  defaultName: (spec) => (spec.column ? `freshness(${spec.column})` : "freshness"),
  async run(spec, context) {
    const { table } = context;
    const column = spec.column ?? table.partitionBy?.fromTimestamp;
    if (!column) throw new Error(`table ${table.name} is not partitioned by time: set column`);
    // On a partitioned table only recent days need reading: an older newest row fails either way.
    const partition = table.partitionBy;
    const recent =
      partition && partition.fromTimestamp === column
        ? ` WHERE ${sqlIdent(partition.column)} >= DATE '${isoDay(context.now.getTime() - spec.maxAgeMs - 86_400_000)}'`
        : "";
    const result = await context.query(
      `SELECT epoch_ms(CAST(max(${sqlIdent(column)}) AS TIMESTAMPTZ)) FROM ${context.relation}${recent}`,
    );
    const newest = result.rows[0]?.[0];
    const limit = describeAge(spec.maxAgeMs);
    if (newest === null || newest === undefined) {
      return {
        passed: false,
        observed: null,
        message: `no ${column} in ${table.name} is within the last ${limit}`,
      };
    }
    const ageMs = context.now.getTime() - Number(newest);
    return {
      passed: ageMs <= spec.maxAgeMs,
      observed: Math.round(ageMs / 60_000),
      message: `the newest ${column} (${new Date(Number(newest)).toISOString()}) is ${describeAge(Math.max(0, ageMs))} old; expected at most ${limit}`,
    };
  },
};

const isoDay = (ms: number): string => new Date(ms).toISOString().slice(0, 10);

/** 5400000 → "1h 30m". */
function describeAge(ms: number): string {
  const minutes = Math.round(ms / 60_000);
  if (minutes < 60) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return minutes % 60 === 0 ? `${hours}h` : `${hours}h ${minutes % 60}m`;
  return hours % 24 === 0 ? `${hours / 24}d` : `${Math.floor(hours / 24)}d ${hours % 24}h`;
}
