import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { Collector, type CollectRequest, type CollectResponse } from "./index.js";
import type { CanonicalEvent, RejectedEvent } from "./model.js";
import { MemoryTopic } from "./test-support/memory-topic.js";

const WRITE_KEY = "phc_web";
const RECEIVED_AT = "2024-05-01T12:00:00.000Z";
const NOW = Date.parse(RECEIVED_AT);
const FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0";

function setup() {
  const events = new MemoryTopic("events");
  const rejected = new MemoryTopic("rejected");
  const collector = new Collector({
    events,
    rejected,
    writeKeys: new Map([
      [WRITE_KEY, "web"],
      ["phc_app", "app"],
    ]),
    now: () => NOW,
  });
  return {
    collector,
    stored: () => events.records.map((line) => JSON.parse(line) as CanonicalEvent),
    quarantined: () => rejected.records.map((line) => JSON.parse(line) as RejectedEvent),
  };
}

function post(
  path: string,
  body: Buffer | string | unknown,
  options: { headers?: Record<string, string>; query?: string } = {},
): CollectRequest {
  const raw = Buffer.isBuffer(body)
    ? body
    : Buffer.from(typeof body === "string" ? body : JSON.stringify(body));
  return {
    method: "POST",
    path,
    query: options.query ?? "",
    headers: { "content-type": "application/json", ...options.headers },
    body: raw,
    remoteAddress: "198.51.100.9",
  };
}

function answer(response: CollectResponse): Record<string, unknown> {
  return response.body as Record<string, unknown>;
}

const pageview = {
  event: "$pageview",
  distinct_id: "anon-device-1",
  uuid: "0190a0a0-0000-7000-8000-000000000001",
  timestamp: "2024-05-01T12:00:50.000Z",
  properties: {
    token: WRITE_KEY,
    $device_id: "anon-device-1",
    $current_url: "https://shop.example/checkout?step=2",
    $referrer: "$direct",
    $session_id: "sess-1",
    $raw_user_agent: FIREFOX,
    $lib: "web",
    $lib_version: "1.130.0",
    $ip: "198.51.100.77",
  },
};

describe("PostHog capture", () => {
  it("maps posthog-node's gzipped /batch/ with sent_at clock-skew correction", async () => {
    const { collector, stored } = setup();
    const body = {
      api_key: WRITE_KEY,
      sent_at: "2024-05-01T12:01:00.000Z",
      batch: [
        {
          event: "Order Completed",
          distinct_id: "user-1",
          uuid: "u-1",
          timestamp: "2024-05-01T12:00:30.000Z",
          properties: { revenue: 42, $lib: "posthog-node", $lib_version: "5.0.0" },
        },
      ],
    };
    const response = await collector.handle(
      post("/batch/", gzipSync(JSON.stringify(body)), { headers: { "content-encoding": "gzip" } }),
    );
    assert.equal(response.status, 200, JSON.stringify(response.body));
    assert.deepEqual(answer(response), { status: 1, accepted: 1, rejected: 0, errors: [] });
    const [event] = stored();
    assert.equal(event?.event_id, "u-1");
    assert.equal(event?.event_type, "track");
    assert.equal(event?.event, "Order Completed");
    assert.equal(event?.user_id, "user-1");
    assert.equal(event?.anonymous_id, null);
    assert.equal(event?.source, "web");
    // Created 30 s before it was sent, by the client's clock.
    assert.equal(event?.ts, "2024-05-01T11:59:30.000Z");
    assert.deepEqual(event?.properties, { revenue: 42, $lib: "posthog-node", $lib_version: "5.0.0" });
    assert.deepEqual(event?.context, { library: { name: "posthog-node", version: "5.0.0" } });
    assert.equal(event?.ip, "198.51.100.0");
  });

  it("maps posthog-js's gzip-js /e/ page view: anonymous until identified, page columns, user agent", async () => {
    const { collector, stored } = setup();
    const response = await collector.handle(
      post("/e/", gzipSync(JSON.stringify([pageview])), {
        headers: { "content-type": "text/plain" },
        query: "ip=1&_=1714564800000&ver=1.130.0&compression=gzip-js",
      }),
    );
    assert.equal(response.status, 200, JSON.stringify(response.body));
    const [event] = stored();
    assert.equal(event?.event_type, "page");
    assert.equal(event?.event, null);
    assert.equal(event?.user_id, null);
    assert.equal(event?.anonymous_id, "anon-device-1");
    assert.equal(event?.session_id, "sess-1");
    assert.equal(event?.page_url, "https://shop.example/checkout?step=2");
    assert.equal(event?.page_path, "/checkout");
    assert.equal(event?.referrer, null, "$direct is no referrer");
    assert.equal(event?.browser, "Firefox");
    assert.equal(event?.os, "Linux");
    assert.equal(event?.device_type, "desktop");
    assert.equal(event?.ip, "198.51.100.0");
    assert.equal(event?.properties?.$ip, "198.51.100.0", "the full IP is not kept");
    assert.equal(event?.properties?.token, undefined, "the write key is not kept");
    assert.equal(event?.context?.is_bot, false);
  });

  it("corrects clock skew by the send time posthog-js puts in the query string", async () => {
    const { collector, stored } = setup();
    // The device's clock is an hour ahead; it created the event 10 s before sending it.
    const event = { ...pageview, uuid: "skewed", timestamp: "2024-05-01T13:00:20.000Z" };
    const sentAt = Date.parse("2024-05-01T13:00:30.000Z");
    const response = await collector.handle(
      post("/e/", gzipSync(JSON.stringify([event])), {
        headers: { "content-type": "text/plain" },
        query: `compression=gzip-js&sent_at=${sentAt}&ver=1.449.2`,
      }),
    );
    assert.equal(response.status, 200, JSON.stringify(response.body));
    assert.equal(stored()[0]?.ts, "2024-05-01T11:59:50.000Z");
  });

  it("reads base64 and form-encoded (data=) bodies", async () => {
    const { collector, stored } = setup();
    const base64 = Buffer.from(JSON.stringify({ ...pageview, uuid: "b64" })).toString("base64");
    const plain = await collector.handle(post("/e/", base64, { headers: { "content-type": "text/plain" } }));
    assert.equal(plain.status, 200, JSON.stringify(plain.body));
    const form = await collector.handle(
      post(
        "/i/v0/e/",
        `data=${encodeURIComponent(Buffer.from(JSON.stringify({ ...pageview, uuid: "form" })).toString("base64"))}`,
        {
          headers: { "content-type": "application/x-www-form-urlencoded" },
        },
      ),
    );
    assert.equal(form.status, 200, JSON.stringify(form.body));
    const formJson = await collector.handle(
      post("/capture", `data=${encodeURIComponent(JSON.stringify({ ...pageview, uuid: "form-json" }))}`, {
        headers: { "content-type": "application/x-www-form-urlencoded" },
      }),
    );
    assert.equal(formJson.status, 200, JSON.stringify(formJson.body));
    assert.deepEqual(
      stored().map((event) => event.event_id),
      ["b64", "form", "form-json"],
    );
  });

  it("maps $identify, $set, $create_alias, $groupidentify and $screen to the Segment call types", async () => {
    const { collector, stored } = setup();
    const response = await collector.handle(
      post("/batch/", {
        api_key: WRITE_KEY,
        batch: [
          {
            event: "$identify",
            distinct_id: "user-1",
            properties: {
              $anon_distinct_id: "anon-device-1",
              $device_id: "anon-device-1",
              $set: { email: "a@example.com", plan: "pro" },
              $set_once: { first_seen: "2024-01-01", plan: "free" },
            },
          },
          // posthog-js sends the person's properties beside the event's, not in them.
          {
            event: "$identify",
            distinct_id: "user-2",
            properties: { $anon_distinct_id: "anon-device-2" },
            $set: { plan: "team" },
            $set_once: { first_seen: "2024-02-01" },
          },
          { event: "$set", distinct_id: "user-1", properties: { $set: { plan: "team" } } },
          {
            event: "$create_alias",
            distinct_id: "user-1",
            properties: { distinct_id: "user-1", alias: "old-id" },
          },
          {
            event: "$groupidentify",
            distinct_id: "user-1",
            properties: { $group_type: "company", $group_key: "acme", $group_set: { seats: 10 } },
          },
          { event: "$screen", distinct_id: "user-1", properties: { $screen_name: "Settings" } },
          { event: "Clicked", distinct_id: "user-1", properties: { $device_id: "anon-device-1" } },
          { event: "Viewed", distinct_id: "visitor-9", properties: { $is_identified: false } },
          { event: "Numbered", distinct_id: 12345 },
        ],
      }),
    );
    assert.equal(answer(response).accepted, 9, JSON.stringify(response.body));
    const rows = stored().map((event) => [
      event.event_type,
      event.event,
      event.user_id,
      event.anonymous_id,
      event.traits,
      event.context,
    ]);
    assert.deepEqual(rows, [
      [
        "identify",
        null,
        "user-1",
        "anon-device-1",
        { first_seen: "2024-01-01", plan: "pro", email: "a@example.com" },
        null,
      ],
      ["identify", null, "user-2", "anon-device-2", { first_seen: "2024-02-01", plan: "team" }, null],
      ["identify", null, "user-1", null, { plan: "team" }, null],
      ["alias", null, "user-1", null, null, { previousId: "old-id" }],
      ["group", null, "user-1", null, { seats: 10 }, { groupId: "acme", groupType: "company" }],
      ["screen", "Settings", "user-1", null, null, null],
      ["track", "Clicked", "user-1", "anon-device-1", null, null],
      ["track", "Viewed", null, "visitor-9", null, null],
      ["track", "Numbered", "12345", null, null, null],
    ]);
  });

  it("takes the key from properties.token of a single event, and refuses unknown or missing keys", async () => {
    const { collector, stored } = setup();
    const ok = await collector.handle(post("/capture/", { ...pageview, uuid: "single" }));
    assert.deepEqual(answer(ok), { status: 1, accepted: 1, rejected: 0, errors: [] });
    assert.equal(stored()[0]?.source, "web");
    const unknown = await collector.handle(
      post("/capture/", { event: "x", distinct_id: "d", api_key: "phc_nope" }),
    );
    assert.equal(unknown.status, 401);
    const missing = await collector.handle(post("/capture/", { event: "x", distinct_id: "d" }));
    assert.equal(missing.status, 401);
    assert.match(String(answer(missing).error), /api_key/);
  });

  it("rejects a single invalid event with 400 naming the field, quarantined without its key", async () => {
    const { collector, quarantined } = setup();
    const response = await collector.handle(post("/capture/", { api_key: WRITE_KEY, event: "Signed Up" }));
    assert.equal(response.status, 400);
    assert.equal(answer(response).field, "distinct_id");
    assert.match(String(answer(response).error), /distinct_id is required/);
    const [row] = quarantined();
    assert.equal(row?.reason, answer(response).error);
    assert.ok(!row?.payload.includes(WRITE_KEY));
  });

  it("lists the invalid events of a batch by field, keeping the valid ones", async () => {
    const { collector, stored, quarantined } = setup();
    const response = await collector.handle(
      post("/batch", {
        api_key: WRITE_KEY,
        batch: [
          { event: "ok", distinct_id: "d", uuid: "ok" },
          { distinct_id: "d" },
          { event: "x", distinct_id: "d", properties: "no" },
          { event: "x", distinct_id: "d", timestamp: "yesterday" },
          { event: "x", distinct_id: "d", uuid: 7 },
          { event: "$create_alias", distinct_id: "d", properties: {} },
          { event: "x", distinct_id: "d", api_key: "phc_app" },
          42,
        ],
      }),
    );
    assert.equal(response.status, 200);
    const errors = answer(response).errors as { field: string; reason: string }[];
    assert.deepEqual(
      errors.map((error) => error.field),
      [
        "batch[1].event",
        "batch[2].properties",
        "batch[3].timestamp",
        "batch[4].uuid",
        "batch[5].properties.alias",
        "batch[6].api_key",
        "batch[7]",
      ],
    );
    assert.deepEqual(
      stored().map((event) => event.event_id),
      ["ok"],
    );
    assert.equal(quarantined().length, 7);
  });

  it("refuses unreadable bodies with reasons", async () => {
    const { collector } = setup();
    const headers = { authorization: `Basic ${Buffer.from(`${WRITE_KEY}:`).toString("base64")}` };
    const notJson = await collector.handle(post("/e/", "{not json", { headers }));
    assert.equal(notJson.status, 400);
    assert.match(String(answer(notJson).error), /not valid JSON/);
    const garbage = await collector.handle(post("/e/", "%%% not base64 %%%", { headers }));
    assert.equal(garbage.status, 400);
    assert.match(String(answer(garbage).error), /neither JSON nor base64/);
    const lz64 = await collector.handle(post("/e/", "N4Ig", { headers, query: "compression=lz64" }));
    assert.equal(lz64.status, 415);
    const noData = await collector.handle(
      post("/e/", "foo=bar", {
        headers: { ...headers, "content-type": "application/x-www-form-urlencoded" },
      }),
    );
    assert.equal(noData.status, 400);
    assert.equal(answer(noData).field, "data");
    const badBatch = await collector.handle(post("/batch/", { api_key: WRITE_KEY, batch: {} }));
    assert.equal(badBatch.status, 400);
    assert.equal(answer(badBatch).field, "batch");
  });

  it("deduplicates by uuid", async () => {
    const { collector, stored } = setup();
    await collector.handle(post("/e/", [pageview]));
    await collector.handle(post("/e/", [pageview]));
    assert.equal(stored().length, 1);
  });
});

describe("PostHog robustness", () => {
  it("answers odd inputs with a 2xx or 4xx, never a failure", async () => {
    const { collector } = setup();
    const bodies: unknown[] = [
      "null",
      "42",
      '"text"',
      "[]",
      "[null, 1, []]",
      { batch: [{ event: "x", distinct_id: {}, api_key: WRITE_KEY }] },
      { api_key: WRITE_KEY, batch: [], sent_at: 5 },
      { api_key: WRITE_KEY, event: "x", distinct_id: "d", offset: "soon" },
      {
        api_key: WRITE_KEY,
        event: "x",
        distinct_id: "d",
        timestamp: "9999-12-31T23:59:59Z",
        sent_at: "0001-01-01T00:00:00Z",
      },
      { api_key: [WRITE_KEY], event: "x", distinct_id: "d" },
      Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0x01, 0x02]),
      "=".repeat(10),
      "x".repeat(600_000),
    ];
    for (const body of bodies) {
      const response = await collector.handle(post("/e/", body));
      assert.ok(
        [200, 400, 401, 413].includes(response.status),
        `${JSON.stringify(response)} for ${String(body).slice(0, 80)}`,
      );
    }
  });
});
