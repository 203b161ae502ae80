/** What quality records: profiles of tables (per partition) and results of checks. */

/** One column of a profile. Statistics a column's type does not have are left out. */
export interface ColumnProfile {
  name: string;
  type: string;
  nulls: number;
  /** Share of rows where the column is NULL, 0-100. */
  nullPercent: number;
  /** Approximate (HyperLogLog) number of distinct non-null values; absent for JSON and nested columns. */
  distinct?: number;
  /** Numbers, dates and times: the smallest and largest value (times as ISO text). */
  min?: number | string | null;
  max?: number | string | null;
  /** Numbers: mean and sample standard deviation. */
  mean?: number | null;
  stddev?: number | null;
  /** Text and JSON: lengths in characters. */
  minLength?: number | null;
  maxLength?: number | null;
  meanLength?: number | null;
  /** Low-cardinality columns: the most frequent values with their counts, most frequent first. */
  topValues?: { value: string | number | boolean | null; count: number }[];
}

export interface Profile {
  id: number;
  table: string;
  /** The partition profiled (`2026-11-25`), or "" for an unpartitioned table. */
  partition: string;
  /** The table's snapshot (catalog) the profile describes. */
  snapshot: number;
  profiledAt: string;
  /** Exact, from the catalog. */
  rows: number;
  /** Rows the column statistics were computed from, when a sample of a large partition; else null. */
  sampledRows: number | null;
  durationMs: number;
  columns: ColumnProfile[];
}

export type Severity = "warn" | "error";
export const SEVERITIES: readonly Severity[] = ["warn", "error"];

/** pass; fail: the data broke the rule; error: the check could not run (bad SQL, missing table). */
export type CheckStatus = "pass" | "fail" | "error";
export const CHECK_STATUSES: readonly CheckStatus[] = ["pass", "fail", "error"];

export interface CheckResult {
  id: number;
  table: string;
  /** The check's name, unique per table: given in the YAML, or made from its kind and column. */
  check: string;
  kind: string;
  severity: Severity;
  status: CheckStatus;
  /** The measured number the rule judged (rows missing, z-score, minutes since the newest row…). */
  observed: number | null;
  /** One sentence for a person: what was measured against what. */
  message: string;
  /** A few failing rows or values, as a small table. */
  sample: { columns: string[]; rows: unknown[][] } | null;
  /** What ran it: load, build, schedule, cli, api, audit. */
  trigger: string;
  ranAt: string;
  durationMs: number;
}

export type NewCheckResult = Omit<CheckResult, "id">;
