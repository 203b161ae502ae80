import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { brotliCompressSync, deflateSync, gunzipSync, gzipSync } from "node:zlib";
import { DuckDBInstance } from "@duckdb/node-api";
import type { CanonicalEvent } from "../collect/model.js";
import { type PreparedRequest, prepare, type RequestToPrepare } from "../collect/prepare.js";
import { DEFAULT_LIMITS } from "../collect/request.js";
import { loadConfig } from "../config/index.js";
import { doorPolicy, PolicyCell } from "./door.js";
import { compileRules, maskValue, piiToken } from "./obfuscate.js";
import { DEFAULT_RULES, effectiveRules, type PiiPolicy, PolicyError, parsePolicy } from "./policy.js";
import { compileScrubber } from "./quarantine.js";
import { hmacSql, retentionRules } from "./retention.js";
import { queryAccess } from "./start.js";
import { doorSettings } from "./store.js";

const SECRET = "test-secret";

function event(overrides: Partial<CanonicalEvent> = {}): CanonicalEvent {
  return {
    event_id: "e1",
    event_type: "identify",
    event: null,
    user_id: "u1",
    anonymous_id: "a1",
    session_id: null,
    ts: "2026-11-25T10:00:00.000Z",
    received_at: "2026-11-25T10:00:00.000Z",
    source: "default",
    page_url: null,
    page_path: null,
    referrer: null,
    user_agent: null,
    browser: null,
    os: null,
    device_type: null,
    ip: "203.0.113.0",
    country: null,
    properties: null,
    context: null,
    traits: null,
    ...overrides,
  };
}

describe("the PII policy", () => {
  test("tokens are HMAC-SHA256 of the value under the secret, prefixed", () => {
    const expected = createHmac("sha256", SECRET).update("ada@example.com").digest("hex").slice(0, 32);
    assert.equal(piiToken(SECRET, "ada@example.com"), `pii_${expected}`);
    assert.notEqual(piiToken("another secret", "ada@example.com"), piiToken(SECRET, "ada@example.com"));
  });

  test("mask keeps an email's domain and a phone number's last four digits", () => {
    assert.equal(maskValue("ada@example.com"), "***@example.com");
    assert.equal(maskValue("+44 20 7946 0958"), "***0958");
    assert.equal(maskValue("Ada"), "***");
  });

  test("the defaults hash a person's details wherever the protocols put them, and truncate IPs", () => {
    const rules = effectiveRules({}, "default");
    assert.equal(rules["traits.email"], "hash");
    assert.equal(rules["context.traits.phone"], "hash");
    assert.equal(rules["properties.$set.name"], "hash");
    assert.equal(rules.ip, "truncate_ip");
    assert.deepEqual(rules, { ...DEFAULT_RULES });
  });

  test("a source's rules override every source's, which override the defaults; keep removes a rule", () => {
    const policy = parsePolicy({
      "*": { "traits.email": "mask", "properties.phone": "mask" },
      shop: { "traits.email": "keep", user_id: "hash" },
    });
    assert.equal(effectiveRules(policy, "web")["traits.email"], "mask");
    assert.equal(effectiveRules(policy, "shop")["traits.email"], undefined);
    assert.equal(effectiveRules(policy, "shop").user_id, "hash");
    assert.equal(effectiveRules(policy, "shop")["properties.phone"], "mask");
  });

  test("a bad policy is refused naming the source, path and problem", () => {
    const cases: [unknown, RegExp][] = [
      [
        { "*": { "traits.email": "shred" } },
        /pii_policy\.\*: the action for traits\.email must be one of hash/,
      ],
      [
        { web: { "nope.email": "hash" } },
        /pii_policy\.web: nope\.email does not start with a column of events/,
      ],
      [{ web: { event_id: "hash" } }, /event_id is needed as it is/],
      [{ web: { traits: "hash" } }, /a whole JSON column \(traits\) can only be dropped/],
      [{ web: { "ip.v4": "hash" } }, /ip is not a JSON column/],
      [{ web: "hash" }, /pii_policy\.web must map field paths to actions/],
      [["hash"], /pii_policy must map "\*" or a source name/],
    ];
    for (const [policy, message] of cases)
      assert.throws(
        () => parsePolicy(policy),
        (error: Error) => {
          assert.ok(error instanceof PolicyError);
          assert.match(error.message, message);
          return true;
        },
      );
  });

  test("rules change nested values copy-on-write: an object shared by two events is not changed", () => {
    const apply = compileRules(
      {
        "traits.email": "hash",
        "context.traits.phone": "mask",
        "properties.secret": "drop",
        user_id: "hash",
      },
      SECRET,
    );
    assert.ok(apply !== null);
    const sharedContext = { traits: { phone: "+1 202 555 0143" }, library: { name: "x" } };
    const first = event({
      traits: { email: "ada@example.com", plan: "pro" },
      context: sharedContext,
      properties: { secret: "s", kept: 1 },
    });
    const second = event({ event_id: "e2", context: sharedContext });
    apply(first);
    apply(second);
    assert.deepEqual(first.traits, { email: piiToken(SECRET, "ada@example.com"), plan: "pro" });
    assert.deepEqual(first.context, { traits: { phone: "***0143" }, library: { name: "x" } });
    assert.deepEqual(second.context, first.context);
    assert.deepEqual(sharedContext.traits, { phone: "+1 202 555 0143" });
    assert.deepEqual(first.properties, { kept: 1 });
    assert.equal(first.user_id, piiToken(SECRET, "u1"));
    // A token is not hashed again.
    apply(first);
    assert.equal(first.user_id, piiToken(SECRET, "u1"));
  });

  test("a path reaches into lists: every element's key, or every value of a list", () => {
    const apply = compileRules(
      { "context.snowplow.contexts.data.email": "hash", "properties.emails": "mask" },
      SECRET,
    );
    const entities = [
      { schema: "iglu:com.acme/user/jsonschema/1-0-0", data: { email: "ada@example.com", plan: "pro" } },
      { schema: "iglu:com.acme/page/jsonschema/1-0-0", data: { title: "Home" } },
    ];
    const changed = event({
      context: { snowplow: { contexts: entities } },
      properties: { emails: ["ada@example.com", "bob@example.org"] },
    });
    apply?.(changed);
    assert.deepEqual(changed.context, {
      snowplow: {
        contexts: [
          { ...entities[0], data: { email: piiToken(SECRET, "ada@example.com"), plan: "pro" } },
          entities[1],
        ],
      },
    });
    assert.deepEqual(changed.properties, { emails: ["***@example.com", "***@example.org"] });
    // The list the protocol made is not changed: the event got a copy.
    assert.equal(entities[0]?.data.email, "ada@example.com");
  });

  test("a rule may name a column by a protocol's own name: Snowplow's uid, Segment's userId", () => {
    assert.deepEqual(parsePolicy({ snowplow: { uid: "hash", url: "drop" }, "*": { userId: "hash" } }), {
      snowplow: { user_id: "hash", page_url: "drop" },
      "*": { user_id: "hash" },
    });
    assert.throws(
      () => parsePolicy({ web: { uid: "hash", user_id: "keep" } }),
      /pii_policy\.web: uid and user_id both name user_id; keep one/,
    );
  });

  test("an event with none of the rules' fields is left as it is", () => {
    const apply = compileRules(effectiveRules({}, "default"), SECRET);
    const properties = { plan: "pro" };
    const original = event({ event_type: "track", properties, ip: null });
    apply?.(original);
    assert.equal(original.properties, properties);
    assert.equal(compileRules({ "traits.email": "keep" }, SECRET), null);
  });

  test("quarantined text is scrubbed by key at any depth, inside JSON strings and base64, and by pattern", () => {
    // traits.phone is hashed, properties.phone masked: for the key "phone" the rule hiding more wins.
    const scrub = compileScrubber(
      effectiveRules(parsePolicy({ "*": { "properties.phone": "mask" } }), "web"),
      SECRET,
    );
    const email = piiToken(SECRET, "ada@example.com");
    const phone = piiToken(SECRET, "+44 20 7946 0958");
    assert.deepEqual(
      JSON.parse(
        scrub(
          JSON.stringify({
            traits: { email: "ada@example.com" },
            note: "mail ada@example.com",
            ip: "203.0.113.77",
          }),
        ),
      ),
      { traits: { email }, note: `mail ${email}`, ip: "203.0.113.0" },
    );
    const unstruct = JSON.stringify({ data: { data: { phone: "+44 20 7946 0958" } } });
    assert.deepEqual(JSON.parse(scrub(JSON.stringify({ ue_pr: unstruct }))), {
      ue_pr: JSON.stringify({ data: { data: { phone } } }),
    });
    const encoded = Buffer.from(unstruct).toString("base64url");
    const scrubbed = JSON.parse(scrub(JSON.stringify({ ue_px: encoded }))) as { ue_px: string };
    assert.deepEqual(JSON.parse(Buffer.from(scrubbed.ue_px, "base64url").toString()), {
      data: { data: { phone } },
    });
    // Cut at the size limit: not JSON any more, scrubbed as text.
    assert.equal(
      scrub('{"name":"Ada Lovelace","email":"ada@exam'),
      `{"name":"${piiToken(SECRET, "Ada Lovelace")}","email":"${piiToken(SECRET, "ada@exam")}"`,
    );
    // A pixel's query string, with JSON and base64 JSON inside its parameters.
    assert.equal(scrub("e=pv&ip=203.0.113.77&email=ada%40example.com"), `e=pv&ip=203.0.113.0&email=${email}`);
    const pixel = new URLSearchParams(
      scrub(
        new URLSearchParams({ e: "ue", ue_pr: unstruct, ue_px: encoded, note: "ada@example.com" }).toString(),
      ),
    );
    assert.deepEqual(JSON.parse(pixel.get("ue_pr") ?? ""), { data: { data: { phone } } });
    assert.deepEqual(JSON.parse(Buffer.from(pixel.get("ue_px") ?? "", "base64url").toString()), {
      data: { data: { phone } },
    });
    assert.equal(pixel.get("note"), email);
  });

  test("quarantined text cut short or invalid is scrubbed inside JSON strings and base64 bodies too", () => {
    const scrub = compileScrubber(effectiveRules({}, "web"), SECRET);
    const phone = piiToken(SECRET, "+44 20 7946 0958");
    // A Snowplow event cut at the size limit: its self-describing JSON is a string inside the JSON.
    const cut = JSON.stringify({
      ue_pr: JSON.stringify({ data: { phone: "+44 20 7946 0958", x: "y" } }),
    }).slice(0, -12);
    const scrubbed = scrub(cut);
    assert.ok(!scrubbed.includes("7946"), scrubbed);
    assert.ok(scrubbed.includes(`\\"phone\\":\\"${phone}\\"`), scrubbed);
    // IPv6 addresses in any text, as IPv4 ones.
    assert.equal(scrub("from 2001:db8:abcd:12::1 at 10:00:00"), "from 2001:db8:abcd:: at 10:00:00");
    // A body the collector could not read, kept in base64: plain JSON sent as gzip, gzip too large.
    const body = JSON.stringify({ traits: { phone: "+44 20 7946 0958" } });
    const mislabelled = scrub(Buffer.from(body).toString("base64"));
    assert.deepEqual(JSON.parse(Buffer.from(mislabelled, "base64").toString()), { traits: { phone } });
    const large = gzipSync(`${body}${" ".repeat(2_000_000)}`).toString("base64");
    const inflated = gunzipSync(Buffer.from(scrub(large), "base64")).toString();
    assert.ok(inflated.startsWith(JSON.stringify({ traits: { phone } })));
    assert.equal(
      scrub(Buffer.from("not personal, not gzip").toString("base64")),
      Buffer.from("not personal, not gzip").toString("base64"),
    );
  });

  test("a body the collector could not decode is withheld under a policy unless its JSON can be read", () => {
    const scrub = compileScrubber(effectiveRules({}, "web"), SECRET);
    const body = JSON.stringify({ traits: { email: "ann@example.com" } });
    // Brotli or deflate that is cut or too large, an encoding nobody reads, lz64: bytes the
    // scrubber cannot read either, so they may hold anything.
    for (const unreadable of [
      brotliCompressSync(body).toString("base64"),
      deflateSync(body).toString("base64"),
      Buffer.from("N4IgLgng5gpiBcIDGB7ANgSwHYAIA0AbgIYIhA").toString("base64"),
    ]) {
      const kept = scrub(unreadable, true);
      assert.match(
        kept,
        /^\(withheld: \d+ bytes the collector could not decode; the source's PII policy cannot check them\)$/,
      );
    }
    // What it can read (plain JSON sent as gzip, gzip too large) is scrubbed and kept, as before.
    const mislabelled = scrub(Buffer.from(body).toString("base64"), true);
    assert.ok(!Buffer.from(mislabelled, "base64").toString().includes("ann@example.com"));
    // Without a policy that hides anything, nothing is withheld.
    const none = compileScrubber({}, SECRET);
    assert.equal(none(deflateSync(body).toString("base64"), true), deflateSync(body).toString("base64"));
  });

  test("a policy change in the shared memory reaches every reader at its next request", () => {
    const cell = new PolicyCell({ policy: {}, secret: SECRET, rawZone: false });
    const before = doorPolicy(cell.handle);
    assert.equal(doorPolicy(cell.handle), before);
    cell.set({ policy: { "*": { "traits.email": "mask" } }, secret: SECRET, rawZone: true });
    const after = doorPolicy(cell.handle);
    assert.notEqual(after, before);
    assert.equal(after.rawZone, true);
    const changed = event({ traits: { email: "ada@example.com" } });
    after.forSource("web").apply?.(changed);
    assert.deepEqual(changed.traits, { email: "***@example.com" });
  });

  test("DuckDB's HMAC, used by retention to hash stored values, gives the same tokens", async () => {
    const db = await DuckDBInstance.create(":memory:");
    const connection = await db.connect();
    try {
      for (const secret of [SECRET, "k".repeat(100)]) {
        const result = await connection.runAndReadAll(`SELECT ${hmacSql("'ada@example.com'", secret)}`);
        assert.equal(result.getRowsJson()[0]?.[0], piiToken(secret, "ada@example.com"));
      }
    } finally {
      connection.closeSync();
      db.closeSync();
    }
  });

  test("retention rules are checked, and the raw zone gets its own", () => {
    const config = { raw_zone: true, raw_zone_retention_days: 3 };
    assert.deepEqual(
      retentionRules({
        ...config,
        retention: {
          events: { drop_after_days: 400, scrub: [{ after_days: 30, columns: ["ip"], action: null }] },
        },
      }),
      [
        { table: "events", dropAfterDays: 400, scrub: [{ afterDays: 30, columns: ["ip"], action: "null" }] },
        { table: "events_raw", dropAfterDays: 3, scrub: [] },
      ],
    );
    const cases: [unknown, RegExp][] = [
      [
        { events: { drop_after_days: "soon" } },
        /retention\.events\.drop_after_days must be a number of days/,
      ],
      [
        { events: { scrub: [{ after_days: 1, columns: [], action: "null" }] } },
        /scrub\[0\]\.columns must be a non-empty list/,
      ],
      [
        { events: { scrub: [{ after_days: 1, columns: ["ip"], action: "shred" }] } },
        /scrub\[0\]\.action must be null or hash/,
      ],
      [{ events: { keep: 1 } }, /unknown key "keep"/],
      [{ events: {} }, /has neither drop_after_days nor scrub/],
    ];
    for (const [retention, message] of cases) {
      assert.throws(
        () => retentionRules({ ...config, retention: retention as Record<string, unknown> }),
        (error: Error) => error instanceof PolicyError && message.test(error.message),
      );
    }
  });
});

test("sluice.yaml sets the policy and the secret; a mistake in it is named at start-up", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-privacy-"));
  try {
    const yaml = (policy: string) =>
      writeFile(join(dir, "sluice.yaml"), `pii_secret: from-yaml\npii_policy:\n${policy}`);
    await yaml('  "*":\n    properties.phone: mask\n  snowplow:\n    uid: hash\n    ip: keep\n');
    const settings = doorSettings(loadConfig({ env: {}, overrides: { data_dir: dir } }));
    assert.equal(settings.secret, "from-yaml");
    assert.deepEqual(settings.policy, {
      "*": { "properties.phone": "mask" },
      snowplow: { user_id: "hash", ip: "keep" },
    });
    const snowplow = event({ source: "snowplow", user_id: "babbage", ip: "203.0.113.77" });
    doorPolicy(new PolicyCell(settings).handle).forSource("snowplow").apply?.(snowplow);
    assert.equal(snowplow.user_id, piiToken("from-yaml", "babbage"));
    assert.equal(snowplow.ip, "203.0.113.77");
    await yaml("  shop:\n    traits.email: shred\n");
    assert.throws(
      () => doorSettings(loadConfig({ env: {}, overrides: { data_dir: dir } })),
      /pii_policy\.shop: the action for traits\.email must be one of hash, mask, truncate_ip, drop, keep/,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("only admins may read the raw zone", () => {
  assert.deepEqual(queryAccess("admin"), {});
  for (const role of ["viewer", "editor"]) {
    assert.deepEqual(queryAccess(role), { restriction: { hiddenTables: ["events_raw"] } });
  }
});

describe("the collector with a policy", () => {
  function identify(settingsPolicy: PolicyCell | undefined): PreparedRequest {
    const request: RequestToPrepare = {
      method: "POST",
      path: "/v1/identify",
      query: "",
      authorization: `Basic ${Buffer.from("key:").toString("base64")}`,
      contentEncoding: undefined,
      contentType: "application/json",
      userAgent: undefined,
      cookie: undefined,
      anonymous: false,
      body: Buffer.from(JSON.stringify({ userId: "u1", traits: { email: "ada@example.com" } })),
      remoteAddress: "203.0.113.77",
      receivedAtMs: Date.now(),
    };
    return prepare(request, {
      writeKeys: new Map([["key", "web"]]),
      limits: DEFAULT_LIMITS,
      enrichment: { userAgent: false, geoipDatabase: "" },
      privacy: settingsPolicy?.handle,
      dedupeSeeds: [1, 2, 3],
    });
  }

  test("accepted events are obfuscated before they are encoded; the raw zone gets them as they were", () => {
    const cell = new PolicyCell({ policy: {}, secret: SECRET, rawZone: true });
    const prepared = identify(cell);
    const stored = JSON.parse(prepared.eventLines.toString()) as CanonicalEvent;
    assert.deepEqual(stored.traits, { email: piiToken(SECRET, "ada@example.com") });
    assert.equal(stored.ip, "203.0.113.0");
    const raw = JSON.parse(String(prepared.rawLines)) as CanonicalEvent;
    assert.deepEqual(raw.traits, { email: "ada@example.com" });
    assert.equal(raw.ip, "203.0.113.77");
    assert.equal(
      identify(new PolicyCell({ policy: {}, secret: SECRET, rawZone: false })).rawLines,
      undefined,
    );
  });

  test("the IP address is the policy's to truncate: a policy may keep or hash the whole address", () => {
    const storedIp = (policy: PiiPolicy) =>
      (
        JSON.parse(
          identify(new PolicyCell({ policy, secret: SECRET, rawZone: false })).eventLines.toString(),
        ) as CanonicalEvent
      ).ip;
    assert.equal(storedIp({ "*": { ip: "keep" } }), "203.0.113.77");
    assert.equal(storedIp({ "*": { ip: "hash" } }), piiToken(SECRET, "203.0.113.77"));
    assert.equal(storedIp({}), "203.0.113.0");
    // With no policy at all, the collector still truncates.
    assert.equal((JSON.parse(identify(undefined).eventLines.toString()) as CanonicalEvent).ip, "203.0.113.0");
  });
});
