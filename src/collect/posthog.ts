/**
 * PostHog's capture API (https://posthog.com/docs/api/capture), as posthog-js, posthog-node and the
 * other SDKs send it: `POST /batch/`, `/e/`, `/i/v0/e/`, `/capture/` (with or without the trailing
 * slash).
 *
 * Bodies: JSON, as `{"api_key", "batch": [...], "sent_at"}`, an array of events, or one event;
 * gzip-compressed (Content-Encoding: gzip, or `?compression=gzip-js` with the gzip bytes as the
 * body); base64-encoded; or form-encoded with the payload (JSON or base64) in `data=`. lz64, which
 * old posthog-js versions used, is refused with 415.
 *
 * Write key: PostHog's project API key, checked as a Sluice write key: `api_key` (or `token`) of
 * the body, or else the first event's `api_key`/`properties.token`, or `Authorization: Basic`.
 * An event carrying another key than its request is rejected. The key is not stored.
 *
 * Mapping to the canonical event:
 * - `$pageview` → page; `$screen` → screen named `$screen_name`; `$identify` and `$set` → identify
 *   with traits from `$set_once` then `$set` (in the properties, or beside them as posthog-js
 *   sends); `$create_alias` → alias (`properties.alias` is `context.previousId`); `$groupidentify`
 *   → group (`$group_key` → `context.groupId`, `$group_type` → `context.groupType`, `$group_set` →
 *   traits); any other event → track with its name.
 * - `distinct_id` → user_id, unless the SDK says the id is anonymous, as PostHog reads it: the event
 *   has `$is_identified: false`, or its `distinct_id` is its `$device_id` (posthog-js before identify).
 *   Then it is the anonymous_id. Otherwise anonymous_id is `$anon_distinct_id` (the id an
 *   `$identify` merges from) or `$device_id`.
 * - `uuid` → event_id; `$current_url`, `$pathname`, `$referrer` (except "$direct") → page columns;
 *   `$session_id` → session_id; `$raw_user_agent` → user_agent; `$ip` (or the peer) → ip, truncated
 *   (also in properties); `$lib`, `$lib_version` → context.library. Properties are kept as sent.
 * - Time: `timestamp` corrected by `sent_at` (of the event, the body, or else the query string's
 *   `sent_at` or `_`, in ms) for the client's clock skew (as PostHog does), or else
 *   the receive time minus `offset` (ms), or else the receive time.
 *
 * Answers: 200 `{"status": 1, "accepted", "rejected", "errors"}` (rejected events of a batch are
 * listed, as in a Segment batch); a single invalid event, or an unreadable body, is a 400 naming
 * the field.
 */
import { randomUUID } from "node:crypto";
import { decodeBody, invalidJsonReason, textPrefix } from "./body.js";
import {
  type Arrival,
  correctedTime,
  eventIp,
  Invalid,
  invalid,
  isObject,
  isRepresentableTime,
  MAX_EVENT_ID_LENGTH,
  nonEmptyString,
  objectOrNull,
  parseIsoTime,
  pathOf,
  stringOrNull,
} from "./fields.js";
import { formatIsoMillis } from "./iso-time.js";
import type { CanonicalEvent, EventType } from "./model.js";
import {
  accepted,
  BatchOutcome,
  bodyKeySource,
  headerKeySource,
  type PreparedRequest,
  type PrepareSettings,
  type Protocol,
  type Refusal,
  type RequestToPrepare,
  refused,
} from "./request.js";
import { withSchema } from "./schemas.js";

const CAPTURE_PATHS = ["/batch/", "/e/", "/i/v0/e/", "/capture/"];

export const POSTHOG: Protocol = {
  name: "posthog",
  routes: CAPTURE_PATHS.flatMap((path) => [
    { method: "POST" as const, path },
    { method: "POST" as const, path: path.slice(0, -1) },
  ]),
  prepare: (request, settings, arrival) => preparePosthog(request, settings, arrival),
};

const GZIP_MAGIC = [0x1f, 0x8b];

function preparePosthog(
  request: RequestToPrepare,
  settings: PrepareSettings,
  arrival: Arrival,
): PreparedRequest {
  const { writeKeys, limits } = settings;
  let source = headerKeySource(request, writeKeys);
  if (typeof source === "object") return source;

  const query = new URLSearchParams(request.query);
  const payload = readPayload(request, query, limits.maxRequestBytes);
  if (!("value" in payload)) return refused(source, arrival, payload);
  const { value: body, text } = payload;

  let items: unknown[];
  let single = false;
  let bodyKey: unknown;
  let sentAt: unknown;
  if (Array.isArray(body)) {
    items = body;
  } else if (isObject(body) && "batch" in body) {
    if (!Array.isArray(body.batch)) {
      return refused(source, arrival, {
        status: 400,
        field: "batch",
        reason: "batch must be an array of events.",
        payload: textPrefix(Buffer.from(text), limits.maxEventBytes),
      });
    }
    items = body.batch;
    bodyKey = body.api_key ?? body.token;
    sentAt = body.sent_at;
  } else if (isObject(body)) {
    items = [body];
    single = true;
  } else {
    return refused(source, arrival, {
      status: 400,
      reason: "The request body must be an event, an array of events, or an object with a batch array.",
      payload: textPrefix(Buffer.from(text), limits.maxEventBytes),
    });
  }

  let requestKey: string | undefined;
  if (source === undefined) {
    requestKey = nonEmptyString(bodyKey) ?? eventKey(items[0]);
    source = bodyKeySource(
      requestKey,
      writeKeys,
      "A write key is required: as api_key (or token) in the body or the event, or as the user name of HTTP Basic auth.",
      "The api_key is not a known write key.",
    );
    if (typeof source === "object") return source;
  }
  arrival.source = source;

  let sentAtMs = querySentAt(query);
  if (sentAt !== undefined && sentAt !== null) {
    sentAtMs = typeof sentAt === "string" ? (parseIsoTime(sentAt) ?? null) : null;
    if (sentAtMs === null) {
      return refused(source, arrival, {
        status: 400,
        field: "sent_at",
        reason: "sent_at must be an ISO 8601 date-time string.",
        payload: textPrefix(Buffer.from(text), limits.maxEventBytes),
      });
    }
  }

  const outcome = new BatchOutcome(arrival);
  const measure = text.length > limits.maxEventBytes;
  for (let index = 0; index < items.length; index++) {
    const item = items[index];
    const at = single ? "" : `batch[${index}].`;
    const size = measure ? Buffer.byteLength(JSON.stringify(item)) : 0;
    let result: CanonicalEvent | Invalid;
    if (size > limits.maxEventBytes) {
      const where = single ? "The event" : `batch[${index}]`;
      result = new Invalid(
        where,
        `${where} is ${size} bytes; the limit per event is ${limits.maxEventBytes} bytes.`,
      );
    } else {
      const key = eventKey(item);
      result =
        requestKey !== undefined && key !== undefined && key !== requestKey
          ? new Invalid(`${at}api_key`, `${at}api_key (or properties.token) differs from the request's.`)
          : withSchema(normalisePosthogEvent(item, at, sentAtMs, arrival), arrival, at);
    }
    if (result instanceof Invalid) {
      outcome.reject(index, result.field, result.reason, quarantined(item, limits.maxEventBytes));
    } else {
      outcome.accept(result);
    }
  }

  const { events, errors, rejectedLines } = outcome;
  const error = errors[0];
  if (single && error !== undefined) {
    return refused(source, arrival, {
      status: error.reason.includes(" bytes; the limit") ? 413 : 400,
      reason: error.reason,
      field: error.field,
      payload: quarantined(items[0], limits.maxEventBytes),
    });
  }
  const response = {
    status: 200,
    body: { status: 1, accepted: events.length, rejected: errors.length, errors },
  };
  return accepted(response, arrival, events, rejectedLines, settings.enrichment);
}

/**
 * The request's payload, decoded from whatever wrapping the SDK used: Content-Encoding, form
 * encoding (`data=`), gzip bytes and base64, in that order.
 */
function readPayload(
  request: RequestToPrepare,
  query: URLSearchParams,
  maxBytes: number,
): { value: unknown; text: string } | Refusal {
  const decoded = decodeBody(request.body, request.contentEncoding, maxBytes);
  if (!Buffer.isBuffer(decoded)) return decoded;
  let compression = query.get("compression");
  let bytes = decoded;
  if (/^application\/x-www-form-urlencoded\b/i.test(request.contentType ?? "")) {
    const form = new URLSearchParams(decoded.toString("utf8"));
    const data = form.get("data");
    if (data === null) {
      return {
        status: 400,
        field: "data",
        reason: "A form-encoded body must carry the events in its data field.",
        payload: textPrefix(decoded, maxBytes),
      };
    }
    compression = form.get("compression") ?? compression;
    bytes = Buffer.from(data, "utf8");
  }
  if (compression === "lz64") {
    return {
      status: 415,
      reason: "lz64 compression is not supported; send gzip (compression=gzip-js), base64 or plain JSON.",
      payload: bytes.toString("base64", 0, Math.floor(maxBytes / 4) * 3),
      opaque: true,
    };
  }
  if (bytes[0] === GZIP_MAGIC[0] && bytes[1] === GZIP_MAGIC[1]) {
    const inflated = decodeBody(bytes, "gzip", maxBytes);
    if (!Buffer.isBuffer(inflated)) return inflated;
    bytes = inflated;
  }
  let text = bytes.toString("utf8").trim();
  if (compression === "base64" || !(text.startsWith("{") || text.startsWith("["))) {
    // Form decoding turns a "+" the client did not escape into a space.
    const base64 = text.replaceAll(" ", "+");
    if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(base64)) {
      return {
        status: 400,
        reason: "The request body is neither JSON nor base64-encoded JSON.",
        payload: textPrefix(bytes, maxBytes),
      };
    }
    text = Buffer.from(base64, "base64").toString("utf8");
  }
  try {
    return { value: JSON.parse(text), text };
  } catch (error) {
    return {
      status: 400,
      reason: invalidJsonReason(error),
      payload: textPrefix(Buffer.from(text), maxBytes),
    };
  }
}

/**
 * The send time posthog-js puts in the query string when it does not put it in the body: `sent_at`
 * (POST) or `_` (GET), in ms since the epoch. Null without one; one that is not a time is ignored,
 * as older versions sent `_` as a mere cache buster.
 */
function querySentAt(query: URLSearchParams): number | null {
  const value = query.get("sent_at") ?? query.get("_");
  if (value === null || !/^\d{1,15}$/.test(value)) return null;
  const ms = Number(value);
  return isRepresentableTime(ms) ? ms : null;
}

/** The write key an event carries itself, if any. */
function eventKey(item: unknown): string | undefined {
  if (!isObject(item)) return undefined;
  return (
    nonEmptyString(item.api_key) ??
    nonEmptyString(item.token) ??
    nonEmptyString(objectOrNull(item.properties)?.token)
  );
}

/** An event's text for quarantine, without its write key: the rejected table is readable by everyone. */
function quarantined(item: unknown, maxBytes: number): string {
  let kept = item;
  if (isObject(item)) {
    const { api_key: _, token: __, ...rest } = item;
    const properties = objectOrNull(item.properties);
    if (properties !== null && "token" in properties) {
      const { token: ___, ...otherProperties } = properties;
      rest.properties = otherProperties;
    }
    kept = rest;
  }
  return textPrefix(Buffer.from(JSON.stringify(kept) ?? "null"), maxBytes);
}

/** Validates and normalises one event; `at` prefixes field names in errors ("batch[3]." or ""). */
export function normalisePosthogEvent(
  item: unknown,
  at: string,
  sentAtMs: number | null,
  arrival: Arrival,
): CanonicalEvent | Invalid {
  if (!isObject(item)) {
    const where = at === "" ? "The event" : at.slice(0, -1);
    return new Invalid(where, `${where} must be an object.`);
  }
  try {
    return normalise(item, at, sentAtMs, arrival);
  } catch (error) {
    if (error instanceof Invalid) return error;
    throw error;
  }
}

function normalise(
  item: Record<string, unknown>,
  at: string,
  sentAtMs: number | null,
  arrival: Arrival,
): CanonicalEvent {
  const name = item.event;
  if (typeof name !== "string" || name === "") throw invalid(at, "event", "must be a non-empty string.");
  let properties: Record<string, unknown> | null = null;
  if (item.properties !== undefined && item.properties !== null) {
    if (!isObject(item.properties)) throw invalid(at, "properties", "must be an object.");
    properties = item.properties;
  }
  const props = properties ?? {};
  const distinctId = idOf(item.distinct_id ?? props.distinct_id ?? item.$distinct_id);
  if (distinctId === null) throw invalid(at, "distinct_id", "is required: a non-empty string or number.");
  let eventId: string | null = null;
  if (item.uuid !== undefined && item.uuid !== null) {
    if (typeof item.uuid !== "string" || item.uuid === "")
      throw invalid(at, "uuid", "must be a non-empty string.");
    if (item.uuid.length > MAX_EVENT_ID_LENGTH) {
      throw invalid(at, "uuid", `is longer than ${MAX_EVENT_ID_LENGTH} characters.`);
    }
    eventId = item.uuid;
  }
  const ts = eventTime(item, at, sentAtMs, arrival);

  let type: EventType = "track";
  let event: string | null = name;
  let traits: Record<string, unknown> | null = null;
  const context: Record<string, unknown> = {};
  switch (name) {
    case "$pageview":
      type = "page";
      event = null;
      break;
    case "$screen":
      type = "screen";
      event = stringOrNull(props.$screen_name);
      break;
    case "$identify":
    case "$set":
      type = "identify";
      event = null;
      traits = personTraits(item, props);
      break;
    case "$create_alias": {
      type = "alias";
      event = null;
      const alias = idOf(props.alias);
      if (alias === null) throw invalid(at, "properties.alias", "is required for $create_alias.");
      context.previousId = alias;
      break;
    }
    case "$groupidentify": {
      type = "group";
      event = null;
      const groupKey = idOf(props.$group_key);
      if (groupKey === null) throw invalid(at, "properties.$group_key", "is required for $groupidentify.");
      context.groupId = groupKey;
      if (typeof props.$group_type === "string") context.groupType = props.$group_type;
      traits = objectOrNull(props.$group_set);
      break;
    }
  }

  const deviceId = idOf(props.$device_id);
  const anonymous =
    type !== "identify" && (props.$is_identified === false || (deviceId !== null && deviceId === distinctId));
  const previousAnonymousId = idOf(props.$anon_distinct_id) ?? (deviceId === distinctId ? null : deviceId);

  const sentIp = stringOrNull(props.$ip);
  const ip = eventIp(sentIp ?? arrival.remoteAddress ?? "", arrival);
  if (properties !== null && ("token" in properties || (sentIp !== null && sentIp !== ip))) {
    const { token: _, ...rest } = properties;
    if (sentIp !== null) rest.$ip = ip;
    properties = rest;
  }
  if (sentIp !== null && ip !== null) context.ip = ip;
  const userAgent = stringOrNull(props.$raw_user_agent);
  if (userAgent !== null) context.userAgent = userAgent;
  const library = stringOrNull(props.$lib);
  if (library !== null) {
    const version = stringOrNull(props.$lib_version);
    context.library = version === null ? { name: library } : { name: library, version };
  }

  const url = stringOrNull(props.$current_url);
  const referrer = stringOrNull(props.$referrer);
  return {
    event_id: eventId ?? randomUUID(),
    event_type: type,
    event,
    user_id: anonymous ? null : distinctId,
    anonymous_id: anonymous ? distinctId : previousAnonymousId,
    session_id: idOf(props.$session_id),
    ts,
    received_at: arrival.receivedAt,
    source: arrival.source,
    page_url: url,
    page_path: stringOrNull(props.$pathname) ?? pathOf(url),
    referrer: referrer === "$direct" ? null : referrer,
    user_agent: userAgent,
    browser: null,
    os: null,
    device_type: null,
    ip,
    country: null,
    properties,
    context: Object.keys(context).length === 0 ? null : context,
    traits,
  };
}

/**
 * A person's traits from an identify: `$set_once` values, overridden by `$set` values. Each is read
 * from the properties (posthog-node) and from the event itself (posthog-js), the latter winning.
 */
function personTraits(
  item: Record<string, unknown>,
  props: Record<string, unknown>,
): Record<string, unknown> | null {
  const traits = {
    ...objectOrNull(props.$set_once),
    ...objectOrNull(item.$set_once),
    ...objectOrNull(props.$set),
    ...objectOrNull(item.$set),
  };
  return Object.keys(traits).length === 0 ? null : traits;
}

function idOf(value: unknown): string | null {
  if (typeof value === "number" && Number.isFinite(value)) return String(value);
  return typeof value === "string" && value !== "" ? value : null;
}

function eventTime(
  item: Record<string, unknown>,
  at: string,
  sentAtMs: number | null,
  arrival: Arrival,
): string {
  const { timestamp } = item;
  if (timestamp !== undefined && timestamp !== null) {
    const created = typeof timestamp === "string" ? parseIsoTime(timestamp) : undefined;
    if (created === undefined) throw invalid(at, "timestamp", "must be an ISO 8601 date-time string.");
    const ownSentAt = typeof item.sent_at === "string" ? (parseIsoTime(item.sent_at) ?? null) : null;
    const ms = correctedTime(created, ownSentAt ?? sentAtMs, arrival.receivedAtMs);
    if (ms === undefined)
      throw invalid(at, "timestamp", "(corrected by sent_at) falls outside the years 1-9999.");
    return formatIsoMillis(ms);
  }
  const { offset } = item;
  if (offset !== undefined && offset !== null) {
    const ms = typeof offset === "number" ? arrival.receivedAtMs - offset : Number.NaN;
    if (!isRepresentableTime(ms)) throw invalid(at, "offset", "must be a number of milliseconds.");
    return formatIsoMillis(ms);
  }
  return arrival.receivedAt;
}
