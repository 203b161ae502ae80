import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { gzipSync } from "node:zlib";
import { tableFromIPC } from "apache-arrow";
import { ADMIN_TOKEN, basicAuth, bearer, eventually, query, startTestServer } from "./test-support.js";

type Server = Awaited<ReturnType<typeof startTestServer>>;

const track = (id: string, extra: Record<string, unknown> = {}) => ({
  type: "track",
  event: "Order Completed",
  userId: "user-1",
  messageId: id,
  properties: { revenue: 42.5, currency: "EUR" },
  ...extra,
});

async function post(server: Server, path: string, body: unknown, headers: Record<string, string> = {}) {
  const response = await fetch(`${server.url}${path}`, {
    method: "POST",
    headers: { authorization: basicAuth(), "content-type": "application/json", ...headers },
    body: Buffer.isBuffer(body)
      ? new Uint8Array(body)
      : typeof body === "string"
        ? body
        : JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function count(server: Server, where: string): Promise<number> {
  const result = await query(server.url, `SELECT count(*) FROM events WHERE ${where}`);
  return Number(result.rows[0]?.[0]);
}

describe("server end to end", () => {
  let server: Server;
  before(async () => {
    server = await startTestServer({ landing_poll_interval_ms: 100 });
  });
  after(async () => {
    await server.close();
  });

  test("GET /healthz is 200 with the parts' status", async () => {
    const response = await fetch(`${server.url}/healthz`);
    assert.equal(response.status, 200);
    const body = (await response.json()) as {
      ok: boolean;
      bus: { ok: boolean };
      collector: { ok: boolean; requests: number };
    };
    assert.equal(body.ok, true);
    assert.equal(body.bus.ok, true);
    assert.equal(body.collector.ok, true);
    assert.equal(typeof body.collector.requests, "number");
  });

  test("an acknowledged track event becomes a queryable row with the canonical columns", async () => {
    const sentAt = new Date(Date.now() + 60_000).toISOString(); // client clock one minute fast
    const timestamp = new Date(Date.now() + 50_000).toISOString(); // event 10 s before sending
    const ack = await post(
      server,
      "/v1/track",
      track("e2e-1", { sentAt, timestamp, context: { ip: "203.0.113.77" } }),
    );
    assert.equal(ack.status, 200);
    await eventually(async () => (await count(server, "event_id = 'e2e-1'")) === 1);
    const result = await query(
      server.url,
      "SELECT event_type, event, user_id, source, ip, properties->>'currency', epoch_ms(received_at) - epoch_ms(ts), dt = CAST(ts AS DATE) FROM events WHERE event_id = 'e2e-1'",
    );
    const [type, event, user, source, ip, currency, skewMs, dtMatches] = result.rows[0] as unknown[];
    assert.deepEqual(
      [type, event, user, source, ip, currency, dtMatches],
      ["track", "Order Completed", "user-1", "default", "203.0.113.0", "EUR", true],
    );
    assert.ok(
      Math.abs(Number(skewMs) - 10_000) < 50,
      `clock skew corrected: ts is 10 s before received_at (${skewMs})`,
    );
  });

  test("analytics.js short paths reach the collector", async () => {
    const ack = await post(server, "/v1/t", track("short-1"));
    assert.equal(ack.status, 200);
    await eventually(async () => (await count(server, "event_id = 'short-1'")) === 1);
  });

  test("gzip bodies are accepted; a resent messageId is acknowledged and stored once", async () => {
    const body = gzipSync(JSON.stringify({ batch: [track("dup-1"), track("dup-2")] }));
    const first = await post(server, "/v1/batch", body, { "content-encoding": "gzip" });
    assert.equal(first.status, 200);
    const again = await post(server, "/v1/batch", { batch: [track("dup-1")] });
    assert.equal(again.status, 200);
    await eventually(async () => (await count(server, "event_id IN ('dup-1', 'dup-2')")) === 2);
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(await count(server, "event_id = 'dup-1'"), 1);
  });

  test("a batch with invalid events accepts the valid ones and quarantines the rest with reasons", async () => {
    const ack = await post(server, "/v1/batch", {
      batch: [
        track("mixed-ok"),
        { type: "track", userId: "u", messageId: "mixed-bad" },
        { type: "track", event: "x" },
      ],
    });
    assert.equal(ack.status, 200);
    assert.equal(ack.body.accepted, 1);
    assert.equal(ack.body.rejected, 2);
    await eventually(async () => {
      const rejected = await query(
        server.url,
        "SELECT reason, payload FROM events_rejected WHERE payload LIKE '%mixed-bad%'",
      );
      return rejected.rows.length === 1 && /event/.test(String(rejected.rows[0]?.[0]));
    });
    // events and events_rejected are loaded by separate loaders: either can land first.
    await eventually(async () => (await count(server, "event_id = 'mixed-ok'")) === 1);
  });

  test("bad input gets a 4xx with a reason and never wedges the server", async () => {
    const invalidJson = await post(server, "/v1/track", "{not json");
    assert.equal(invalidJson.status, 400);
    assert.match(String(invalidJson.body.error), /JSON/i);
    const noKey = await fetch(`${server.url}/v1/track`, {
      method: "POST",
      body: JSON.stringify(track("nokey")),
    });
    assert.equal(noKey.status, 401);
    const wrongKey = await post(server, "/v1/track", track("wrong"), { authorization: basicAuth("nope") });
    assert.equal(wrongKey.status, 401);
    const huge = await post(server, "/v1/track", track("huge", { properties: { blob: "x".repeat(40_000) } }));
    assert.equal(huge.status >= 400 && huge.status < 500, true);
    const garbageGzip = await post(server, "/v1/batch", Buffer.from("not gzip at all"), {
      "content-encoding": "gzip",
    });
    assert.equal(garbageGzip.status, 400);
    const health = await fetch(`${server.url}/healthz`);
    assert.equal(health.status, 200);
  });

  test("POST /v1/query needs the admin token, reads only the lake, and answers SQL errors with 400", async () => {
    const noToken = await fetch(`${server.url}/v1/query`, {
      method: "POST",
      body: JSON.stringify({ sql: "select 1" }),
    });
    assert.equal(noToken.status, 401);
    const wrongToken = await fetch(`${server.url}/v1/query`, {
      method: "POST",
      headers: { authorization: bearer(`${ADMIN_TOKEN}x`) },
      body: JSON.stringify({ sql: "select 1" }),
    });
    assert.equal(wrongToken.status, 401);
    const bad = await fetch(`${server.url}/v1/query`, {
      method: "POST",
      headers: { authorization: bearer() },
      body: JSON.stringify({ sql: "select no_such_column from events" }),
    });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /no_such_column/);
    for (const [sql, reason] of [
      ["select * from read_csv('/etc/passwd')", /Permission Error/],
      ["create table t as select 1", /Only read-only queries/],
    ] as const) {
      const refused = await fetch(`${server.url}/v1/query`, {
        method: "POST",
        headers: { authorization: bearer() },
        body: JSON.stringify({ sql }),
      });
      assert.equal(refused.status, 400, sql);
      assert.match(((await refused.json()) as { error: string }).error, reason);
    }
    const ok = await query(server.url, "select 1 as one, 'a' as letter");
    assert.deepEqual(ok, {
      columns: [
        { name: "one", type: "INTEGER" },
        { name: "letter", type: "VARCHAR" },
      ],
      rows: [[1, "a"]],
    });
  });

  test("GET /v1/stats needs the token unless public, and counts events", async () => {
    const denied = await fetch(`${server.url}/v1/stats`);
    assert.equal(denied.status, 401);
    const stats = await fetch(`${server.url}/v1/stats`, { headers: { authorization: bearer() } });
    assert.equal(stats.status, 200);
    const body = (await stats.json()) as { total: number; topEvents: { event: string; count: number }[] };
    assert.ok(body.total >= 3);
    assert.equal(body.topEvents[0]?.event, "Order Completed");
  });

  test("GET / serves the live page", async () => {
    const response = await fetch(`${server.url}/`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /text\/html/);
    assert.match(await response.text(), /Sluice/);
  });

  test("a file dropped in landing/<table>/ becomes a table that joins with events", async () => {
    const dir = join(server.dataDir, "landing", "customers");
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, "customers.csv"), "User Id,Segment\nuser-1,vip\nuser-2,free\n");
    await eventually(async () => existsSync(join(dir, "_done", "customers.csv")));
    const joined = await query(
      server.url,
      "SELECT c.segment, count(*) > 0 FROM events e JOIN customers c ON c.user_id = e.user_id GROUP BY 1",
    );
    assert.deepEqual(joined.rows, [["vip", true]]);
  });

  test("POST /v1/query streams CSV, past the JSON row limit, when asked", async () => {
    const csv = async (body: unknown, headers: Record<string, string> = {}) => {
      const response = await fetch(`${server.url}/v1/query`, {
        method: "POST",
        headers: { authorization: bearer(), "content-type": "application/json", ...headers },
        body: JSON.stringify(body),
      });
      return {
        status: response.status,
        type: response.headers.get("content-type"),
        text: await response.text(),
      };
    };
    const small = await csv({
      sql: "select 1 as n, 'a,b' as quoted, 'say \"hi\"' as quotes, null as nothing, DATE '2026-11-25' as day",
      format: "csv",
    });
    assert.equal(small.status, 200);
    assert.match(small.type ?? "", /^text\/csv/);
    assert.equal(small.text, 'n,quoted,quotes,nothing,day\n1,"a,b","say ""hi""",,2026-11-25\n');
    const byAccept = await csv({ sql: "select 2 as n" }, { accept: "text/csv" });
    assert.equal(byAccept.text, "n\n2\n");
    // The JSON answer stops at query_max_rows; the CSV download does not.
    const rows = 150_000;
    const large = await csv({ sql: `select range as i from range(${rows})`, format: "csv" });
    const lines = large.text.trimEnd().split("\n");
    assert.equal(lines.length, rows + 1);
    assert.equal(lines.at(-1), String(rows - 1));
    const json = await query(server.url, `select range as i from range(${rows})`);
    assert.equal(json.rows.length, 100_000);
    const bad = await csv({ sql: "select nope", format: "csv" });
    assert.equal(bad.status, 400);
    assert.match(JSON.parse(bad.text).error, /nope/);
    assert.equal((await csv({ sql: "select 1", format: "xml" })).status, 400);
  });

  test("POST /v1/query streams Arrow IPC with the column types kept", async () => {
    const arrow = async (body: unknown, headers: Record<string, string> = {}) =>
      fetch(`${server.url}/v1/query`, {
        method: "POST",
        headers: { authorization: bearer(), "content-type": "application/json", ...headers },
        body: JSON.stringify(body),
      });
    const rows = 150_000;
    const response = await arrow({
      sql: `select range as i, 'row ' || range as label, TIMESTAMPTZ '2026-11-25 00:00:00+00' + to_seconds(range) as at
            from range(${rows})`,
      format: "arrow",
    });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/vnd.apache.arrow.stream");
    const table = tableFromIPC(new Uint8Array(await response.arrayBuffer()));
    assert.equal(table.numRows, rows, "no row limit, as for CSV");
    assert.deepEqual(
      table.schema.fields.map((field) => `${field.name}:${field.type}`),
      ["i:Int64", "label:Utf8", "at:Timestamp<MICROSECOND, UTC>"],
    );
    const last = table.get(rows - 1)?.toJSON();
    assert.deepEqual(last, {
      i: BigInt(rows - 1),
      label: `row ${rows - 1}`,
      at: Date.UTC(2026, 10, 25) + (rows - 1) * 1000,
    });
    const byAccept = await arrow(
      { sql: "select 42 as answer" },
      { accept: "application/vnd.apache.arrow.stream" },
    );
    assert.equal(
      tableFromIPC(new Uint8Array(await byAccept.arrayBuffer()))
        .get(0)
        ?.toJSON().answer,
      42,
    );
    const bad = await arrow({ sql: "select nope", format: "arrow" });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as { error: string }).error, /nope/);
  });
});
