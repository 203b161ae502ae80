/**
 * SDKs that speak Segment's HTTP API, unchanged, against a real server: Segment's own
 * analytics-node and RudderStack's Node SDK. Each one's page, track and identify calls must land
 * in `events` with the canonical columns filled.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Rudder from "@rudderstack/rudder-sdk-node";
import { Analytics } from "@segment/analytics-node";
import { eventually, query, startTestServer, WRITE_KEY } from "../server/test-support.js";

type Server = Awaited<ReturnType<typeof startTestServer>>;

/** The canonical columns each SDK's three calls must fill, per event type. */
async function landed(server: Server, userId: string): Promise<unknown[][]> {
  await eventually(async () => {
    const result = await query(server.url, `SELECT count(*) FROM events WHERE user_id = '${userId}'`);
    return result.rows[0]?.[0] === 3;
  });
  const result = await query(
    server.url,
    `SELECT event_type, event, source, page_url, page_path, properties->>'plan', traits->>'plan',
            context->'library'->>'name', length(event_id) > 0, abs(epoch_ms(received_at) - epoch_ms(ts)) < 60000
     FROM events WHERE user_id = '${userId}' ORDER BY event_type`,
  );
  return result.rows;
}

describe("Segment-protocol SDKs against a real server", () => {
  let server: Server;
  before(async () => {
    server = await startTestServer();
  });
  after(() => server.close());

  test("Segment's analytics-node: page, track and identify land in events", async () => {
    const analytics = new Analytics({ writeKey: WRITE_KEY, host: server.url, flushAt: 1 });
    analytics.page({
      userId: "segment-user",
      name: "Pricing",
      properties: { url: "https://shop.example/pricing?ref=ad", path: "/pricing" },
    });
    analytics.track({ userId: "segment-user", event: "Plan Selected", properties: { plan: "team" } });
    analytics.identify({ userId: "segment-user", traits: { plan: "team" } });
    await analytics.closeAndFlush({ timeout: 10_000 });

    assert.deepEqual(await landed(server, "segment-user"), [
      ["identify", null, "default", null, null, null, "team", "@segment/analytics-node", true, true],
      [
        "page",
        "Pricing",
        "default",
        "https://shop.example/pricing?ref=ad",
        "/pricing",
        null,
        null,
        "@segment/analytics-node",
        true,
        true,
      ],
      ["track", "Plan Selected", "default", null, null, "team", null, "@segment/analytics-node", true, true],
    ]);
  });

  test("RudderStack's Node SDK: page, track and identify land in events", async () => {
    const rudder = new Rudder(WRITE_KEY, { dataPlaneUrl: server.url, flushAt: 1, logLevel: "error" });
    rudder.page({
      userId: "rudder-user",
      name: "Pricing",
      properties: { url: "https://shop.example/pricing", path: "/pricing" },
    });
    rudder.track({ userId: "rudder-user", event: "Plan Selected", properties: { plan: "team" } });
    rudder.identify({ userId: "rudder-user", traits: { plan: "team" } });
    await rudder.flush();

    assert.deepEqual(await landed(server, "rudder-user"), [
      ["identify", null, "default", null, null, null, "team", "analytics-node", true, true],
      [
        "page",
        "Pricing",
        "default",
        "https://shop.example/pricing",
        "/pricing",
        null,
        null,
        "analytics-node",
        true,
        true,
      ],
      ["track", "Plan Selected", "default", null, null, "team", null, "analytics-node", true, true],
    ]);
  });
});
