import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { Enricher, parseUserAgent } from "./enrich.js";
import { Collector } from "./index.js";
import type { CanonicalEvent } from "./model.js";
import { MemoryTopic } from "./test-support/memory-topic.js";
import { countryDatabase } from "./test-support/mmdb.js";

const IPHONE =
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
const IPAD =
  "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/16.6 Mobile/15E148 Safari/604.1";
const ANDROID =
  "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Mobile Safari/537.36";
const MAC_FIREFOX = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0";
const GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
const HEADLESS =
  "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/124.0.0.0 Safari/537.36";

function event(overrides: Partial<CanonicalEvent> = {}): CanonicalEvent {
  return {
    event_id: "e",
    event_type: "track",
    event: "x",
    user_id: "u",
    anonymous_id: null,
    session_id: null,
    ts: "2024-05-01T12:00:00.000Z",
    received_at: "2024-05-01T12:00:00.000Z",
    source: "web",
    page_url: null,
    page_path: null,
    referrer: null,
    user_agent: null,
    browser: null,
    os: null,
    device_type: null,
    ip: null,
    country: null,
    properties: null,
    context: null,
    traits: null,
    ...overrides,
  };
}

describe("user agent parsing", () => {
  it("tells browser, os and device type", () => {
    assert.deepEqual(parseUserAgent(IPHONE), {
      browser: "Safari",
      os: "iOS",
      deviceType: "mobile",
      isBot: false,
    });
    assert.deepEqual(parseUserAgent(IPAD), {
      browser: "Safari",
      os: "iOS",
      deviceType: "tablet",
      isBot: false,
    });
    assert.deepEqual(parseUserAgent(ANDROID), {
      browser: "Chrome",
      os: "Android",
      deviceType: "mobile",
      isBot: false,
    });
    assert.deepEqual(parseUserAgent(MAC_FIREFOX), {
      browser: "Firefox",
      os: "macOS",
      deviceType: "desktop",
      isBot: false,
    });
  });

  it("flags crawlers, headless browsers and HTTP libraries as bots", () => {
    assert.equal(parseUserAgent(GOOGLEBOT).isBot, true);
    assert.equal(parseUserAgent(GOOGLEBOT).deviceType, "bot");
    assert.equal(parseUserAgent(HEADLESS).isBot, true);
    assert.equal(parseUserAgent("curl/8.5.0").isBot, true);
    assert.equal(parseUserAgent("python-requests/2.31").isBot, true);
  });

  it("leaves what it cannot tell null; a non-browser client counts as a bot", () => {
    assert.deepEqual(parseUserAgent("Sluice/1.0"), {
      browser: null,
      os: null,
      deviceType: null,
      isBot: true,
    });
  });
});

describe("Enricher", () => {
  it("fills the columns and context.is_bot, replacing a client's is_bot", () => {
    const enricher = new Enricher({ userAgent: true, geoipDatabase: "" });
    const enriched = event({ user_agent: GOOGLEBOT, context: { is_bot: false, locale: "en" } });
    enricher.enrich(enriched);
    assert.equal(enriched.browser, "Googlebot");
    assert.equal(enriched.device_type, "bot");
    assert.deepEqual(enriched.context, { is_bot: true, locale: "en" });
    const noContext = event({ user_agent: IPHONE });
    enricher.enrich(noContext);
    assert.deepEqual(noContext.context, { is_bot: false });
  });

  it("leaves events without a user agent, and everything when switched off, as they are", () => {
    const enricher = new Enricher({ userAgent: true, geoipDatabase: "" });
    const bare = event();
    enricher.enrich(bare);
    assert.deepEqual(bare, event());
    const off = new Enricher({ userAgent: false, geoipDatabase: "" });
    const untouched = event({ user_agent: IPHONE });
    off.enrich(untouched);
    assert.deepEqual(untouched, event({ user_agent: IPHONE }));
  });

  it("gives the same answers from its cache, also past its capacity", () => {
    const enricher = new Enricher({ userAgent: true, geoipDatabase: "" });
    for (let round = 0; round < 2; round++) {
      for (let index = 0; index < 3000; index++) {
        const enriched = event({ user_agent: `${index % 2 === 0 ? IPHONE : MAC_FIREFOX} r${index}` });
        enricher.enrich(enriched);
        assert.equal(enriched.os, index % 2 === 0 ? "iOS" : "macOS");
      }
    }
  });
});

describe("GeoIP country", () => {
  let dir: string;
  let database: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "sluice-geoip-"));
    database = join(dir, "countries.mmdb");
    await writeFile(database, countryDatabase({ "203.0.113.0/24": "DE", "198.51.100.0/24": "FR" }));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("looks up the (truncated) address in a MaxMind database", () => {
    const enricher = new Enricher({ userAgent: false, geoipDatabase: database });
    const german = event({ ip: "203.0.113.0" });
    enricher.enrich(german);
    assert.equal(german.country, "DE");
    const unknown = event({ ip: "192.0.2.0" });
    enricher.enrich(unknown);
    assert.equal(unknown.country, null);
  });

  it("sets country on collected events when configured", async () => {
    const events = new MemoryTopic("events");
    const collector = new Collector({
      events,
      rejected: new MemoryTopic("rejected"),
      writeKeys: new Map([["wk", "web"]]),
      enrichment: { userAgent: true, geoipDatabase: database },
    });
    const response = await collector.handle({
      path: "/v1/track",
      headers: { authorization: `Basic ${Buffer.from("wk:").toString("base64")}` },
      body: Buffer.from(JSON.stringify({ userId: "u", event: "x", context: { userAgent: IPHONE } })),
      remoteAddress: "198.51.100.23",
    });
    assert.equal(response.status, 200);
    const stored = JSON.parse(events.records[0] as string) as CanonicalEvent;
    assert.deepEqual(
      [stored.country, stored.ip, stored.browser, stored.os, stored.device_type],
      ["FR", "198.51.100.0", "Safari", "iOS", "mobile"],
    );
  });

  it("refuses to start with a file that is not a MaxMind database, naming it", async () => {
    const bogus = join(dir, "bogus.mmdb");
    await writeFile(bogus, "not a database");
    assert.throws(
      () =>
        new Collector({
          events: new MemoryTopic("events"),
          rejected: new MemoryTopic("rejected"),
          writeKeys: new Map(),
          enrichment: { userAgent: true, geoipDatabase: bogus },
        }),
      /geoip_database .*bogus\.mmdb/,
    );
  });
});
