/**
 * Jitsu's SDK speaks the Segment API on its own paths (`/api/s/<call>`, `/api/s/s2s/<call>`), with
 * the write key in an `X-Write-Key` header and only a masked copy in the body. Its requests as it
 * sends them, and the real @jitsu/js (skipped, saying so, when that dev dependency is absent).
 */
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { after, before, describe, test } from "node:test";
import { eventually, query, startTestServer } from "../server/test-support.js";

/** Jitsu keys are "id:secret"; the SDK refuses others. */
const JITSU_KEY = "jitsu-key:jitsu-secret";

type Server = Awaited<ReturnType<typeof startTestServer>>;

interface JitsuClient {
  page(name: string, properties: object): Promise<unknown>;
  track(event: string, properties: object): Promise<unknown>;
  identify(userId: string, traits: object): Promise<unknown>;
}

/** The real SDK's factory, or why there is none. */
function jitsuSdk(): ((options: { host: string; writeKey: string }) => JitsuClient) | string {
  try {
    const sdk = createRequire(import.meta.url)("@jitsu/js") as {
      jitsuAnalytics(options: { host: string; writeKey: string }): JitsuClient;
    };
    return sdk.jitsuAnalytics;
  } catch {
    return "needs the dev dependency @jitsu/js";
  }
}

const sdk = jitsuSdk();

async function rows(server: Server, sql: string): Promise<unknown[][]> {
  return (await query(server.url, sql)).rows;
}

describe("Jitsu clients against a real server", () => {
  let server: Server;
  before(async () => {
    server = await startTestServer({ write_keys: { [JITSU_KEY]: "jitsu" } });
  });
  after(() => server.close());

  test("a browser's /api/s/track with X-Write-Key lands; an unknown key is refused", async () => {
    const send = (key: string) =>
      fetch(`${server.url}/api/s/track`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-write-key": key },
        body: JSON.stringify({
          type: "track",
          event: "Plan Selected",
          properties: { plan: "team" },
          anonymousId: "jitsu-visitor",
          messageId: "jitsu-track-1",
          writeKey: "jitsu-key:***",
          timestamp: new Date().toISOString(),
          sentAt: new Date().toISOString(),
          context: { page: { url: "https://shop.example/pricing", path: "/pricing" } },
        }),
      });
    assert.equal((await send("jitsu-key:wrong")).status, 401);
    const accepted = await send(JITSU_KEY);
    assert.equal(accepted.status, 200);
    await eventually(
      async () =>
        (
          await rows(
            server,
            "SELECT event, source, anonymous_id, page_path, properties->>'plan' FROM events WHERE event_id = 'jitsu-track-1'",
          )
        )[0]?.join() === "Plan Selected,jitsu,jitsu-visitor,/pricing,team",
    );
  });

  test("the X-Write-Key header is allowed in a CORS preflight", async () => {
    const preflight = await fetch(`${server.url}/api/s/page`, {
      method: "OPTIONS",
      headers: {
        origin: "https://shop.example",
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type,x-write-key",
      },
    });
    assert.equal(preflight.status, 204);
    assert.match(preflight.headers.get("access-control-allow-headers") ?? "", /X-Write-Key/);
  });

  test("@jitsu/js: page, track and identify land in events", {
    skip: typeof sdk === "string" ? sdk : false,
  }, async () => {
    const jitsu = (sdk as Exclude<typeof sdk, string>)({ host: server.url, writeKey: JITSU_KEY });
    await jitsu.identify("jitsu-user", { plan: "team" });
    await jitsu.page("Pricing", { url: "https://shop.example/pricing", path: "/pricing" });
    await jitsu.track("Plan Selected", { plan: "team" });
    await eventually(
      async () =>
        (await rows(server, "SELECT count(*) FROM events WHERE user_id = 'jitsu-user'"))[0]?.[0] === 3,
    );
    assert.deepEqual(
      await rows(
        server,
        `SELECT event_type, event, source, page_path, properties->>'plan', traits->>'plan', context->'library'->>'name'
         FROM events WHERE user_id = 'jitsu-user' ORDER BY event_type`,
      ),
      [
        // Jitsu sends the identified user's traits along with every later call (context.traits).
        ["identify", null, "jitsu", null, null, "team", "@jitsu/js"],
        ["page", "Pricing", "jitsu", "/pricing", null, "team", "@jitsu/js"],
        ["track", "Plan Selected", "jitsu", null, "team", "team", "@jitsu/js"],
      ],
    );
  });
});
