import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { describe, test } from "node:test";
import { DuckDBInstance } from "@duckdb/node-api";
import type { CanonicalEvent } from "../collect/model.js";
import { type PreparedRequest, prepare, type RequestToPrepare } from "../collect/prepare.js";
import { DEFAULT_LIMITS } from "../collect/request.js";
import { doorPolicy, PolicyCell } from "./door.js";
import { compileRules, maskValue, piiToken } from "./obfuscate.js";
import { DEFAULT_RULES, effectiveRules, PolicyError, parsePolicy } from "./policy.js";
import { compileScrubber } from "./quarantine.js";
import { hmacSql, retentionRules } from "./retention.js";
import { queryAccess } from "./start.js";

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
    // A pixel's query string.
    assert.equal(scrub("e=pv&ip=203.0.113.77&email=ada%40example.com"), `e=pv&ip=203.0.113.0&email=${email}`);
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
    assert.equal(
      identify(new PolicyCell({ policy: {}, secret: SECRET, rawZone: false })).rawLines,
      undefined,
    );
  });
});
