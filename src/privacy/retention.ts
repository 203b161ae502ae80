/**
 * Retention rules per lake table (`retention` in sluice.yaml):
 *
 * ```yaml
 * retention:
 *   events:
 *     drop_after_days: 400          # partitions (days) older than this are removed
 *     scrub:                        # values in rows older than after_days are removed or hashed
 *       - { after_days: 30, columns: [ip, user_agent], action: "null" }
 *       - { after_days: 90, columns: [user_id], action: hash }
 *     time_column: received_at      # optional: which timestamp ages a row (default: the partition's)
 * ```
 *
 * One run rewrites each table once and commits it in one snapshot (rewrite.ts), so a query sees
 * all of a table's run or none of it. Runs are idempotent: dropped days are gone, nulled values stay
 * null, and hashed values (tokens, recognised by their prefix) are not hashed again.
 */
import { createHash } from "node:crypto";
import type { TableDef } from "../catalog/index.js";
import type { Config } from "../config/index.js";
import { sqlIdent, sqlString } from "../warehouse/index.js";
import { TOKEN_PREFIX } from "./obfuscate.js";
import { PolicyError } from "./policy.js";
import { type LakeAccess, type RewriteResult, rewriteTable } from "./rewrite.js";

export const RAW_TABLE = "events_raw";

export interface ScrubRule {
  afterDays: number;
  columns: string[];
  action: "null" | "hash";
}

export interface RetentionRule {
  table: string;
  dropAfterDays?: number;
  timeColumn?: string;
  scrub: ScrubRule[];
}

const DAY_MS = 86_400_000;

/** The configured rules, checked; with the raw zone on, `events_raw` keeps its days for `raw_zone_retention_days`. */
export function retentionRules(
  config: Pick<Config, "retention" | "raw_zone" | "raw_zone_retention_days">,
): RetentionRule[] {
  const rules: RetentionRule[] = [];
  for (const [table, value] of Object.entries(config.retention ?? {})) {
    rules.push(parseRule(table, value));
  }
  if (config.raw_zone && !rules.some((rule) => rule.table === RAW_TABLE)) {
    rules.push({ table: RAW_TABLE, dropAfterDays: config.raw_zone_retention_days, scrub: [] });
  }
  return rules;
}

function parseRule(table: string, value: unknown): RetentionRule {
  const where = `retention.${table}`;
  if (!isRecord(value)) throw new PolicyError(`${where} must be a mapping with drop_after_days and/or scrub`);
  for (const key of Object.keys(value)) {
    if (!["drop_after_days", "scrub", "time_column"].includes(key)) {
      throw new PolicyError(`${where} has an unknown key "${key}" (drop_after_days, scrub, time_column)`);
    }
  }
  const rule: RetentionRule = { table, scrub: [] };
  if (value.drop_after_days !== undefined)
    rule.dropAfterDays = days(value.drop_after_days, `${where}.drop_after_days`);
  if (value.time_column !== undefined) {
    if (typeof value.time_column !== "string")
      throw new PolicyError(`${where}.time_column must be a column name`);
    rule.timeColumn = value.time_column;
  }
  const scrubs = value.scrub ?? [];
  if (!Array.isArray(scrubs))
    throw new PolicyError(`${where}.scrub must be a list of {after_days, columns, action}`);
  scrubs.forEach((scrub: unknown, index) => {
    const at = `${where}.scrub[${index}]`;
    if (!isRecord(scrub)) throw new PolicyError(`${at} must be a mapping {after_days, columns, action}`);
    const columns = scrub.columns;
    if (
      !Array.isArray(columns) ||
      columns.length === 0 ||
      !columns.every((column) => typeof column === "string")
    ) {
      throw new PolicyError(`${at}.columns must be a non-empty list of column names`);
    }
    // YAML reads a bare `null` as no value: both mean "set to NULL".
    const action = scrub.action === null || scrub.action === undefined ? "null" : scrub.action;
    if (action !== "null" && action !== "hash") throw new PolicyError(`${at}.action must be null or hash`);
    rule.scrub.push({ afterDays: days(scrub.after_days, `${at}.after_days`), columns, action });
  });
  if (rule.dropAfterDays === undefined && rule.scrub.length === 0) {
    throw new PolicyError(`${where} has neither drop_after_days nor scrub`);
  }
  return rule;
}

function days(value: unknown, where: string): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0) {
    throw new PolicyError(`${where} must be a number of days (0 or more)`);
  }
  return value;
}

export interface TableRetention extends RewriteResult {
  /** Why the rule could not run on this table; the other tables' rules still ran. */
  error?: string;
  /** The lake has no table of the rule's name (yet, or it is misspelt): the rule did nothing. */
  missing?: true;
}

/** Applies every rule once: one commit per table that changed. */
export async function runRetention(
  lake: LakeAccess,
  rules: RetentionRule[],
  secret: string,
  nowMs = Date.now(),
): Promise<TableRetention[]> {
  const tables = new Map((await lake.catalog.tables()).map((table) => [table.name, table]));
  const results: TableRetention[] = [];
  for (const rule of rules) {
    const table = tables.get(rule.table);
    const nothing = {
      table: rule.table,
      rowsDeleted: 0,
      rowsChanged: 0,
      filesRemoved: 0,
      filesWritten: 0,
      snapshot: null,
    };
    if (table === undefined) {
      results.push({ ...nothing, missing: true });
      continue;
    }
    try {
      results.push(await rewriteTable(lake, planRetention(table, rule, secret, nowMs)));
    } catch (error) {
      results.push({ ...nothing, error: (error as Error).message });
    }
  }
  return results;
}

function planRetention(table: TableDef, rule: RetentionRule, secret: string, nowMs: number) {
  const columns = new Map(table.columns.map((column) => [column.name, column]));
  const partitionTime = table.partitionBy?.fromTimestamp;
  const timeColumn = rule.timeColumn ?? partitionTime;
  const needsTime = rule.scrub.length > 0 || (rule.dropAfterDays !== undefined && table.partitionBy === null);
  if (needsTime && (timeColumn === undefined || !columns.has(timeColumn))) {
    throw new PolicyError(
      `retention.${table.name}: the table has no ${timeColumn ?? "partition"} timestamp; set time_column to the column that ages a row`,
    );
  }
  const time = sqlIdent(timeColumn ?? "");
  const cutoff = (afterDays: number) => nowMs - afterDays * DAY_MS;
  const olderThan = (afterDays: number) =>
    `${time} < TIMESTAMPTZ ${sqlString(new Date(cutoff(afterDays)).toISOString())}`;
  // A day partition is dropped once all of it is older than the rule: its date is before the cutoff's.
  const dayOf = (ms: number) => new Date(ms).toISOString().slice(0, 10);

  const conditions: string[] = [];
  const replace: Record<string, string> = {};
  for (const scrub of rule.scrub) {
    for (const name of scrub.columns) {
      const column = columns.get(name);
      if (column === undefined)
        throw new PolicyError(`retention.${table.name}: there is no column ${name} to scrub`);
      if (scrub.action === "hash" && column.type !== "VARCHAR") {
        throw new PolicyError(
          `retention.${table.name}: ${name} is ${column.type}; only text columns can be hashed (use null)`,
        );
      }
      const identifier = sqlIdent(name);
      const due =
        scrub.action === "null"
          ? `${olderThan(scrub.afterDays)} AND ${identifier} IS NOT NULL`
          : `${olderThan(scrub.afterDays)} AND ${identifier} IS NOT NULL AND NOT starts_with(${identifier}, ${sqlString(TOKEN_PREFIX)})`;
      conditions.push(`(${due})`);
      const previous = replace[name] ?? identifier;
      replace[name] =
        `CASE WHEN ${due} THEN ${scrub.action === "null" ? "NULL" : hmacSql(identifier, secret)} ELSE ${previous} END`;
    }
  }
  let deleteWhere: string | undefined;
  let dropFile: ((file: { partition: string }) => boolean) | undefined;
  const drop = rule.dropAfterDays;
  if (drop !== undefined) {
    if (table.partitionBy !== null) {
      const lastKept = dayOf(cutoff(drop));
      dropFile = (file) => file.partition !== "" && file.partition < lastKept;
    } else {
      deleteWhere = olderThan(drop);
      conditions.push(`(${deleteWhere})`);
    }
  }
  // Scrubbing by the partition's own timestamp touches only days up to the oldest scrub's cutoff.
  const newestDue = Math.max(...rule.scrub.map((scrub) => cutoff(scrub.afterDays)));
  const mayChange =
    rule.scrub.length > 0 && deleteWhere === undefined && timeColumn === partitionTime
      ? (file: { partition: string }) => file.partition === "" || file.partition <= dayOf(newestDue)
      : undefined;
  return {
    table,
    operation: "retention",
    dropFile,
    mayChange,
    deleteWhere,
    replace,
    changesWhere: conditions.length === 0 ? undefined : conditions.join(" OR "),
  };
}

/**
 * The policy's token (`piiToken`) computed by DuckDB: HMAC-SHA256 spelled out with sha256 over
 * blobs, so that scrubbing millions of values needs no round trip through JavaScript.
 */
export function hmacSql(expression: string, secret: string): string {
  let key = Buffer.from(secret);
  if (key.length > 64) key = createHash("sha256").update(key).digest();
  const padded = Buffer.alloc(64);
  key.copy(padded);
  const inner = Buffer.from(padded.map((byte) => byte ^ 0x36)).toString("hex");
  const outer = Buffer.from(padded.map((byte) => byte ^ 0x5c)).toString("hex");
  return `(${sqlString(TOKEN_PREFIX)} || left(sha256(unhex('${outer}') || unhex(sha256(unhex('${inner}') || encode(CAST(${expression} AS VARCHAR))))), 32))`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
