/**
 * Event schemas end to end: registered over HTTP and with `sluice schemas`, checked in the
 * collector (main thread and workers alike), failing events quarantined with the schema's reason.
 */
import assert from "node:assert/strict";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  basicAuth,
  bearer,
  eventually,
  query,
  runCli,
  startTestServer,
  WRITE_KEY,
} from "../server/test-support.js";

type Server = Awaited<ReturnType<typeof startTestServer>>;

const ORDER_SCHEMA = {
  type: "object",
  properties: {
    revenue: { type: "number", minimum: 0 },
    currency: { type: "string", pattern: "^[A-Z]{3}$" },
  },
  required: ["revenue", "currency"],
};
const CHECKOUT_SCHEMA = {
  $schema: "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#",
  self: { vendor: "com.acme", name: "checkout", format: "jsonschema", version: "1-0-0" },
  type: "object",
  properties: { step: { type: "integer" } },
  required: ["step"],
};

describe("event schemas", () => {
  let server: Server;
  let strict: Server;
  before(async () => {
    // Workers prepare batches of any size here, so the schemas must reach them too.
    server = await startTestServer({ collect_workers: 1 });
    strict = await startTestServer({ strict_sources: "default" });
  });
  after(async () => {
    await server.close();
    await strict.close();
  });

  const put = (target: Server, body: unknown) =>
    fetch(`${target.url}/v1/schemas`, {
      method: "PUT",
      headers: { authorization: bearer(), "content-type": "application/json" },
      body: JSON.stringify(body),
    });
  const send = (target: Server, path: string, body: unknown) =>
    fetch(`${target.url}${path}`, {
      method: "POST",
      headers: { authorization: basicAuth(), "content-type": "application/json" },
      body: JSON.stringify(body),
    });

  test("a track event failing its schema is refused with the schema's reason and quarantined, never stored", async () => {
    assert.equal((await put(server, { event: "Order Completed", schema: ORDER_SCHEMA })).status, 201);
    const single = await send(server, "/v1/track", {
      userId: "schema-user",
      event: "Order Completed",
      properties: { revenue: -5, currency: "euro" },
    });
    assert.equal(single.status, 400);
    const refusal = (await single.json()) as { error: string; field: string };
    assert.equal(refusal.field, "properties.revenue");
    assert.equal(
      refusal.error,
      'Event "Order Completed" does not match its schema Order Completed: properties.revenue must be >= 0; properties.currency must match pattern "^[A-Z]{3}$".',
    );

    const batch = await send(server, "/v1/batch", {
      batch: [
        {
          type: "track",
          userId: "schema-user",
          event: "Order Completed",
          properties: { revenue: 10, currency: "EUR" },
        },
        { type: "track", userId: "schema-user", event: "Order Completed", properties: { currency: "EUR" } },
        { type: "track", userId: "schema-user", event: "Unregistered", properties: { anything: true } },
      ],
    });
    const answer = (await batch.json()) as {
      accepted: number;
      rejected: number;
      errors: { index: number; field: string }[];
    };
    assert.deepEqual([answer.accepted, answer.rejected], [2, 1]);
    assert.deepEqual(
      answer.errors.map((error) => [error.index, error.field]),
      [[1, "batch[1].properties"]],
    );

    await eventually(async () => {
      const stored = await query(server.url, "SELECT count(*) FROM events WHERE user_id = 'schema-user'");
      const quarantined = await query(
        server.url,
        "SELECT reason FROM events_rejected WHERE reason LIKE '%does not match its schema Order Completed%' ORDER BY reason",
      );
      return (
        stored.rows[0]?.[0] === 2 &&
        quarantined.rows.map((row) => row[0]).join("\n") ===
          [
            "Event \"Order Completed\" does not match its schema Order Completed: properties must have required property 'revenue'.",
            refusal.error,
          ].join("\n")
      );
    });
  });

  test("a Snowplow self-describing event is checked against the schema of its iglu URI", async () => {
    const registered = (await (await put(server, { schema: CHECKOUT_SCHEMA })).json()) as {
      schema: { key: string };
    };
    assert.equal(registered.schema.key, "iglu:com.acme/checkout/jsonschema/1-0-0");
    const event = (id: string, data: unknown) => ({
      e: "ue",
      eid: id,
      aid: WRITE_KEY,
      duid: "schema-visitor",
      ue_pr: JSON.stringify({
        schema: "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
        data: { schema: "iglu:com.acme/checkout/jsonschema/1-0-0", data },
      }),
    });
    const response = await send(server, "/com.snowplowanalytics.snowplow/tp2", {
      schema: "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
      data: [event("checkout-good", { step: 2 }), event("checkout-bad", { step: "two" })],
    });
    const answer = (await response.json()) as {
      accepted: number;
      errors: { field: string; reason: string }[];
    };
    assert.equal(answer.accepted, 1);
    assert.equal(answer.errors[0]?.field, "data[1].properties.step");
    assert.match(
      answer.errors[0]?.reason ?? "",
      /iglu:com\.acme\/checkout\/jsonschema\/1-0-0: properties\.step must be integer/,
    );
  });

  test("Snowplow context entities are checked against the schemas of their iglu URIs; Snowplow's own (web_page) need none", async () => {
    const userSchema = {
      $schema: "http://iglucentral.com/schemas/com.snowplowanalytics.self-desc/schema/jsonschema/1-0-0#",
      self: { vendor: "com.acme", name: "user", format: "jsonschema", version: "1-0-0" },
      type: "object",
      properties: { plan: { type: "string", enum: ["free", "pro"] } },
      required: ["plan"],
    };
    assert.equal((await put(server, { schema: userSchema })).status, 201);
    const contexts = (plan: unknown) =>
      Buffer.from(
        JSON.stringify({
          schema: "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-0",
          data: [
            { schema: "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0", data: { id: "p-1" } },
            { schema: "iglu:com.acme/user/jsonschema/1-0-0", data: { plan } },
          ],
        }),
      ).toString("base64url");
    const response = await send(server, "/com.snowplowanalytics.snowplow/tp2", {
      schema: "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
      data: [
        { e: "pv", eid: "ctx-good", aid: WRITE_KEY, url: "https://shop.example/", cx: contexts("pro") },
        { e: "pv", eid: "ctx-bad", aid: WRITE_KEY, url: "https://shop.example/", cx: contexts("gold") },
      ],
    });
    const answer = (await response.json()) as {
      accepted: number;
      errors: { index: number; field: string; reason: string }[];
    };
    assert.equal(answer.accepted, 1);
    assert.deepEqual(answer.errors, [
      {
        index: 1,
        field: "data[1].cx[1].data.plan",
        reason:
          'Context iglu:com.acme/user/jsonschema/1-0-0 of event "page" does not match its schema: data.plan must be equal to one of the allowed values.',
      },
    ]);
  });

  test("a strict source refuses events without a schema; a schema added with the CLI applies to the running server", async () => {
    const unknown = await send(strict, "/v1/track", { userId: "strict-user", event: "Plan Viewed" });
    assert.equal(unknown.status, 400);
    assert.equal(
      ((await unknown.json()) as { error: string }).error,
      'No schema is registered for event "Plan Viewed", and source default accepts only events with one.',
    );
    const file = join(strict.dataDir, "plan-viewed.json");
    await writeFile(file, JSON.stringify({ type: "object", properties: { plan: { type: "string" } } }));
    const added = await runCli([
      "schemas",
      "add",
      file,
      "--event",
      "Plan Viewed",
      "--data-dir",
      strict.dataDir,
    ]);
    assert.equal(added.code, 0, added.stderr);
    assert.equal(added.stdout, "registered the schema of Plan Viewed\n");
    await eventually(async () => {
      const retry = await send(strict, "/v1/track", {
        userId: "strict-user",
        event: "Plan Viewed",
        properties: { plan: "team" },
      });
      return retry.status === 200;
    });
    const listed = await runCli(["schemas", "list", "--format", "json", "--data-dir", strict.dataDir]);
    assert.deepEqual(
      (JSON.parse(listed.stdout) as { schemas: { key: string }[] }).schemas.map((entry) => entry.key),
      ["Plan Viewed"],
    );
  });

  test("an event is checked against the schema of its own name or URI, whatever its fields claim", async () => {
    assert.equal((await put(strict, { schema: CHECKOUT_SCHEMA })).status, 201);
    const uri = "iglu:com.acme/checkout/jsonschema/1-0-0";
    // Matching another event's schema must not get an unregistered event into a strict source.
    const segment = await send(strict, "/v1/track", {
      userId: "claims-user",
      event: "Coupon Abused",
      properties: { step: 1 },
      context: { snowplow: { schema: uri } },
    });
    assert.equal(segment.status, 400);
    assert.equal(
      ((await segment.json()) as { error: string }).error,
      'No schema is registered for event "Coupon Abused", and source default accepts only events with one.',
    );
    const tp2 = await send(strict, "/com.snowplowanalytics.snowplow/tp2", {
      schema: "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
      data: [{ e: "se", aid: WRITE_KEY, se_ca: "coupon", se_ac: "abuse", schema: uri, step: "1" }],
    });
    const answer = (await tp2.json()) as { accepted: number; errors: { reason: string }[] };
    assert.equal(answer.accepted, 0);
    assert.equal(
      answer.errors[0]?.reason,
      'No schema is registered for event "coupon/abuse", and source default accepts only events with one.',
    );
  });

  test("bad schemas and unknown keys are refused with reasons", async () => {
    const invalid = await put(server, { event: "X", schema: { type: "nonsense" } });
    assert.equal(invalid.status, 400);
    assert.match(((await invalid.json()) as { error: string }).error, /^not a valid JSON Schema: /);
    const unnamed = await put(server, { schema: { type: "object" } });
    assert.equal(unnamed.status, 400);
    assert.match(((await unnamed.json()) as { error: string }).error, /name the event the schema is for/);
    const missing = await fetch(`${server.url}/v1/schemas/${encodeURIComponent("No Such Event")}`, {
      method: "DELETE",
      headers: { authorization: bearer() },
    });
    assert.equal(missing.status, 404);
    const removed = await fetch(`${server.url}/v1/schemas/${encodeURIComponent("Order Completed")}`, {
      method: "DELETE",
      headers: { authorization: bearer() },
    });
    assert.equal(removed.status, 204);
    const cli = await runCli(["schemas", "remove", "Order Completed", "--data-dir", server.dataDir]);
    assert.equal(cli.code, 1);
    assert.equal(cli.stderr, 'sluice: no schema is registered for "Order Completed"\n');
  });
});
