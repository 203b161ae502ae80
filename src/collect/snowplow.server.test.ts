/**
 * The Snowplow protocol end to end: the real @snowplow/node-tracker against a real server, rows
 * checked with SQL.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import {
  buildPageView,
  buildSelfDescribingEvent,
  buildStructEvent,
  newTracker,
  type Tracker,
} from "@snowplow/node-tracker";
import { basicAuth, eventually, query, startTestServer, WRITE_KEY } from "../server/test-support.js";

type Server = Awaited<ReturnType<typeof startTestServer>>;

function trackerFor(server: Server, eventMethod: "post" | "get", namespace: string): Tracker {
  const { hostname, port } = new URL(server.url);
  return newTracker(
    { namespace, appId: WRITE_KEY, encodeBase64: eventMethod === "get" },
    { endpoint: hostname, port: Number(port), protocol: "http", eventMethod, bufferSize: 1 },
  );
}

async function rows(server: Server, sql: string): Promise<unknown[][]> {
  return (await query(server.url, sql)).rows;
}

describe("Snowplow trackers against a real server", () => {
  let server: Server;
  before(async () => {
    server = await startTestServer();
  });
  after(async () => {
    await server.close();
  });

  test("the node tracker's page views, structured and self-describing events land in events", async () => {
    const tracker = trackerFor(server, "post", "sp-post");
    tracker.setUserId("user-7");
    tracker.setDomainUserId("domain-user-7");
    tracker.setSessionId("session-7");
    tracker.track(
      buildPageView({
        pageUrl: "https://shop.example/p/42",
        pageTitle: "Shoes",
        referrer: "https://ref.example/",
      }),
    );
    tracker.track(buildStructEvent({ category: "cart", action: "add", label: "sku-42", value: 19.5 }));
    tracker.track(
      buildSelfDescribingEvent({
        event: { schema: "iglu:com.acme/link_click/jsonschema/1-0-0", data: { target: "/pricing" } },
      }),
      [{ schema: "iglu:com.acme/user/jsonschema/1-0-0", data: { plan: "pro" } }],
    );
    await tracker.flush();

    const where = "source = 'default' AND (context->'snowplow'->>'tna') = 'sp-post'";
    await eventually(
      async () => (await rows(server, `SELECT count(*) FROM events WHERE ${where}`))[0]?.[0] === 3,
    );
    const result = await rows(
      server,
      `SELECT event_type, event, user_id, anonymous_id, session_id, page_url, page_path, referrer,
              properties->>'value', properties->>'target',
              context->'snowplow'->'contexts'->0->'data'->>'plan', abs(epoch_ms(received_at) - epoch_ms(ts)) < 60000
       FROM events WHERE ${where} ORDER BY event_type, event`,
    );
    assert.deepEqual(result, [
      [
        "page",
        null,
        "user-7",
        "domain-user-7",
        "session-7",
        "https://shop.example/p/42",
        "/p/42",
        "https://ref.example/",
        null,
        null,
        null,
        true,
      ],
      [
        "track",
        "cart/add",
        "user-7",
        "domain-user-7",
        "session-7",
        null,
        null,
        null,
        "19.5",
        null,
        null,
        true,
      ],
      [
        "track",
        "link_click",
        "user-7",
        "domain-user-7",
        "session-7",
        null,
        null,
        null,
        null,
        "/pricing",
        "pro",
        true,
      ],
    ]);
  });

  test("the node tracker's GET requests (the pixel, base64url-encoded) land too", async () => {
    const tracker = trackerFor(server, "get", "sp-get");
    tracker.setDomainUserId("d-get");
    tracker.track(
      buildSelfDescribingEvent({
        event: { schema: "iglu:com.acme/signup/jsonschema/1-0-0", data: { plan: "team" } },
      }),
    );
    await tracker.flush();
    await eventually(
      async () =>
        (
          await rows(
            server,
            "SELECT event, properties->>'plan', anonymous_id FROM events WHERE (context->'snowplow'->>'tna') = 'sp-get'",
          )
        )[0]?.join() === "signup,team,d-get",
    );
  });

  test("the pixel answers a GIF with no-cache headers and the sp cookie", async () => {
    const response = await fetch(
      `${server.url}/i?e=pv&aid=${WRITE_KEY}&url=https%3A%2F%2Fa.example%2F&eid=pixel-1`,
    );
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "image/gif");
    assert.match(response.headers.get("cache-control") ?? "", /no-cache, no-store, must-revalidate/);
    assert.match(response.headers.get("set-cookie") ?? "", /^sp=[\w-]+; Path=\/; Max-Age=31536000/);
    const bytes = Buffer.from(await response.arrayBuffer());
    assert.equal(bytes.subarray(0, 6).toString("latin1"), "GIF89a");
    await eventually(
      async () =>
        (await rows(server, "SELECT count(*) FROM events WHERE event_id = 'pixel-1'"))[0]?.[0] === 1,
    );
  });

  test("CORS: a preflight from any origin is allowed with credentials, and answers carry the headers", async () => {
    const preflight = await fetch(`${server.url}/com.snowplowanalytics.snowplow/tp2`, {
      method: "OPTIONS",
      headers: {
        origin: "https://shop.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
      },
    });
    assert.equal(preflight.status, 204);
    assert.equal(preflight.headers.get("access-control-allow-origin"), "https://shop.example");
    assert.equal(preflight.headers.get("access-control-allow-credentials"), "true");
    assert.match(preflight.headers.get("access-control-allow-headers") ?? "", /Content-Type/);
    const post = await fetch(`${server.url}/com.snowplowanalytics.snowplow/tp2`, {
      method: "POST",
      headers: { origin: "https://shop.example", "content-type": "application/json" },
      body: JSON.stringify({ schema: "s", data: [{ e: "pv", aid: WRITE_KEY }] }),
    });
    assert.equal(post.status, 200);
    assert.equal(post.headers.get("access-control-allow-origin"), "https://shop.example");
    assert.equal(post.headers.get("access-control-allow-credentials"), "true");
  });

  test("malformed tp2 payloads are refused with reasons and quarantined", async () => {
    const bad = await fetch(`${server.url}/com.snowplowanalytics.snowplow/tp2`, {
      method: "POST",
      headers: { authorization: basicAuth(), "content-type": "application/json" },
      body: JSON.stringify({ schema: "s", data: "nope" }),
    });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as { field: string }).field, "data");
    const partly = await fetch(`${server.url}/com.snowplowanalytics.snowplow/tp2`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ schema: "s", data: [{ e: "se", aid: WRITE_KEY, se_ca: "only-category-xyz" }] }),
    });
    assert.equal(partly.status, 200);
    const answer = (await partly.json()) as { rejected: number; errors: { field: string }[] };
    assert.equal(answer.rejected, 1);
    assert.equal(answer.errors[0]?.field, "data[0].se_ac");
    await eventually(async () => {
      const quarantined = await rows(
        server,
        "SELECT reason FROM events_rejected WHERE payload LIKE '%only-category-xyz%' OR reason LIKE '%payload_data%'",
      );
      return quarantined.length === 2;
    });
    const health = await fetch(`${server.url}/healthz`);
    assert.equal(health.status, 200);
  });
});
