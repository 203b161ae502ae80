import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { basicAuth, bearer, eventually, query, startTestServer } from "./test-support.js";

type Server = Awaited<ReturnType<typeof startTestServer>>;

async function upload(
  server: Server,
  table: string,
  file: { name: string; content: string } | null,
  options: { token?: string | null; query?: string } = {},
) {
  const form = new FormData();
  if (file) form.append("file", new Blob([file.content]), file.name);
  else form.append("note", "no file here");
  const headers: Record<string, string> = {};
  if (options.token !== null) headers.authorization = bearer(options.token);
  const response = await fetch(`${server.url}/v1/tables/${table}/upload${options.query ?? ""}`, {
    method: "POST",
    headers,
    body: form,
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

describe("HTTP: file uploads, load history, tables", () => {
  let server: Server;
  before(async () => {
    server = await startTestServer({ max_upload_bytes: 64 * 1024 });
  });
  after(async () => {
    await server.close();
  });

  test("an uploaded CSV becomes a table that joins with events", async () => {
    const loaded = await upload(server, "customers", {
      name: "customers.csv",
      content: "User ID,Plan\nuser-1,pro\nuser-2,free\n",
    });
    assert.equal(loaded.status, 200, JSON.stringify(loaded.body));
    assert.equal(loaded.body.status, "loaded");
    assert.equal(loaded.body.message, "loaded 2 rows from customers.csv into customers");

    const track = await fetch(`${server.url}/v1/track`, {
      method: "POST",
      headers: { authorization: basicAuth(), "content-type": "application/json" },
      body: JSON.stringify({ userId: "user-1", event: "Order Completed", messageId: "join-1" }),
    });
    assert.equal(track.status, 200);
    await eventually(async () => {
      const result = await query(
        server.url,
        "SELECT c.plan, count(*) FROM events e JOIN customers c ON c.user_id = e.user_id GROUP BY 1",
      );
      return JSON.stringify(result.rows) === JSON.stringify([["pro", 1]]);
    });
  });

  test("the same upload again is a 200 no-op that says so", async () => {
    const again = await upload(server, "customers", {
      name: "customers-again.csv",
      content: "User ID,Plan\nuser-1,pro\nuser-2,free\n",
    });
    assert.equal(again.status, 200);
    assert.equal(again.body.status, "skipped");
    assert.match(String(again.body.message), /is already in table customers/);
  });

  test("replace mode and a named sheet come as query parameters", async () => {
    const replaced = await upload(
      server,
      "customers",
      { name: "all.csv", content: "User ID,Plan\nuser-3,team\n" },
      { query: "?mode=replace" },
    );
    assert.equal(replaced.status, 200, JSON.stringify(replaced.body));
    const result = await query(server.url, "SELECT user_id, plan FROM customers");
    assert.deepEqual(result.rows, [["user-3", "team"]]);
  });

  test("bad input is a 4xx with the reason; nothing is loaded", async () => {
    const good = await upload(server, "scores", { name: "scores.csv", content: "n\n1\n2\n" });
    assert.equal(good.status, 200);
    const rejected = await upload(server, "scores", { name: "scores2.csv", content: "n\n3\nfour\n" });
    assert.equal(rejected.status, 400);
    assert.equal(
      rejected.body.error,
      'scores2.csv rejected: column "n" is INTEGER in table scores, but row 2 has "four", which is not an integer',
    );
    assert.deepEqual((await query(server.url, "SELECT count(*) FROM scores")).rows, [[2]]);

    const cases: [string, Awaited<ReturnType<typeof upload>>, number, RegExp][] = [
      [
        "bad table",
        await upload(server, "Bad-Name", { name: "x.csv", content: "a\n1\n" }),
        400,
        /not a valid table name/,
      ],
      [
        "bad mode",
        await upload(server, "scores", { name: "x.csv", content: "a\n1\n" }, { query: "?mode=merge" }),
        400,
        /mode must be append or replace/,
      ],
      ["no file", await upload(server, "scores", null), 400, /the form has no file/],
      [
        "too large",
        await upload(server, "scores", { name: "big.csv", content: `n\n${"1\n".repeat(40_000)}` }),
        413,
        /big\.csv is larger than max_upload_bytes \(65536 bytes\)/,
      ],
      [
        "events",
        await upload(server, "events", { name: "e.csv", content: "a\n1\n" }),
        400,
        /table events is fed by the collector/,
      ],
    ];
    for (const [what, response, status, message] of cases) {
      assert.equal(response.status, status, what);
      assert.match(String(response.body.error), message, what);
    }
    const raw = await fetch(`${server.url}/v1/tables/scores/upload`, {
      method: "POST",
      headers: { authorization: bearer(), "content-type": "text/csv" },
      body: "n\n5\n",
    });
    assert.equal(raw.status, 415);
  });

  test("without the admin token: 401", async () => {
    const missing = await upload(server, "customers", { name: "c.csv", content: "a\n1\n" }, { token: null });
    assert.equal(missing.status, 401);
    const wrong = await upload(server, "customers", { name: "c.csv", content: "a\n1\n" }, { token: "nope" });
    assert.equal(wrong.status, 401);
    assert.equal((await fetch(`${server.url}/v1/loads`)).status, 401);
    assert.equal((await fetch(`${server.url}/v1/tables`)).status, 401);
  });

  test("GET /v1/loads is the run history; GET /v1/tables shows columns with their original headers", async () => {
    const response = await fetch(`${server.url}/v1/loads?table=scores&limit=2`, {
      headers: { authorization: bearer() },
    });
    const { loads } = (await response.json()) as {
      loads: { status: string; file: string; origin: string }[];
    };
    assert.deepEqual(
      loads.map((load) => [load.status, load.file, load.origin]),
      [
        ["failed", "scores2.csv", "upload"],
        ["loaded", "scores.csv", "upload"],
      ],
    );
    const tables = (await (
      await fetch(`${server.url}/v1/tables`, { headers: { authorization: bearer() } })
    ).json()) as { tables: { name: string; columns: { name: string; description: string | null }[] }[] };
    const customers = tables.tables.find((table) => table.name === "customers");
    assert.deepEqual(
      customers?.columns.map((column) => [column.name, column.description]),
      [
        ["user_id", "User ID"],
        ["plan", "Plan"],
      ],
    );
    assert.ok(tables.tables.some((table) => table.name === "events"));
  });
});
