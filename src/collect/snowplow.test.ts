import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { gzipSync } from "node:zlib";
import { Collector, type CollectRequest, type CollectResponse } from "./index.js";
import type { CanonicalEvent, RejectedEvent } from "./model.js";
import { PIXEL_GIF, SNOWPLOW_PIXEL_PATH, SNOWPLOW_POST_PATH } from "./snowplow.js";
import { MemoryTopic } from "./test-support/memory-topic.js";

const WRITE_KEY = "wk_web";
const RECEIVED_AT = "2024-05-01T12:00:00.000Z";
const NOW = Date.parse(RECEIVED_AT);
const CHROME =
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";

function setup() {
  const events = new MemoryTopic("events");
  const rejected = new MemoryTopic("rejected");
  const collector = new Collector({
    events,
    rejected,
    writeKeys: new Map([
      [WRITE_KEY, "web"],
      ["wk_app", "app"],
    ]),
    now: () => NOW,
  });
  return {
    collector,
    stored: () => events.records.map((line) => JSON.parse(line) as CanonicalEvent),
    quarantined: () => rejected.records.map((line) => JSON.parse(line) as RejectedEvent),
  };
}

const payloadData = (data: unknown[]) => ({
  schema: "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
  data,
});

function post(body: unknown, headers: Record<string, string> = {}): CollectRequest {
  return {
    method: "POST",
    path: SNOWPLOW_POST_PATH,
    headers: { "content-type": "application/json; charset=UTF-8", ...headers },
    body: Buffer.from(typeof body === "string" ? body : JSON.stringify(body)),
    remoteAddress: "203.0.113.77",
  };
}

function pixel(fields: Record<string, string>, headers: Record<string, string> = {}): CollectRequest {
  return {
    method: "GET",
    path: SNOWPLOW_PIXEL_PATH,
    query: new URLSearchParams(fields).toString(),
    headers,
    body: Buffer.alloc(0),
    remoteAddress: "203.0.113.77",
  };
}

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

const pageView = (extra: Record<string, string> = {}) => ({
  e: "pv",
  eid: "5b4e7a1c-0000-4000-8000-000000000001",
  aid: WRITE_KEY,
  p: "web",
  tv: "js-3.23.0",
  tna: "sp",
  url: "https://shop.example/products/42?ref=mail",
  page: "Blue shoes",
  refr: "https://search.example/?q=shoes",
  duid: "d-1",
  sid: "s-1",
  vid: "3",
  lang: "de-DE",
  res: "1920x1080",
  vp: "1200x800",
  ua: CHROME,
  dtm: String(NOW - 70_000),
  stm: String(NOW - 60_000),
  ...extra,
});

function body(response: CollectResponse): Record<string, unknown> {
  return response.body as Record<string, unknown>;
}

describe("Snowplow tp2 POST", () => {
  it("maps a page view to the canonical columns, with clock skew corrected by stm", async () => {
    const { collector, stored } = setup();
    const response = await collector.handle(post(payloadData([pageView()])));
    assert.equal(response.status, 200, JSON.stringify(response.body));
    assert.deepEqual(body(response), { success: true, accepted: 1, rejected: 0, errors: [] });
    const [event] = stored();
    assert.ok(event);
    assert.equal(event.event_id, "5b4e7a1c-0000-4000-8000-000000000001");
    assert.equal(event.event_type, "page");
    assert.equal(event.event, null);
    assert.equal(event.source, "web");
    assert.equal(event.anonymous_id, "d-1");
    assert.equal(event.session_id, "s-1");
    assert.equal(event.user_id, null);
    // Created 10 s before it was sent, by the device's clock.
    assert.equal(event.ts, new Date(NOW - 10_000).toISOString());
    assert.equal(event.page_url, "https://shop.example/products/42?ref=mail");
    assert.equal(event.page_path, "/products/42");
    assert.equal(event.referrer, "https://search.example/?q=shoes");
    assert.equal(event.user_agent, CHROME);
    assert.equal(event.browser, "Chrome");
    assert.equal(event.os, "Windows");
    assert.equal(event.device_type, "desktop");
    assert.equal(event.ip, "203.0.113.0");
    assert.deepEqual(event.properties, { title: "Blue shoes" });
    const context = event.context as Record<string, unknown>;
    assert.equal(context.locale, "de-DE");
    assert.deepEqual(context.screen, { width: 1920, height: 1080 });
    assert.equal(context.is_bot, false);
    assert.deepEqual(context.page, {
      url: "https://shop.example/products/42?ref=mail",
      path: "/products/42",
      title: "Blue shoes",
      referrer: "https://search.example/?q=shoes",
    });
    const snowplow = context.snowplow as Record<string, unknown>;
    assert.equal(snowplow.tv, "js-3.23.0");
    assert.equal(snowplow.vp, "1200x800");
    assert.equal(snowplow.aid, undefined, "an app id that is the write key is not stored");
    assert.equal(typeof snowplow.network_user_id, "string");
  });

  it("names a structured event category/action and keeps its fields as properties", async () => {
    const { collector, stored } = setup();
    await collector.handle(
      post(
        payloadData([
          {
            e: "se",
            aid: WRITE_KEY,
            uid: "u-9",
            se_ca: "shop",
            se_ac: "add-to-cart",
            se_la: "sku-1",
            se_va: "19.5",
          },
        ]),
      ),
    );
    const [event] = stored();
    assert.equal(event?.event_type, "track");
    assert.equal(event?.event, "shop/add-to-cart");
    assert.equal(event?.user_id, "u-9");
    assert.deepEqual(event?.properties, {
      category: "shop",
      action: "add-to-cart",
      label: "sku-1",
      value: 19.5,
    });
  });

  it("names a self-describing event after its schema, from JSON or base64url, with contexts", async () => {
    const { collector, stored } = setup();
    const unstruct = {
      schema: "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
      data: { schema: "iglu:com.acme/link_click/jsonschema/1-0-1", data: { target: "/pricing" } },
    };
    const contexts = {
      schema: "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0",
      data: [{ schema: "iglu:com.acme/user/jsonschema/1-0-0", data: { plan: "pro" } }],
    };
    const response = await collector.handle(
      post(
        payloadData([
          {
            e: "ue",
            aid: WRITE_KEY,
            duid: "d",
            ue_pr: JSON.stringify(unstruct),
            co: JSON.stringify(contexts),
          },
          { e: "ue", aid: WRITE_KEY, duid: "d", ue_px: base64url(unstruct), cx: base64url(contexts) },
        ]),
      ),
    );
    assert.equal(body(response).accepted, 2);
    for (const event of stored()) {
      assert.equal(event.event, "link_click");
      assert.deepEqual(event.properties, { target: "/pricing" });
      const snowplow = (event.context as { snowplow: Record<string, unknown> }).snowplow;
      assert.equal(snowplow.schema, "iglu:com.acme/link_click/jsonschema/1-0-1");
      assert.deepEqual(snowplow.contexts, contexts.data);
    }
  });

  it("records page pings with their scroll offsets, and ttm as the true time", async () => {
    const { collector, stored } = setup();
    const ttm = NOW - 3_600_000;
    await collector.handle(
      post(
        payloadData([
          {
            e: "pp",
            aid: WRITE_KEY,
            duid: "d",
            pp_mix: "0",
            pp_max: "20",
            pp_miy: "100",
            pp_may: "900",
            ttm: String(ttm),
          },
        ]),
      ),
    );
    const [event] = stored();
    assert.equal(event?.event, "page_ping");
    assert.deepEqual(event?.properties, { min_x: 0, max_x: 20, min_y: 100, max_y: 900 });
    assert.equal(event?.ts, new Date(ttm).toISOString());
  });

  it("sets the sp cookie, reuses the one sent, and falls back to it as the anonymous id", async () => {
    const { collector, stored } = setup();
    const first = await collector.handle(
      post(payloadData([{ e: "pv", aid: WRITE_KEY, url: "https://a.example/" }])),
    );
    const cookie = first.headers?.["set-cookie"] ?? "";
    const id = /^sp=([\w-]+);/.exec(cookie)?.[1];
    assert.ok(id, cookie);
    assert.match(cookie, /Max-Age=31536000/);
    assert.match(cookie, /SameSite=None; Secure/);
    const again = await collector.handle(
      post(payloadData([{ e: "pv", aid: WRITE_KEY, url: "https://a.example/" }]), {
        cookie: `x=1; sp=${id}`,
      }),
    );
    assert.match(again.headers?.["set-cookie"] ?? "", new RegExp(`^sp=${id};`));
    assert.deepEqual(
      stored().map((event) => event.anonymous_id),
      [id, id],
    );
  });

  it("SP-Anonymous: no cookie and no IP address", async () => {
    const { collector, stored } = setup();
    const response = await collector.handle(
      post(payloadData([{ e: "pv", aid: WRITE_KEY, duid: "d" }]), { "sp-anonymous": "*" }),
    );
    assert.equal(response.headers?.["set-cookie"], undefined);
    assert.equal(stored()[0]?.ip, null);
  });

  it("accepts the write key as Basic auth, keeping the app id; gzip bodies too", async () => {
    const { collector, stored } = setup();
    const response = await collector.handle({
      ...post(Buffer.alloc(0), {
        authorization: `Basic ${Buffer.from("wk_app:").toString("base64")}`,
        "content-encoding": "gzip",
      }),
      body: gzipSync(JSON.stringify(payloadData([{ e: "pv", aid: "shop-frontend", duid: "d" }]))),
    });
    assert.equal(response.status, 200);
    const [event] = stored();
    assert.equal(event?.source, "app");
    assert.equal(event?.anonymous_id, "d");
    assert.equal((event?.context?.snowplow as Record<string, unknown> | undefined)?.aid, "shop-frontend");
  });

  it("refuses requests without a known write key", async () => {
    const { collector } = setup();
    const none = await collector.handle(post(payloadData([{ e: "pv", aid: "not-a-key" }])));
    assert.equal(none.status, 401);
    assert.match(String(body(none).error), /aid/);
    const missing = await collector.handle(post(payloadData([{ e: "pv" }])));
    assert.equal(missing.status, 401);
  });

  it("rejects malformed payload_data with 400 naming the field, quarantined", async () => {
    const { collector, quarantined } = setup();
    const notJson = await collector.handle(
      post("{oops", { authorization: `Basic ${Buffer.from(`${WRITE_KEY}:`).toString("base64")}` }),
    );
    assert.equal(notJson.status, 400);
    assert.match(String(body(notJson).error), /not valid JSON/);
    const noData = await collector.handle(
      post(
        { schema: "x", events: [] },
        { authorization: `Basic ${Buffer.from(`${WRITE_KEY}:`).toString("base64")}` },
      ),
    );
    assert.equal(noData.status, 400);
    assert.equal(body(noData).field, "data");
    assert.equal(quarantined().length, 2);
  });

  it("rejects invalid events of a batch with reasons naming the field, keeping the valid ones", async () => {
    const { collector, stored, quarantined } = setup();
    const response = await collector.handle(
      post(
        payloadData([
          pageView({ eid: "ok-1" }),
          { e: "xx", aid: WRITE_KEY },
          { aid: WRITE_KEY },
          { e: "se", aid: WRITE_KEY, se_ca: "shop" },
          { e: "se", aid: WRITE_KEY, se_ca: "shop", se_ac: "buy", se_va: "lots" },
          { e: "ue", aid: WRITE_KEY, ue_px: "%%%" },
          { e: "ue", aid: WRITE_KEY, ue_pr: JSON.stringify({ data: { schema: "not-iglu", data: {} } }) },
          { e: "pv", aid: WRITE_KEY, dtm: "yesterday" },
          { e: "pv", aid: WRITE_KEY, co: "{" },
          { e: "pv", aid: WRITE_KEY, url: { nested: true } },
          { e: "pv", aid: "wk_app" },
          "not an object",
        ]),
      ),
    );
    assert.equal(response.status, 200);
    const errors = body(response).errors as { index: number; field: string; reason: string }[];
    assert.deepEqual(
      errors.map((error) => error.field),
      [
        "data[1].e",
        "data[2].e",
        "data[3].se_ac",
        "data[4].se_va",
        "data[5].ue_px",
        "data[6].ue_pr",
        "data[7].dtm",
        "data[8].co",
        "data[9].url",
        "data[10].aid",
        "data[11]",
      ],
    );
    for (const error of errors) assert.ok(error.reason.includes(error.field), error.reason);
    assert.deepEqual(
      stored().map((event) => event.event_id),
      ["ok-1"],
    );
    const rows = quarantined();
    assert.equal(rows.length, 11);
    assert.equal(rows[0]?.reason, errors[0]?.reason);
    assert.ok(!rows.some((row) => row.payload.includes(WRITE_KEY)), "the write key is not quarantined");
  });

  it("deduplicates by eid", async () => {
    const { collector, stored } = setup();
    await collector.handle(post(payloadData([pageView({ eid: "same" })])));
    await collector.handle(post(payloadData([pageView({ eid: "same" })])));
    assert.equal(stored().length, 1);
  });
});

describe("Snowplow GET /i pixel", () => {
  it("answers a 1×1 GIF that must not be cached, with the sp cookie, and stores the event", async () => {
    const { collector, stored } = setup();
    const response = await collector.handle(pixel(pageView({ eid: "px-1" }), { "user-agent": "ignored" }));
    assert.equal(response.status, 200);
    assert.ok(Buffer.isBuffer(response.body));
    assert.deepEqual(response.body, PIXEL_GIF);
    assert.equal(PIXEL_GIF.subarray(0, 6).toString("latin1"), "GIF89a");
    assert.equal(response.headers?.["content-type"], "image/gif");
    assert.match(response.headers?.["cache-control"] ?? "", /no-store/);
    assert.match(response.headers?.["set-cookie"] ?? "", /^sp=/);
    const [event] = stored();
    assert.equal(event?.event_id, "px-1");
    assert.equal(event?.user_agent, CHROME, "the ua field wins over the header");
  });

  it("takes the User-Agent header when the event has no ua", async () => {
    const { collector, stored } = setup();
    await collector.handle(pixel({ e: "pv", aid: WRITE_KEY, duid: "d" }, { "user-agent": CHROME }));
    assert.equal(stored()[0]?.browser, "Chrome");
  });

  it("answers a malformed event 400 naming the field, and quarantines it", async () => {
    const { collector, quarantined } = setup();
    const response = await collector.handle(pixel({ e: "se", aid: WRITE_KEY, se_ca: "c" }));
    assert.equal(response.status, 400);
    assert.equal(body(response).field, "se_ac");
    assert.match(String(body(response).error), /se_ac is required/);
    assert.equal(quarantined()[0]?.reason, body(response).error);
  });
});

describe("Snowplow robustness", () => {
  it("answers odd inputs with a 2xx or 4xx, never a failure", async () => {
    const { collector } = setup();
    const bodies: unknown[] = [
      "null",
      "[]",
      { data: [null, 1, [], { e: ["pv"], aid: WRITE_KEY }] },
      { data: [{ e: "pv", aid: WRITE_KEY, dtm: "999999999999999", stm: "-999999999999999" }] },
      { data: [{ e: "ue", aid: WRITE_KEY, ue_pr: "null" }] },
      { data: [{ e: "ue", aid: WRITE_KEY, ue_px: "" }] },
      { data: [{ e: "pv", aid: WRITE_KEY, cx: "bnVsbA" }] },
      { data: [{ e: "pv", aid: WRITE_KEY, res: "huge", ip: "not-an-ip" }] },
      { data: [{ aid: WRITE_KEY, e: "pv", url: "x".repeat(40_000) }] },
    ];
    for (const body of bodies) {
      const response = await collector.handle(post(body));
      assert.ok(
        [200, 400, 401, 413].includes(response.status),
        `${JSON.stringify(response)} for ${JSON.stringify(body)}`,
      );
    }
    for (const query of ["", "e", "e=pv&aid=%E0%A4%A", `aid=${WRITE_KEY}&e=pv&${"x=1&".repeat(5000)}`]) {
      const response = await collector.handle({ ...pixel({}), query });
      assert.ok(
        [200, 400, 401, 413].includes(response.status),
        `${JSON.stringify(response)} for ${query.slice(0, 80)}`,
      );
    }
  });
});
