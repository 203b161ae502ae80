/**
 * What preparing a request takes and gives, for every protocol: the request as plain data (cheap to
 * send to a worker), the settings, and the prepared answer with its bus lines. Also the helpers each
 * protocol uses to build that answer, so quarantine rows and bus lines look the same whatever the
 * protocol.
 */

import type { PrivacyHandle } from "../privacy/door.js";
import { type DedupeSeeds, fingerprintsOf } from "./dedupe.js";
import { type EnrichmentSettings, enricherFor } from "./enrich.js";
import type { Arrival } from "./fields.js";
import type { CanonicalEvent, RejectedEvent } from "./model.js";
import type { SharedHandle } from "./shared-settings.js";

export interface CollectorLimits {
  /** Largest event, measured as the text of the event as sent; default 32 KiB. */
  maxEventBytes: number;
  /** Largest request body after gzip decoding; default 500 KiB. */
  maxRequestBytes: number;
}

export const DEFAULT_LIMITS: CollectorLimits = { maxEventBytes: 32 * 1024, maxRequestBytes: 500 * 1024 };

/** Plain data, so that it can be handed to worker threads. */
export interface PrepareSettings {
  /** Write key → source name. */
  writeKeys: ReadonlyMap<string, string>;
  limits: CollectorLimits;
  enrichment: EnrichmentSettings;
  /** The PII policy's shared memory (src/privacy); none: events are stored as the protocols make them. */
  privacy?: PrivacyHandle;
  /** The event schemas' shared memory (schemas.ts); none: no event is checked against a schema. */
  schemas?: SharedHandle;
  /** The seeds of the collector's deduper, so that whichever thread prepares fingerprints the ids for it. */
  dedupeSeeds: DedupeSeeds;
}

/** What preparing needs of a request: plain data, cheap to send to a worker. */
export interface RequestToPrepare {
  /** "GET" or "POST". */
  method: string;
  /** The path without its query string. */
  path: string;
  /** The query string without "?"; "" when there is none. */
  query: string;
  authorization: string | undefined;
  /** The `X-Write-Key` header, as Jitsu's SDK sends the write key. */
  writeKey?: string;
  contentEncoding: string | undefined;
  contentType: string | undefined;
  /** The request's User-Agent header; Snowplow events fall back to it. */
  userAgent: string | undefined;
  /** The Cookie header; Snowplow's collector cookie `sp` is read from it. */
  cookie: string | undefined;
  /** Snowplow's `SP-Anonymous` header was sent: no cookie, no IP address. */
  anonymous: boolean;
  body: Buffer;
  remoteAddress: string | undefined;
  receivedAtMs: number;
}

export interface CollectResponse {
  status: number;
  /** Sent as JSON, or as it is when a Buffer (then `headers` names its content type). */
  body: unknown;
  /** Headers a protocol adds to its answers (cookies, caching, content type). */
  headers?: Record<string, string>;
}

export interface BatchItemError {
  index: number;
  reason: string;
  field: string;
}

/** A request made ready to store: its answer, once `eventLines` and `rejectedLines` are durable. */
export interface PreparedRequest {
  response: CollectResponse;
  /** Whose events these are; "" when the source is not known (then nothing is stored). */
  source: string;
  /**
   * The dedupe fingerprint of each line of `eventLines`, in order (`fingerprintsOf` in dedupe.ts):
   * 12 bytes an event to hand back from a worker thread, where the ids were 100 strings to copy.
   */
  eventFingerprints: Int32Array;
  /** The accepted events as bus lines (UTF-8 NDJSON); empty when there are none. */
  eventLines: Buffer;
  /** Quarantine rows as bus lines; empty when there are none. */
  rejectedLines: Buffer;
  /** With the raw zone on: the accepted events before PII obfuscation, as bus lines for `events_raw`. */
  rawLines?: Buffer;
  /** Inputs refused as invalid: rejected batch items, or 1 for a refused request. */
  refused: number;
}

/** An endpoint of a protocol. */
export interface CollectorRoute {
  method: "GET" | "POST";
  path: string;
}

/** A tracking protocol: its endpoints, and how it prepares a request to one of them. */
export interface Protocol {
  name: string;
  routes: readonly CollectorRoute[];
  /** Never throws for bad input; `arrival.source` is to be set once the write key is known. */
  prepare(request: RequestToPrepare, settings: PrepareSettings, arrival: Arrival): PreparedRequest;
}

/** A request or single event refused with a 4xx, and what to quarantine for it. */
export interface Refusal {
  status: number;
  reason: string;
  field?: string;
  payload: string;
  /** The payload is base64 of bytes the collector could not read (body.ts). */
  opaque?: boolean;
}

export const NO_LINES = Buffer.alloc(0);
const NO_FINGERPRINTS = new Int32Array(0);

/** An answer that stores nothing. */
export function answered(status: number, error: string, field?: string): PreparedRequest {
  return {
    response: { status, body: field === undefined ? { error } : { error, field } },
    source: "",
    eventFingerprints: NO_FINGERPRINTS,
    eventLines: NO_LINES,
    rejectedLines: NO_LINES,
    refused: 0,
  };
}

/** A refused request, quarantined when its source is known. */
export function refused(source: string | undefined, arrival: Arrival, refusal: Refusal): PreparedRequest {
  const prepared = answered(refusal.status, refusal.reason, refusal.field);
  prepared.refused = 1;
  if (source !== undefined) {
    prepared.source = source;
    prepared.rejectedLines = encodeLines([
      rejectedRow(refusal.payload, { ...arrival, source }, refusal.reason, refusal.opaque),
    ]);
  }
  return prepared;
}

/**
 * A request whose events (possibly none) are accepted and whose rejected items are quarantined:
 * the events are enriched, then encoded as bus lines.
 */
export function accepted(
  response: CollectResponse,
  arrival: Arrival,
  events: CanonicalEvent[],
  rejectedLines: string[],
  enrichment: EnrichmentSettings,
): PreparedRequest {
  const enricher = enricherFor(enrichment);
  for (const event of events) enricher.enrich(event);
  const rawLines = arrival.privacy?.rawZone ? encodeEvents(events) : undefined;
  const obfuscate = arrival.privacy?.forSource(arrival.source).apply;
  if (obfuscate) for (const event of events) obfuscate(event);
  return {
    response,
    source: arrival.source,
    eventFingerprints: fingerprintsOf(
      arrival.dedupeSeeds,
      arrival.source,
      events.map((event) => event.event_id),
    ),
    eventLines: encodeEvents(events),
    rejectedLines: encodeLines(rejectedLines),
    rawLines,
    refused: rejectedLines.length,
  };
}

/** What separates two events in the JSON text of an array of them: each starts with its event_id. */
const EVENT_SEPARATOR = Buffer.from('},{"event_id":"');
const NEWLINE = 0x0a;

/**
 * The events as bus lines. One JSON.stringify of the whole array costs half as much as one per
 * event; its top-level commas then become newlines. Those commas are found as the separator text
 * above, which a nested value (properties, context) can contain too: then there are more matches
 * than separators, and each event is encoded on its own instead.
 */
function encodeEvents(events: CanonicalEvent[]): Buffer {
  if (events.length === 0) return NO_LINES;
  // A single event (most requests of a website's trackers): no separators to look for.
  if (events.length === 1) return Buffer.from(`${JSON.stringify(events[0])}\n`);
  // Without the opening "[": the closing "]" becomes the last newline.
  const lines = Buffer.from(JSON.stringify(events).slice(1));
  const commas: number[] = [];
  for (let at = lines.indexOf(EVENT_SEPARATOR); at !== -1; at = lines.indexOf(EVENT_SEPARATOR, at + 1)) {
    commas.push(at + 1);
  }
  if (commas.length !== events.length - 1) return encodeLines(events.map((event) => JSON.stringify(event)));
  for (const comma of commas) lines[comma] = NEWLINE;
  lines[lines.length - 1] = NEWLINE;
  return lines;
}

/** Bus lines: each record followed by "\n", in UTF-8. */
export function encodeLines(lines: string[]): Buffer {
  return lines.length === 0 ? NO_LINES : Buffer.from(`${lines.join("\n")}\n`);
}

/** A quarantine row as a bus line's text. */
export function rejectedRow(payload: string, arrival: Arrival, reason: string, opaque = false): string {
  const scrub = arrival.privacy?.forSource(arrival.source).scrub;
  const row: RejectedEvent = {
    payload: scrub === undefined ? payload : scrub(payload, opaque),
    source: arrival.source,
    received_at: arrival.receivedAt,
    reason: scrub === undefined ? reason : scrub(reason),
  };
  return JSON.stringify(row);
}

/**
 * The user name of `Authorization: Basic base64(writeKey:password)` - the write key; the password
 * is ignored. Undefined without the header; "" (an unknown key) when it is not Basic auth.
 */
export function basicAuthUser(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  let user = basicAuthUsers.get(authorization);
  if (user === undefined) {
    user = parseBasicAuthUser(authorization);
    // A site sends the same few headers all day; a flood of distinct ones only empties the cache.
    if (basicAuthUsers.size >= BASIC_AUTH_CACHE_SIZE) basicAuthUsers.clear();
    basicAuthUsers.set(authorization, user);
  }
  return user;
}

/** Parsed Authorization headers, per thread: parsing one (a regex and base64) was 3% of a single event's main-thread time. */
const basicAuthUsers = new Map<string, string>();
const BASIC_AUTH_CACHE_SIZE = 1024;

function parseBasicAuthUser(authorization: string): string {
  const match = /^basic\s+(\S+)\s*$/i.exec(authorization.trim());
  if (match === null) return "";
  const credentials = Buffer.from(match[1] as string, "base64").toString("utf8");
  const colon = credentials.indexOf(":");
  return colon < 0 ? credentials : credentials.slice(0, colon);
}

/**
 * The source whose write key is in a header: `Authorization: Basic`, or else `X-Write-Key` (as
 * Jitsu's SDK sends it; its body has only a masked copy). Undefined without either (the key is then
 * looked for in the body), or a 401 answer when the key is not known.
 */
export function headerKeySource(
  request: Pick<RequestToPrepare, "authorization" | "writeKey">,
  writeKeys: ReadonlyMap<string, string>,
): string | undefined | PreparedRequest {
  const basic = basicAuthUser(request.authorization);
  const [key, header] = basic === undefined ? [request.writeKey, "X-Write-Key"] : [basic, "Authorization"];
  if (key === undefined) return undefined;
  return writeKeys.get(key) ?? answered(401, `The write key in the ${header} header is not known.`);
}

/**
 * The source whose write key a request carries in its body (or events), or a 401 answer: `missing`
 * when there is no key (undefined), `unknown` when the key is not known.
 */
export function bodyKeySource(
  key: string | undefined,
  writeKeys: ReadonlyMap<string, string>,
  missing: string,
  unknown: string,
): string | PreparedRequest {
  if (key === undefined) return answered(401, missing);
  return writeKeys.get(key) ?? answered(401, unknown);
}

/** Events in a batch of inputs, each either normalised or refused. */
export class BatchOutcome {
  readonly events: CanonicalEvent[] = [];
  readonly rejectedLines: string[] = [];
  readonly errors: BatchItemError[] = [];

  constructor(private readonly arrival: Arrival) {}

  accept(event: CanonicalEvent): void {
    this.events.push(event);
  }

  /** Refuses item `index`, quarantining `payload` (its text, without any write key). */
  reject(index: number, field: string, reason: string, payload: string): void {
    this.errors.push({ index, reason, field });
    this.rejectedLines.push(rejectedRow(payload, this.arrival, reason));
  }
}
