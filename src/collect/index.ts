/**
 * The Segment-compatible collector, independent of any HTTP framework: the server hands it each
 * request's path, headers, raw body and peer address, and sends back the status and JSON body.
 *
 * Responses:
 * - 200 `{ success: true }` for a single call; for a batch `{ success: true, accepted, rejected, errors }`
 *   where `errors` lists `{ index, reason, field }` per rejected item (valid items are kept).
 * - 400 `{ error, field? }`: undecodable gzip, invalid JSON, a body that is not an object, a bad
 *   `batch`/`context`/`sentAt` at batch level, or an invalid single call.
 * - 401 missing or unknown write key; 404 unknown path; 415 Content-Encoding other than gzip.
 * - 413 a body over `maxRequestBytes` (after gzip decoding), or a single call over `maxEventBytes`.
 *   (A batch item over `maxEventBytes` is a rejected item of a 200 answer.)
 * - 503 the bus could not store the request's events or quarantined rows (or, for a resend, its
 *   original's); retrying is safe, as events that did get stored are deduplicated.
 *
 * Every 2xx/4xx answer is given only once what it implies is durable: accepted events on the events
 * topic, rejected input on the rejected topic (when its source is known) - one append per topic.
 *
 * The write key comes from `Authorization: Basic base64(key:anything)`, or - only when that header
 * is absent - from `writeKey` in the JSON body. Input refused before its source is known (a bad
 * body without the header) is answered but not quarantined: nobody may write to the rejected table
 * without a key.
 */
import type { Topic } from "../bus/index.js";
import { batchItemSpans, decodeBody, textPrefix } from "./body.js";
import { Deduper } from "./dedupe.js";
import type { CanonicalEvent, RejectedEvent } from "./model.js";
import {
  type Arrival,
  callForPath,
  Invalid,
  NO_ENVELOPE,
  normaliseBatchItem,
  normaliseCall,
  readBatch,
  SEGMENT_PATHS,
} from "./segment.js";

export { Deduper, type DeduperOptions } from "./dedupe.js";
export { SEGMENT_PATHS, truncateIp } from "./segment.js";

export interface CollectorLimits {
  /** Largest event, measured as the JSON text of the call as sent; default 32 KiB. */
  maxEventBytes: number;
  /** Largest request body after gzip decoding; default 500 KiB. */
  maxRequestBytes: number;
}

export const DEFAULT_LIMITS: CollectorLimits = { maxEventBytes: 32 * 1024, maxRequestBytes: 500 * 1024 };

export interface CollectorOptions {
  events: Topic;
  rejected: Topic;
  /** Write key → source name. */
  writeKeys: ReadonlyMap<string, string>;
  limits?: Partial<CollectorLimits>;
  /** Shared with whoever rebuilds it at startup; a fresh one by default. */
  deduper?: Deduper;
  /** Clock for received_at, in ms since the epoch. */
  now?: () => number;
}

export interface CollectRequest {
  path: string;
  /** Header names in lower case, as node:http delivers them. */
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
  remoteAddress?: string;
}

export interface CollectResponse {
  status: number;
  body: unknown;
}

export interface CollectorStats {
  requests: number;
  /** Events acknowledged, resends included. */
  accepted: number;
  /** Events and whole requests refused as invalid. */
  rejected: number;
  /** Acknowledged resends that were not stored again. */
  deduplicated: number;
}

export interface BatchItemError {
  index: number;
  reason: string;
  field: string;
}

/** A request or single call refused with a 4xx, and what to quarantine for it. */
interface Refusal {
  status: number;
  reason: string;
  field?: string;
  payload: string;
}

const STORED = Promise.resolve(true);

export class Collector {
  private readonly events: Topic;
  private readonly rejected: Topic;
  private readonly writeKeys: ReadonlyMap<string, string>;
  private readonly limits: CollectorLimits;
  private readonly deduper: Deduper;
  private readonly now: () => number;
  private readonly counters: CollectorStats = { requests: 0, accepted: 0, rejected: 0, deduplicated: 0 };
  /**
   * source → messageId → whether its append succeeded, while the append is in flight. A resend
   * arriving meanwhile must not be acknowledged before the original is durable.
   */
  private readonly appending = new Map<string, Map<string, Promise<boolean>>>();

  constructor(options: CollectorOptions) {
    this.events = options.events;
    this.rejected = options.rejected;
    this.writeKeys = options.writeKeys;
    this.limits = { ...DEFAULT_LIMITS, ...options.limits };
    this.deduper = options.deduper ?? new Deduper();
    this.now = options.now ?? Date.now;
  }

  stats(): CollectorStats {
    return { ...this.counters };
  }

  /** Answers one request; never throws. */
  async handle(request: CollectRequest): Promise<CollectResponse> {
    this.counters.requests++;
    try {
      return await this.collect(request);
    } catch {
      return answer(500, "The collector failed unexpectedly; retry later.");
    }
  }

  private async collect(request: CollectRequest): Promise<CollectResponse> {
    const call = callForPath(request.path);
    if (call === undefined) {
      return answer(
        404,
        `There is no collector endpoint at ${request.path}; use one of ${SEGMENT_PATHS.join(", ")}.`,
      );
    }
    const receivedAtMs = this.now();
    const arrival: Arrival = {
      source: "",
      receivedAtMs,
      receivedAt: new Date(receivedAtMs).toISOString(),
      remoteAddress: request.remoteAddress,
    };

    // The header is checked before the body is read; a key in the body needs the body parsed.
    const headerKey = basicAuthUser(header(request.headers, "authorization"));
    let source: string | undefined;
    if (headerKey !== undefined) {
      source = this.writeKeys.get(headerKey);
      if (source === undefined) return answer(401, "The write key in the Authorization header is not known.");
    }

    const decoded = decodeBody(
      request.body,
      header(request.headers, "content-encoding"),
      this.limits.maxRequestBytes,
    );
    if (!Buffer.isBuffer(decoded)) return this.refuse(source, arrival, decoded);
    const text = decoded.toString("utf8");
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch (error) {
      const reason = `The request body is not valid JSON (${(error as Error).message}).`;
      return this.refuse(source, arrival, { status: 400, reason, payload: text });
    }
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      return this.refuse(source, arrival, {
        status: 400,
        reason: "The request body must be a JSON object.",
        payload: text,
      });
    }
    const fields = body as Record<string, unknown>;

    if (source === undefined) {
      const bodyKey = fields.writeKey;
      if (typeof bodyKey !== "string" || bodyKey === "") {
        return answer(
          401,
          "A write key is required: as the user name of HTTP Basic auth, or as writeKey in the body.",
        );
      }
      source = this.writeKeys.get(bodyKey);
      if (source === undefined) return answer(401, "The writeKey in the body is not known.");
    }
    arrival.source = source;

    if (call === "batch") return this.collectBatch(fields, decoded, text, arrival);
    if (decoded.length > this.limits.maxEventBytes) {
      return this.refuse(source, arrival, {
        status: 413,
        reason: `The event is ${decoded.length} bytes; the limit per event is ${this.limits.maxEventBytes} bytes.`,
        payload: textPrefix(decoded, this.limits.maxEventBytes),
      });
    }
    const event = normaliseCall(fields, call, "", NO_ENVELOPE, arrival);
    if (event instanceof Invalid) {
      const payload = withoutWriteKey(text, fields);
      return this.refuse(source, arrival, { status: 400, reason: event.reason, field: event.field, payload });
    }
    if (!(await this.store(arrival, [event], []))) return unavailable();
    return { status: 200, body: { success: true } };
  }

  private async collectBatch(
    body: Record<string, unknown>,
    decoded: Buffer,
    text: string,
    arrival: Arrival,
  ): Promise<CollectResponse> {
    const batch = readBatch(body);
    if (batch instanceof Invalid) {
      const payload = withoutWriteKey(text, body);
      return this.refuse(arrival.source, arrival, {
        status: 400,
        reason: batch.reason,
        field: batch.field,
        payload,
      });
    }
    const { items, envelope } = batch;
    const maxBytes = this.limits.maxEventBytes;
    // No item can be larger than the whole body, so only a larger body needs its items measured.
    const measure = decoded.length > maxBytes;
    const spans = measure ? batchItemSpans(decoded) : undefined;
    const exactSpans = spans?.length === items.length * 2 ? spans : undefined;

    const events: CanonicalEvent[] = [];
    const rejectedRows: string[] = [];
    const errors: BatchItemError[] = [];
    for (let index = 0; index < items.length; index++) {
      const item = items[index];
      const size = measure ? itemSize(item, index, exactSpans) : 0;
      const result =
        size > maxBytes
          ? new Invalid(
              `batch[${index}]`,
              `batch[${index}] is ${size} bytes; the limit per event is ${maxBytes} bytes.`,
            )
          : normaliseBatchItem(item, index, envelope, arrival);
      if (result instanceof Invalid) {
        errors.push({ index, reason: result.reason, field: result.field });
        const payload = itemText(item, index, exactSpans, decoded, maxBytes);
        rejectedRows.push(rejectedRow(payload, arrival, result.reason));
      } else {
        events.push(result);
      }
    }

    if (!(await this.store(arrival, events, rejectedRows))) return unavailable();
    return { status: 200, body: { success: true, accepted: events.length, rejected: errors.length, errors } };
  }

  /**
   * Stores one request's new events and quarantined rows, one append per topic. Resends are not
   * stored again, but wait for their original's append when it is still in flight.
   * True once everything is durable.
   */
  private async store(
    arrival: Arrival,
    events: readonly CanonicalEvent[],
    rejectedRows: string[],
  ): Promise<boolean> {
    const { source, receivedAtMs } = arrival;
    let inFlight = this.appending.get(source);
    if (inFlight === undefined) {
      inFlight = new Map();
      this.appending.set(source, inFlight);
    }
    const lines: string[] = [];
    const newIds: string[] = [];
    const originals: Promise<boolean>[] = [];
    for (const event of events) {
      if (this.deduper.seen(source, event.event_id, receivedAtMs)) {
        const original = inFlight.get(event.event_id);
        if (original !== undefined) originals.push(original);
      } else {
        newIds.push(event.event_id);
        lines.push(JSON.stringify(event));
      }
    }

    const eventsStored =
      lines.length === 0
        ? STORED
        : appendDurably(this.events, lines).then((stored) => {
            // Forget before anyone waiting learns of the failure, so that a resend gets stored.
            if (!stored) for (const id of newIds) this.deduper.forget(source, id);
            return stored;
          });
    for (const id of newIds) inFlight.set(id, eventsStored);
    const rowsStored = rejectedRows.length === 0 ? STORED : appendDurably(this.rejected, rejectedRows);

    const outcomes = await Promise.all([eventsStored, rowsStored, ...originals]);
    for (const id of newIds) {
      if (inFlight.get(id) === eventsStored) inFlight.delete(id);
    }
    if (!outcomes.every(Boolean)) return false;
    this.counters.accepted += events.length;
    this.counters.deduplicated += events.length - lines.length;
    this.counters.rejected += rejectedRows.length;
    return true;
  }

  /** Answers a refused request, first quarantining it when its source is known. */
  private async refuse(
    source: string | undefined,
    arrival: Arrival,
    refusal: Refusal,
  ): Promise<CollectResponse> {
    if (source !== undefined) {
      const row = rejectedRow(refusal.payload, { ...arrival, source }, refusal.reason);
      if (!(await appendDurably(this.rejected, [row]))) return unavailable();
    }
    this.counters.rejected++;
    return answer(refusal.status, refusal.reason, refusal.field);
  }
}

async function appendDurably(topic: Topic, lines: readonly string[]): Promise<boolean> {
  try {
    await topic.append(lines);
    return true;
  } catch {
    return false;
  }
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

function rejectedRow(payload: string, arrival: Arrival, reason: string): string {
  const row: RejectedEvent = { payload, source: arrival.source, received_at: arrival.receivedAt, reason };
  return JSON.stringify(row);
}

/** The body text to quarantine, without its write key: the rejected table is readable by everyone. */
function withoutWriteKey(text: string, body: Record<string, unknown>): string {
  if (!("writeKey" in body)) return text;
  const { writeKey: _, ...rest } = body;
  return JSON.stringify(rest);
}

function answer(status: number, error: string, field?: string): CollectResponse {
  return { status, body: field === undefined ? { error } : { error, field } };
}

function unavailable(): CollectResponse {
  return answer(503, "The request could not be stored durably; retry later.");
}

function header(headers: CollectRequest["headers"], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The user name of `Authorization: Basic base64(writeKey:password)` - the write key; the password
 * is ignored. Undefined without the header; "" (an unknown key) when it is not Basic auth.
 */
function basicAuthUser(authorization: string | undefined): string | undefined {
  if (authorization === undefined) return undefined;
  const match = /^basic\s+(\S+)\s*$/i.exec(authorization.trim());
  if (match === null) return "";
  const credentials = Buffer.from(match[1] as string, "base64").toString("utf8");
  const colon = credentials.indexOf(":");
  return colon < 0 ? credentials : credentials.slice(0, colon);
}
