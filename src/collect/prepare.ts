/**
 * The first, pure half of collecting a request: everything that needs no shared state, so it can
 * run on a worker thread. Auth by write key, gzip decoding, JSON parsing, validation, normalising
 * and encoding each canonical event and quarantine row as a bus line. What is left for the main
 * thread (dedupe, the bus appends, counters) is in `Collector` (index.ts).
 */
import { batchItemSpans, decodeBody, textPrefix } from "./body.js";
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

export interface CollectorLimits {
  /** Largest event, measured as the JSON text of the call as sent; default 32 KiB. */
  maxEventBytes: number;
  /** Largest request body after gzip decoding; default 500 KiB. */
  maxRequestBytes: number;
}

export const DEFAULT_LIMITS: CollectorLimits = { maxEventBytes: 32 * 1024, maxRequestBytes: 500 * 1024 };

export interface PrepareSettings {
  /** Write key → source name. */
  writeKeys: ReadonlyMap<string, string>;
  limits: CollectorLimits;
}

/** What preparing needs of a request: plain data, cheap to send to a worker. */
export interface RequestToPrepare {
  path: string;
  authorization: string | undefined;
  contentEncoding: string | undefined;
  body: Buffer;
  remoteAddress: string | undefined;
  receivedAtMs: number;
}

export interface CollectResponse {
  status: number;
  body: unknown;
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
  /** `event_id` of each line of `eventLines`, in order. */
  eventIds: string[];
  /** The accepted events as bus lines (UTF-8 NDJSON); empty when there are none. */
  eventLines: Buffer;
  /** Quarantine rows as bus lines; empty when there are none. */
  rejectedLines: Buffer;
  /** Inputs refused as invalid: rejected batch items, or 1 for a refused request. */
  refused: number;
}

/** A request or single call refused with a 4xx, and what to quarantine for it. */
interface Refusal {
  status: number;
  reason: string;
  field?: string;
  payload: string;
}

const NO_LINES = Buffer.alloc(0);

/** Prepares one request; never throws. */
export function prepare(request: RequestToPrepare, settings: PrepareSettings): PreparedRequest {
  try {
    return prepareRequest(request, settings);
  } catch {
    return answered(500, "The collector failed unexpectedly; retry later.");
  }
}

function prepareRequest(request: RequestToPrepare, settings: PrepareSettings): PreparedRequest {
  const { writeKeys, limits } = settings;
  const call = callForPath(request.path);
  if (call === undefined) {
    return answered(
      404,
      `There is no collector endpoint at ${request.path}; use one of ${SEGMENT_PATHS.join(", ")}.`,
    );
  }
  const arrival: Arrival = {
    source: "",
    receivedAtMs: request.receivedAtMs,
    receivedAt: new Date(request.receivedAtMs).toISOString(),
    remoteAddress: request.remoteAddress,
  };

  // The header is checked before the body is read; a key in the body needs the body parsed.
  const headerKey = basicAuthUser(request.authorization);
  let source: string | undefined;
  if (headerKey !== undefined) {
    source = writeKeys.get(headerKey);
    if (source === undefined) return answered(401, "The write key in the Authorization header is not known.");
  }

  const decoded = decodeBody(request.body, request.contentEncoding, limits.maxRequestBytes);
  if (!Buffer.isBuffer(decoded)) return refused(source, arrival, decoded);
  const text = decoded.toString("utf8");
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (error) {
    const reason = `The request body is not valid JSON (${(error as Error).message}).`;
    return refused(source, arrival, { status: 400, reason, payload: text });
  }
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    return refused(source, arrival, {
      status: 400,
      reason: "The request body must be a JSON object.",
      payload: text,
    });
  }
  const fields = body as Record<string, unknown>;

  if (source === undefined) {
    const bodyKey = fields.writeKey;
    if (typeof bodyKey !== "string" || bodyKey === "") {
      return answered(
        401,
        "A write key is required: as the user name of HTTP Basic auth, or as writeKey in the body.",
      );
    }
    source = writeKeys.get(bodyKey);
    if (source === undefined) return answered(401, "The writeKey in the body is not known.");
  }
  arrival.source = source;

  if (call === "batch") return prepareBatch(fields, decoded, text, arrival, limits.maxEventBytes);
  if (decoded.length > limits.maxEventBytes) {
    return refused(source, arrival, {
      status: 413,
      reason: `The event is ${decoded.length} bytes; the limit per event is ${limits.maxEventBytes} bytes.`,
      payload: textPrefix(decoded, limits.maxEventBytes),
    });
  }
  const event = normaliseCall(fields, call, "", NO_ENVELOPE, arrival);
  if (event instanceof Invalid) {
    const payload = withoutWriteKey(text, fields);
    return refused(source, arrival, { status: 400, reason: event.reason, field: event.field, payload });
  }
  return {
    response: { status: 200, body: { success: true } },
    source,
    eventIds: [event.event_id],
    eventLines: encodeEvents([event]),
    rejectedLines: NO_LINES,
    refused: 0,
  };
}

function prepareBatch(
  body: Record<string, unknown>,
  decoded: Buffer,
  text: string,
  arrival: Arrival,
  maxEventBytes: number,
): PreparedRequest {
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

  const events: CanonicalEvent[] = [];
  const rejectedLines: string[] = [];
  const errors: BatchItemError[] = [];
  for (let index = 0; index < items.length; index++) {
    const item = items[index];
    const size = measure ? itemSize(item, index, exactSpans) : 0;
    const result =
      size > maxEventBytes
        ? new Invalid(
            `batch[${index}]`,
            `batch[${index}] is ${size} bytes; the limit per event is ${maxEventBytes} bytes.`,
          )
        : normaliseBatchItem(item, index, envelope, arrival);
    if (result instanceof Invalid) {
      errors.push({ index, reason: result.reason, field: result.field });
      const payload = itemText(item, index, exactSpans, decoded, maxEventBytes);
      rejectedLines.push(rejectedRow(payload, arrival, result.reason));
    } else {
      events.push(result);
    }
  }
  return {
    response: {
      status: 200,
      body: { success: true, accepted: events.length, rejected: errors.length, errors },
    },
    source: arrival.source,
    eventIds: events.map((event) => event.event_id),
    eventLines: encodeEvents(events),
    rejectedLines: encodeLines(rejectedLines),
    refused: errors.length,
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
function encodeLines(lines: string[]): Buffer {
  return lines.length === 0 ? NO_LINES : Buffer.from(`${lines.join("\n")}\n`);
}

/** An answer that stores nothing. */
function answered(status: number, error: string, field?: string): PreparedRequest {
  return {
    response: { status, body: field === undefined ? { error } : { error, field } },
    source: "",
    eventIds: [],
    eventLines: NO_LINES,
    rejectedLines: NO_LINES,
    refused: 0,
  };
}

/** A refused request, quarantined when its source is known. */
function refused(source: string | undefined, arrival: Arrival, refusal: Refusal): PreparedRequest {
  const prepared = answered(refusal.status, refusal.reason, refusal.field);
  prepared.refused = 1;
  if (source !== undefined) {
    prepared.source = source;
    prepared.rejectedLines = encodeLines([
      rejectedRow(refusal.payload, { ...arrival, source }, refusal.reason),
    ]);
  }
  return prepared;
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
