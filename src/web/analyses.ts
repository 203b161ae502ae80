/**
 * Questions without SQL, compiled to SQL over `events`: the event explorer (a measure of some
 * events over time, broken down by a property), funnels (ordered steps within a conversion
 * window) and retention (cohorts by first event, coming back per day or week). Every value a user
 * gives becomes an SQL string literal or a checked number, never SQL text.
 */
import { sqlIdent, sqlString, truncateUtc } from "../warehouse/index.js";

/** Columns of `events` that name a property directly; anything else is read from `properties`. */
export type EventColumns = ReadonlySet<string>;

export class AnalysisError extends Error {}

export interface PropertyFilter {
  property: string;
  op: "=" | "!=" | "contains" | ">" | "<" | "is set" | "is not set";
  value?: string | number;
}

/** `{"last": 30}` days back from now, or `{"from": "2026-11-01", "to": "2026-11-24"}` (inclusive days). */
export interface TimeRange {
  last?: number;
  from?: string;
  to?: string;
}

export interface ExploreQuery {
  /** Event names; none means every event. */
  events?: string[];
  measure?: "count" | "users" | "sessions" | "sum" | "avg";
  /** The numeric property summed or averaged. */
  property?: string;
  breakdown?: string;
  filters?: PropertyFilter[];
  range?: TimeRange;
  granularity?: "hour" | "day" | "week" | "month" | "total";
  /** Breakdown values shown; the rest are summed up as "Other". */
  limit?: number;
}

export interface FunnelQuery {
  steps: string[];
  /** How long after the first step the last may happen. */
  windowHours?: number;
  breakdown?: string;
  filters?: PropertyFilter[];
  range?: TimeRange;
}

export interface RetentionQuery {
  /** The event that puts a person in a cohort (their first one); none = any event. */
  cohortEvent?: string;
  /** The event that counts as coming back; none = any event. */
  returnEvent?: string;
  granularity?: "day" | "week";
  /** Periods after the cohort's shown (columns of the grid). */
  periods?: number;
}

const PERSON = "coalesce(user_id, anonymous_id)";

const DATE = /^\d{4}-\d{2}-\d{2}(?:[T ][\d:.]+(?:Z|[+-]\d{2}:?\d{2})?)?$/;

/** A property as SQL: its column, or the text under `properties`. */
export function propertySql(name: unknown, columns: EventColumns): string {
  if (typeof name !== "string" || name.trim() === "" || name.length > 200) {
    throw new AnalysisError("a property name must be a non-empty string");
  }
  if (columns.has(name) && !["properties", "context", "traits"].includes(name)) return sqlIdent(name);
  return `(properties->>${sqlString(name)})`;
}

/** SQL conditions (ANDed) on `ts` for a range; constants or `now()`, so the lake prunes days. */
export function rangeConditions(range: TimeRange | undefined, column = "ts"): string[] {
  if (!range) return [];
  const conditions: string[] = [];
  const ts = sqlIdent(column);
  if (range.last !== undefined) {
    if (!Number.isInteger(range.last) || range.last < 1 || range.last > 3660) {
      throw new AnalysisError('"range.last" must be a whole number of days (1-3660)');
    }
    conditions.push(`${ts} >= now() - INTERVAL ${range.last} DAY`);
  }
  if (range.from !== undefined)
    conditions.push(`${ts} >= TIMESTAMPTZ ${sqlString(checkDate(range.from, "from"))}`);
  if (range.to !== undefined) {
    const to = checkDate(range.to, "to");
    // A bare day is inclusive: up to its end.
    conditions.push(
      to.length === 10
        ? `${ts} < TIMESTAMPTZ ${sqlString(to)} + INTERVAL 1 DAY`
        : `${ts} <= TIMESTAMPTZ ${sqlString(to)}`,
    );
  }
  return conditions;
}

function checkDate(value: unknown, name: string): string {
  if (typeof value !== "string" || !DATE.test(value) || Number.isNaN(Date.parse(value))) {
    throw new AnalysisError(`"${name}" must be a date like 2026-11-25 (or an ISO timestamp)`);
  }
  return value;
}

export function filterConditions(filters: PropertyFilter[] | undefined, columns: EventColumns): string[] {
  if (filters === undefined) return [];
  if (!Array.isArray(filters)) throw new AnalysisError('"filters" must be a list');
  return filters.map((filter) => {
    const property = propertySql(filter?.property, columns);
    const value = filter.value === undefined || filter.value === null ? "" : String(filter.value);
    switch (filter.op) {
      case "=":
        return `${property} = ${sqlString(value)}`;
      case "!=":
        return `${property} IS DISTINCT FROM ${sqlString(value)}`;
      case "contains":
        return `contains(lower(${property}::VARCHAR), lower(${sqlString(value)}))`;
      case ">":
      case "<": {
        const number = Number(value);
        if (value === "" || !Number.isFinite(number)) {
          throw new AnalysisError(`filter "${filter.property} ${filter.op}" needs a number`);
        }
        return `TRY_CAST(${property} AS DOUBLE) ${filter.op} ${number}`;
      }
      case "is set":
        return `${property} IS NOT NULL`;
      case "is not set":
        return `${property} IS NULL`;
      default:
        throw new AnalysisError(`filter operator must be one of =, !=, contains, >, <, is set, is not set`);
    }
  });
}

function eventNames(events: unknown, name: string): string[] {
  if (events === undefined) return [];
  if (!Array.isArray(events) || !events.every((event) => typeof event === "string" && event !== "")) {
    throw new AnalysisError(`"${name}" must be a list of event names`);
  }
  return events as string[];
}

const where = (conditions: string[]): string =>
  conditions.length > 0 ? `WHERE ${conditions.join(" AND ")}` : "";

/** The explorer's question as SQL: columns `time` (unless total), the breakdown (if any), `value`. */
export function exploreSql(query: ExploreQuery, columns: EventColumns): string {
  const events = eventNames(query.events, "events");
  const conditions = [
    ...rangeConditions(query.range ?? { last: 30 }),
    ...(events.length > 0 ? [`event IN (${events.map(sqlString).join(", ")})`] : []),
    ...filterConditions(query.filters, columns),
  ];
  const measure = query.measure ?? "count";
  let value: string;
  switch (measure) {
    case "count":
      value = "count(*)";
      break;
    case "users":
      value = `count(DISTINCT ${PERSON})`;
      break;
    case "sessions":
      value = "count(DISTINCT session_id)";
      break;
    case "sum":
    case "avg":
      value = `round(${measure}(TRY_CAST(${propertySql(query.property, columns)} AS DOUBLE)), 2)`;
      break;
    default:
      throw new AnalysisError('"measure" must be count, users, sessions, sum or avg');
  }
  const granularity = query.granularity ?? "day";
  if (!["hour", "day", "week", "month", "total"].includes(granularity)) {
    throw new AnalysisError('"granularity" must be hour, day, week, month or total');
  }
  const select: string[] = [];
  if (granularity !== "total") select.push(`${truncateUtc(granularity, "ts")} AS "time"`);
  if (query.breakdown !== undefined && query.breakdown !== "") {
    const limit = query.limit ?? 10;
    if (!Number.isInteger(limit) || limit < 1 || limit > 100)
      throw new AnalysisError('"limit" must be 1-100');
    const property = propertySql(query.breakdown, columns);
    // Only the largest breakdown values get their own series: the rest is "Other". Events without
    // the property are "(none)", never "Other" (`NULL IN (…)` is not true).
    const top = `SELECT ${property} FROM events ${where([...conditions, `${property} IS NOT NULL`])} GROUP BY 1 ORDER BY count(*) DESC LIMIT ${limit}`;
    select.push(
      `CASE WHEN ${property} IS NULL THEN '(none)' WHEN ${property} IN (${top}) THEN ${property}::VARCHAR ELSE 'Other' END AS ${sqlIdent(query.breakdown)}`,
    );
  }
  select.push(`${value} AS ${sqlIdent(measureName(query))}`);
  // Positions, not GROUP BY ALL: the breakdown's subquery holds an aggregate of its own.
  const keys = select
    .slice(0, -1)
    .map((_, index) => index + 1)
    .join(", ");
  const grouped = keys ? `GROUP BY ${keys} ORDER BY ${keys}` : "";
  return `SELECT ${select.join(", ")} FROM events ${where(conditions)} ${grouped}`.trim();
}

/** The value column's name: "events", "users", "sum of revenue". */
export function measureName(query: ExploreQuery): string {
  const measure = query.measure ?? "count";
  if (measure === "count") return "events";
  if (measure === "sum" || measure === "avg") return `${measure} of ${query.property}`;
  return measure;
}

/**
 * The funnel as SQL: one row per step (and breakdown value) with `step`, `step_name`, the
 * breakdown, and `users` who did every step so far in order, within the window of the first.
 */
export function funnelSql(query: FunnelQuery, columns: EventColumns): string {
  const steps = eventNames(query.steps, "steps");
  if (steps.length < 2 || steps.length > 10) throw new AnalysisError("a funnel needs 2 to 10 steps");
  const windowHours = query.windowHours ?? 24;
  if (!Number.isFinite(windowHours) || windowHours <= 0 || windowHours > 24 * 365) {
    throw new AnalysisError('"windowHours" must be a number of hours (up to a year)');
  }
  const range = rangeConditions(query.range ?? { last: 30 });
  const filters = filterConditions(query.filters, columns);
  const breakdown = query.breakdown ? propertySql(query.breakdown, columns) : null;
  const window = `INTERVAL ${Math.round(windowHours * 3600)} SECOND`;
  // Later steps may happen up to a window after the range's end, so only its start bounds them.
  const laterRange = rangeConditions({ last: query.range?.last, from: query.range?.from });
  const firstStep = [`event = ${sqlString(steps[0] as string)}`, ...range, ...filters].join(" AND ");
  const stepList = [...new Set(steps)].map(sqlString).join(", ");
  // One scan of every step's events, read by all steps (materialized: otherwise each step would
  // scan the events again); the first step's conditions are evaluated in it as a flag.
  const ctes = [
    `funnel_events AS MATERIALIZED (SELECT ${PERSON} AS person, event, ts, ${firstStep} AS first_step${breakdown ? `, ${breakdown}::VARCHAR AS breakdown` : ""}
      FROM events ${where([`event IN (${stepList})`, ...laterRange])})`,
    `step1 AS (SELECT person, min(ts) AS at, min(ts) AS first${breakdown ? ", arg_min(breakdown, ts) AS breakdown" : ""}
      FROM funnel_events WHERE first_step GROUP BY 1)`,
  ];
  // Each step carries the first step's time (for the window) and the breakdown value along.
  steps.slice(1).forEach((step, index) => {
    const previous = `step${index + 1}`;
    ctes.push(
      `step${index + 2} AS (SELECT p.person, min(e.ts) AS at, any_value(p.first) AS first${breakdown ? ", any_value(p.breakdown) AS breakdown" : ""}
        FROM ${previous} p
        JOIN (SELECT person, ts FROM funnel_events WHERE event = ${sqlString(step)}) e
          ON e.person = p.person AND e.ts >= p.at AND e.ts <= p.first + ${window}
        GROUP BY 1)`,
    );
  });
  // Without a breakdown every step has its row, reached by nobody or not; with one, per value reached.
  const counts = steps.map((step, index) =>
    breakdown
      ? `SELECT ${index + 1} AS step, ${sqlString(step)} AS step_name, coalesce(breakdown, '(none)') AS breakdown, count(*) AS users
         FROM step${index + 1} GROUP BY ALL`
      : `SELECT ${index + 1} AS step, ${sqlString(step)} AS step_name, count(*) AS users FROM step${index + 1}`,
  );
  const breakdownName = breakdown ? sqlIdent(String(query.breakdown)) : null;
  return `WITH ${ctes.join(",\n")}
    SELECT step, step_name${breakdownName ? `, breakdown AS ${breakdownName}` : ""}, users FROM (${counts.join("\nUNION ALL\n")})
    ORDER BY step${breakdownName ? ", users DESC, breakdown" : ""}`;
}

/**
 * Retention as SQL: people grouped by the period of their first `cohortEvent` (ever), and how many
 * of each cohort did `returnEvent` 0, 1, 2, … periods later: `cohort`, `cohort_size`, `period`,
 * `users`, `percent`.
 */
export function retentionSql(query: RetentionQuery): string {
  const granularity = query.granularity ?? "week";
  if (granularity !== "day" && granularity !== "week")
    throw new AnalysisError('"granularity" must be day or week');
  const periods = query.periods ?? (granularity === "day" ? 14 : 8);
  if (!Number.isInteger(periods) || periods < 1 || periods > 52)
    throw new AnalysisError('"periods" must be 1-52');
  const cohortEvent = query.cohortEvent ? `event = ${sqlString(query.cohortEvent)}` : "true";
  const returnEvent = query.returnEvent ? `event = ${sqlString(query.returnEvent)}` : "true";
  const days = granularity === "day" ? periods : periods * 7;
  return `WITH cohorts AS (
      SELECT ${PERSON} AS person, date_trunc('${granularity}', min(ts)) AS cohort FROM events
      WHERE ${cohortEvent} GROUP BY 1 HAVING min(ts) >= date_trunc('${granularity}', now() - INTERVAL ${days} DAY)
    ), activity AS (
      SELECT DISTINCT person, ${truncateUtc(granularity, "ts")} AS period
      FROM (SELECT ${PERSON} AS person, ts FROM events WHERE ${returnEvent} AND ts >= now() - INTERVAL ${days + 7} DAY)
    ), sizes AS (SELECT cohort, count(*) AS cohort_size FROM cohorts GROUP BY 1)
    SELECT strftime(c.cohort, '%Y-%m-%d') AS cohort, s.cohort_size,
      datediff('${granularity}', c.cohort, a.period) AS period, count(*) AS users,
      round(100.0 * count(*) / s.cohort_size, 1) AS percent
    FROM cohorts c JOIN activity a ON a.person = c.person AND a.period >= c.cohort JOIN sizes s USING (cohort)
    WHERE datediff('${granularity}', c.cohort, a.period) < ${periods}
    GROUP BY 1, 2, 3 ORDER BY 1, 3`;
}
