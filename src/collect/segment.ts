/**
 * Segment HTTP tracking API (https://segment.com/docs/connections/spec/): auth, validating each
 * call and normalising it into a CanonicalEvent. Pure apart from generating missing message ids.
 *
 * Where the spec's extra fields land:
 * - `group`'s `groupId` is kept as `context.groupId` (a standard Segment context field);
 *   `alias`'s `previousId` as `context.previousId`. The call's value wins over the client's context.
 * - `integrations` is validated but not stored (it routes to destinations, which Sluice has none of).
 * - `context.ip` (or the peer's address) fills the `ip` column; the PII policy truncates it, in the
 *   column and inside `context`, before anything is stored (truncated here when there is no policy).
 * - Wrongly typed nested context fields (e.g. `context.page.url` not a string) are not errors:
 *   the columns derived from them are null and `context` keeps them as sent.
 */
import { randomUUID } from "node:crypto";
import { batchItemSpans, decodeJsonBody, textPrefix } from "./body.js";
import {
  type Arrival,
  correctedTime,
  eventIp,
  Invalid,
  invalid,
  isObject,
  MAX_EVENT_ID_LENGTH,
  nonEmptyString,
  objectOrNull,
  parseIsoTime,
  pathOf,
  stringOrNull,
} from "./fields.js";
import { formatIsoMillis } from "./iso-time.js";
import { type CanonicalEvent, EVENT_TYPES, type EventType } from "./model.js";
import {
  accepted,
  answered,
  BatchOutcome,
  bodyKeySource,
  headerKeySource,
  type PreparedRequest,
  type PrepareSettings,
  type Protocol,
  type RequestToPrepare,
  refused,
} from "./request.js";
import { withSchema } from "./schemas.js";

export { type Arrival, Invalid, truncateIp } from "./fields.js";

export type SegmentCall = EventType | "batch";

/**
 * Collector paths: the documented ones, the one-letter ones analytics.js posts to, and Jitsu's
 * (`/api/s/<call>` from browsers, `/api/s/s2s/<call>` from servers).
 */
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
  ...(["page", "track", "identify", "group", "alias", "screen"] as const).flatMap((call) => [
    [`/api/s/${call}`, call] as const,
    [`/api/s/s2s/${call}`, call] as const,
  ]),
]);

export const SEGMENT_PATHS: readonly string[] = [...CALLS_BY_PATH.keys()];

export const SEGMENT: Protocol = {
  name: "segment",
  routes: SEGMENT_PATHS.map((path) => ({ method: "POST", path })),
  prepare: (request, settings, arrival) => prepareSegment(request, settings, arrival),
};

/** The call a request path is for (query string and a trailing slash ignored), or undefined. */
export function callForPath(path: string): SegmentCall | undefined {
  const query = path.indexOf("?");
  const bare = query < 0 ? path : path.slice(0, query);
  return CALLS_BY_PATH.get(bare.length > 1 && bare.endsWith("/") ? bare.slice(0, -1) : bare);
}

/**
 * Prepares a request to one of the Segment endpoints: auth, decoding, validation, normalising.
 * The write key is the user name of Basic auth or, only without that header, `writeKey` in the body.
 */
export function prepareSegment(
  request: RequestToPrepare,
  settings: PrepareSettings,
  arrival: Arrival,
): PreparedRequest {
  const { writeKeys, limits } = settings;
  const call = callForPath(request.path);
  if (call === undefined) return answered(404, `There is no Segment endpoint at ${request.path}.`);

  // The header is checked before the body is read; a key in the body needs the body parsed.
  let source = headerKeySource(request, writeKeys);
  if (typeof source === "object") return source;

  const parsed = decodeJsonBody(request.body, request.contentEncoding, limits.maxRequestBytes);
  if (!("value" in parsed)) return refused(source, arrival, parsed);
  const { decoded, text, value: body } = parsed;
  if (!isObject(body)) {
    return refused(source, arrival, {
      status: 400,
      reason: "The request body must be a JSON object.",
      payload: text,
    });
  }

  if (source === undefined) {
    source = bodyKeySource(
      nonEmptyString(body.writeKey),
      writeKeys,
      "A write key is required: as the user name of HTTP Basic auth, or as writeKey in the body.",
      "The writeKey in the body is not known.",
    );
    if (typeof source === "object") return source;
  }
  arrival.source = source;

  if (call === "batch") return prepareBatch(body, decoded, text, arrival, settings);
  if (decoded.length > limits.maxEventBytes) {
    return refused(source, arrival, {
      status: 413,
      reason: `The event is ${decoded.length} bytes; the limit per event is ${limits.maxEventBytes} bytes.`,
      payload: textPrefix(decoded, limits.maxEventBytes),
    });
  }
  const event = withSchema(normaliseCall(body, call, "", NO_ENVELOPE, arrival), arrival, "");
  if (event instanceof Invalid) {
    const payload = withoutWriteKey(text, body);
    return refused(source, arrival, { status: 400, reason: event.reason, field: event.field, payload });
  }
  const response = { status: 200, body: { success: true } };
  return accepted(response, arrival, [event], [], settings.enrichment);
}

function prepareBatch(
  body: Record<string, unknown>,
  decoded: Buffer,
  text: string,
  arrival: Arrival,
  settings: PrepareSettings,
): PreparedRequest {
  const { maxEventBytes } = settings.limits;
  const batch = readBatch(body);
  if (batch instanceof Invalid) {
    const payload = withoutWriteKey(text, body);
    return refused(arrival.source, arrival, {
      status: 400,
      reason: batch.reason,
      field: batch.field,
      payload,
    });
  }
  const { items, envelope } = batch;
  // No item can be larger than the whole body, so only a larger body needs its items measured.
  const measure = decoded.length > maxEventBytes;
  const spans = measure ? batchItemSpans(decoded) : undefined;
  const exactSpans = spans?.length === items.length * 2 ? spans : undefined;

  const outcome = new BatchOutcome(arrival);
  for (let index = 0; index < items.length; index++) {
    const item = items[index];
    const size = measure ? itemSize(item, index, exactSpans) : 0;
    const result =
      size > maxEventBytes
        ? new Invalid(
            `batch[${index}]`,
            `batch[${index}] is ${size} bytes; the limit per event is ${maxEventBytes} bytes.`,
          )
        : withSchema(normaliseBatchItem(item, index, envelope, arrival), arrival, `batch[${index}].`);
    if (result instanceof Invalid) {
      const payload = itemText(item, index, exactSpans, decoded, maxEventBytes);
      outcome.reject(index, result.field, result.reason, payload);
    } else {
      outcome.accept(result);
    }
  }
  const { events, errors, rejectedLines } = outcome;
  const response = {
    status: 200,
    body: { success: true, accepted: events.length, rejected: errors.length, errors },
  };
  return accepted(response, arrival, events, rejectedLines, settings.enrichment);
}

/** A batch item's size in bytes as sent: its span in the body, or else its length re-serialised. */
function itemSize(item: unknown, index: number, spans: number[] | undefined): number {
  if (spans === undefined) return Buffer.byteLength(JSON.stringify(item));
  return (spans[2 * index + 1] as number) - (spans[2 * index] as number);
}

/** A batch item's text as sent (or else re-serialised), cut to `maxBytes` for quarantine. */
function itemText(
  item: unknown,
  index: number,
  spans: number[] | undefined,
  body: Buffer,
  maxBytes: number,
): string {
  if (spans === undefined) return textPrefix(Buffer.from(JSON.stringify(item)), maxBytes);
  return textPrefix(body, maxBytes, spans[2 * index], spans[2 * index + 1]);
}

/** The body text to quarantine, without its write key: the rejected table is readable by everyone. */
function withoutWriteKey(text: string, body: Record<string, unknown>): string {
  if (!("writeKey" in body)) return text;
  const { writeKey: _, ...rest } = body;
  return JSON.stringify(rest);
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
  if (messageId !== null && messageId.length > MAX_EVENT_ID_LENGTH) {
    throw invalid(at, "messageId", `is longer than ${MAX_EVENT_ID_LENGTH} characters.`);
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
    // Segment's libraries send the name on its own and in the properties; Jitsu's only in the latter.
    event = name ?? (typeof properties?.name === "string" && properties.name !== "" ? properties.name : null);
    if (name !== null || category !== null) properties = withNameAndCategory(properties, name, category);
  }

  let context = mergeContexts(envelope.context, ownContext);
  if (type === "group") {
    context = { ...context, groupId: requiredId(call, "groupId", at, type) };
  } else if (type === "alias") {
    context = { ...context, previousId: requiredId(call, "previousId", at, type) };
  }

  const sentIp = typeof context?.ip === "string" ? context.ip : null;
  const ip = eventIp(sentIp ?? arrival.remoteAddress ?? "", arrival);
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
  const ms = correctedTime(clientTime, sentAtMs, arrival.receivedAtMs);
  if (ms === undefined) {
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

/** Milliseconds since the epoch of an ISO 8601 date-time; one without a zone is taken as UTC. */
function optionalTime(call: Record<string, unknown>, name: string, at: string): number | null {
  const value = call[name];
  if (value === undefined || value === null) return null;
  if (typeof value === "string") {
    const ms = parseIsoTime(value);
    if (ms !== undefined) return ms;
  }
  throw invalid(at, name, "must be an ISO 8601 date-time string.");
}
