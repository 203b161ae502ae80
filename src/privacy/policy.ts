/**
 * The PII policy: what happens to personal data where it enters, per source and field path.
 *
 * A policy is layers of rules: the built-in defaults, then the rules for every source (`"*"`), then
 * a source's own; a later layer's rule for a path wins, and `keep` switches a rule off. A path names a
 * canonical column (`user_id`, `ip`) or a key inside one of its JSON columns (`traits.email`,
 * `context.traits.phone`, `properties.$set.email`).
 */
import { EVENT_COLUMNS } from "../collect/model.js";
import { ConfigError } from "../config/index.js";

export const PII_ACTIONS = ["hash", "mask", "truncate_ip", "drop", "keep"] as const;
export type PiiAction = (typeof PII_ACTIONS)[number];

/** path → action */
export type PiiRules = Record<string, PiiAction>;

/** `"*"` (every source) or a source name → its rules. */
export type PiiPolicy = Record<string, PiiRules>;

export const EVERY_SOURCE = "*";

const PERSON_FIELDS = ["email", "phone", "name", "address"];

/**
 * Where the protocols put a person's details: Segment's identify traits (and analytics.js's copy in
 * `context.traits`), PostHog's `$set`/`$set_once` (kept in properties as sent, and copied to traits).
 * IP addresses are truncated by the protocols already; the rules say so and apply to `context.ip`
 * and PostHog's `properties.$ip` copies too.
 */
export const DEFAULT_RULES: Readonly<PiiRules> = {
  ip: "truncate_ip",
  "context.ip": "truncate_ip",
  "properties.$ip": "truncate_ip",
  ...Object.fromEntries(
    ["traits", "context.traits", "properties.$set", "properties.$set_once"].flatMap((container) =>
      PERSON_FIELDS.map((field) => [`${container}.${field}`, "hash" as PiiAction]),
    ),
  ),
};

/**
 * What each protocol calls the columns a rule may name (Snowplow's `uid`, Segment's `userId`,
 * PostHog's `distinct_id`, …): a rule may use these names, and quarantined payloads are searched
 * for them (quarantine.ts).
 */
export const PROTOCOL_KEYS: Readonly<Record<string, readonly string[]>> = {
  user_id: ["user_id", "userId", "uid", "distinct_id"],
  anonymous_id: ["anonymous_id", "anonymousId", "duid", "nuid", "tnuid", "$device_id", "$anon_distinct_id"],
  session_id: ["session_id", "sid", "$session_id"],
  ip: ["ip", "$ip"],
  page_url: ["page_url", "url", "$current_url"],
  referrer: ["referrer", "refr", "$referrer"],
  user_agent: ["user_agent", "userAgent", "ua", "$raw_user_agent"],
};

const COLUMN_OF_KEY = new Map(
  Object.entries(PROTOCOL_KEYS).flatMap(([column, keys]) => keys.map((key) => [key, column])),
);

/** Columns whose values the pipeline needs as they are: ids, types and times. */
const PROTECTED_COLUMNS = new Set(["event_id", "event_type", "ts", "received_at", "source"]);
export const JSON_COLUMNS = new Set(
  EVENT_COLUMNS.filter((column) => column.type === "JSON").map((column) => column.name),
);
const COLUMN_NAMES = new Set(EVENT_COLUMNS.map((column) => column.name));

/** A policy or retention rule that cannot be applied; a ConfigError, so the CLI prints it as one line. */
export class PolicyError extends ConfigError {}

/**
 * Checks a policy as written in sluice.yaml or sent over HTTP, naming the first problem.
 * `where` prefixes the message (`pii_policy`).
 */
export function parsePolicy(value: unknown, where = "pii_policy"): PiiPolicy {
  if (value === null || value === undefined) return {};
  if (!isPlainObject(value)) {
    throw new PolicyError(`${where} must map "*" or a source name to rules like {"traits.email": "hash"}`);
  }
  const policy: PiiPolicy = {};
  for (const [source, rules] of Object.entries(value)) {
    if (!isPlainObject(rules)) {
      throw new PolicyError(`${where}.${source} must map field paths to actions (${PII_ACTIONS.join(", ")})`);
    }
    const checked: PiiRules = {};
    const written = new Map<string, string>();
    for (const [path, action] of Object.entries(rules)) {
      // A protocol's name for a column (`uid`) stands for the column (`user_id`).
      const canonical = COLUMN_OF_KEY.get(path) ?? path;
      const problem = pathProblem(canonical, action);
      if (problem !== null) throw new PolicyError(`${where}.${source}: ${problem}`);
      const earlier = written.get(canonical);
      if (earlier !== undefined) {
        throw new PolicyError(`${where}.${source}: ${earlier} and ${path} both name ${canonical}; keep one`);
      }
      written.set(canonical, path);
      checked[canonical] = action as PiiAction;
    }
    policy[source] = checked;
  }
  return policy;
}

function pathProblem(path: string, action: unknown): string | null {
  if (typeof action !== "string" || !(PII_ACTIONS as readonly string[]).includes(action)) {
    return `the action for ${path} must be one of ${PII_ACTIONS.join(", ")}, not ${JSON.stringify(action)}`;
  }
  const [column, ...rest] = path.split(".");
  if (column === undefined || !COLUMN_NAMES.has(column)) {
    return `${path} does not start with a column of events (user_id, ip, traits.email, properties.phone, …)`;
  }
  if (PROTECTED_COLUMNS.has(column)) return `${column} is needed as it is and cannot be obfuscated`;
  if (rest.some((key) => key === "")) return `${path} has an empty key`;
  if (JSON_COLUMNS.has(column) && rest.length === 0 && action !== "drop" && action !== "keep") {
    return `a whole JSON column (${column}) can only be dropped; name a key inside it, e.g. ${column}.email`;
  }
  if (!JSON_COLUMNS.has(column) && rest.length > 0)
    return `${column} is not a JSON column, so ${path} is not a path`;
  return null;
}

/** The rules that apply to one source's events: defaults, then `"*"`, then the source's; `keep` removed. */
export function effectiveRules(policy: PiiPolicy, source: string): PiiRules {
  const merged: PiiRules = { ...DEFAULT_RULES, ...policy[EVERY_SOURCE], ...policy[source] };
  for (const [path, action] of Object.entries(merged)) if (action === "keep") delete merged[path];
  return merged;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
