import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { EVENT_COLUMNS } from "./model.js";
import {
  type Arrival,
  callForPath,
  type Envelope,
  Invalid,
  NO_ENVELOPE,
  normaliseBatchItem,
  normaliseCall,
  readBatch,
  truncateIp,
} from "./segment.js";

const RECEIVED_AT = "2024-05-01T12:00:00.000Z";
const arrival: Arrival = {
  source: "web",
  receivedAtMs: Date.parse(RECEIVED_AT),
  receivedAt: RECEIVED_AT,
  remoteAddress: "203.0.113.77",
  dedupeSeeds: [1, 2, 3],
};

function invalid(result: unknown): Invalid {
  assert.ok(result instanceof Invalid, `expected Invalid, got ${JSON.stringify(result)}`);
  return result;
}

function valid<T>(result: T | Invalid): T {
  assert.ok(!(result instanceof Invalid), `expected an event, got ${JSON.stringify(result)}`);
  return result;
}

describe("callForPath", () => {
  it("maps the documented and the analytics.js one-letter endpoints", () => {
    assert.equal(callForPath("/v1/batch"), "batch");
    assert.equal(callForPath("/v1/track"), "track");
    assert.equal(callForPath("/v1/alias"), "alias");
    assert.equal(callForPath("/v1/b"), "batch");
    assert.equal(callForPath("/v1/p"), "page");
    assert.equal(callForPath("/v1/track?x=1"), "track");
    assert.equal(callForPath("/v1/identify/"), "identify");
    assert.equal(callForPath("/v1/import"), undefined);
    assert.equal(callForPath("/"), undefined);
  });
});

describe("normaliseCall", () => {
  it("maps a track call onto every canonical column, in column order", () => {
    const event = valid(
      normaliseCall(
        {
          messageId: "m-1",
          userId: "u1",
          anonymousId: "a1",
          event: "Order Completed",
          properties: { total: 42 },
          timestamp: "2024-05-01T11:00:00.000Z",
          context: {
            sessionId: "s1",
            userAgent: "Mozilla/5.0",
            ip: "198.51.100.23",
            page: {
              url: "https://shop.example/cart?x=1",
              path: "/cart",
              referrer: "https://search.example/",
            },
            traits: { plan: "pro" },
          },
        },
        "track",
        "",
        NO_ENVELOPE,
        arrival,
      ),
    );
    assert.deepEqual(
      Object.keys(event),
      EVENT_COLUMNS.map((column) => column.name),
    );
    assert.deepEqual(event, {
      event_id: "m-1",
      event_type: "track",
      event: "Order Completed",
      user_id: "u1",
      anonymous_id: "a1",
      session_id: "s1",
      ts: "2024-05-01T11:00:00.000Z",
      received_at: RECEIVED_AT,
      source: "web",
      page_url: "https://shop.example/cart?x=1",
      page_path: "/cart",
      referrer: "https://search.example/",
      user_agent: "Mozilla/5.0",
      browser: null,
      os: null,
      device_type: null,
      ip: "198.51.100.0",
      country: null,
      properties: { total: 42 },
      context: {
        sessionId: "s1",
        userAgent: "Mozilla/5.0",
        ip: "198.51.100.0",
        page: { url: "https://shop.example/cart?x=1", path: "/cart", referrer: "https://search.example/" },
        traits: { plan: "pro" },
      },
      traits: { plan: "pro" },
    });
  });

  it("fills gaps: generated messageId, received time, remote address, nulls", () => {
    const event = valid(
      normaliseCall({ anonymousId: "a1", event: "Clicked" }, "track", "", NO_ENVELOPE, arrival),
    );
    assert.match(event.event_id, /^[0-9a-f-]{36}$/);
    assert.equal(event.ts, RECEIVED_AT);
    assert.equal(event.ip, "203.0.113.0");
    assert.equal(event.user_id, null);
    assert.equal(event.session_id, null);
    assert.equal(event.properties, null);
    assert.equal(event.context, null);
    assert.equal(event.traits, null);
    assert.equal(event.page_url, null);
  });

  it("page: name is the event, name and category join the properties, page fields fall back to properties", () => {
    const event = valid(
      normaliseCall(
        {
          userId: "u1",
          name: "Pricing",
          category: "Docs",
          properties: {
            url: "https://example.com/pricing?plan=pro#top",
            referrer: "https://x.example/",
            title: "P",
          },
        },
        "page",
        "",
        NO_ENVELOPE,
        arrival,
      ),
    );
    assert.equal(event.event, "Pricing");
    assert.deepEqual(event.properties, {
      url: "https://example.com/pricing?plan=pro#top",
      referrer: "https://x.example/",
      title: "P",
      name: "Pricing",
      category: "Docs",
    });
    assert.equal(event.page_url, "https://example.com/pricing?plan=pro#top");
    assert.equal(event.page_path, "/pricing");
    assert.equal(event.referrer, "https://x.example/");
  });

  it("page: context.page wins over properties, and a page without name has a null event", () => {
    const event = valid(
      normaliseCall(
        {
          userId: "u1",
          properties: { url: "https://example.com/old", path: "/old" },
          context: { page: { url: "https://example.com/new" } },
        },
        "page",
        "",
        NO_ENVELOPE,
        arrival,
      ),
    );
    assert.equal(event.event, null);
    assert.equal(event.page_url, "https://example.com/new");
    assert.equal(event.page_path, "/old");
    assert.deepEqual(event.properties, { url: "https://example.com/old", path: "/old" });
  });

  it("track calls do not take page fields from their properties", () => {
    const event = valid(
      normaliseCall(
        { userId: "u1", event: "E", properties: { url: "https://e.example/x" } },
        "track",
        "",
        NO_ENVELOPE,
        arrival,
      ),
    );
    assert.equal(event.page_url, null);
  });

  it("page: a name sent only in the properties (as Jitsu sends it) is the event", () => {
    const event = valid(
      normaliseCall({ userId: "u1", properties: { name: "Pricing" } }, "page", "", NO_ENVELOPE, arrival),
    );
    assert.equal(event.event, "Pricing");
    assert.deepEqual(event.properties, { name: "Pricing" });
  });

  it("screen: name is the event and joins the properties", () => {
    const event = valid(normaliseCall({ userId: "u1", name: "Home" }, "screen", "", NO_ENVELOPE, arrival));
    assert.equal(event.event_type, "screen");
    assert.equal(event.event, "Home");
    assert.deepEqual(event.properties, { name: "Home" });
  });

  it("identify: traits, numeric ids become strings, call traits win over context.traits", () => {
    const event = valid(
      normaliseCall(
        { userId: 42, anonymousId: 7, traits: { email: "a@b.c" }, context: { traits: { plan: "pro" } } },
        "identify",
        "",
        NO_ENVELOPE,
        arrival,
      ),
    );
    assert.equal(event.user_id, "42");
    assert.equal(event.anonymous_id, "7");
    assert.equal(event.event, null);
    assert.deepEqual(event.traits, { email: "a@b.c" });
  });

  it("group: groupId goes to context.groupId; traits are the group's only", () => {
    const event = valid(
      normaliseCall(
        {
          userId: "u1",
          groupId: "g1",
          traits: { name: "Acme" },
          context: { groupId: "stale", traits: { plan: "x" } },
        },
        "group",
        "",
        NO_ENVELOPE,
        arrival,
      ),
    );
    assert.deepEqual(event.context, { groupId: "g1", traits: { plan: "x" } });
    assert.deepEqual(event.traits, { name: "Acme" });
    const withoutTraits = valid(
      normaliseCall(
        { userId: "u1", groupId: 5, context: { traits: { plan: "x" } } },
        "group",
        "",
        NO_ENVELOPE,
        arrival,
      ),
    );
    assert.equal(withoutTraits.traits, null);
    assert.equal(withoutTraits.context?.groupId, "5");
    assert.equal(
      invalid(normaliseCall({ userId: "u1" }, "group", "", NO_ENVELOPE, arrival)).field,
      "groupId",
    );
  });

  it("alias: previousId goes to context.previousId and is required", () => {
    const event = valid(
      normaliseCall({ userId: "u1", previousId: "anon-9" }, "alias", "", NO_ENVELOPE, arrival),
    );
    assert.deepEqual(event.context, { previousId: "anon-9" });
    const missing = invalid(normaliseCall({ userId: "u1" }, "alias", "", NO_ENVELOPE, arrival));
    assert.equal(missing.field, "previousId");
    assert.match(missing.reason, /previousId is required/);
  });

  it("requires userId or anonymousId, and a non-empty event for track", () => {
    assert.equal(invalid(normaliseCall({ event: "E" }, "track", "", NO_ENVELOPE, arrival)).field, "userId");
    assert.equal(
      invalid(normaliseCall({ userId: "", anonymousId: null, event: "E" }, "track", "", NO_ENVELOPE, arrival))
        .field,
      "userId",
    );
    assert.equal(invalid(normaliseCall({ userId: "u" }, "track", "", NO_ENVELOPE, arrival)).field, "event");
    assert.equal(
      invalid(normaliseCall({ userId: "u", event: "" }, "track", "", NO_ENVELOPE, arrival)).field,
      "event",
    );
    assert.equal(
      invalid(normaliseCall({ userId: "u", event: 5 }, "track", "", NO_ENVELOPE, arrival)).field,
      "event",
    );
  });

  it("names the field of every wrongly typed optional value", () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ userId: { id: 1 } }, "userId"],
      [{ anonymousId: true }, "anonymousId"],
      [{ messageId: 12 }, "messageId"],
      [{ messageId: "m".repeat(257) }, "messageId"],
      [{ properties: [1, 2] }, "properties"],
      [{ properties: "x" }, "properties"],
      [{ traits: 3 }, "traits"],
      [{ context: "ctx" }, "context"],
      [{ integrations: [] }, "integrations"],
      [{ name: 1 }, "name"],
      [{ category: {} }, "category"],
      [{ timestamp: "yesterday" }, "timestamp"],
      [{ timestamp: 1714561200000 }, "timestamp"],
      [{ timestamp: "2024-13-01T00:00:00Z" }, "timestamp"],
      [{ sentAt: "2024-05-01 10:00:00" }, "sentAt"],
      [{ originalTimestamp: "soon" }, "originalTimestamp"],
      [{ timestamp: "0001-01-01T00:00:00Z", sentAt: "9999-01-01T00:00:00Z" }, "timestamp"],
    ];
    for (const [fields, field] of cases) {
      const result = invalid(
        normaliseCall({ userId: "u", event: "E", ...fields }, "track", "", NO_ENVELOPE, arrival),
      );
      assert.equal(result.field, field, JSON.stringify(fields));
      assert.ok(result.reason.startsWith(field), result.reason);
    }
  });

  it("treats null optional fields as not sent", () => {
    const event = valid(
      normaliseCall(
        {
          userId: "u",
          anonymousId: null,
          event: "E",
          properties: null,
          context: null,
          timestamp: null,
          messageId: null,
        },
        "track",
        "",
        NO_ENVELOPE,
        arrival,
      ),
    );
    assert.equal(event.anonymous_id, null);
    assert.equal(event.ts, RECEIVED_AT);
  });
});

describe("event time", () => {
  const track = (fields: Record<string, unknown>, envelope: Envelope = NO_ENVELOPE) =>
    valid(normaliseCall({ userId: "u", event: "E", ...fields }, "track", "", envelope, arrival)).ts;

  it("corrects the client's clock skew with sentAt", () => {
    // The client's clock is two hours behind: it says the event happened 5 s before sending.
    assert.equal(
      track({ timestamp: "2024-05-01T10:00:00.000Z", sentAt: "2024-05-01T10:00:05.000Z" }),
      "2024-05-01T11:59:55.000Z",
    );
  });

  it("uses timestamp as is without sentAt, and the received time without either", () => {
    assert.equal(track({ timestamp: "2024-04-30T08:00:00+02:00" }), "2024-04-30T06:00:00.000Z");
    assert.equal(track({ sentAt: "2024-05-01T10:00:05Z" }), RECEIVED_AT);
    assert.equal(track({}), RECEIVED_AT);
  });

  it("accepts originalTimestamp when timestamp is absent; timestamp wins when both are sent", () => {
    assert.equal(track({ originalTimestamp: "2024-05-01T09:00:00.000Z" }), "2024-05-01T09:00:00.000Z");
    assert.equal(
      track({ originalTimestamp: "2024-05-01T10:00:00.000Z", sentAt: "2024-05-01T10:00:01.000Z" }),
      "2024-05-01T11:59:59.000Z",
    );
    assert.equal(
      track({ timestamp: "2024-05-01T08:00:00Z", originalTimestamp: "2024-05-01T09:00:00Z" }),
      "2024-05-01T08:00:00.000Z",
    );
  });

  it("takes a batch-level sentAt unless the item has its own", () => {
    const envelope: Envelope = { context: null, sentAtMs: Date.parse("2024-05-01T10:00:10Z") };
    assert.equal(track({ timestamp: "2024-05-01T10:00:00Z" }, envelope), "2024-05-01T11:59:50.000Z");
    assert.equal(
      track({ timestamp: "2024-05-01T10:00:00Z", sentAt: "2024-05-01T10:00:01Z" }, envelope),
      "2024-05-01T11:59:59.000Z",
    );
  });

  it("formats as UTC with milliseconds, reading zone-less times and fractions finer than ms", () => {
    assert.equal(track({ timestamp: "2024-05-01T10:00" }), "2024-05-01T10:00:00.000Z");
    assert.equal(track({ timestamp: "2024-05-01" }), "2024-05-01T00:00:00.000Z");
    assert.equal(track({ timestamp: "2024-05-01T10:00:00.123456Z" }), "2024-05-01T10:00:00.123Z");
    assert.equal(track({ timestamp: "2024-05-01T10:00:00-0130" }), "2024-05-01T11:30:00.000Z");
  });
});

describe("batch envelope and items", () => {
  it("applies the batch context to items, item values winning key by key", () => {
    const batch = readBatch({
      batch: [],
      context: { library: { name: "x" }, locale: "en" },
      sentAt: "2024-05-01T10:00:00Z",
    });
    assert.ok(!(batch instanceof Invalid));
    const event = valid(
      normaliseBatchItem(
        { type: "track", userId: "u", event: "E", context: { locale: "fr" } },
        0,
        batch.envelope,
        arrival,
      ),
    );
    assert.deepEqual(event.context, { library: { name: "x" }, locale: "fr" });
    const bare = valid(normaliseBatchItem({ type: "identify", userId: "u" }, 1, batch.envelope, arrival));
    assert.deepEqual(bare.context, { library: { name: "x" }, locale: "en" });
  });

  it("rejects a batch that is not an array and batch-level fields of the wrong type", () => {
    assert.equal(invalid(readBatch({ batch: {} })).field, "batch");
    assert.equal(invalid(readBatch({})).field, "batch");
    assert.equal(invalid(readBatch({ batch: [], context: [] })).field, "context");
    assert.equal(invalid(readBatch({ batch: [], sentAt: "now" })).field, "sentAt");
  });

  it("names item fields with their index", () => {
    assert.equal(invalid(normaliseBatchItem(5, 3, NO_ENVELOPE, arrival)).field, "batch[3]");
    assert.equal(
      invalid(normaliseBatchItem({ userId: "u" }, 3, NO_ENVELOPE, arrival)).field,
      "batch[3].type",
    );
    assert.equal(
      invalid(normaliseBatchItem({ type: "click", userId: "u" }, 3, NO_ENVELOPE, arrival)).field,
      "batch[3].type",
    );
    const missingEvent = invalid(normaliseBatchItem({ type: "track", userId: "u" }, 3, NO_ENVELOPE, arrival));
    assert.equal(missingEvent.field, "batch[3].event");
    assert.match(missingEvent.reason, /^batch\[3\]\.event must be a non-empty string/);
  });
});

describe("truncateIp", () => {
  it("zeroes the last octet of IPv4", () => {
    assert.equal(truncateIp("203.0.113.77"), "203.0.113.0");
    assert.equal(truncateIp("10.0.0.0"), "10.0.0.0");
  });

  it("keeps the first 48 bits of IPv6, in RFC 5952 form", () => {
    assert.equal(truncateIp("2001:db8:abcd:12:34::1"), "2001:db8:abcd::");
    assert.equal(truncateIp("2001:0DB8:ABCD:0012:0000:0000:0000:0001"), "2001:db8:abcd::");
    assert.equal(truncateIp("2001:db8::1"), "2001:db8::");
    assert.equal(truncateIp("1::2:3:4:5:6:7"), "1:0:2::");
    assert.equal(truncateIp("fe80::1%eth0"), "fe80::");
    assert.equal(truncateIp("::1"), "::");
    assert.equal(truncateIp("64:ff9b:1::198.51.100.7"), "64:ff9b:1::");
  });

  it("treats IPv4-mapped IPv6 as IPv4, and anything else as no address", () => {
    assert.equal(truncateIp("::ffff:198.51.100.7"), "198.51.100.0");
    assert.equal(truncateIp("not an ip"), null);
    assert.equal(truncateIp(""), null);
    assert.equal(truncateIp("256.1.1.1"), null);
  });

  it("stores context.ip truncated, and null for a context.ip that is no address", () => {
    const event = valid(
      normaliseCall(
        { userId: "u", event: "E", context: { ip: "2001:db8:abcd:1::9" } },
        "track",
        "",
        NO_ENVELOPE,
        arrival,
      ),
    );
    assert.equal(event.ip, "2001:db8:abcd::");
    assert.equal(event.context?.ip, "2001:db8:abcd::");
    const garbage = valid(
      normaliseCall({ userId: "u", event: "E", context: { ip: "n/a" } }, "track", "", NO_ENVELOPE, arrival),
    );
    assert.equal(garbage.ip, null);
  });
});
