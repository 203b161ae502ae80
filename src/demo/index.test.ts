import assert from "node:assert/strict";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { generateSessions, type SegmentItem, startDemoShop } from "./index.js";
import { DEFAULT_DEMO_RATE_PER_MINUTE, DEFAULT_MAX_BACKFILL_EVENTS, planBackfill } from "./shop.js";

const DAY_MS = 86_400_000;
// Monday 2026-11-02 00:00 UTC to Monday 2026-11-16: two full weeks.
const from = new Date("2026-11-02T00:00:00.000Z");
const to = new Date("2026-11-16T00:00:00.000Z");
const baseRatePerMinute = 10;

interface ProductProperties {
  product_id: string;
  sku: string;
  name: string;
  category: string;
  price: number;
  currency: string;
}

interface OrderProperties {
  revenue: number;
  shipping: number;
  tax: number;
  total: number;
  currency: string;
  products: ProductProperties[];
}

describe("generateSessions", () => {
  let items: SegmentItem[];
  before(() => {
    items = generateSessions({ from, to, seed: "test", baseRatePerMinute });
  });

  const count = (event: string) => items.filter((item) => item.event === event).length;

  test("is deterministic for a seed and differs between seeds", () => {
    const options = { from, to: new Date(from.getTime() + 3_600_000), baseRatePerMinute: 30 };
    const first = generateSessions({ ...options, seed: 42 });
    assert.ok(first.length > 0);
    assert.deepEqual(generateSessions({ ...options, seed: 42 }), first);
    const other = generateSessions({ ...options, seed: 43 });
    assert.notEqual(other[0]?.messageId, first[0]?.messageId);
  });

  test("produces about the base rate of events on average", () => {
    const expected = baseRatePerMinute * ((to.getTime() - from.getTime()) / 60_000);
    assert.ok(
      Math.abs(items.length / expected - 1) < 0.1,
      `${items.length} events, expected about ${expected}`,
    );
  });

  test("every item is a valid Segment call inside the window, sorted by timestamp", () => {
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
    const messageIds = new Set<string>();
    let previous = from.getTime();
    for (const item of items) {
      assert.match(item.messageId, uuid);
      messageIds.add(item.messageId);
      assert.match(item.anonymousId, uuid);
      assert.equal(new Date(item.timestamp).toISOString(), item.timestamp);
      const time = Date.parse(item.timestamp);
      assert.ok(time >= previous && time < to.getTime(), `${item.timestamp} out of order or window`);
      previous = time;

      if (item.type === "track") assert.ok(item.event && item.properties);
      else if (item.type === "page") assert.ok(item.name && item.properties?.url);
      else {
        assert.equal(item.type, "identify");
        assert.ok(item.userId);
        assert.match(String(item.traits?.email), /^[a-z.]+\d*@example\.(com|net|org)$/);
        assert.ok(item.traits?.name && item.traits.plan && item.traits.country);
      }

      const { context } = item;
      assert.deepEqual(context.library.name, "sluice-demo");
      assert.match(context.userAgent, /^Mozilla\/5\.0 \(/);
      assert.match(context.locale, /^[a-z]{2}-[A-Z]{2}$/);
      assert.match(context.ip, /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/);
      assert.ok(!/^(10|127|192\.168|172\.(1[6-9]|2\d|3[01]))\./.test(context.ip), `${context.ip} is private`);
      assert.ok(context.page.url.startsWith(`https://shop.example.com${context.page.path}`));
      assert.equal(typeof context.page.referrer, "string");
      assert.ok(context.page.title);
    }
    assert.equal(messageIds.size, items.length, "messageIds are unique");
  });

  test("visitors vary in device, country and acquisition, and some return on other days", () => {
    const distinct = (values: string[]) => new Set(values).size;
    assert.ok(distinct(items.map((item) => item.context.userAgent)) >= 8);
    assert.ok(distinct(items.map((item) => item.context.locale)) >= 10);
    assert.ok(distinct(items.map((item) => item.context.ip.split(".")[0] ?? "")) >= 20);
    const mobile = items.filter((item) => /Mobile|Android/.test(item.context.userAgent)).length;
    assert.ok(mobile / items.length > 0.3 && mobile / items.length < 0.7, "about half the traffic is mobile");
    const withCampaign = items.filter(
      (item) => item.context.campaign?.source && item.context.campaign.medium,
    );
    assert.ok(withCampaign.length / items.length > 0.15 && withCampaign.length / items.length < 0.5);

    const days = new Map<string, Set<string>>();
    for (const item of items) {
      const seen = days.get(item.anonymousId) ?? new Set();
      days.set(item.anonymousId, seen.add(item.timestamp.slice(0, 10)));
    }
    const returning = [...days.values()].filter((seen) => seen.size > 1).length;
    assert.ok(returning / days.size > 0.1, `${returning} of ${days.size} visitors came back on another day`);
  });

  test("the funnel narrows from product views to orders at believable rates", () => {
    const sessions = items.filter(
      (item) => item.type === "page" && !item.context.page.referrer.includes("shop."),
    );
    const views = count("Product Viewed");
    const adds = count("Product Added");
    const checkouts = count("Checkout Started");
    const orders = count("Order Completed");
    assert.ok(orders > 0 && orders <= checkouts && checkouts <= adds && adds <= views);
    const perSession = (n: number) => n / sessions.length;
    assert.ok(perSession(orders) > 0.015 && perSession(orders) < 0.035, `order rate ${perSession(orders)}`);
    assert.ok(
      perSession(checkouts) > 0.03 && perSession(checkouts) < 0.05,
      `checkout rate ${perSession(checkouts)}`,
    );
    for (const name of ["Home", "Category", "Product", "Cart", "Checkout"]) {
      assert.ok(
        items.some((item) => item.name === name),
        `a ${name} page view`,
      );
    }
  });

  test("orders carry revenue, currency and products, and add up", () => {
    for (const order of items.filter((item) => item.event === "Order Completed")) {
      const p = order.properties as unknown as OrderProperties;
      assert.ok(["USD", "EUR", "GBP"].includes(p.currency));
      assert.ok(p.revenue > 0 && p.products.length > 0);
      assert.ok(Math.abs(p.total - (p.revenue + p.shipping + p.tax)) < 0.005);
      assert.ok(order.userId, "buyers identify at checkout at the latest");
    }
  });

  test("the catalog has about 50 products in 6 categories with fixed prices per currency", () => {
    const prices = new Map<string, Map<string, number>>();
    const categories = new Set<unknown>();
    for (const item of items.filter((item) => item.event === "Product Viewed")) {
      const { product_id, price, currency, category, sku, name } =
        item.properties as unknown as ProductProperties;
      assert.ok(sku && name);
      categories.add(category);
      const byCurrency = prices.get(product_id) ?? new Map<string, number>();
      assert.equal(byCurrency.get(currency) ?? price, price, `${product_id} keeps its ${currency} price`);
      prices.set(product_id, byCurrency.set(currency, price));
    }
    assert.ok(prices.size >= 45 && prices.size <= 55, `${prices.size} products`);
    assert.equal(categories.size, 6);
    for (const byCurrency of prices.values()) {
      const [usd, eur, gbp] = ["USD", "EUR", "GBP"].map((currency) => byCurrency.get(currency) ?? Number.NaN);
      if ([usd, eur, gbp].some(Number.isNaN)) continue;
      assert.ok((gbp as number) < (eur as number) && (eur as number) < (usd as number));
    }
  });

  test("about a quarter of visitors identify, and their later events carry the userId", () => {
    const visitors = new Set(items.map((item) => item.anonymousId));
    const identifiedAt = new Map<string, string>();
    for (const item of items) {
      if (item.type === "identify" && !identifiedAt.has(item.anonymousId)) {
        identifiedAt.set(item.anonymousId, item.timestamp);
      }
    }
    const share = identifiedAt.size / visitors.size;
    assert.ok(share > 0.18 && share < 0.33, `identified share ${share}`);
    const laterWithoutUser = items.filter((item) => {
      const since = identifiedAt.get(item.anonymousId);
      return since !== undefined && item.timestamp > since && !item.userId;
    });
    // Only a visitor's overlapping sessions (two tabs) can miss it.
    assert.ok(
      laterWithoutUser.length / items.length < 0.001,
      `${laterWithoutUser.length} later events lack userId`,
    );
  });

  test("traffic is low at night and peaks in the afternoon and evening (UTC)", () => {
    const byHour = new Array<number>(24).fill(0);
    for (const item of items) {
      const hour = new Date(item.timestamp).getUTCHours();
      byHour[hour] = (byHour[hour] ?? 0) + 1;
    }
    const sum = (hours: number[]) => hours.reduce((total, hour) => total + (byHour[hour] ?? 0), 0);
    assert.ok(sum([2, 3, 4, 5]) * 2.5 < sum([14, 15, 16, 17]), `hourly counts ${byHour.join(" ")}`);
  });

  test("weekends differ from weekdays", () => {
    const perDay = new Map<number, number>();
    for (const item of items) {
      const day = Math.floor(Date.parse(item.timestamp) / DAY_MS);
      perDay.set(day, (perDay.get(day) ?? 0) + 1);
    }
    const weekend: number[] = [];
    const weekday: number[] = [];
    for (const [day, events] of perDay) {
      const weekdayIndex = new Date(day * DAY_MS).getUTCDay();
      (weekdayIndex === 0 || weekdayIndex === 6 ? weekend : weekday).push(events);
    }
    const mean = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
    assert.equal(weekend.length, 4);
    assert.ok(mean(weekend) < mean(weekday) * 0.9, `weekend ${mean(weekend)} vs weekday ${mean(weekday)}`);
  });
});

describe("planBackfill", () => {
  const now = new Date("2026-11-25T10:30:00.000Z");

  test("keeps the backfill near its budget, with the last hour at the live rate", () => {
    const segments = planBackfill(now, 14, 600, 100_000);
    const minutes = (segment: { from: Date; to: Date }) =>
      (segment.to.getTime() - segment.from.getTime()) / 60_000;
    const expected = segments.reduce((total, segment) => total + segment.ratePerMinute * minutes(segment), 0);
    assert.ok(Math.abs(expected - 100_000) < 1);
    assert.equal(segments[0]?.from.getTime(), now.getTime() - 14 * DAY_MS);
    assert.deepEqual(segments.at(-1), {
      from: new Date(now.getTime() - 3_600_000),
      to: now,
      ratePerMinute: 600,
    });
  });

  test("by default, history is at the live rate: daily charts do not jump on today", () => {
    const segments = planBackfill(now, 14, DEFAULT_DEMO_RATE_PER_MINUTE, DEFAULT_MAX_BACKFILL_EVENTS);
    assert.equal(segments.length, 2);
    for (const segment of segments) assert.equal(segment.ratePerMinute, DEFAULT_DEMO_RATE_PER_MINUTE);
  });

  test("never exceeds the live rate, and plans nothing for zero days", () => {
    for (const segment of planBackfill(now, 1, 10, 100_000)) assert.equal(segment.ratePerMinute, 10);
    assert.deepEqual(planBackfill(now, 0, 600, 100_000), []);
  });
});

interface Received {
  path: string | undefined;
  authorization: string | undefined;
  body: { batch: SegmentItem[]; sentAt: string };
}

describe("startDemoShop", () => {
  let server: Server;
  let baseUrl: string;
  const received: Received[] = [];
  let refused: Received | undefined;

  before(async () => {
    // Records every batch; answers the very first request with 503 to exercise retries.
    server = createServer(async (request, response) => {
      const call = {
        path: request.url,
        authorization: request.headers.authorization,
        body: await readJson(request),
      };
      if (!refused) {
        refused = call;
        response.writeHead(503).end("starting up");
        return;
      }
      received.push(call);
      const accepted = call.body.batch.length;
      response.writeHead(200, { "content-type": "application/json" });
      response.end(JSON.stringify({ success: true, accepted, rejected: 0 }));
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });

  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  test("backfills, streams live, retries after a 503 and stops without leftovers", async () => {
    const startedAt = Date.now();
    const shop = startDemoShop({
      baseUrl,
      writeKey: "demo-key",
      backfillDays: 1,
      maxBackfillEvents: 3_000,
      ratePerMinute: 6_000,
      seed: 7,
    });
    const items = () => received.flatMap((call) => call.body.batch);
    const retried = () => {
      const ids = new Set(items().map((item) => item.messageId));
      return refused?.body.batch.every((item) => ids.has(item.messageId)) === true;
    };
    // Until the live stream is a second in, and the refused batch came again (on a busy machine
    // its retry can come after that second).
    await waitFor(() => items().some((item) => Date.parse(item.timestamp) >= startedAt + 1_000) && retried());
    await shop.stop();
    // Let the server finish reading requests that were on the wire when the shop stopped (the
    // backfill and the live stream each may have one): until nothing arrived for 300 ms.
    for (let count = -1; count !== received.length; ) {
      count = received.length;
      await new Promise((resolve) => setTimeout(resolve, 300));
    }

    const all = items();
    const backfilled = all.filter((item) => Date.parse(item.timestamp) < startedAt);
    assert.ok(backfilled.some((item) => Date.parse(item.timestamp) < startedAt - 20 * 3_600_000));
    assert.ok(backfilled.length > 1_000 && backfilled.length < 6_000, `${backfilled.length} backfilled`);
    for (const call of received) {
      assert.equal(call.path, "/v1/batch");
      assert.equal(call.authorization, `Basic ${Buffer.from("demo-key:").toString("base64")}`);
      assert.ok(call.body.batch.length > 0 && call.body.batch.length <= 500);
      assert.equal(new Date(call.body.sentAt).toISOString(), call.body.sentAt);
    }
    assert.ok(
      received.some((call) => call.body.batch.length === 500),
      "backfill fills whole batches",
    );

    assert.ok(refused, "the server saw a first request");
    assert.ok(retried(), "the refused batch was retried");
    const { sent, failed } = shop.stats();
    assert.equal(failed, 0);
    // Batches in flight at stop() can reach the server without their answers reaching the shop:
    // one of the live stream's, and up to four of the backfill's.
    const inFlightAtMost = received.slice(-5).reduce((sum, call) => sum + call.body.batch.length, 0);
    assert.ok(
      sent <= all.length && sent >= all.length - inFlightAtMost,
      `${sent} sent, ${all.length} received`,
    );

    const countAtStop = received.length;
    await new Promise((resolve) => setTimeout(resolve, 800));
    assert.equal(received.length, countAtStop, "nothing is sent after stop()");
    assert.deepEqual(
      process.getActiveResourcesInfo().filter((resource) => resource === "Timeout"),
      [],
      "no timers left",
    );
  });

  test("keeps running without a server and stops promptly while backing off", async () => {
    const shop = startDemoShop({ baseUrl: await closedPortUrl(), writeKey: "k", backfillDays: 0, seed: 1 });
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const stopStartedAt = Date.now();
    await shop.stop();
    assert.ok(Date.now() - stopStartedAt < 500);
    assert.equal(shop.stats().sent, 0);
  });
});

async function readJson(request: IncomingMessage): Promise<Received["body"]> {
  const chunks: Buffer[] = [];
  for await (const chunk of request) chunks.push(chunk as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString("utf8"));
}

/** A local URL where nothing listens: the port of a server that was just closed. */
async function closedPortUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return `http://127.0.0.1:${port}`;
}

async function waitFor(condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("timed out waiting for the demo shop");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
