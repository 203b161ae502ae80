/**
 * Segment HTTP tracking API (https://segment.com/docs/connections/spec/): validating one call
 * and normalising it into a CanonicalEvent. Pure apart from generating missing message ids.
 *
 * Where the spec's extra fields land:
 * - `group`'s `groupId` is kept as `context.groupId` (a standard Segment context field);
 *   `alias`'s `previousId` as `context.previousId`. The call's value wins over the client's context.
 * - `integrations` is validated but not stored (it routes to destinations, which Sluice has none of).
 * - `context.ip` is stored truncated, in the `ip` column and inside `context`, so the full address
 *   is not kept anywhere.
 * - Wrongly typed nested context fields (e.g. `context.page.url` not a string) are not errors:
 *   the columns derived from them are null and `context` keeps them as sent.
 */
import { randomUUID } from "node:crypto";
import { isIP } from "node:net";
import { formatIsoMillis, parseIsoMillis } from "./iso-time.js";
import { type CanonicalEvent, EVENT_TYPES, type EventType } from "./model.js";

export type SegmentCall = EventType | "batch";

/** Collector paths: the documented ones and the one-letter ones analytics.js posts to. */
const CALLS_BY_PATH: ReadonlyMap<string, SegmentCall> = new Map<string, SegmentCall>([
  ["/v1/batch", "batch"],
  ["/v1/track", "track"],
  ["/v1/page", "page"],
  ["/v1/screen", "screen"],
  ["/v1/identify", "identify"],
  ["/v1/group", "group"],
  ["/v1/alias", "alias"],
  ["/v1/b", "batch"],
  ["/v1/t", "track"],
  ["/v1/p", "page"],
  ["/v1/s", "screen"],
  ["/v1/i", "identify"],
  ["/v1/g", "group"],
  ["/v1/a", "alias"],
]);

export const SEGMENT_PATHS: readonly string[] = [...CALLS_BY_PATH.keys()];

/** The call a request path is for (query string and a trailing slash ignored), or undefined. */
export function callForPath(path: string): SegmentCall | undefined {
  const query = path.indexOf("?");
  const bare = query < 0 ? path : path.slice(0, query);
  return CALLS_BY_PATH.get(bare.length > 1 && bare.endsWith("/") ? bare.slice(0, -1) : bare);
}

/** A problem with one call; `field` is its path in the request body, e.g. `batch[3].event`. */
export class Invalid {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {}
}

/** What the server knows about the request a call came in. */
export interface Arrival {
  source: string;
  receivedAtMs: number;
  /** `receivedAtMs` as an ISO string, formatted once per request. */
  receivedAt: string;
  remoteAddress: string | undefined;
}

/** Batch-level values that apply to every item that does not set its own. */
export interface Envelope {
  context: Record<string, unknown> | null;
  sentAtMs: number | null;
}

export const NO_ENVELOPE: Envelope = { context: null, sentAtMs: null };

/** Reads the `batch`, `context` and `sentAt` of a /v1/batch body. */
export function readBatch(body: Record<string, unknown>): { items: unknown[]; envelope: Envelope } | Invalid {
  if (!Array.isArray(body.batch)) return new Invalid("batch", "batch must be an array of calls.");
  try {
    const context = optionalObject(body, "context", "");
    const sentAtMs = optionalTime(body, "sentAt", "");
    return { items: body.batch, envelope: { context, sentAtMs } };
  } catch (error) {
    if (error instanceof Invalid) return error;
    throw error;
  }
}

/** Validates and normalises item `index` of a batch, whose `type` says which call it is. */
export function normaliseBatchItem(
  item: unknown,
  index: number,
  envelope: Envelope,
  arrival: Arrival,
): CanonicalEvent | Invalid {
  const at = `batch[${index}]`;
  if (!isObject(item)) return new Invalid(at, `${at} must be an object.`);
  const type = item.type;
  if (typeof type !== "string" || !(EVENT_TYPES as readonly string[]).includes(type)) {
    return new Invalid(`${at}.type`, `${at}.type must be one of ${EVENT_TYPES.join(", ")}.`);
  }
  return normaliseCall(item, type as EventType, `${at}.`, envelope, arrival);
}

/**
 * Validates and normalises one call. `at` prefixes field names in errors ("" for a single call,
 * "batch[3]." in a batch). A single call's `type` is its endpoint; a `type` in its body is ignored.
 */
export function normaliseCall(
  call: Record<string, unknown>,
  type: EventType,
  at: string,
  envelope: Envelope,
  arrival: Arrival,
): CanonicalEvent | Invalid {
  try {
    return normalise(call, type, at, envelope, arrival);
  } catch (error) {
    if (error instanceof Invalid) return error;
    throw error;
  }
}

/** The longest accepted messageId: ids are kept in memory for deduplication. */
const MAX_MESSAGE_ID_LENGTH = 256;

// Years 1 to 9999: what an ISO string with a four-digit year (and a TIMESTAMPTZ column) can hold.
const MIN_TIME_MS = -62135596800000;
const MAX_TIME_MS = 253402300799999;

function normalise(
  call: Record<string, unknown>,
  type: EventType,
  at: string,
  envelope: Envelope,
  arrival: Arrival,
): CanonicalEvent {
  const userId = optionalId(call, "userId", at);
  const anonymousId = optionalId(call, "anonymousId", at);
  if (userId === null && anonymousId === null) {
    throw invalid(at, "userId", `or ${at}anonymousId is required.`);
  }
  const messageId = optionalString(call, "messageId", at);
  if (messageId !== null && messageId.length > MAX_MESSAGE_ID_LENGTH) {
    throw invalid(at, "messageId", `is longer than ${MAX_MESSAGE_ID_LENGTH} characters.`);
  }
  const ts = eventTime(call, at, envelope, arrival);
  let properties = optionalObject(call, "properties", at);
  const traits = optionalObject(call, "traits", at);
  const ownContext = optionalObject(call, "context", at);
  optionalObject(call, "integrations", at);
  const name = optionalString(call, "name", at);
  const category = optionalString(call, "category", at);

  let event: string | null = null;
  if (type === "track") {
    if (typeof call.event !== "string" || call.event === "") {
      throw invalid(at, "event", "must be a non-empty string for a track call.");
    }
    event = call.event;
  } else if (type === "page" || type === "screen") {
    event = name;
    if (name !== null || category !== null) properties = withNameAndCategory(properties, name, category);
  }

  let context = mergeContexts(envelope.context, ownContext);
  if (type === "group") {
    context = { ...context, groupId: requiredId(call, "groupId", at, type) };
  } else if (type === "alias") {
    context = { ...context, previousId: requiredId(call, "previousId", at, type) };
  }

  const sentIp = typeof context?.ip === "string" ? context.ip : null;
  const ip = truncateIp(sentIp ?? arrival.remoteAddress ?? "");
  if (sentIp !== null && ip !== null && ip !== sentIp) context = { ...context, ip };

  const page = isObject(context?.page) ? context.page : undefined;
  const fromProperties = type === "page" ? properties : null;
  const pageUrl = stringOrNull(page?.url) ?? stringOrNull(fromProperties?.url);
  const pagePath = stringOrNull(page?.path) ?? stringOrNull(fromProperties?.path) ?? pathOf(pageUrl);
  const referrer = stringOrNull(page?.referrer) ?? stringOrNull(fromProperties?.referrer);

  return {
    event_id: messageId ?? randomUUID(),
    event_type: type,
    event,
    user_id: userId,
    anonymous_id: anonymousId,
    session_id: stringOrNull(context?.sessionId),
    ts,
    received_at: arrival.receivedAt,
    source: arrival.source,
    page_url: pageUrl,
    page_path: pagePath,
    referrer,
    user_agent: stringOrNull(context?.userAgent),
    browser: null,
    os: null,
    device_type: null,
    ip,
    country: null,
    properties,
    context,
    // A group call's traits describe the group, so the user's context.traits do not stand in for them.
    traits: traits ?? (type === "group" ? null : objectOrNull(context?.traits)),
  };
}

/**
 * Event time corrected for the client's clock: the client's own clocks agree on how long ago the
 * event happened (sentAt - timestamp), and the server's clock says when "now" is.
 */
function eventTime(call: Record<string, unknown>, at: string, envelope: Envelope, arrival: Arrival): string {
  const timestamp = optionalTime(call, "timestamp", at);
  const originalTimestamp = optionalTime(call, "originalTimestamp", at);
  const sentAtMs = optionalTime(call, "sentAt", at) ?? envelope.sentAtMs;
  const clientTime = timestamp ?? originalTimestamp;
  if (clientTime === null) return arrival.receivedAt;
  const ms = sentAtMs === null ? clientTime : arrival.receivedAtMs - (sentAtMs - clientTime);
  if (ms < MIN_TIME_MS || ms > MAX_TIME_MS) {
    throw invalid(at, "timestamp", "(corrected by sentAt) falls outside the years 1-9999.");
  }
  return formatIsoMillis(ms);
}

function mergeContexts(
  batchContext: Record<string, unknown> | null,
  ownContext: Record<string, unknown> | null,
): Record<string, unknown> | null {
  if (batchContext === null) return ownContext;
  return ownContext === null ? batchContext : { ...batchContext, ...ownContext };
}

function withNameAndCategory(
  properties: Record<string, unknown> | null,
  name: string | null,
  category: string | null,
): Record<string, unknown> {
  const merged = { ...properties };
  if (name !== null) merged.name = name;
  if (category !== null) merged.category = category;
  return merged;
}

/** The path of an absolute URL, or null when there is no URL or it does not parse. */
function pathOf(url: string | null): string | null {
  if (url === null || !URL.canParse(url)) return null;
  return new URL(url).pathname;
}

/**
 * The address with its host part zeroed: IPv4 keeps 24 bits (a.b.c.0), IPv6 keeps 48 bits
 * (2001:db8:abcd::). IPv4-mapped IPv6 addresses (::ffff:a.b.c.d, as dual-stack sockets report
 * IPv4 peers) are treated as IPv4. Null when `address` is not an IP address.
 */
export function truncateIp(address: string): string | null {
  const zone = address.indexOf("%");
  const bare = zone < 0 ? address : address.slice(0, zone);
  const version = isIP(bare);
  if (version === 4) return `${bare.slice(0, bare.lastIndexOf("."))}.0`;
  if (version !== 6) return null;
  const lower = bare.toLowerCase();
  if (lower.startsWith("::ffff:") && isIP(lower.slice(7)) === 4) return truncateIp(lower.slice(7));
  const prefix = firstThreeGroups(lower);
  // RFC 5952 form: the trailing zero groups (at least five) are the longest run, so "::" takes them.
  let kept = 3;
  while (kept > 0 && prefix[kept - 1] === 0) kept--;
  return `${prefix
    .slice(0, kept)
    .map((group) => group.toString(16))
    .join(":")}::`;
}

/** The first three 16-bit groups of a valid IPv6 address, expanding "::". */
function firstThreeGroups(address: string): number[] {
  const gap = address.indexOf("::");
  let groups: string[];
  if (gap < 0) {
    groups = address.split(":", 3);
  } else {
    const head = splitGroups(address.slice(0, gap));
    const tail = splitGroups(address.slice(gap + 2));
    // A trailing dotted IPv4 part stands for two groups.
    const tailCount = tail.length + (tail.at(-1)?.includes(".") ? 1 : 0);
    groups = [...head, ...new Array<string>(8 - head.length - tailCount).fill("0"), ...tail];
  }
  return groups.slice(0, 3).map((group) => Number.parseInt(group, 16));
}

function splitGroups(part: string): string[] {
  return part === "" ? [] : part.split(":");
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function stringOrNull(value: unknown): string | null {
  return typeof value === "string" ? value : null;
}

function objectOrNull(value: unknown): Record<string, unknown> | null {
  return isObject(value) ? value : null;
}

/** The problem with field `name` of the call at `at`; the path is only built when there is a problem. */
function invalid(at: string, name: string, problem: string): Invalid {
  return new Invalid(at + name, `${at}${name} ${problem}`);
}

// Optional fields: absent and null mean "not sent" (Segment's libraries send nulls).

function optionalObject(
  call: Record<string, unknown>,
  name: string,
  at: string,
): Record<string, unknown> | null {
  const value = call[name];
  if (value === undefined || value === null) return null;
  if (!isObject(value)) throw invalid(at, name, "must be an object.");
  return value;
}

function optionalString(call: Record<string, unknown>, name: string, at: string): string | null {
  const value = call[name];
  if (value === undefined || value === null || value === "") return null;
  if (typeof value !== "string") throw invalid(at, name, "must be a string.");
  return value;
}

/** A user, anonymous, group or previous id: a string, or a number turned into one as Segment's libraries do. */
function optionalId(call: Record<string, unknown>, name: string, at: string): string | null {
  const value = call[name];
  return typeof value === "number" ? String(value) : optionalString(call, name, at);
}

function requiredId(call: Record<string, unknown>, name: string, at: string, type: EventType): string {
  const id = optionalId(call, name, at);
  if (id === null) throw invalid(at, name, `is required for a ${type} call.`);
  return id;
}

const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** Milliseconds since the epoch of an ISO 8601 date-time; one without a zone is taken as UTC. */
function optionalTime(call: Record<string, unknown>, name: string, at: string): number | null {
  const value = call[name];
  if (value === undefined || value === null) return null;
  if (typeof value === "string") {
    const canonical = parseIsoMillis(value);
    if (canonical !== undefined) return canonical;
    const match = ISO_8601.exec(value);
    if (match !== null) {
      const hasTimeWithoutZone = match[1] === undefined && value.length > 10;
      const ms = Date.parse(hasTimeWithoutZone ? `${value}Z` : value);
      if (!Number.isNaN(ms)) return ms;
    }
  }
  throw invalid(at, name, "must be an ISO 8601 date-time string.");
}
