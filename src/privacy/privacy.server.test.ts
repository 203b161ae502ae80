/**
 * PII at the door, end to end: events carrying emails, phone numbers, names, addresses and IPs sent
 * through every protocol (Segment's /v1/* calls, the browser tracker's text/plain batches, Snowplow
 * tp2 and pixel, PostHog's capture endpoints), valid and invalid, to a real server; then every byte
 * under the data dir (bus segments, Parquet files read back decoded, quarantine, catalog, SQLite
 * stores) and everything the server logged is searched for the raw values.
 */
import assert from "node:assert/strict";
import { readdir, readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { deflateSync, gzipSync } from "node:zlib";
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
const ENTITY_EMAIL = "mary.somerville@example.org";
const POSTHOG_EMAIL = "grace.hopper@example.net";
const POSTHOG_PHONE = "+1 202 555 0143";
const TRACKER_EMAIL = "alan.turing@example.com";
const TRACKER_IP = "198.51.100.201";
const BROKEN_PHONE = "+15558675309";
const RAW_VALUES = [
  EMAIL,
  PHONE,
  NAME,
  ADDRESS,
  IPV4,
  IPV6,
  SNOWPLOW_EMAIL,
  ENTITY_EMAIL,
  POSTHOG_EMAIL,
  POSTHOG_PHONE,
  TRACKER_EMAIL,
  TRACKER_IP,
  BROKEN_PHONE,
  // What V8 quotes from around a JSON syntax error: the phone number's last digits.
  '5309","n"',
];
/** A trait no rule names: stored as sent, so the search must find it. */
const CANARY = "canary-nickname-4f1d";

/** The defaults, plus what the Snowplow and PostHog events below carry elsewhere. */
const POLICY = {
  "*": {
    "properties.email": "hash",
    "properties.phone": "mask",
    "properties.name": "hash",
    "context.snowplow.contexts.data.email": "hash",
  },
};

function configFor(dataDir: string, overrides: Partial<Config> = {}): Config {
  return testConfig(dataDir, {
    // A worker thread: large bodies are prepared on it, small ones on the main thread.
    collect_workers: 1,
    // Small, so that oversized events are quarantined cut at the limit.
    max_event_bytes: 4000,
    pii_policy: POLICY,
    ...overrides,
  });
}

async function send(
  server: RunningServer,
  path: string,
  body: unknown,
  init: { method?: string; query?: string; headers?: Record<string, string> } = {},
): Promise<Response> {
  const response = await fetch(`${server.url}${path}${init.query ? `?${init.query}` : ""}`, {
    method: init.method ?? "POST",
    headers: init.headers ?? { authorization: basicAuth(), "content-type": "application/json" },
    body:
      init.method === "GET"
        ? undefined
        : typeof body === "string"
          ? body
          : body instanceof Uint8Array
            ? new Uint8Array(body)
            : JSON.stringify(body),
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
        traits: { email: EMAIL, phone: PHONE, name: NAME, address: ADDRESS, plan: "pro", nickname: CANARY },
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
      // Over max_event_bytes: quarantined cut at the limit, so no longer JSON.
      {
        type: "identify",
        userId: `seg-user-${run}`,
        messageId: `seg-big-${run}`,
        traits: { phone: PHONE, email: EMAIL, name: NAME, notes: "n".repeat(5000) },
      },
    ],
  };
}

const UNSTRUCT = JSON.stringify({
  schema: "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
  data: {
    schema: "iglu:com.acme/signup/jsonschema/1-0-0",
    data: { email: SNOWPLOW_EMAIL, phone: PHONE, name: NAME },
  },
});
const CONTEXTS = JSON.stringify({
  schema: "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1",
  data: [{ schema: "iglu:com.acme/customer/jsonschema/1-0-0", data: { email: ENTITY_EMAIL, tier: "gold" } }],
});

function snowplowEvent(extra: Record<string, string>): Record<string, string> {
  return {
    e: "ue",
    aid: WRITE_KEY,
    tv: "js-3.0.0",
    p: "web",
    uid: SNOWPLOW_USER,
    ip: IPV4,
    dtm: String(Date.now()),
    ue_pr: UNSTRUCT,
    ...extra,
  };
}

/** Every protocol and endpoint, with valid events and ones that are quarantined. */
async function sendEverything(server: RunningServer): Promise<{ accepted: string[]; rejected: number }> {
  const statuses: [string, number][] = [];
  const expect = async (what: string, response: Promise<Response>) => {
    statuses.push([what, (await response).status]);
  };
  // Segment: a batch (worker thread), single calls (main thread).
  await expect("segment batch", send(server, "/v1/batch", segmentBatch("1")));
  await expect(
    "segment page",
    send(server, "/v1/page", {
      anonymousId: "seg-anon-1",
      messageId: "seg-page-1",
      properties: { email: EMAIL, url: "https://shop.example/account" },
      context: { ip: IPV6, traits: { phone: PHONE } },
    }),
  );
  // The browser tracker (sluice.js): text/plain, the write key in the body, no Authorization.
  await expect(
    "tracker batch",
    send(
      server,
      "/v1/batch",
      JSON.stringify({
        writeKey: WRITE_KEY,
        sentAt: new Date().toISOString(),
        batch: [
          {
            type: "identify",
            userId: "tracker-user",
            anonymousId: "tracker-anon",
            messageId: "tracker-identify-1",
            traits: { email: TRACKER_EMAIL, name: NAME },
            context: { ip: TRACKER_IP, page: { url: "https://shop.example/" } },
          },
        ],
      }),
      { headers: { "content-type": "text/plain" } },
    ),
  );
  // Invalid JSON: V8's reason quotes the text around the error.
  await expect(
    "segment bad json",
    send(
      server,
      "/v1/batch",
      `{"batch":[{"type":"identify","userId":"u-broken","traits":{"phone":"${BROKEN_PHONE}","n":]}}]}`,
    ),
  );
  // Plain JSON sent as gzip: kept in base64 as a body that could not be read.
  await expect(
    "segment mislabelled gzip",
    send(server, "/v1/identify", JSON.stringify({ userId: "u-gz", traits: { email: EMAIL } }), {
      headers: { authorization: basicAuth(), "content-type": "application/json", "content-encoding": "gzip" },
    }),
  );

  // Deflate cut short: bytes nobody can read, which may hold anything, so only their size is kept.
  await expect(
    "segment cut deflate",
    send(
      server,
      "/v1/identify",
      deflateSync(JSON.stringify({ userId: "u-df", traits: { email: EMAIL } })).subarray(0, 20),
      {
        headers: {
          authorization: basicAuth(),
          "content-type": "application/json",
          "content-encoding": "deflate",
        },
      },
    ),
  );

  // Snowplow: tp2 with a valid event (a context entity whose email a rule names), an invalid one
  // and one over the size limit; the pixel, valid (base64 contexts) and invalid.
  await expect(
    "snowplow tp2",
    send(server, "/com.snowplowanalytics.snowplow/tp2", {
      schema: "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
      data: [
        snowplowEvent({ eid: "sp-ok-1", co: CONTEXTS }),
        snowplowEvent({ e: "zz", eid: "sp-bad-1" }),
        snowplowEvent({ eid: "sp-big-1", se_la: "l".repeat(5000) }),
      ],
    }),
  );
  const pixel = new URLSearchParams(
    snowplowEvent({
      e: "pv",
      eid: "sp-pixel-1",
      url: "https://shop.example/",
      cx: Buffer.from(CONTEXTS).toString("base64url"),
    }),
  );
  await expect("snowplow pixel", send(server, "/i", null, { method: "GET", query: pixel.toString() }));
  const badPixel = new URLSearchParams(
    snowplowEvent({ e: "zz", eid: "sp-pixel-bad", ue_px: Buffer.from(UNSTRUCT).toString("base64url") }),
  );
  await expect("snowplow bad pixel", send(server, "/i", null, { method: "GET", query: badPixel.toString() }));
  // Over max_event_bytes: the query string is quarantined cut at the limit, URL-encoded JSON and all.
  const bigPixel = new URLSearchParams(
    snowplowEvent({ e: "ue", eid: "sp-pixel-big", se_la: "l".repeat(5000) }),
  );
  await expect("snowplow big pixel", send(server, "/i", null, { method: "GET", query: bigPixel.toString() }));

  // PostHog: /batch/ with a valid and an invalid event; /capture/, /e/ gzip-js, /i/v0/e/.
  await expect(
    "posthog batch",
    send(server, "/batch/", {
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
        { event: "signed_up", uuid: "ph-bad-1", properties: { $set: { email: POSTHOG_EMAIL }, $ip: IPV6 } },
      ],
    }),
  );
  await expect(
    "posthog capture",
    send(server, "/capture/", {
      api_key: WRITE_KEY,
      event: "$pageview",
      uuid: "ph-capture-1",
      distinct_id: "ph-user-1",
      properties: { $ip: IPV6, email: POSTHOG_EMAIL, $set_once: { phone: POSTHOG_PHONE } },
    }),
  );
  await expect(
    "posthog-js gzip",
    send(
      server,
      "/e/",
      gzipSync(
        JSON.stringify([
          {
            event: "clicked",
            uuid: "ph-js-1",
            properties: { token: WRITE_KEY, distinct_id: "ph-user-1", $ip: IPV4, phone: POSTHOG_PHONE },
          },
        ]),
      ),
      { query: "compression=gzip-js", headers: { "content-type": "text/plain" } },
    ),
  );
  await expect(
    "posthog i/v0/e",
    send(server, "/i/v0/e/", {
      api_key: WRITE_KEY,
      event: "$identify",
      uuid: "ph-i-1",
      distinct_id: "ph-user-2",
      properties: { $set: { email: POSTHOG_EMAIL, address: ADDRESS } },
    }),
  );
  assert.deepEqual(statuses, [
    ["segment batch", 200],
    ["segment page", 200],
    ["tracker batch", 200],
    ["segment bad json", 400],
    ["segment mislabelled gzip", 400],
    ["segment cut deflate", 400],
    ["snowplow tp2", 200],
    ["snowplow pixel", 200],
    ["snowplow bad pixel", 400],
    ["snowplow big pixel", 413],
    ["posthog batch", 200],
    ["posthog capture", 200],
    ["posthog-js gzip", 200],
    ["posthog i/v0/e", 200],
  ]);
  return {
    accepted: [
      "seg-identify-1",
      "seg-track-1",
      "seg-page-1",
      "tracker-identify-1",
      "sp-ok-1",
      "sp-pixel-1",
      "ph-identify-1",
      "ph-capture-1",
      "ph-js-1",
      "ph-i-1",
    ],
    // No Id, seg-big-1, bad JSON, mislabelled gzip, cut deflate, sp-bad-1, sp-big-1, bad pixel, big
    // pixel, ph-bad-1.
    rejected: 10,
  };
}

describe("PII at the door", () => {
  let dataDir: string;
  let server: RunningServer;
  let logged = "";
  const writeStderr = process.stderr.write.bind(process.stderr);
  before(async () => {
    // Everything the server logs (its workers' output is piped through here too).
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => {
      logged += Buffer.from(chunk).toString();
      return (writeStderr as (...args: unknown[]) => boolean)(chunk, ...rest);
    }) as typeof process.stderr.write;
    dataDir = await tempDataDir();
    server = await serve(configFor(dataDir));
  });
  after(async () => {
    process.stderr.write = writeStderr;
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  test("no raw email, phone, name or IP is stored or logged, by any protocol, valid or quarantined", async () => {
    const { accepted, rejected } = await sendEverything(server);
    const ids = accepted.map((id) => `'${id}'`).join(", ");
    await eventually(
      async () =>
        (await count(server, `SELECT count(*) FROM events WHERE event_id IN (${ids})`)) === accepted.length,
    );
    await eventually(async () => (await count(server, "SELECT count(*) FROM events_rejected")) === rejected);

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
         FROM events WHERE event_id IN ('seg-track-1', 'sp-ok-1', 'ph-identify-1', 'tracker-identify-1') ORDER BY event_id`,
      )
    ).rows;
    assert.deepEqual(others, [
      ["ph-identify-1", "203.0.113.0", null, null, piiToken(secret, POSTHOG_EMAIL), "ph-user-1"],
      ["seg-track-1", "2001:db8:abcd::", "***0958", null, null, "seg-user-1"],
      ["sp-ok-1", "203.0.113.0", "***0958", piiToken(secret, SNOWPLOW_EMAIL), null, SNOWPLOW_USER],
      ["tracker-identify-1", "198.51.100.0", null, null, null, "tracker-user"],
    ]);
    // The rule for a key inside Snowplow's list of context entities, from tp2's JSON and the pixel's base64.
    assert.deepEqual(
      (
        await query(
          server.url,
          "SELECT event_id, context->'snowplow'->'contexts'->0->'data'->>'email' FROM events WHERE event_id IN ('sp-ok-1', 'sp-pixel-1') ORDER BY 1",
        )
      ).rows,
      [
        ["sp-ok-1", piiToken(secret, ENTITY_EMAIL)],
        ["sp-pixel-1", piiToken(secret, ENTITY_EMAIL)],
      ],
    );

    assert.deepEqual(await rawValuesUnder(dataDir, RAW_VALUES), []);
    for (const value of RAW_VALUES) assert.ok(!logged.includes(value), `the server logged ${value}`);
    // The search does find what is stored as sent: in the bus's bytes and in Parquet read back.
    const canary = await rawValuesUnder(dataDir, [CANARY]);
    assert.ok(
      canary.some((found) => found.includes(`${join("bus", "events")}`)),
      canary.join("\n"),
    );
    assert.ok(
      canary.some((found) => found.includes(join("lake", "events")) && found.endsWith("(decoded)")),
      canary.join("\n"),
    );
    const quarantined = (await query(server.url, "SELECT payload, reason FROM events_rejected")).rows;
    assert.equal(quarantined.length, rejected);
    for (const [payload] of quarantined) {
      // A body the collector could not read is kept in base64, scrubbed all the same, or withheld.
      const text = /^[A-Za-z0-9+/]+=*$/.test(String(payload))
        ? Buffer.from(String(payload), "base64").toString()
        : String(payload);
      assert.match(text, /pii_[0-9a-f]{32}|203\.0\.113\.0|\*\*\*|^\(withheld: 20 bytes/);
      for (const value of RAW_VALUES) assert.ok(!text.includes(value), `${value} in ${text}`);
    }
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
 * values of every Parquet file (its pages are compressed, so its bytes alone prove nothing); as
 * written, JSON-escaped (once or twice: JSON text inside JSON), or URL-encoded (a pixel's query).
 */
export async function rawValuesUnder(dir: string, values: string[]): Promise<string[]> {
  const forms = values.map((value) => {
    const escaped = JSON.stringify(value).slice(1, -1);
    const encoded = [
      value,
      escaped,
      JSON.stringify(escaped).slice(1, -1),
      encodeURIComponent(value),
      new URLSearchParams({ v: value }).toString().slice(2),
    ];
    return { value, encoded: [...new Set(encoded)] };
  });
  const search = (text: string | Buffer, where: string, found: Set<string>) => {
    for (const { value, encoded } of forms) {
      if (encoded.some((form) => text.includes(form))) found.add(`${value} in ${where}`);
    }
  };
  const found = new Set<string>();
  const db = await DuckDBInstance.create(":memory:");
  const connection = await db.connect();
  try {
    for (const path of await filesUnder(dir)) {
      search(await readFile(path), path, found);
      if (!path.endsWith(".parquet")) continue;
      const rows = await connection.runAndReadAll(
        `SELECT * FROM read_parquet('${path.replaceAll("'", "''")}', hive_partitioning = false)`,
      );
      search(JSON.stringify(rows.getRowsJson()), `${path} (decoded)`, found);
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
      {
        type: "identify",
        userId: "raw-user",
        messageId: "raw-1",
        traits: { email: EMAIL },
        context: { ip: IPV4 },
      },
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
      (
        await query(
          server.url,
          "SELECT traits->>'email', ip, context->>'ip' FROM events_raw WHERE event_id = 'raw-1'",
        )
      ).rows,
      [[EMAIL, IPV4, IPV4]],
    );
    assert.deepEqual(
      (await query(server.url, "SELECT ip, context->>'ip' FROM events WHERE event_id = 'raw-1'")).rows,
      [["203.0.113.0", "203.0.113.0"]],
    );
    // Profiles keep top values and every viewer reads them: the raw zone is not profiled.
    const profile = await fetch(`${server.url}/v1/quality/profiles/events_raw`, {
      method: "POST",
      headers: { authorization: bearer() },
    });
    assert.equal(profile.status, 404);
    assert.match(((await profile.json()) as { error: string }).error, /events_raw is the raw zone/);

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

  test("the raw values stay in the raw zone: every file outside events_raw is clean", async () => {
    const { accepted } = await sendEverything(server);
    const ids = accepted.map((id) => `'${id}'`).join(", ");
    for (const table of ["events", "events_raw"]) {
      await eventually(
        async () =>
          (await count(server, `SELECT count(*) FROM ${table} WHERE event_id IN (${ids})`)) ===
          accepted.length,
      );
    }
    const found = await rawValuesUnder(dataDir, RAW_VALUES);
    const rawZone = join(dataDir, "bus", "events_raw");
    const rawLake = join(dataDir, "lake", "events_raw");
    assert.deepEqual(
      found.filter((where) => !where.includes(rawZone) && !where.includes(rawLake)),
      [],
    );
    // The raw zone does hold them: the whole addresses and the emails.
    for (const value of [IPV4, IPV6, EMAIL, TRACKER_EMAIL, ENTITY_EMAIL]) {
      assert.ok(
        found.some((where) => where.startsWith(`${value} in ${rawLake}`)),
        `${value} not in events_raw`,
      );
    }
  });
});
