/**
 * PII at the door, end to end: events carrying emails, phone numbers, names and IPs sent through
 * every protocol (Segment, Snowplow tp2 and pixel, PostHog), valid and invalid, to a real server;
 * then every byte under the data dir is searched for the raw values.
 */
import assert from "node:assert/strict";
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import type { Config } from "../config/index.js";
import { type RunningServer, serve } from "../server/index.js";
import {
  basicAuth,
  bearer,
  eventually,
  query,
  tempDataDir,
  testConfig,
  WRITE_KEY,
} from "../server/test-support.js";
import { piiToken } from "./obfuscate.js";
import { piiSecret } from "./store.js";

const EMAIL = "ada.lovelace@example.com";
const PHONE = "+44 20 7946 0958";
const NAME = "Ada Lovelace";
const ADDRESS = "12 Analytical Row, London";
const IPV4 = "203.0.113.77";
const IPV6 = "2001:db8:abcd:12:34:56:78:9a";
const SNOWPLOW_EMAIL = "charles.babbage@example.org";
const SNOWPLOW_USER = "babbage-1791";
const POSTHOG_EMAIL = "grace.hopper@example.net";
const POSTHOG_PHONE = "+1 202 555 0143";
const RAW_VALUES = [EMAIL, PHONE, NAME, ADDRESS, IPV4, IPV6, SNOWPLOW_EMAIL, POSTHOG_EMAIL, POSTHOG_PHONE];

/** The defaults, plus what the Snowplow and PostHog events below carry elsewhere. */
const POLICY = {
  "*": { "properties.email": "hash", "properties.phone": "mask", "properties.name": "hash" },
};

function configFor(dataDir: string, overrides: Partial<Config> = {}): Config {
  return testConfig(dataDir, {
    // A worker thread: large bodies are prepared on it, small ones on the main thread.
    collect_workers: 1,
    pii_policy: POLICY,
    ...overrides,
  });
}

async function send(
  server: RunningServer,
  path: string,
  body: unknown,
  init: { method?: string; query?: string } = {},
): Promise<Response> {
  const response = await fetch(`${server.url}${path}${init.query ? `?${init.query}` : ""}`, {
    method: init.method ?? "POST",
    headers: { authorization: basicAuth(), "content-type": "application/json" },
    body: init.method === "GET" ? undefined : JSON.stringify(body),
  });
  await response.arrayBuffer();
  return response;
}

async function count(server: RunningServer, sql: string): Promise<number> {
  return Number((await query(server.url, sql)).rows[0]?.[0]);
}

/** Segment: a batch over 2 KB (prepared by a worker) with an identify, a track and an invalid item. */
function segmentBatch(run: string): unknown {
  const padding = "x".repeat(2500);
  return {
    batch: [
      {
        type: "identify",
        userId: `seg-user-${run}`,
        anonymousId: `seg-anon-${run}`,
        messageId: `seg-identify-${run}`,
        traits: { email: EMAIL, phone: PHONE, name: NAME, address: ADDRESS, plan: "pro" },
        context: { ip: IPV4, traits: { email: EMAIL }, padding },
      },
      {
        type: "track",
        event: "Order Completed",
        userId: `seg-user-${run}`,
        messageId: `seg-track-${run}`,
        properties: { phone: PHONE, total: 42 },
        context: { ip: IPV6 },
      },
      {
        type: "track",
        event: "No Id",
        traits: { email: EMAIL },
        context: { ip: IPV4 },
        properties: { name: NAME },
      },
    ],
  };
}

function snowplowEvent(extra: Record<string, string>): Record<string, string> {
  return {
    e: "ue",
    aid: WRITE_KEY,
    tv: "js-3.0.0",
    p: "web",
    uid: SNOWPLOW_USER,
    ip: IPV4,
    dtm: String(Date.now()),
    ue_pr: JSON.stringify({
      schema: "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
      data: {
        schema: "iglu:com.acme/signup/jsonschema/1-0-0",
        data: { email: SNOWPLOW_EMAIL, phone: PHONE, name: NAME },
      },
    }),
    ...extra,
  };
}

describe("PII at the door", () => {
  let dataDir: string;
  let server: RunningServer;
  before(async () => {
    dataDir = await tempDataDir();
    server = await serve(configFor(dataDir));
  });
  after(async () => {
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  test("no raw email, phone, name or IP is stored anywhere, by any protocol, valid or quarantined", async () => {
    assert.equal((await send(server, "/v1/batch", segmentBatch("1"))).status, 200);
    assert.equal(
      (
        await send(server, "/com.snowplowanalytics.snowplow/tp2", {
          schema: "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
          data: [snowplowEvent({ eid: "sp-ok-1" }), snowplowEvent({ e: "zz", eid: "sp-bad-1" })],
        })
      ).status,
      200,
    );
    const pixel = new URLSearchParams(
      snowplowEvent({ e: "pv", eid: "sp-pixel-1", url: "https://shop.example/" }),
    );
    assert.equal((await send(server, "/i", null, { method: "GET", query: pixel.toString() })).status, 200);
    const badPixel = new URLSearchParams(snowplowEvent({ e: "zz", eid: "sp-pixel-bad" }));
    assert.equal((await send(server, "/i", null, { method: "GET", query: badPixel.toString() })).status, 400);
    assert.equal(
      (
        await send(server, "/batch/", {
          api_key: WRITE_KEY,
          batch: [
            {
              event: "$identify",
              uuid: "ph-identify-1",
              distinct_id: "ph-user-1",
              properties: {
                $set: { email: POSTHOG_EMAIL, phone: POSTHOG_PHONE, name: NAME },
                $ip: IPV4,
                $anon_distinct_id: "ph-anon-1",
              },
            },
            {
              event: "signed_up",
              uuid: "ph-bad-1",
              properties: { $set: { email: POSTHOG_EMAIL }, $ip: IPV6 },
            },
          ],
        })
      ).status,
      200,
    );

    await eventually(async () => (await count(server, "SELECT count(*) FROM events")) === 5);
    await eventually(async () => (await count(server, "SELECT count(*) FROM events_rejected")) === 4);

    const secret = piiSecret(server.sluice.config);
    const identify = (
      await query(
        server.url,
        `SELECT traits->>'email', traits->>'phone', traits->>'name', traits->>'address', traits->>'plan',
                context->'traits'->>'email', ip, context->>'ip'
         FROM events WHERE event_id = 'seg-identify-1'`,
      )
    ).rows;
    assert.deepEqual(identify, [
      [
        piiToken(secret, EMAIL),
        piiToken(secret, PHONE),
        piiToken(secret, NAME),
        piiToken(secret, ADDRESS),
        "pro",
        piiToken(secret, EMAIL),
        "203.0.113.0",
        "203.0.113.0",
      ],
    ]);
    const others = (
      await query(
        server.url,
        `SELECT event_id, ip, properties->>'phone', properties->>'email', json_extract_string(properties, '$."$set".email'), user_id
         FROM events WHERE event_id IN ('seg-track-1', 'sp-ok-1', 'ph-identify-1') ORDER BY event_id`,
      )
    ).rows;
    assert.deepEqual(others, [
      ["ph-identify-1", "203.0.113.0", null, null, piiToken(secret, POSTHOG_EMAIL), "ph-user-1"],
      ["seg-track-1", "2001:db8:abcd::", "***0958", null, null, "seg-user-1"],
      ["sp-ok-1", "203.0.113.0", "***0958", piiToken(secret, SNOWPLOW_EMAIL), null, SNOWPLOW_USER],
    ]);

    const found = await rawValuesUnder(dataDir, RAW_VALUES);
    assert.deepEqual(found, []);
    // The search does find what is stored: the Snowplow user id, which this policy keeps.
    assert.notDeepEqual(await rawValuesUnder(dataDir, [SNOWPLOW_USER]), []);
    const rejected = (await query(server.url, "SELECT payload FROM events_rejected ORDER BY payload")).rows;
    assert.equal(rejected.length, 4);
    for (const [payload] of rejected) assert.match(String(payload), /pii_[0-9a-f]{32}|203\.0\.113\.0/);
  });

  test("a policy set over HTTP is stored, applies to new events on every thread, and says so", async () => {
    const headers = { authorization: bearer(), "content-type": "application/json" };
    const refused = await fetch(`${server.url}/v1/privacy/policy`, {
      method: "PUT",
      headers,
      body: JSON.stringify({ policy: { "*": { "traits.email": "shred" } } }),
    });
    assert.equal(refused.status, 400);
    assert.match(
      ((await refused.json()) as { error: string }).error,
      /traits\.email must be one of hash, mask/,
    );

    const unauthorized = await fetch(`${server.url}/v1/privacy/policy`);
    assert.equal(unauthorized.status, 401);

    const policy = { "*": { ...POLICY["*"], "traits.email": "mask", "traits.phone": "drop" } };
    const response = await fetch(`${server.url}/v1/privacy/policy`, {
      method: "PUT",
      headers,
      body: JSON.stringify({ policy }),
    });
    assert.equal(response.status, 200);
    const view = (await response.json()) as {
      origin: string;
      note: string;
      every_source: Record<string, string>;
    };
    assert.equal(view.origin, "api");
    assert.match(view.note, /applies to events received from now on/);
    assert.equal(view.every_source["traits.email"], "mask");

    // A large batch goes to a worker thread, a single identify is prepared on the main thread.
    assert.equal((await send(server, "/v1/batch", segmentBatch("2"))).status, 200);
    const single = {
      userId: "seg-user-3",
      messageId: "seg-identify-3",
      traits: { email: EMAIL, phone: PHONE },
    };
    assert.equal((await send(server, "/v1/identify", single)).status, 200);
    await eventually(
      async () =>
        (await count(
          server,
          "SELECT count(*) FROM events WHERE event_id IN ('seg-identify-2', 'seg-identify-3')",
        )) === 2,
    );
    const rows = (
      await query(
        server.url,
        "SELECT event_id, traits->>'email', traits->>'phone' FROM events WHERE event_id IN ('seg-identify-1', 'seg-identify-2', 'seg-identify-3') ORDER BY 1",
      )
    ).rows;
    const secret = piiSecret(server.sluice.config);
    assert.deepEqual(rows, [
      // Stored before the change: as it was.
      ["seg-identify-1", piiToken(secret, EMAIL), piiToken(secret, PHONE)],
      ["seg-identify-2", "***@example.com", null],
      ["seg-identify-3", "***@example.com", null],
    ]);
    const stored = (await fetch(`${server.url}/v1/privacy/policy`, { headers }).then((r) => r.json())) as {
      policy: unknown;
    };
    assert.deepEqual(stored.policy, policy);
    // Back to sluice.yaml's policy for the tests that follow.
    assert.equal((await fetch(`${server.url}/v1/privacy/policy`, { method: "DELETE", headers })).status, 200);
  });

  test("hash tokens are the same after a restart (the generated secret is kept, owner-only)", async () => {
    const secret = piiSecret(server.sluice.config);
    const before = (
      await query(server.url, "SELECT traits->>'email' FROM events WHERE event_id = 'seg-identify-1'")
    ).rows[0]?.[0];
    await server.close();
    server = await serve(configFor(dataDir));
    assert.equal(piiSecret(server.sluice.config), secret);
    const { mode } = await import("node:fs").then((fs) => fs.statSync(join(dataDir, "privacy", "secret")));
    assert.equal(mode & 0o777, 0o600);
    assert.equal(
      (
        await send(server, "/v1/identify", {
          userId: "seg-user-4",
          messageId: "seg-identify-4",
          traits: { email: EMAIL },
        })
      ).status,
      200,
    );
    await eventually(
      async () =>
        (await count(server, "SELECT count(*) FROM events WHERE event_id = 'seg-identify-4'")) === 1,
    );
    const afterRestart = (
      await query(server.url, "SELECT traits->>'email' FROM events WHERE event_id = 'seg-identify-4'")
    ).rows[0]?.[0];
    assert.equal(afterRestart, before);
    assert.equal(afterRestart, piiToken(secret, EMAIL));
  });
});

/**
 * Which of `values` occur anywhere under `dir`: in the raw bytes of every file, and in the decoded
 * values of every Parquet file (its pages are compressed, so its bytes alone prove nothing).
 */
export async function rawValuesUnder(dir: string, values: string[]): Promise<string[]> {
  const found = new Set<string>();
  const db = await DuckDBInstance.create(":memory:");
  const connection = await db.connect();
  try {
    for (const path of await filesUnder(dir)) {
      const bytes = await readFile(path);
      for (const value of values) if (bytes.includes(value)) found.add(`${value} in ${path}`);
      if (!path.endsWith(".parquet")) continue;
      const rows = await connection.runAndReadAll(
        `SELECT * FROM read_parquet('${path.replaceAll("'", "''")}', hive_partitioning = false)`,
      );
      const text = JSON.stringify(rows.getRowsJson());
      for (const value of values)
        if (text.includes(value) || text.includes(JSON.stringify(value).slice(1, -1))) {
          found.add(`${value} in ${path}`);
        }
    }
  } finally {
    connection.closeSync();
    db.closeSync();
  }
  return [...found];
}

async function filesUnder(dir: string): Promise<string[]> {
  const files: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...(await filesUnder(path)));
    else if (entry.isFile()) files.push(path);
  }
  return files;
}

describe("the raw zone", () => {
  let dataDir: string;
  let server: RunningServer;
  before(async () => {
    dataDir = await tempDataDir();
    server = await serve(configFor(dataDir, { raw_zone: true, raw_zone_retention_days: 7 }));
  });
  after(async () => {
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  test("keeps events unobfuscated in events_raw, for its own shorter retention; forget reaches it", async () => {
    const old = new Date(Date.now() - 10 * 86_400_000).toISOString();
    const batch = [
      { type: "identify", userId: "raw-user", messageId: "raw-1", traits: { email: EMAIL } },
      { type: "track", event: "Old", userId: "raw-user-2", messageId: "raw-2", timestamp: old, traits: {} },
    ];
    assert.equal((await send(server, "/v1/batch", { batch })).status, 200);
    await eventually(async () => (await count(server, "SELECT count(*) FROM events_raw")) === 2);
    await eventually(async () => (await count(server, "SELECT count(*) FROM events")) === 2);
    const secret = piiSecret(server.sluice.config);
    assert.deepEqual(
      (await query(server.url, "SELECT traits->>'email' FROM events WHERE event_id = 'raw-1'")).rows,
      [[piiToken(secret, EMAIL)]],
    );
    assert.deepEqual(
      (await query(server.url, "SELECT traits->>'email' FROM events_raw WHERE event_id = 'raw-1'")).rows,
      [[EMAIL]],
    );

    // Readable by admins only: a viewer's token gets a 403 naming the rule.
    const accounts = server.sluice.accounts;
    const { secret: viewerToken } = accounts.createToken(
      accounts.createUser("viewer-1", "viewer").user,
      "t",
      "viewer",
    );
    const asViewer = (sql: string) =>
      fetch(`${server.url}/v1/query`, {
        method: "POST",
        headers: { authorization: `Bearer ${viewerToken}`, "content-type": "application/json" },
        body: JSON.stringify({ sql }),
      });
    const refused = await asViewer("SELECT count(*) FROM events_raw");
    assert.equal(refused.status, 403);
    assert.match(((await refused.json()) as { error: string }).error, /table events_raw is for admins only/);
    // Nor around the table, through its files.
    const files = await asViewer(
      `SELECT count(*) FROM read_parquet('${dataDir}/lake/events_raw/**/*.parquet')`,
    );
    assert.equal(files.status, 403);
    assert.match(
      ((await files.json()) as { error: string }).error,
      /read_parquet\(\) reads outside the catalog's tables/,
    );
    assert.equal((await asViewer("SELECT count(*) FROM events")).status, 200);
    const viewerForget = await fetch(`${server.url}/v1/privacy/forget`, {
      method: "POST",
      headers: { authorization: `Bearer ${viewerToken}`, "content-type": "application/json" },
      body: JSON.stringify({ user_id: "raw-user" }),
    });
    assert.equal(viewerForget.status, 403);

    const run = await fetch(`${server.url}/v1/privacy/retention/run`, {
      method: "POST",
      headers: { authorization: bearer() },
    });
    const { tables } = (await run.json()) as { tables: { table: string; rowsDeleted: number }[] };
    assert.deepEqual(
      tables.map(({ table, rowsDeleted }) => [table, rowsDeleted]),
      [["events_raw", 1]],
    );
    assert.equal(await count(server, "SELECT count(*) FROM events"), 2);

    const forget = await fetch(`${server.url}/v1/privacy/forget`, {
      method: "POST",
      headers: { authorization: bearer(), "content-type": "application/json" },
      body: JSON.stringify({ user_id: "raw-user" }),
    });
    assert.deepEqual(((await forget.json()) as { rows: unknown }).rows, { events: 1, events_raw: 1 });
    assert.equal(await count(server, "SELECT count(*) FROM events_raw"), 0);
  });
});
