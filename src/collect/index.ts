/**
 * The collector, independent of any HTTP framework: the server hands it each request's method,
 * path, query, headers, raw body and peer address, and sends back the status, body and headers.
 * It speaks the Segment API (segment.ts), the Snowplow tracker protocol (snowplow.ts) and PostHog's
 * capture API (posthog.ts); every accepted event is enriched (enrich.ts) before it is stored.
 *
 * Segment responses (the other protocols document theirs in their files):
 * - 200 `{ success: true }` for a single call; for a batch `{ success: true, accepted, rejected, errors }`
 *   where `errors` lists `{ index, reason, field }` per rejected item (valid items are kept).
 * - 400 `{ error, field? }`: undecodable gzip, invalid JSON, a body that is not an object, a bad
 *   `batch`/`context`/`sentAt` at batch level, or an invalid single call.
 * - 401 missing or unknown write key; 404 unknown path; 415 Content-Encoding other than gzip, deflate or br.
 * - 413 a body over `maxRequestBytes` (after gzip decoding), or a single call over `maxEventBytes`.
 *   (A batch item over `maxEventBytes` is a rejected item of a 200 answer.)
 * - 503 the bus could not store the request's events or quarantined rows (or, for a resend, its
 *   original's), or the worker thread preparing the request died; retrying is safe, as events
 *   that did get stored are deduplicated.
 *
 * Every 2xx/4xx answer is given only once what it implies is durable: accepted events on the events
 * topic, rejected input on the rejected topic (when its source is known) - one append per topic.
 *
 * The write key comes from `Authorization: Basic base64(key:anything)`, else an `X-Write-Key`
 * header (Jitsu's SDK), or - only when neither header is there - from the body (Segment's
 * `writeKey`, Snowplow's `aid`, PostHog's `api_key`). Input refused before its source is known (a
 * bad body without the header) is answered but not quarantined: nobody may write to the rejected
 * table without a key.
 *
 * Each request is collected in two steps. `prepare` (prepare.ts) does everything that needs no
 * shared state, from auth to the encoded bus lines; large bodies are prepared on worker threads
 * (pool.ts), small ones here, where sending them would cost more than it saves. The commit
 * (below, on the calling thread) dedupes, appends once per topic, counts and answers.
 */
import type { BlockList } from "node:net";
import type { Topic } from "../bus/index.js";
import type { PrivacyHandle } from "../privacy/door.js";
import { clientAddress } from "./client-address.js";
import { Deduper, FINGERPRINT_LANES } from "./dedupe.js";
import { DEFAULT_ENRICHMENT, type EnrichmentSettings, enricherFor } from "./enrich.js";
import { PreparePool } from "./pool.js";
import {
  type CollectorLimits,
  type CollectResponse,
  DEFAULT_LIMITS,
  type PreparedRequest,
  type PrepareSettings,
  prepare,
  type RequestToPrepare,
} from "./prepare.js";
import type { SharedHandle } from "./shared-settings.js";
import { warmUp } from "./warm-up.js";

export { trustedProxies } from "./client-address.js";
export { corsHeaders, PREFLIGHT_HEADERS } from "./cors.js";
export { Deduper, type DeduperOptions } from "./dedupe.js";
export { DEFAULT_ENRICHMENT, type EnrichmentSettings } from "./enrich.js";
export {
  type BatchItemError,
  COLLECTOR_ROUTES,
  type CollectorLimits,
  type CollectorRoute,
  type CollectResponse,
  DEFAULT_LIMITS,
} from "./prepare.js";
export { SchemaRegistry, schemasPath } from "./schema-registry.js";
export { type EventSchema, SchemaError } from "./schemas.js";
export { SEGMENT_PATHS, truncateIp } from "./segment.js";
export { TRACKER_SCRIPT } from "./tracker.js";

/**
 * Bodies from this size on are prepared on a worker thread. Measured main-thread time: a single
 * event (0.3-1 KB) costs as much to send to a worker and back as to prepare here (about 12 µs);
 * from four events (2 KB) on, sending costs 40-70% less.
 */
export const DEFAULT_POOLED_MIN_BODY_BYTES = 2 * 1024;

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
  /** Worker threads preparing large bodies; 0 (the default) prepares every request on this thread. */
  workers?: number;
  /** Bodies of at least this many bytes (as received) go to a worker. */
  pooledMinBodyBytes?: number;
  /** The workers' module; tests pass one that can be made to crash. */
  workerUrl?: URL;
  /** User agent and GeoIP enrichment; user agents are parsed, no GeoIP, by default. */
  enrichment?: EnrichmentSettings;
  /** The PII policy applied before anything is stored (src/privacy); none by default. */
  privacy?: PrivacyHandle;
  /** The event schemas checked before anything is stored (schemas.ts); none by default. */
  schemas?: SharedHandle;
  /** The raw zone's topic: the events before PII obfuscation, when the policy keeps them. */
  raw?: Topic;
  /** Proxies whose X-Forwarded-For names the client (client-address.ts); none by default. */
  trustedProxies?: BlockList | null;
}

export interface CollectRequest {
  /** "POST" unless said otherwise. */
  method?: string;
  /** Without the query string. */
  path: string;
  /** The query string, without "?". */
  query?: string;
  /** Header names in lower case, as node:http delivers them. */
  headers: Record<string, string | string[] | undefined>;
  /** Owned by the collector from now on: it may be transferred to a worker (and then be empty here). */
  body: Buffer;
  remoteAddress?: string;
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

const STORED = Promise.resolve(true);
const NEWLINE = 0x0a;

export class Collector {
  private readonly events: Topic;
  private readonly rejected: Topic;
  private readonly raw: Topic | undefined;
  private readonly settings: PrepareSettings;
  private readonly deduper: Deduper;
  private readonly now: () => number;
  private readonly pool: PreparePool | null;
  private readonly pooledMinBodyBytes: number;
  private readonly trustedProxies: BlockList | null;
  private readonly counters: CollectorStats = { requests: 0, accepted: 0, rejected: 0, deduplicated: 0 };
  /**
   * Whether every events append now in flight succeeds. A resend arriving while its original's
   * append is in flight must not be acknowledged before the original is durable (nor when it
   * failed), so resends wait on this: it covers the original, and a per-id map of in-flight
   * appends cost two Map operations per event. It is back to STORED once nothing is in flight, so
   * a failure holds back only resends that arrived while it was pending (they get a 503; their
   * retry is then acknowledged, or stored when the original was not).
   */
  private eventsInFlight: Promise<boolean> = STORED;

  constructor(options: CollectorOptions) {
    this.events = options.events;
    this.rejected = options.rejected;
    this.raw = options.raw;
    this.deduper = options.deduper ?? new Deduper();
    this.settings = {
      writeKeys: options.writeKeys,
      limits: { ...DEFAULT_LIMITS, ...options.limits },
      enrichment: options.enrichment ?? DEFAULT_ENRICHMENT,
      privacy: options.privacy,
      schemas: options.schemas,
      dedupeSeeds: this.deduper.seeds,
    };
    // Fails here, at start-up, when the GeoIP database cannot be read.
    enricherFor(this.settings.enrichment);
    this.now = options.now ?? Date.now;
    const workers = options.workers ?? 0;
    this.pool =
      workers > 0
        ? new PreparePool({ workers, settings: this.settings, workerUrl: options.workerUrl })
        : null;
    this.pooledMinBodyBytes = options.pooledMinBodyBytes ?? DEFAULT_POOLED_MIN_BODY_BYTES;
    this.trustedProxies = options.trustedProxies ?? null;
  }

  stats(): CollectorStats {
    return { ...this.counters };
  }

  /** Answers one request; never throws. */
  async handle(request: CollectRequest): Promise<CollectResponse> {
    this.counters.requests++;
    const { headers } = request;
    const toPrepare: RequestToPrepare = {
      method: request.method ?? "POST",
      path: request.path,
      query: request.query ?? "",
      authorization: header(headers, "authorization"),
      writeKey: header(headers, "x-write-key"),
      contentEncoding: header(headers, "content-encoding"),
      contentType: header(headers, "content-type"),
      userAgent: header(headers, "user-agent"),
      cookie: header(headers, "cookie"),
      anonymous: headers["sp-anonymous"] !== undefined,
      body: request.body,
      remoteAddress: clientAddress(request.remoteAddress, headers["x-forwarded-for"], this.trustedProxies),
      receivedAtMs: this.now(),
    };
    let prepared: PreparedRequest;
    if (this.pool !== null && request.body.length >= this.pooledMinBodyBytes) {
      try {
        prepared = await this.pool.prepare(toPrepare);
      } catch {
        // The worker died with the request: nothing of it was stored, so a retry is safe.
        return answer(503, "The collector could not process the request; retry later.");
      }
    } else {
      prepared = prepare(toPrepare, this.settings);
    }
    try {
      return await this.commit(prepared, toPrepare.receivedAtMs);
    } catch {
      return answer(500, "The collector failed unexpectedly; retry later.");
    }
  }

  /**
   * Runs the collector's code on synthetic requests before real ones arrive (warm-up.ts), so the
   * first second of traffic is not answered by cold code. Stores nothing; needs a write key.
   */
  async warmUp(): Promise<{ requests: number; accepted: number }> {
    const [writeKey] = this.settings.writeKeys.keys();
    if (writeKey === undefined) return { requests: 0, accepted: 0 };
    const pool = this.pool;
    return warmUp(
      writeKey,
      (request) => prepare(request, this.settings),
      pool === null ? undefined : (request) => pool.prepare(request),
    );
  }

  /** Stops the worker threads; requests still being prepared on them are answered 503. */
  async close(): Promise<void> {
    await this.pool?.close();
  }

  /**
   * Stores a prepared request's new events and quarantine rows, one append per topic, and gives its
   * answer once they are durable. Resends are not stored again, but wait for their original's
   * append when it is still in flight.
   */
  private async commit(prepared: PreparedRequest, receivedAtMs: number): Promise<CollectResponse> {
    const { eventFingerprints, rejectedLines } = prepared;
    const events = eventFingerprints.length / FINGERPRINT_LANES;
    /** Indexes of the lines to drop as resends; usually none. */
    const resent: number[] = [];
    for (let index = 0; index < events; index++) {
      if (this.deduper.seenAt(eventFingerprints, index, receivedAtMs)) resent.push(index);
    }
    const newEvents = events - resent.length;
    const originals = resent.length === 0 ? STORED : this.eventsInFlight;

    const eventsStored =
      newEvents === 0
        ? STORED
        : appendDurably(this.events, withoutLines(prepared.eventLines, resent)).then((stored) => {
            // Forget before anyone waiting learns of the failure, so that a resend gets stored.
            if (!stored) {
              for (let index = 0, next = 0; index < events; index++) {
                if (index === resent[next]) next++;
                else this.deduper.forgetAt(eventFingerprints, index);
              }
            }
            return stored;
          });
    if (newEvents > 0) this.trackInFlight(eventsStored);
    const rowsStored = rejectedLines.length === 0 ? STORED : appendDurably(this.rejected, rejectedLines);
    const { rawLines } = prepared;
    const rawStored =
      this.raw === undefined || rawLines === undefined || newEvents === 0
        ? STORED
        : appendDurably(
            this.raw,
            withoutLines(Buffer.from(rawLines.buffer, rawLines.byteOffset, rawLines.length), resent),
          );

    const outcomes = await Promise.all([eventsStored, rowsStored, rawStored, originals]);
    if (!outcomes.every(Boolean)) return unavailable();
    this.counters.accepted += events;
    this.counters.deduplicated += resent.length;
    this.counters.rejected += prepared.refused;
    return prepared.response;
  }

  /**
   * Adds an events append to `eventsInFlight`. Each link settles only after the ones before it,
   * so when the newest one settles, nothing is in flight any more.
   */
  private trackInFlight(stored: Promise<boolean>): void {
    const all = Promise.all([this.eventsInFlight, stored]).then(([before, now]) => before && now);
    this.eventsInFlight = all;
    void all.then(() => {
      if (this.eventsInFlight === all) this.eventsInFlight = STORED;
    });
  }
}

async function appendDurably(topic: Topic, lines: Buffer): Promise<boolean> {
  try {
    await topic.appendLines(lines);
    return true;
  } catch {
    return false;
  }
}

/** Bus lines without the lines at `drop` (ascending indexes). */
function withoutLines(lines: Buffer, drop: readonly number[]): Buffer {
  if (drop.length === 0) return lines;
  const kept: Buffer[] = [];
  let start = 0;
  for (let index = 0, next = 0; start < lines.length; index++) {
    const end = lines.indexOf(NEWLINE, start) + 1;
    if (index === drop[next]) next++;
    else kept.push(lines.subarray(start, end));
    start = end;
  }
  return Buffer.concat(kept);
}

function answer(status: number, error: string): CollectResponse {
  return { status, body: { error } };
}

function unavailable(): CollectResponse {
  return answer(503, "The request could not be stored durably; retry later.");
}

function header(headers: CollectRequest["headers"], name: string): string | undefined {
  const value = headers[name];
  return Array.isArray(value) ? value[0] : value;
}
