import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { Collector, type CollectorOptions, type CollectRequest } from "./index.js";
import { MemoryTopic } from "./test-support/memory-topic.js";

const WRITE_KEY = "wk_web";
const NOW = Date.parse("2024-05-01T12:00:00.000Z");
const CRASHING_WORKER = new URL("./test-support/crashing-prepare-worker.ts", import.meta.url);

/** A collector whose every request is prepared on a worker (`pooled`), or none is. */
function setup(pooled: boolean, options: Partial<CollectorOptions> = {}) {
  const events = new MemoryTopic("events");
  const rejected = new MemoryTopic("rejected");
  const collector = new Collector({
    events,
    rejected,
    writeKeys: new Map([
      [WRITE_KEY, "web"],
      ["wk_app", "app"],
    ]),
    limits: { maxEventBytes: 600, maxRequestBytes: 20_000 },
    now: () => NOW,
    workers: pooled ? 1 : 0,
    pooledMinBodyBytes: 0,
    ...options,
  });
  return { collector, events, rejected };
}

interface RequestSpec {
  path: string;
  body: unknown;
  /** null: no Authorization header. */
  key?: string | null;
  gzip?: boolean;
  encoding?: string;
}

/** A fresh request each time: a pooled collector takes over (transfers) the body. */
function request({ path, body, key = WRITE_KEY, gzip = false, encoding }: RequestSpec): CollectRequest {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  const headers: CollectRequest["headers"] = {};
  if (key !== null) headers.authorization = `Basic ${Buffer.from(`${key}:`).toString("base64")}`;
  if (gzip) headers["content-encoding"] = "gzip";
  if (encoding) headers["content-encoding"] = encoding;
  return { path, headers, body: gzip ? gzipSync(text) : Buffer.from(text), remoteAddress: "203.0.113.77" };
}

const track = (id: string, extra: Record<string, unknown> = {}) => ({
  type: "track",
  event: "Order Completed",
  userId: "u1",
  messageId: id,
  timestamp: "2024-05-01T11:59:00.000Z",
  properties: { revenue: 42.5, note: "née ✓ 😀" },
  context: { ip: "198.51.100.23", page: { url: "https://shop.example/cart" } },
  ...extra,
});

/** Every kind of answer the collector gives, valid and not. */
const REQUESTS: RequestSpec[] = [
  { path: "/v1/track", body: track("single") },
  {
    path: "/v1/page",
    body: { anonymousId: "a1", name: "Home", messageId: "page-1", sentAt: "2024-05-01T12:00:01.000Z" },
  },
  {
    path: "/v1/identify",
    body: { userId: "u2", traits: { plan: "pro" }, messageId: "id-1", timestamp: "2024-05-01" },
  },
  { path: "/v1/group", body: { userId: "u2", groupId: 7, messageId: "group-1" } },
  { path: "/v1/alias", body: { userId: "u2", previousId: "a1", messageId: "alias-1" } },
  { path: "/v1/track", body: { ...track("body-key"), writeKey: "wk_app" }, key: null },
  {
    path: "/v1/batch",
    body: {
      sentAt: "2024-05-01T12:00:30.000Z",
      context: { library: { name: "analytics.js" } },
      batch: [
        track("b-1"),
        {
          type: "page",
          anonymousId: "a2",
          name: "Cart",
          messageId: "b-2",
          timestamp: "2024-05-01T11:00:00Z",
        },
        { type: "track", userId: "u3", messageId: "b-3" },
        "not an object",
        { type: "nope", userId: "u3" },
        track("b-4", { properties: { blob: "x".repeat(700) } }),
        track("b-5", { timestamp: "yesterday" }),
        // Text that looks like the separator between encoded events, inside a value.
        track("b-6", { properties: { rows: [{ event_id: "x" }, { event_id: "y" }] } }),
        track("b-1"),
      ],
    },
  },
  { path: "/v1/batch", body: { batch: [track("gz-1"), track("gz-2")] }, gzip: true },
  { path: "/v1/batch", body: { batch: "nope" } },
  { path: "/v1/batch", body: "{not json" },
  { path: "/v1/batch", body: "[1, 2]" },
  { path: "/v1/batch", body: "{not json", key: null },
  { path: "/v1/batch", body: { batch: [track("wrong-key")] }, key: "nope" },
  { path: "/v1/batch", body: { batch: [track("no-key")] }, key: null },
  { path: "/v1/track", body: track("too-big", { properties: { blob: "y".repeat(1000) } }) },
  { path: "/v1/batch", body: { batch: Array.from({ length: 200 }, (_, i) => track(`huge-${i}`)) } },
  { path: "/v1/batch", body: "garbage", gzip: false, encoding: "gzip" },
  { path: "/v1/batch", body: { batch: [] }, encoding: "zstd" },
  { path: "/v1/nope", body: {} },
];

async function collectAll(pooled: boolean) {
  const { collector, events, rejected } = setup(pooled);
  try {
    const responses = [];
    for (const spec of REQUESTS) responses.push(await collector.handle(request(spec)));
    return { responses, events: events.records, rejected: rejected.records, stats: collector.stats() };
  } finally {
    await collector.close();
  }
}

describe("prepare pool", () => {
  it("answers and stores exactly what preparing inline does", async () => {
    const inline = await collectAll(false);
    const pooled = await collectAll(true);
    assert.deepEqual(
      pooled.responses.map((response) => response.status),
      [200, 200, 200, 200, 200, 200, 200, 200, 400, 400, 400, 400, 401, 401, 413, 413, 400, 415, 404],
    );
    assert.deepEqual(pooled, inline);
    assert.equal(pooled.events.filter((line) => line.includes('"event_id":"b-6"')).length, 1);
  });

  it("dedupes across pooled requests, within a batch and while the original is being stored", async () => {
    const { collector, events } = setup(true);
    try {
      const first = await collector.handle(
        request({ path: "/v1/batch", body: { batch: [track("m1"), track("m2"), track("m2")] } }),
      );
      assert.deepEqual(first.body, { success: true, accepted: 3, rejected: 0, errors: [] });
      const resend = await collector.handle(
        request({ path: "/v1/batch", body: { batch: [track("m1"), track("m3")] } }),
      );
      assert.equal(resend.status, 200);

      let open = () => {};
      events.gate = new Promise((resolve) => {
        open = resolve;
      });
      const original = collector.handle(request({ path: "/v1/batch", body: { batch: [track("m4")] } }));
      const duplicate = collector.handle(request({ path: "/v1/batch", body: { batch: [track("m4")] } }));
      let answered = false;
      void Promise.race([original, duplicate]).then(() => {
        answered = true;
      });
      await new Promise((resolve) => setTimeout(resolve, 100));
      assert.equal(answered, false, "no acknowledgement before the event is durable");
      open();
      assert.deepEqual(
        (await Promise.all([original, duplicate])).map((response) => response.status),
        [200, 200],
      );

      const ids = events.records.map((line) => (JSON.parse(line) as { event_id: string }).event_id);
      assert.deepEqual(ids.sort(), ["m1", "m2", "m3", "m4"]);
      assert.equal(collector.stats().deduplicated, 3);
    } finally {
      await collector.close();
    }
  });

  it("answers 503 for every request a crashed worker held, replaces it, and stores nothing of them", async () => {
    const { collector, events } = setup(true, { workerUrl: CRASHING_WORKER });
    try {
      const batch = (id: string) => request({ path: "/v1/batch", body: { batch: [track(id)] } });
      assert.equal((await collector.handle(batch("before"))).status, 200);

      // Both go to the one worker, in order: it dies on the first, holding the second.
      const crashing = collector.handle(batch("CRASH-1"));
      const queued = collector.handle(batch("queued"));
      assert.deepEqual([(await crashing).status, (await queued).status], [503, 503]);
      // Meanwhile (the worker restarts after a pause: it died young), requests are prepared here.
      assert.equal((await collector.handle(batch("after"))).status, 200);

      // The replacement worker prepares requests again: it is the one that can crash.
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      assert.equal((await collector.handle(batch("CRASH-2"))).status, 503);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal((await collector.handle(batch("last"))).status, 200);

      const ids = events.records.map((line) => (JSON.parse(line) as { event_id: string }).event_id);
      assert.deepEqual(ids, ["before", "after", "last"]);
    } finally {
      await collector.close();
    }
  });

  it("close() stops the workers, answers what they held with 503 and leaves no handles open", async () => {
    const before = process.getActiveResourcesInfo().filter((type) => type === "MessagePort").length;
    const { collector } = setup(true, { workers: 2 });
    assert.equal((await collector.handle(request({ path: "/v1/track", body: track("x") }))).status, 200);
    const inFlight = collector.handle(request({ path: "/v1/batch", body: { batch: [track("y")] } }));
    await collector.close();
    assert.equal((await inFlight).status, 503);
    assert.equal((await collector.handle(request({ path: "/v1/batch", body: { batch: [] } }))).status, 503);
    const after = process.getActiveResourcesInfo().filter((type) => type === "MessagePort").length;
    assert.equal(after, before);
  });
});
