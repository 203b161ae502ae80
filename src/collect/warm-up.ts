/**
 * Warming the collector's code before the first request. V8 runs new code slowly until it has
 * seen it run (interpreted first, optimised later), so a server that starts into traffic (a
 * restart while trackers retry, a deploy at peak) answered its first half second of requests up
 * to 400 ms late, measured at 6,000 single events/s. Preparing a few thousand synthetic requests
 * at start-up (about 0.2 s) takes most of that cost before the port opens: about 100 ms late is
 * left, from node:http's and the commit's own first runs. Preparing stores nothing: the commit
 * step (dedupe, bus) is not run.
 */
import type { PreparedRequest, RequestToPrepare } from "./prepare.js";

/** Synthetic single calls prepared on the calling thread (small bodies are prepared there). */
const SINGLE_CALLS = 3_000;
/** Synthetic batches for the worker threads (large bodies go there). */
const BATCHES = 200;
const EVENTS_PER_BATCH = 20;

const USER_AGENTS = [
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
];

/** A Segment call of each common kind, as trackers send them. */
function syntheticCall(n: number): Record<string, unknown> {
  const context = {
    library: { name: "analytics.js", version: "5.2.0" },
    locale: "en-US",
    userAgent: USER_AGENTS[n % USER_AGENTS.length],
    ip: "192.0.2.1",
    page: { path: "/products/1", url: "https://shop.example/products/1", referrer: "", title: "Product" },
  };
  const common = {
    messageId: `sluice-warm-up-${n}`,
    anonymousId: `warm-up-${n % 50}`,
    timestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, n % 60)).toISOString(),
    sentAt: new Date(Date.UTC(2026, 0, 1, 0, 0, n % 60)).toISOString(),
    context,
  };
  switch (n % 3) {
    case 0:
      return {
        ...common,
        type: "track",
        event: "Product Viewed",
        properties: { product_id: `p${n}`, price: 9.5 },
      };
    case 1:
      return { ...common, type: "page", name: "Product", properties: { path: "/products/1" } };
    default:
      return { ...common, type: "identify", userId: `warm-up-user-${n % 50}`, traits: { plan: "pro" } };
  }
}

function syntheticBatch(b: number): { batch: Record<string, unknown>[] } {
  return {
    batch: Array.from({ length: EVENTS_PER_BATCH }, (_, i) => syntheticCall(b * EVENTS_PER_BATCH + i)),
  };
}

function request(path: string, body: unknown, writeKey: string): RequestToPrepare {
  return {
    method: "POST",
    path,
    query: "",
    authorization: `Basic ${Buffer.from(`${writeKey}:`).toString("base64")}`,
    contentEncoding: undefined,
    contentType: "application/json",
    userAgent: USER_AGENTS[0],
    cookie: undefined,
    anonymous: false,
    body: Buffer.from(JSON.stringify(body)),
    remoteAddress: "192.0.2.1",
    receivedAtMs: Date.now(),
  };
}

/**
 * Prepares synthetic Segment requests with `writeKey`: single calls with `prepareHere`, batches
 * with `prepareOnWorkers` (when the collector has workers), and discards what they prepared.
 * Returns how many were accepted, which should be all of them: the hot path is the one warmed.
 */
export async function warmUp(
  writeKey: string,
  prepareHere: (request: RequestToPrepare) => PreparedRequest,
  prepareOnWorkers?: (request: RequestToPrepare) => Promise<PreparedRequest>,
): Promise<{ requests: number; accepted: number }> {
  let accepted = 0;
  const count = (prepared: PreparedRequest) => {
    if (prepared.response.status === 200 && prepared.refused === 0) accepted++;
  };
  const batches =
    prepareOnWorkers === undefined
      ? []
      : Array.from({ length: BATCHES }, (_, b) =>
          prepareOnWorkers(request("/v1/batch", syntheticBatch(b), writeKey)).then(count),
        );
  for (let n = 0; n < SINGLE_CALLS; n++) {
    const call = syntheticCall(n);
    count(prepareHere(request(`/v1/${call.type as string}`, call, writeKey)));
  }
  // A worker that died meanwhile is restarted by the pool; its warm-up is simply lost.
  await Promise.allSettled(batches);
  return { requests: SINGLE_CALLS + batches.length, accepted };
}
