import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import type { Topic } from "../bus/index.js";
import { Collector, type CollectorOptions, type CollectRequest, type CollectResponse } from "./index.js";
import { type CanonicalEvent, EVENT_COLUMNS, type RejectedEvent } from "./model.js";
import { MemoryTopic } from "./test-support/memory-topic.js";

const WRITE_KEY = "wk_web";
const RECEIVED_AT = "2024-05-01T12:00:00.000Z";
const HOUR = 3_600_000;

function setup(options: Partial<CollectorOptions> = {}) {
  const events = new MemoryTopic("events");
  const rejected = new MemoryTopic("rejected");
  const clock = { now: Date.parse(RECEIVED_AT) };
  const collector = new Collector({
    events,
    rejected,
    writeKeys: new Map([
      [WRITE_KEY, "web"],
      ["wk_app", "app"],
    ]),
    now: () => clock.now,
    ...options,
  });
  return {
    collector,
    events,
    rejected,
    clock,
    stored: () => events.records.map((line) => JSON.parse(line) as CanonicalEvent),
    quarantined: () => rejected.records.map((line) => JSON.parse(line) as RejectedEvent),
  };
}

function basicAuth(key: string, password = ""): string {
  return `Basic ${Buffer.from(`${key}:${password}`).toString("base64")}`;
}

interface RequestOptions {
  /** The write key sent as Basic auth; null sends no Authorization header. */
  key?: string | null;
  headers?: Record<string, string>;
  gzip?: boolean;
}

function request(path: string, body: unknown, options: RequestOptions = {}): CollectRequest {
  const raw = Buffer.isBuffer(body)
    ? body
    : Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
  const authorization = options.key === null ? {} : { authorization: basicAuth(options.key ?? WRITE_KEY) };
  return {
    path,
    headers: {
      ...authorization,
      ...(options.gzip ? { "content-encoding": "gzip" } : {}),
      ...options.headers,
    },
    body: options.gzip ? gzipSync(raw) : raw,
    remoteAddress: "203.0.113.77",
  };
}

function errorOf(response: CollectResponse): { error: string; field?: string } {
  return response.body as { error: string; field?: string };
}

describe("endpoints", () => {
  const calls: [string, Record<string, unknown>, Partial<CanonicalEvent>][] = [
    [
      "/v1/track",
      { userId: "u1", event: "Signed Up", properties: { plan: "pro" }, messageId: "m-track" },
      {
        event_type: "track",
        event: "Signed Up",
        user_id: "u1",
        properties: { plan: "pro" },
        event_id: "m-track",
      },
    ],
    [
      "/v1/page",
      { anonymousId: "a1", name: "Home", properties: { url: "https://e.example/home?x=1" } },
      {
        event_type: "page",
        event: "Home",
        anonymous_id: "a1",
        page_url: "https://e.example/home?x=1",
        page_path: "/home",
        properties: { url: "https://e.example/home?x=1", name: "Home" },
      },
    ],
    [
      "/v1/screen",
      { userId: "u1", name: "Settings", category: "Account" },
      { event_type: "screen", event: "Settings", properties: { name: "Settings", category: "Account" } },
    ],
    [
      "/v1/identify",
      { userId: 99, traits: { email: "x@example.com" } },
      { event_type: "identify", event: null, user_id: "99", traits: { email: "x@example.com" } },
    ],
    [
      "/v1/group",
      { userId: "u1", groupId: "acme", traits: { employees: 10 } },
      { event_type: "group", context: { groupId: "acme" }, traits: { employees: 10 } },
    ],
    [
      "/v1/alias",
      { userId: "u1", previousId: "a1" },
      { event_type: "alias", context: { previousId: "a1" }, traits: null },
    ],
  ];

  for (const [path, body, expected] of calls) {
    it(`${path} stores one canonical event`, async () => {
      const { collector, stored, events } = setup();
      const response = await collector.handle(request(path, body));
      assert.deepEqual(response, { status: 200, body: { success: true } });
      assert.equal(events.appends, 1);
      const [event] = stored();
      assert.ok(event !== undefined);
      assert.deepEqual(
        Object.keys(event),
        EVENT_COLUMNS.map((column) => column.name),
      );
      assert.deepEqual({ ...event, ...expected }, event);
      assert.equal(event.source, "web");
      assert.equal(event.received_at, RECEIVED_AT);
      assert.equal(event.ts, RECEIVED_AT);
      assert.equal(event.ip, "203.0.113.0");
    });
  }

  it("accepts analytics.js: one-letter path, write key in the body, which is not stored", async () => {
    const { collector, stored, collector: c } = setup();
    const body = {
      writeKey: WRITE_KEY,
      type: "track",
      event: "E",
      anonymousId: "a",
      sentAt: "2024-05-01T11:00:00Z",
    };
    const response = await collector.handle(
      request("/v1/t", body, { key: null, headers: { "content-type": "text/plain" } }),
    );
    assert.equal(response.status, 200);
    assert.equal(stored()[0]?.event, "E");
    assert.doesNotMatch(JSON.stringify(stored()), /wk_web/);
    assert.equal(c.stats().accepted, 1);
  });

  it("/v1/batch stores every item with batch context and sentAt applied, item values winning", async () => {
    const { collector, stored, events } = setup();
    const body = {
      context: { library: { name: "analytics-node" }, ip: "198.51.100.4" },
      sentAt: "2024-05-01T10:00:10.000Z",
      batch: [
        { type: "track", userId: "u", event: "E", timestamp: "2024-05-01T10:00:00.000Z" },
        { type: "page", userId: "u", name: "P", context: { library: { name: "mine" } } },
        { type: "screen", userId: "u", name: "S" },
        { type: "identify", userId: "u", traits: { a: 1 } },
        { type: "group", userId: "u", groupId: "g" },
        {
          type: "alias",
          userId: "u",
          previousId: "p",
          timestamp: "2024-05-01T10:00:00Z",
          sentAt: "2024-05-01T10:00:00Z",
        },
      ],
    };
    const response = await collector.handle(request("/v1/batch", body, { gzip: true }));
    assert.deepEqual(response, {
      status: 200,
      body: { success: true, accepted: 6, rejected: 0, errors: [] },
    });
    assert.equal(events.appends, 1);
    const rows = stored();
    assert.deepEqual(
      rows.map((row) => row.event_type),
      ["track", "page", "screen", "identify", "group", "alias"],
    );
    assert.equal(rows[0]?.ts, "2024-05-01T11:59:50.000Z");
    assert.equal(rows[5]?.ts, RECEIVED_AT);
    assert.deepEqual(rows[0]?.context, { library: { name: "analytics-node" }, ip: "198.51.100.0" });
    assert.deepEqual(rows[1]?.context, { library: { name: "mine" }, ip: "198.51.100.0" });
    assert.ok(rows.every((row) => row.ip === "198.51.100.0"));
  });
});

describe("batch partial acceptance", () => {
  it("keeps the valid items and quarantines each invalid one with its text and reason", async () => {
    const { collector, stored, quarantined, events, rejected } = setup();
    const text = `{"batch":[
      {"type":"track","userId":"u","event":"ok-0"},
      {"type":"track","userId":"u"},
      7,
      {"type":"page","anonymousId":"a","properties":[]},
      {"type":"identify","userId":"u"},
      {"type":"click","userId":"u"}
    ]}`;
    const response = await collector.handle(request("/v1/batch", text));
    assert.equal(response.status, 200);
    assert.deepEqual(response.body, {
      success: true,
      accepted: 2,
      rejected: 4,
      errors: [
        {
          index: 1,
          field: "batch[1].event",
          reason: "batch[1].event must be a non-empty string for a track call.",
        },
        { index: 2, field: "batch[2]", reason: "batch[2] must be an object." },
        { index: 3, field: "batch[3].properties", reason: "batch[3].properties must be an object." },
        {
          index: 5,
          field: "batch[5].type",
          reason: "batch[5].type must be one of track, page, screen, identify, group, alias.",
        },
      ],
    });
    assert.equal(events.appends, 1);
    assert.equal(rejected.appends, 1);
    assert.deepEqual(
      stored().map((row) => row.event_type),
      ["track", "identify"],
    );
    const rows = quarantined();
    assert.deepEqual(
      rows.map((row) => row.payload),
      [
        '{"type":"track","userId":"u"}',
        "7",
        '{"type":"page","anonymousId":"a","properties":[]}',
        '{"type":"click","userId":"u"}',
      ],
    );
    assert.ok(rows.every((row) => row.source === "web" && row.received_at === RECEIVED_AT));
    assert.match(rows[0]?.reason ?? "", /batch\[1\]\.event/);
    assert.deepEqual(collector.stats(), { requests: 1, accepted: 2, rejected: 4, deduplicated: 0 });
  });

  it("rejects an item over the event limit, measured as sent, and keeps the rest", async () => {
    const { collector, stored, quarantined } = setup({ limits: { maxEventBytes: 1000 } });
    const big = { type: "track", userId: "u", event: "Big", properties: { blob: "é".repeat(600) } };
    const small = { type: "track", userId: "u", event: "Small" };
    const response = await collector.handle(request("/v1/batch", { batch: [small, big, small] }));
    assert.equal(response.status, 200);
    const body = response.body as { accepted: number; errors: { field: string; reason: string }[] };
    assert.equal(body.accepted, 2);
    assert.equal(body.errors[0]?.field, "batch[1]");
    assert.equal(
      body.errors[0]?.reason,
      `batch[1] is ${Buffer.byteLength(JSON.stringify(big))} bytes; the limit per event is 1000 bytes.`,
    );
    assert.equal(stored().length, 2);
    const payload = quarantined()[0]?.payload ?? "";
    assert.ok(Buffer.byteLength(payload) <= 1000 && payload.startsWith('{"type":"track"'));
  });

  it("measures items by re-serialising them when the raw batch cannot be scanned", async () => {
    const { collector, quarantined } = setup({ limits: { maxEventBytes: 1000 } });
    const big = { type: "track", userId: "u", event: "Big", properties: { blob: "z".repeat(1000) } };
    const text = `{"b\\u0061tch":[${JSON.stringify(big)},{"type":"track","userId":"u","event":"Small"}]}`;
    const response = await collector.handle(request("/v1/batch", text));
    assert.equal((response.body as { accepted: number }).accepted, 1);
    assert.equal(quarantined()[0]?.payload, JSON.stringify(big).slice(0, 1000));
  });

  it("answers an empty batch without touching the bus", async () => {
    const { collector, events, rejected } = setup();
    const response = await collector.handle(request("/v1/batch", { batch: [] }));
    assert.deepEqual(response.body, { success: true, accepted: 0, rejected: 0, errors: [] });
    assert.equal(events.appends + rejected.appends, 0);
  });
});

describe("bad requests", () => {
  async function refused(options: Partial<CollectorOptions>, req: CollectRequest, status: number) {
    const context = setup(options);
    const response = await context.collector.handle(req);
    assert.equal(response.status, status, JSON.stringify(response.body));
    assert.equal(context.events.records.length, 0);
    return { ...context, error: errorOf(response) };
  }

  it("invalid JSON: 400, and the whole text quarantined", async () => {
    const { error, quarantined } = await refused({}, request("/v1/batch", '{"batch": [}'), 400);
    assert.match(error.error, /not valid JSON/);
    assert.equal(quarantined()[0]?.payload, '{"batch": [}');
    assert.match(quarantined()[0]?.reason ?? "", /not valid JSON/);
  });

  it("a body that is not a JSON object: 400", async () => {
    for (const body of ["[1,2]", '"track"', "null", "42", ""]) {
      const { error, quarantined } = await refused({}, request("/v1/track", body), 400);
      assert.match(error.error, body === "" ? /not valid JSON/ : /must be a JSON object/);
      assert.equal(quarantined().length, 1);
    }
  });

  it("gzip garbage: 400, the body quarantined in base64", async () => {
    const req = request("/v1/track", "this is not gzip", { headers: { "content-encoding": "gzip" } });
    const { error, quarantined } = await refused({}, req, 400);
    assert.match(error.error, /not valid gzip/);
    assert.equal(Buffer.from(quarantined()[0]?.payload ?? "", "base64").toString(), "this is not gzip");
  });

  it("a request over the limit: 413, quarantined truncated to the limit", async () => {
    const text = JSON.stringify({ batch: [{ type: "track", userId: "u", event: "x".repeat(3000) }] });
    const { error, quarantined } = await refused(
      { limits: { maxRequestBytes: 2000 } },
      request("/v1/batch", text),
      413,
    );
    assert.match(error.error, /limit is 2000 bytes/);
    assert.equal(quarantined()[0]?.payload, text.slice(0, 2000));
  });

  it("a gzip bomb: 413 without inflating it", async () => {
    const bomb = Buffer.concat(new Array(200).fill(gzipSync(Buffer.alloc(1_000_000, " "))));
    const req = request("/v1/batch", bomb, { headers: { "content-encoding": "gzip" } });
    const { error } = await refused({}, req, 413);
    assert.match(error.error, /larger than 512000 bytes once gzip-decoded/);
  });

  it("a single call over the event limit: 413 and quarantined", async () => {
    const body = { userId: "u", event: "E", properties: { text: "y".repeat(40_000) } };
    const { error, quarantined } = await refused({}, request("/v1/track", body), 413);
    assert.match(error.error, /limit per event is 32768 bytes/);
    assert.equal(quarantined()[0]?.payload.length, 32768);
  });

  it("an unsupported Content-Encoding: 415", async () => {
    await refused({}, request("/v1/track", "{}", { headers: { "content-encoding": "zstd" } }), 415);
  });

  it("an invalid single call: 400 naming the field, quarantined without its write key", async () => {
    const body = { writeKey: WRITE_KEY, anonymousId: "a", event: "E", timestamp: "last tuesday" };
    const { error, quarantined } = await refused({}, request("/v1/track", body, { key: null }), 400);
    assert.deepEqual(error, { error: "timestamp must be an ISO 8601 date-time string.", field: "timestamp" });
    assert.deepEqual(JSON.parse(quarantined()[0]?.payload ?? ""), {
      anonymousId: "a",
      event: "E",
      timestamp: "last tuesday",
    });
  });

  it("missing ids, missing event, wrong types: 400 naming the field", async () => {
    const cases: [string, Record<string, unknown>, string][] = [
      ["/v1/track", { event: "E" }, "userId"],
      ["/v1/track", { userId: "u" }, "event"],
      ["/v1/page", { userId: "u", properties: "x" }, "properties"],
      ["/v1/identify", { userId: ["u"] }, "userId"],
      ["/v1/group", { userId: "u", groupId: {} }, "groupId"],
      ["/v1/batch", { batch: "nope" }, "batch"],
      ["/v1/batch", { batch: [], context: 1 }, "context"],
    ];
    for (const [path, body, field] of cases) {
      const { error } = await refused({}, request(path, body), 400);
      assert.equal(error.field, field);
    }
  });

  it("an unknown path: 404", async () => {
    await refused({}, request("/v1/import", { batch: [] }), 404);
  });

  it("an unauthenticated bad body is answered but not quarantined", async () => {
    const { rejected } = await refused({}, request("/v1/track", "{oops", { key: null }), 400);
    assert.equal(rejected.appends, 0);
  });
});

describe("auth", () => {
  const track = { userId: "u", event: "E" };

  it("accepts the write key as the Basic user name, whatever the password", async () => {
    const { collector, stored } = setup();
    const req = request("/v1/track", track, { headers: { authorization: basicAuth("wk_app", "ignored") } });
    assert.equal((await collector.handle(req)).status, 200);
    assert.equal(stored()[0]?.source, "app");
  });

  it("accepts the write key in the body", async () => {
    const { collector, stored } = setup();
    const response = await collector.handle(
      request("/v1/track", { ...track, writeKey: "wk_app" }, { key: null }),
    );
    assert.equal(response.status, 200);
    assert.equal(stored()[0]?.source, "app");
  });

  it("refuses an unknown header key before reading the body, even with a good key in the body", async () => {
    const { collector, rejected } = setup();
    const response = await collector.handle(
      request("/v1/track", { ...track, writeKey: WRITE_KEY }, { key: "wk_nope" }),
    );
    assert.equal(response.status, 401);
    assert.match(errorOf(response).error, /not known/);
    assert.equal(rejected.appends, 0);
  });

  it("refuses a missing key, an unknown body key and a non-Basic header", async () => {
    const { collector, events, rejected } = setup();
    const missing = await collector.handle(request("/v1/track", track, { key: null }));
    assert.equal(missing.status, 401);
    assert.match(errorOf(missing).error, /write key is required/);
    const unknown = await collector.handle(
      request("/v1/track", { ...track, writeKey: "wk_nope" }, { key: null }),
    );
    assert.equal(unknown.status, 401);
    const bearer = request("/v1/track", track, { headers: { authorization: `Bearer ${WRITE_KEY}` } });
    assert.equal((await collector.handle(bearer)).status, 401);
    assert.equal(events.appends + rejected.appends, 0);
  });
});

describe("dedupe", () => {
  const track = { userId: "u", event: "E", messageId: "m-1" };

  it("acknowledges a resend and stores it once", async () => {
    const { collector, stored } = setup();
    assert.equal((await collector.handle(request("/v1/track", track))).status, 200);
    assert.equal((await collector.handle(request("/v1/track", track))).status, 200);
    assert.equal(stored().length, 1);
    assert.deepEqual(collector.stats(), { requests: 2, accepted: 2, rejected: 0, deduplicated: 1 });
  });

  it("stores a repeated id once within a batch, and counts both as accepted", async () => {
    const { collector, stored } = setup();
    const item = { type: "track", ...track };
    const response = await collector.handle(request("/v1/batch", { batch: [item, item] }));
    assert.equal((response.body as { accepted: number }).accepted, 2);
    assert.equal(stored().length, 1);
  });

  it("does not dedupe across sources", async () => {
    const { collector, stored } = setup();
    await collector.handle(request("/v1/track", track));
    await collector.handle(request("/v1/track", track, { key: "wk_app" }));
    assert.deepEqual(
      stored().map((row) => row.source),
      ["web", "app"],
    );
  });

  it("stores a resend again once the window has passed", async () => {
    const { collector, stored, clock } = setup();
    await collector.handle(request("/v1/track", track));
    clock.now += 25 * HOUR;
    await collector.handle(request("/v1/track", track));
    assert.equal(stored().length, 2);
  });

  it("holds a resend's answer until the original is durable, and fails it with the original", async () => {
    const { collector, events, stored } = setup();
    let finishFsync = () => {};
    events.gate = new Promise((resolve) => {
      finishFsync = resolve;
    });
    const original = collector.handle(request("/v1/track", track));
    let resendAnswered = false;
    const resend = collector.handle(request("/v1/track", track)).then((response) => {
      resendAnswered = true;
      return response;
    });
    await new Promise((resolve) => setImmediate(resolve));
    assert.equal(resendAnswered, false);
    events.failing = true;
    finishFsync();
    assert.equal((await original).status, 503);
    assert.equal((await resend).status, 503);

    events.gate = undefined;
    events.failing = false;
    assert.equal((await collector.handle(request("/v1/track", track))).status, 200);
    assert.equal(stored().length, 1);
  });
});

describe("bus failures", () => {
  it("answers 503 when events cannot be appended, and forgets their ids so a retry is stored", async () => {
    const { collector, events, stored } = setup();
    events.failing = true;
    const body = { batch: [{ type: "track", userId: "u", event: "E", messageId: "m-9" }] };
    const response = await collector.handle(request("/v1/batch", body));
    assert.equal(response.status, 503);
    assert.match(errorOf(response).error, /could not be stored durably/);
    assert.equal(collector.stats().accepted, 0);
    events.failing = false;
    assert.equal((await collector.handle(request("/v1/batch", body))).status, 200);
    assert.equal(stored().length, 1);
    assert.equal(collector.stats().deduplicated, 0);
  });

  it("answers 503 when a rejection cannot be quarantined; the retry does not store events twice", async () => {
    const { collector, rejected, stored, quarantined } = setup();
    rejected.failing = true;
    const body = { batch: [{ type: "track", userId: "u", event: "E", messageId: "m-1" }, { type: "track" }] };
    assert.equal((await collector.handle(request("/v1/batch", body))).status, 503);
    assert.equal((await collector.handle(request("/v1/track", { event: "no ids" }))).status, 503);
    rejected.failing = false;
    const retry = await collector.handle(request("/v1/batch", body));
    assert.deepEqual(retry.body, {
      success: true,
      accepted: 1,
      rejected: 1,
      errors: [
        {
          index: 1,
          field: "batch[1].userId",
          reason: "batch[1].userId or batch[1].anonymousId is required.",
        },
      ],
    });
    assert.equal(stored().length, 1);
    assert.equal(quarantined().length, 1);
  });

  it("turns a topic that throws synchronously into 503", async () => {
    const { collector } = setup({
      events: {
        ...new MemoryTopic("events"),
        appendLines: () => {
          throw new Error("closed");
        },
      } as unknown as Topic,
    });
    assert.equal((await collector.handle(request("/v1/track", { userId: "u", event: "E" }))).status, 503);
  });
});

/** A small deterministic generator (mulberry32). */
function randomGenerator(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("robustness", () => {
  it("answers thousands of random and mutated requests with a status, never throwing", async () => {
    const random = randomGenerator(42);
    const choose = <T>(options: readonly T[]): T => options[Math.floor(random() * options.length)] as T;
    const oddValues = [
      null,
      0,
      -1.5,
      "",
      "x",
      "2024-05-01T10:00:00Z",
      "::ffff:1.2.3.4",
      true,
      [],
      [1, "a"],
      {},
      { page: 5 },
    ];
    const fields = [
      "type",
      "userId",
      "anonymousId",
      "event",
      "messageId",
      "timestamp",
      "sentAt",
      "originalTimestamp",
    ];
    const moreFields = [
      "context",
      "properties",
      "traits",
      "name",
      "category",
      "groupId",
      "previousId",
      "integrations",
    ];
    const randomCall = (): Record<string, unknown> => {
      const call: Record<string, unknown> = {
        type: choose(["track", "page", "identify", "group", "alias", "screen"]),
      };
      for (const field of [...fields, ...moreFields]) {
        if (random() < 0.4) call[field] = choose(oddValues);
      }
      if (random() < 0.5) call.userId = "u";
      if (random() < 0.3)
        call.context = { ip: choose(oddValues), page: choose(oddValues), traits: choose(oddValues) };
      return call;
    };
    const mutate = (bytes: Buffer): Buffer => {
      const copy = Buffer.from(bytes);
      for (let i = Math.floor(random() * 4); i >= 0; i--) {
        copy[Math.floor(random() * copy.length)] = Math.floor(random() * 256);
      }
      return random() < 0.3 ? copy.subarray(0, Math.floor(random() * copy.length)) : copy;
    };

    const { collector, stored } = setup({ limits: { maxEventBytes: 400, maxRequestBytes: 4000 } });
    const statuses = new Map<number, number>();
    for (let round = 0; round < 3000; round++) {
      const isBatch = random() < 0.5;
      const body = isBatch
        ? {
            batch: Array.from({ length: Math.floor(random() * 8) }, randomCall),
            context: choose([undefined, ...oddValues]),
          }
        : randomCall();
      let bytes: Buffer = Buffer.from(JSON.stringify(body));
      if (random() < 0.4) bytes = mutate(bytes);
      const gzip = random() < 0.2;
      if (gzip) bytes = random() < 0.3 ? mutate(gzipSync(bytes)) : gzipSync(bytes);
      const req: CollectRequest = {
        path: isBatch
          ? choose(["/v1/batch", "/v1/b"])
          : choose(["/v1/track", "/v1/page", "/v1/identify", "/v1/alias", "/v1/x"]),
        headers: {
          authorization:
            random() < 0.8 ? basicAuth(WRITE_KEY) : choose([basicAuth("nope"), "Basic !!!", "", undefined]),
          "content-encoding": gzip
            ? "gzip"
            : choose([undefined, undefined, undefined, "identity", "deflate"]),
        },
        body: bytes,
        remoteAddress: choose([undefined, "10.1.2.3", "::1", "garbage"]),
      };
      const response = await collector.handle(req);
      assert.ok([200, 400, 401, 404, 413, 415].includes(response.status), JSON.stringify(response));
      statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1);
      if (response.status === 200 && "errors" in (response.body as object)) {
        const { rejected, errors } = response.body as { rejected: number; errors: unknown[] };
        assert.equal(rejected, errors.length);
      }
    }
    assert.ok(
      (statuses.get(200) ?? 0) > 100 && (statuses.get(400) ?? 0) > 100,
      JSON.stringify([...statuses]),
    );
    for (const event of stored()) {
      assert.deepEqual(
        Object.keys(event),
        EVENT_COLUMNS.map((column) => column.name),
      );
      assert.match(event.ts, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
    }
  });
});
