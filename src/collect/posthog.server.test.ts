/**
 * PostHog's capture API end to end: the real posthog-node client against a real server, rows
 * checked with SQL; and a posthog-js style request (gzip-js in a text/plain body) over HTTP.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { PostHog } from "posthog-node";
import { piiToken } from "../privacy/index.js";
import { eventually, query, startTestServer, WRITE_KEY } from "../server/test-support.js";

type Server = Awaited<ReturnType<typeof startTestServer>>;

const PII_SECRET = "posthog-test-secret";

async function rows(server: Server, sql: string): Promise<unknown[][]> {
  return (await query(server.url, sql)).rows;
}

describe("PostHog clients against a real server", () => {
  let server: Server;
  before(async () => {
    server = await startTestServer({ pii_secret: PII_SECRET });
  });
  after(async () => {
    await server.close();
  });

  test("posthog-node's page view, capture, identify and alias land in events", async () => {
    const client = new PostHog(WRITE_KEY, { host: server.url, flushAt: 1, flushInterval: 0 });
    client.capture({
      distinctId: "ph-user-1",
      event: "$pageview",
      properties: { $current_url: "https://shop.example/pricing", $session_id: "ph-session" },
    });
    client.capture({
      distinctId: "ph-user-1",
      event: "Plan Selected",
      properties: { plan: "team", seats: 5 },
    });
    client.identify({
      distinctId: "ph-user-1",
      properties: { $set: { email: "ph@example.com" }, $anon_distinct_id: "ph-anon-1" },
    });
    client.alias({ distinctId: "ph-user-1", alias: "ph-old-id" });
    await client.shutdown();

    const where = "user_id = 'ph-user-1'";
    await eventually(
      async () => (await rows(server, `SELECT count(*) FROM events WHERE ${where}`))[0]?.[0] === 4,
    );
    const result = await rows(
      server,
      // Events without $session_id get Sluice's own session (by inactivity), shown here as "assigned".
      `SELECT event_type, event, anonymous_id, source, page_url, page_path,
              CASE WHEN session_id = 'ph-session' THEN session_id WHEN session_id IS NOT NULL THEN 'assigned' END,
              properties->>'plan', traits->>'email', context->>'previousId', context->'library'->>'name',
              length(event_id) > 0, abs(epoch_ms(received_at) - epoch_ms(ts)) < 60000
       FROM events WHERE ${where} ORDER BY event_type`,
    );
    assert.deepEqual(result, [
      [
        "alias",
        null,
        null,
        "default",
        null,
        null,
        "assigned",
        null,
        null,
        "ph-old-id",
        "posthog-node",
        true,
        true,
      ],
      [
        "identify",
        null,
        "ph-anon-1",
        "default",
        null,
        null,
        "assigned",
        null,
        // Hashed at the door by the default privacy policy.
        piiToken(PII_SECRET, "ph@example.com"),
        null,
        "posthog-node",
        true,
        true,
      ],
      [
        "page",
        null,
        null,
        "default",
        "https://shop.example/pricing",
        "/pricing",
        "ph-session",
        null,
        null,
        null,
        "posthog-node",
        true,
        true,
      ],
      [
        "track",
        "Plan Selected",
        null,
        "default",
        null,
        null,
        "assigned",
        "team",
        null,
        null,
        "posthog-node",
        true,
        true,
      ],
    ]);
  });

  test("a posthog-js style gzip-js request lands, with the user agent parsed", async () => {
    const userAgent =
      "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
    const events = [
      {
        event: "$pageview",
        uuid: "phjs-1",
        properties: {
          token: WRITE_KEY,
          distinct_id: "device-js",
          $device_id: "device-js",
          $current_url: "https://shop.example/",
          $raw_user_agent: userAgent,
        },
        timestamp: new Date().toISOString(),
      },
    ];
    const response = await fetch(`${server.url}/e/?compression=gzip-js&ver=1.130.0`, {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: new Uint8Array(gzipSync(JSON.stringify(events))),
    });
    assert.equal(response.status, 200);
    await eventually(
      async () =>
        (
          await rows(
            server,
            "SELECT event_type, user_id, anonymous_id, browser, os, device_type FROM events WHERE event_id = 'phjs-1'",
          )
        )[0]?.join() === "page,,device-js,Safari,iOS,mobile",
    );
  });

  test("malformed capture payloads are refused with reasons and quarantined", async () => {
    const response = await fetch(`${server.url}/capture/`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ api_key: WRITE_KEY, distinct_id: "d", properties: { marker: "ph-bad-1" } }),
    });
    assert.equal(response.status, 400);
    const body = (await response.json()) as { error: string; field: string };
    assert.equal(body.field, "event");
    await eventually(
      async () =>
        (await rows(server, "SELECT reason FROM events_rejected WHERE payload LIKE '%ph-bad-1%'"))[0]?.[0] ===
        body.error,
    );
  });
});
