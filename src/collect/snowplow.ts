/**
 * The Snowplow tracker protocol (https://docs.snowplow.io/docs/events/tracker-protocol/):
 * `POST /com.snowplowanalytics.snowplow/tp2` with payload_data (`{"schema": …, "data": [{…}, …]}`,
 * each event a map of string fields) and the `GET /i` pixel (one event in the query string).
 *
 * Write key: the protocol has none. A request is authenticated by `Authorization: Basic
 * base64(writeKey:)` when the tracker can send headers (the node tracker's `customHeaders`), or else
 * by the app id: `aid` must be a write key (`appId` in the trackers), the same for every event of a
 * request. An app id used as the write key is not stored (the `source` column names it); an app id
 * beside a header key is kept in `context.snowplow.aid`.
 *
 * Mapping to the canonical event:
 * - `e`: `pv` → page; `pp` → track "page_ping" (scroll offsets in properties); `se` → track named
 *   "category/action" (properties category, action, label, property, value); `ue` → track named
 *   after the self-describing event's schema (`iglu:com.acme/link_click/jsonschema/1-0-0` →
 *   "link_click"; the event's data are the properties, the schema URI is `context.snowplow.schema`);
 *   `tr`/`ti` (legacy ecommerce) → track "transaction"/"transaction_item".
 * - `eid` → event_id (deduplicated like Segment's messageId); `uid` → user_id; `duid` (domain user
 *   id) → anonymous_id, or else the collector's network user id; `sid` → session_id.
 * - `url`, `refr` → page_url, page_path, referrer; with the title (`page`) also in `context.page`.
 * - `ua` → user_agent, or else the request's User-Agent header (not for server-side trackers,
 *   `p=srv`, whose header names the library); `ip` (or the peer) → ip, truncated.
 * - Time: `ttm` (true timestamp) as it is; otherwise `dtm` corrected by `stm` for the device's clock
 *   skew, as Segment's timestamp by sentAt; otherwise the receive time.
 * - `lang` → context.locale, `tz` → context.timezone, `res` → context.screen; contexts (`co`, or
 *   `cx` in base64url) → `context.snowplow.contexts`, each entity checked against the schema of its
 *   iglu URI when one is registered; every other field as sent in `context.snowplow`.
 *
 * Answers, as the reference collector: 200 with the first-party `sp` cookie (the network user id,
 * renewed for a year on each request; none with `SP-Anonymous`, which also drops the IP address);
 * a POST's body lists rejected events like a Segment batch; the pixel is a 1×1 GIF that must not be
 * cached. A bad payload_data or pixel event is a 400 naming the field.
 */
import { randomUUID } from "node:crypto";
import { decodeJsonBody, textPrefix } from "./body.js";
import {
  type Arrival,
  correctedTime,
  eventIp,
  Invalid,
  invalid,
  isObject,
  MAX_EVENT_ID_LENGTH,
  nonEmptyString,
  pathOf,
} from "./fields.js";
import { formatIsoMillis } from "./iso-time.js";
import type { CanonicalEvent, EventType } from "./model.js";
import {
  accepted,
  BatchOutcome,
  bodyKeySource,
  type CollectResponse,
  headerKeySource,
  type PreparedRequest,
  type PrepareSettings,
  type Protocol,
  type RequestToPrepare,
  refused,
} from "./request.js";
import { withSchema } from "./schemas.js";

export const SNOWPLOW_POST_PATH = "/com.snowplowanalytics.snowplow/tp2";
export const SNOWPLOW_PIXEL_PATH = "/i";

export const SNOWPLOW: Protocol = {
  name: "snowplow",
  routes: [
    { method: "POST", path: SNOWPLOW_POST_PATH },
    { method: "GET", path: SNOWPLOW_PIXEL_PATH },
  ],
  prepare: (request, settings, arrival) => prepareSnowplow(request, settings, arrival),
};

/** A transparent 1×1 GIF: what the pixel answers. */
export const PIXEL_GIF = Buffer.from("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7", "base64");

const PIXEL_HEADERS = {
  "content-type": "image/gif",
  "cache-control": "no-cache, no-store, must-revalidate",
  pragma: "no-cache",
  expires: "Thu, 01 Jan 1970 00:00:00 GMT",
};

const COOKIE_MAX_AGE_S = 365 * 24 * 3600;
/** What a network user id read back from the `sp` cookie may look like (ours are UUIDs). */
const COOKIE_ID = /^[\w-]{1,64}$/;

/** What applies to every event of a request. */
interface RequestFacts {
  arrival: Arrival;
  /** The collector cookie's (or the tracker's `tnuid`) id; null with SP-Anonymous. */
  networkUserId: string | null;
  userAgent: string | undefined;
  anonymous: boolean;
  /** The app id that is this request's write key, which is not stored; undefined with a header key. */
  keyAid: string | undefined;
}

function prepareSnowplow(
  request: RequestToPrepare,
  settings: PrepareSettings,
  arrival: Arrival,
): PreparedRequest {
  const { writeKeys, limits } = settings;
  const pixel = request.method === "GET";
  let source = headerKeySource(request, writeKeys);
  if (typeof source === "object") return source;

  let items: unknown[];
  // No event can be larger than the decoded body, so only a larger body needs its events measured.
  let measure = false;
  if (pixel) {
    if (request.query.length > limits.maxEventBytes) {
      return refused(source, arrival, {
        status: 413,
        reason: `The event is ${request.query.length} bytes; the limit per event is ${limits.maxEventBytes} bytes.`,
        payload: request.query.slice(0, limits.maxEventBytes),
      });
    }
    items = [Object.fromEntries(new URLSearchParams(request.query))];
  } else {
    const parsed = decodeJsonBody(request.body, request.contentEncoding, limits.maxRequestBytes);
    if (!("value" in parsed)) return refused(source, arrival, parsed);
    const { decoded, value: body } = parsed;
    measure = decoded.length > limits.maxEventBytes;
    if (!isObject(body) || !Array.isArray(body.data)) {
      return refused(source, arrival, {
        status: 400,
        field: "data",
        reason:
          'The request body must be Snowplow payload_data: an object whose "data" is an array of events.',
        payload: textPrefix(decoded, limits.maxEventBytes),
      });
    }
    items = body.data;
  }

  let keyAid: string | undefined;
  if (source === undefined) {
    const first = items[0];
    keyAid = isObject(first) ? nonEmptyString(first.aid) : undefined;
    source = bodyKeySource(
      keyAid,
      writeKeys,
      "A write key is required: as the app id (aid) of the events, or as the user name of HTTP Basic auth.",
      "The app id (aid) is not a known write key.",
    );
    if (typeof source === "object") return source;
  }
  arrival.source = source;

  const cookie = collectorCookie(request);
  const facts: RequestFacts = {
    arrival,
    networkUserId: cookie.id,
    userAgent: request.userAgent,
    anonymous: request.anonymous,
    keyAid,
  };
  const outcome = new BatchOutcome(arrival);
  for (let index = 0; index < items.length; index++) {
    const item = items[index];
    const at = pixel ? "" : `data[${index}].`;
    const size = measure ? Buffer.byteLength(JSON.stringify(item)) : 0;
    const result =
      size > limits.maxEventBytes
        ? new Invalid(
            `data[${index}]`,
            `data[${index}] is ${size} bytes; the limit per event is ${limits.maxEventBytes} bytes.`,
          )
        : keyAid !== undefined && isObject(item) && item.aid !== keyAid
          ? new Invalid(
              `${at}aid`,
              `${at}aid must be the write key of the request's first event, as it names the source.`,
            )
          : normaliseSnowplowEvent(item, at, facts);
    if (result instanceof Invalid) {
      const payload = textPrefix(Buffer.from(JSON.stringify(withoutAid(item, keyAid))), limits.maxEventBytes);
      outcome.reject(index, result.field, result.reason, payload);
    } else {
      outcome.accept(result);
    }
  }

  const headers: Record<string, string> = cookie.header === null ? {} : { "set-cookie": cookie.header };
  const { events, errors, rejectedLines } = outcome;
  if (pixel) {
    const error = errors[0];
    if (error !== undefined) {
      return refused(source, arrival, {
        status: 400,
        reason: error.reason,
        field: error.field,
        payload: JSON.stringify(withoutAid(items[0], keyAid)),
      });
    }
    const response: CollectResponse = {
      status: 200,
      body: PIXEL_GIF,
      headers: { ...PIXEL_HEADERS, ...headers },
    };
    return accepted(response, arrival, events, [], settings.enrichment);
  }
  const response: CollectResponse = {
    status: 200,
    body: { success: true, accepted: events.length, rejected: errors.length, errors },
    headers,
  };
  return accepted(response, arrival, events, rejectedLines, settings.enrichment);
}

/** The network user id from the `sp` cookie (or a new one), and the Set-Cookie header renewing it. */
function collectorCookie(request: RequestToPrepare): { id: string | null; header: string | null } {
  if (request.anonymous) return { id: null, header: null };
  const sent = cookieValue(request.cookie, "sp");
  const id = sent !== undefined && COOKIE_ID.test(sent) ? sent : randomUUID();
  // SameSite=None (which needs Secure) so that the cookie also comes along from the sites being tracked.
  return { id, header: `sp=${id}; Path=/; Max-Age=${COOKIE_MAX_AGE_S}; SameSite=None; Secure; HttpOnly` };
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  if (header === undefined) return undefined;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function withoutAid(item: unknown, keyAid: string | undefined): unknown {
  if (keyAid === undefined || !isObject(item) || !("aid" in item)) return item;
  const { aid: _, ...rest } = item;
  return rest;
}

/** Fields that become columns or are decoded into other places; the rest is kept in context.snowplow. */
const MAPPED_FIELDS = new Set([
  "e",
  "eid",
  "uid",
  "duid",
  "sid",
  "tnuid",
  "nuid",
  "url",
  "page",
  "refr",
  "ua",
  "ip",
  "dtm",
  "stm",
  "ttm",
  "lang",
  "tz",
  "res",
  "co",
  "cx",
  "ue_pr",
  "ue_px",
  "se_ca",
  "se_ac",
  "se_la",
  "se_pr",
  "se_va",
  "pp_mix",
  "pp_max",
  "pp_miy",
  "pp_may",
]);

const LEGACY_ECOMMERCE: Record<string, Record<string, string>> = {
  tr: {
    tr_id: "order_id",
    tr_af: "affiliation",
    tr_tt: "total",
    tr_tx: "tax",
    tr_sh: "shipping",
    tr_ci: "city",
    tr_st: "state",
    tr_co: "country",
    tr_cu: "currency",
  },
  ti: {
    ti_id: "order_id",
    ti_sk: "sku",
    ti_nm: "name",
    ti_ca: "category",
    ti_pr: "price",
    ti_qu: "quantity",
    ti_cu: "currency",
  },
};
const LEGACY_NUMBERS = new Set(["tr_tt", "tr_tx", "tr_sh", "ti_pr", "ti_qu"]);
for (const fields of Object.values(LEGACY_ECOMMERCE))
  for (const field of Object.keys(fields)) MAPPED_FIELDS.add(field);

const EVENT_KINDS = "pv (page view), pp (page ping), se (structured), ue (self-describing), tr, ti";
const IGLU_URI = /^iglu:[\w.-]+\/([\w-]+)\/[\w-]+\/\d+-\d+-\d+$/;

/**
 * Validates and normalises one tp2 event, and checks it against its schema (a self-describing
 * event's by its iglu URI); `at` prefixes field names in errors ("data[3]." or "").
 */
export function normaliseSnowplowEvent(
  item: unknown,
  at: string,
  facts: RequestFacts,
): CanonicalEvent | Invalid {
  if (!isObject(item)) {
    const where = at === "" ? "The event" : at.slice(0, -1);
    return new Invalid(where, `${where} must be an object of string fields.`);
  }
  try {
    const { event, igluUri, contexts } = normalise(new Fields(item, at), facts);
    const checked = withSchema(event, facts.arrival, at, igluUri);
    const { schemas } = facts.arrival;
    if (checked instanceof Invalid || schemas === undefined || contexts === undefined) return checked;
    for (const [index, entity] of contexts.entities.entries()) {
      const problem = schemas.entityProblem(entity, event, `${at}${contexts.field}[${index}].`);
      if (problem !== null) return problem;
    }
    return checked;
  } catch (error) {
    if (error instanceof Invalid) return error;
    throw error;
  }
}

/** An event's context entities, and the field they came in (`co` or `cx`). */
interface Contexts {
  field: string;
  entities: { schema: string; data?: unknown }[];
}

function normalise(
  fields: Fields,
  facts: RequestFacts,
): { event: CanonicalEvent; igluUri?: string; contexts?: Contexts } {
  const { arrival } = facts;
  const kind = fields.text("e");
  if (kind === null) throw fields.invalid("e", `is required: the event type, one of ${EVENT_KINDS}.`);
  const eventId = fields.text("eid");
  if (eventId !== null && eventId.length > MAX_EVENT_ID_LENGTH) {
    throw fields.invalid("eid", `is longer than ${MAX_EVENT_ID_LENGTH} characters.`);
  }

  let type: EventType = "track";
  let name: string | null;
  let properties: Record<string, unknown> | null = null;
  let schema: string | undefined;
  const title = fields.text("page");
  switch (kind) {
    case "pv":
      type = "page";
      name = null;
      if (title !== null) properties = { title };
      break;
    case "pp":
      name = "page_ping";
      properties = dropNulls({
        min_x: fields.number("pp_mix"),
        max_x: fields.number("pp_max"),
        min_y: fields.number("pp_miy"),
        max_y: fields.number("pp_may"),
      });
      break;
    case "se": {
      const category = fields.required("se_ca", "is required for a structured event (e=se).");
      const action = fields.required("se_ac", "is required for a structured event (e=se).");
      name = `${category}/${action}`;
      properties = dropNulls({
        category,
        action,
        label: fields.text("se_la"),
        property: fields.text("se_pr"),
        value: fields.number("se_va"),
      });
      break;
    }
    case "ue": {
      const envelope = fields.json("ue_pr", "ue_px");
      if (envelope === null)
        throw fields.invalid("ue_pr", "or ue_px is required for a self-describing event (e=ue).");
      const event = isObject(envelope.value) ? envelope.value.data : undefined;
      const match = isObject(event) && typeof event.schema === "string" ? IGLU_URI.exec(event.schema) : null;
      if (!isObject(event) || match === null || !isObject(event.data)) {
        throw fields.invalid(
          envelope.field,
          'must be {"schema": …, "data": {"schema": "iglu:vendor/name/jsonschema/1-0-0", "data": {…}}}.',
        );
      }
      schema = event.schema as string;
      name = match[1] as string;
      properties = event.data;
      break;
    }
    case "tr":
    case "ti":
      name = kind === "tr" ? "transaction" : "transaction_item";
      properties = legacyEcommerce(fields, LEGACY_ECOMMERCE[kind] as Record<string, string>);
      break;
    default:
      throw fields.invalid("e", `must be one of ${EVENT_KINDS}; got "${kind}".`);
  }

  const sentContexts = fields.json("co", "cx");
  let contexts: Contexts | undefined;
  if (sentContexts !== null) {
    const data = isObject(sentContexts.value) ? sentContexts.value.data : undefined;
    if (
      !Array.isArray(data) ||
      !data.every((entity) => isObject(entity) && typeof entity.schema === "string")
    ) {
      throw fields.invalid(
        sentContexts.field,
        'must be {"schema": …, "data": [{"schema": "iglu:…", "data": {…}}, …]}.',
      );
    }
    contexts = { field: sentContexts.field, entities: data };
  }

  const url = fields.text("url");
  const path = pathOf(url);
  const referrer = fields.text("refr");
  // A server-side tracker's (p=srv) request header names the tracker library, not the user's agent.
  const headerAgent = fields.text("p") === "srv" ? null : (facts.userAgent ?? null);
  const userAgent = fields.text("ua") ?? headerAgent;
  const sentIp = fields.text("ip");
  const ip = facts.anonymous ? null : eventIp(sentIp ?? arrival.remoteAddress ?? "", arrival);
  const networkUserId = fields.text("tnuid") ?? facts.networkUserId;

  const snowplow: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(fields.item)) {
    if (!MAPPED_FIELDS.has(key) && !(key === "aid" && facts.keyAid !== undefined)) snowplow[key] = value;
  }
  if (networkUserId !== null) snowplow.network_user_id = networkUserId;
  if (schema !== undefined) snowplow.schema = schema;
  if (contexts !== undefined) snowplow.contexts = contexts.entities;

  const context: Record<string, unknown> = {};
  if (url !== null || title !== null || referrer !== null) {
    context.page = dropNulls({ url, path, title, referrer });
  }
  if (userAgent !== null) context.userAgent = userAgent;
  if (sentIp !== null && ip !== null) context.ip = ip;
  const locale = fields.text("lang");
  if (locale !== null) context.locale = locale;
  const timezone = fields.text("tz");
  if (timezone !== null) context.timezone = timezone;
  const screen = screenSize(fields.text("res"));
  if (screen !== null) context.screen = screen;
  context.snowplow = snowplow;

  const event: CanonicalEvent = {
    event_id: eventId ?? randomUUID(),
    event_type: type,
    event: name,
    user_id: fields.text("uid"),
    anonymous_id: fields.text("duid") ?? networkUserId,
    session_id: fields.text("sid"),
    ts: eventTime(fields, arrival),
    received_at: arrival.receivedAt,
    source: arrival.source,
    page_url: url,
    page_path: path,
    referrer,
    user_agent: userAgent,
    browser: null,
    os: null,
    device_type: null,
    ip,
    country: null,
    properties,
    context,
    traits: null,
  };
  return { event, igluUri: schema, contexts };
}

/** `ttm` as it is; else `dtm` corrected by `stm`; else the receive time. */
function eventTime(fields: Fields, arrival: Arrival): string {
  const trueTime = fields.millis("ttm");
  const created = trueTime ?? fields.millis("dtm");
  if (created === null) return arrival.receivedAt;
  const sent = trueTime === null ? fields.millis("stm") : null;
  const ms = correctedTime(created, sent, arrival.receivedAtMs);
  if (ms === undefined) {
    throw fields.invalid(
      trueTime === null ? "dtm" : "ttm",
      "(corrected by stm) falls outside the years 1-9999.",
    );
  }
  return formatIsoMillis(ms);
}

function legacyEcommerce(fields: Fields, names: Record<string, string>): Record<string, unknown> {
  const properties: Record<string, unknown> = {};
  for (const [field, name] of Object.entries(names)) {
    const value = LEGACY_NUMBERS.has(field) ? fields.number(field) : fields.text(field);
    if (value !== null) properties[name] = value;
  }
  return properties;
}

function screenSize(resolution: string | null): { width: number; height: number } | null {
  const match = resolution === null ? null : /^(\d+)x(\d+)$/.exec(resolution);
  return match === null ? null : { width: Number(match[1]), height: Number(match[2]) };
}

function dropNulls(values: Record<string, unknown>): Record<string, unknown> | null {
  const kept: Record<string, unknown> = {};
  let any = false;
  for (const [key, value] of Object.entries(values)) {
    if (value !== null) {
      kept[key] = value;
      any = true;
    }
  }
  return any ? kept : null;
}

/** Typed reads of one event's fields; a wrong one throws Invalid naming it. */
class Fields {
  constructor(
    readonly item: Record<string, unknown>,
    private readonly at: string,
  ) {}

  invalid(name: string, problem: string): Invalid {
    return invalid(this.at, name, problem);
  }

  /** A field as text; absent, null and "" are "not sent". Trackers send strings; numbers are taken too. */
  text(name: string): string | null {
    const value = this.item[name];
    if (value === undefined || value === null || value === "") return null;
    if (typeof value === "string") return value;
    if (typeof value === "number" || typeof value === "boolean") return String(value);
    throw this.invalid(name, "must be a string.");
  }

  required(name: string, problem: string): string {
    const value = this.text(name);
    if (value === null) throw this.invalid(name, problem);
    return value;
  }

  number(name: string): number | null {
    const text = this.text(name);
    if (text === null) return null;
    const value = Number(text);
    if (!Number.isFinite(value)) throw this.invalid(name, `must be a number; got "${text}".`);
    return value;
  }

  /** Milliseconds since the epoch, as an integer string. */
  millis(name: string): number | null {
    const text = this.text(name);
    if (text === null) return null;
    if (!/^-?\d{1,15}$/.test(text))
      throw this.invalid(name, `must be a time in milliseconds since 1970; got "${text}".`);
    return Number(text);
  }

  /** The JSON in field `plain`, or else base64url-encoded in field `encoded`. */
  json(plain: string, encoded: string): { value: unknown; field: string } | null {
    const text = this.text(plain);
    if (text !== null) {
      try {
        return { value: JSON.parse(text), field: plain };
      } catch {
        throw this.invalid(plain, "is not valid JSON.");
      }
    }
    const base64 = this.text(encoded);
    if (base64 === null) return null;
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(base64)) throw this.invalid(encoded, "is not base64url.");
    try {
      return { value: JSON.parse(Buffer.from(base64, "base64url").toString("utf8")), field: encoded };
    } catch {
      throw this.invalid(encoded, "is not base64url-encoded JSON.");
    }
  }
}
