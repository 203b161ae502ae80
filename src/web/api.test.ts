/**
 * The web app's HTTP API on a real server: signing in, roles and refusals, saved charts,
 * dashboards with URL filters and their cache, the explorer, funnels and retention, and logging
 * in on the PostgreSQL port with an account's password or API token.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { startTestServer } from "../server/test-support.js";
import { caller, type Json, sendEvents, shopEvents, type TestServer, userWithRole } from "./test-support.js";

describe("web app API", () => {
  let server: TestServer;
  const admin = () => caller(server);
  before(async () => {
    server = await startTestServer();
    await sendEvents(server, shopEvents());
  });
  after(async () => {
    await server.close();
  });

  test("the first start's one-time link signs the admin in once, with an HttpOnly SameSite=Lax cookie", async () => {
    const first = server.sluice.accounts.firstStartLink();
    assert.ok(first);
    const link = `${server.url}/login/${first.linkToken}`;
    // Opening the link (as a chat app's preview would) shows a button; it does not use the link up.
    for (let preview = 0; preview < 2; preview++) {
      const page = await fetch(link, { redirect: "manual" });
      assert.equal(page.status, 200);
      assert.match(await page.text(), /<form method="post"><button[^>]*>Continue as admin<\/button>/);
    }
    const elsewhere = await fetch(link, {
      method: "POST",
      headers: { origin: "https://evil.example" },
      redirect: "manual",
    });
    assert.deepEqual(
      [elsewhere.status, (await elsewhere.json()).error],
      [403, "sign in from Sluice's own page"],
    );
    const response = await fetch(link, {
      method: "POST",
      headers: { origin: server.url },
      redirect: "manual",
    });
    assert.equal(response.status, 303);
    assert.equal(response.headers.get("location"), "/settings?welcome=1", "no password yet: choose one");
    assert.match(
      String(response.headers.get("set-cookie")),
      /^sluice_session=[^;]+; Max-Age=\d+; Path=\/; HttpOnly; SameSite=Lax$/,
    );
    const again = await fetch(link, { method: "POST", redirect: "manual" });
    assert.equal(
      again.headers.get("location"),
      `/signin?error=${encodeURIComponent("this login link was already used; ask an admin for a new one")}`,
    );
    assert.equal(again.headers.get("set-cookie"), null);

    const cookie = String(response.headers.get("set-cookie")).split(";")[0] as string;
    const me = await caller(server, { cookie })("GET", "/v1/me");
    assert.deepEqual(
      [me.status, me.body.role, me.body.user.username, me.body.via],
      [200, "admin", "admin", "session"],
    );
    const noCsrf = await caller(server, { cookie, csrf: false })("PUT", "/v1/me/password", {
      password: "admin password",
    });
    assert.equal(noCsrf.status, 403);
    assert.match(noCsrf.body.error, /x-sluice-csrf: 1 header/);
    const short = await caller(server, { cookie })("PUT", "/v1/me/password", { password: "short" });
    assert.deepEqual([short.status, short.body.error], [400, "a password needs at least 8 characters"]);
    assert.equal(
      (await caller(server, { cookie })("PUT", "/v1/me/password", { password: "admin password" })).status,
      200,
    );

    const wrong = await caller(server, {})("POST", "/v1/session", {
      username: "admin",
      password: "nope nope",
    });
    assert.deepEqual([wrong.status, wrong.body.error], [401, "wrong user name or password"]);
    const signedIn = await caller(server, {})("POST", "/v1/session", {
      username: "admin",
      password: "admin password",
    });
    assert.equal(signedIn.status, 200);
    const second = String(signedIn.headers.get("set-cookie")).split(";")[0] as string;
    assert.equal((await caller(server, { cookie: second })("DELETE", "/v1/session")).status, 200);
    const ended = await caller(server, { cookie: second })("GET", "/v1/me");
    assert.deepEqual(
      [ended.status, ended.body.error],
      [401, "your session has expired or was ended: sign in again"],
    );
  });

  test("viewers query and look, editors also save, admins also manage users; each refusal says why", async () => {
    const viewer = await userWithRole(server, "vera", "viewer");
    const editor = await userWithRole(server, "eddie", "editor");
    const asViewer = caller(server, { token: viewer.token });
    const asEditor = caller(server, { token: editor.token });
    const spec = { type: "bar", query: { sql: "select event, count(*) as n from events group by 1" } };

    const anonymous = await caller(server, {})("GET", "/v1/charts");
    assert.equal(anonymous.status, 401);
    assert.match(anonymous.body.error, /not signed in/);
    assert.equal((await asViewer("POST", "/v1/query", { sql: "select count(*) from events" })).status, 200);
    assert.equal((await asViewer("POST", "/v1/charts/preview", { spec })).status, 200);
    // Charts run as a viewer may, whoever asks: tables by name, never files.
    const fileChart = { type: "table", query: { sql: "select * from read_csv('/etc/passwd')" } };
    const fromFile = await asViewer("POST", "/v1/charts/preview", { spec: fileChart });
    assert.equal(fromFile.status, 403);
    assert.match(fromFile.body.error, /read_csv\(\) reads outside the catalog's tables/);
    const refused = await asViewer("POST", "/v1/charts", { name: "x", spec });
    assert.equal(refused.status, 403);
    assert.equal(
      refused.body.error,
      "this needs the editor role (also create and change charts and dashboards, and load files); you are a viewer",
    );
    const upload = await asViewer("POST", "/v1/tables/things/upload");
    assert.equal(upload.status, 403, "loading files is an editor's");
    assert.match(upload.body.error, /needs the editor role/);
    assert.equal((await asViewer("GET", "/v1/tables")).status, 200);
    assert.equal((await asEditor("POST", "/v1/charts", { name: "Events", spec })).status, 201);
    const users = await asEditor("GET", "/v1/users");
    assert.equal(users.status, 403);
    assert.match(users.body.error, /needs the admin role/);
    assert.equal((await asEditor("POST", "/v1/tokens", { name: "escalate", role: "admin" })).status, 403);

    // An admin demotes the editor: their token loses the role at once.
    const eddie = (await admin()("GET", "/v1/users")).body.users.find(
      (user: { username: string }) => user.username === "eddie",
    );
    assert.equal((await admin()("PATCH", `/v1/users/${eddie.id}`, { role: "viewer" })).status, 200);
    assert.equal((await asEditor("POST", "/v1/charts", { name: "Again", spec })).status, 403);
    const { tokens } = (await admin()("GET", "/v1/tokens")).body;
    const veraToken = tokens.find((token: { username: string }) => token.username === "vera");
    assert.equal((await admin()("DELETE", `/v1/tokens/${veraToken.id}`)).status, 200);
    const revoked = await asViewer("GET", "/v1/charts");
    assert.deepEqual([revoked.status, revoked.body.error], [401, "unknown or revoked API token"]);
    const last = await admin()("PATCH", "/v1/users/1", { role: "viewer" });
    assert.deepEqual(
      [last.status, last.body.error],
      [409, "the last active admin cannot be removed or demoted"],
    );
    const bad = await admin()("POST", "/v1/users", { username: "has space", role: "viewer" });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /"username" must be/);
  });

  test("saved charts: create, read, change, render to SVG, and refuse bad specs", async () => {
    const call = admin();
    const bad = await call("POST", "/v1/charts", {
      name: "Bad",
      spec: { type: "radar", query: { sql: "select 1" } },
    });
    assert.equal(bad.status, 400);
    assert.match(bad.body.error, /field "spec": "type" must be one of/);
    const created = await call("POST", "/v1/charts", {
      name: "Orders by currency",
      spec: {
        type: "pie",
        query: {
          sql: "select properties->>'currency' as currency, count(*) as events from events group by 1 order by 1",
        },
      },
    });
    assert.equal(created.status, 201);
    const { id } = created.body.chart;
    const data = await call("GET", `/v1/charts/${id}/data`);
    assert.deepEqual(data.body.rows, [
      ["EUR", 7],
      ["USD", 3],
    ]);
    const changed = await call("PUT", `/v1/charts/${id}`, { name: "Events by currency" });
    assert.equal(changed.body.chart.name, "Events by currency");
    assert.equal(changed.body.chart.spec.type, "pie");
    const svg = await fetch(`${server.url}/v1/charts/${id}/svg?width=500&height=300`, {
      headers: { authorization: `Bearer ${"test-admin-token"}` },
    });
    assert.equal(svg.headers.get("content-type"), "image/svg+xml");
    const text = await svg.text();
    assert.match(text, /^<svg[^>]+width="500"/);
    assert.match(text, /EUR/);
    assert.match(text, /Events by currency/);
    assert.equal((await call("GET", "/v1/charts/999")).status, 404);
    const sqlError = await call("POST", "/v1/charts/preview", {
      spec: { type: "table", query: { sql: "select nope from events" } },
    });
    assert.equal(sqlError.status, 400);
    assert.match(sqlError.body.error, /nope/);
  });

  test("dashboards apply URL filters to every panel, cache results, and recompute when data lands", async () => {
    const call = admin();
    const events = await call("POST", "/v1/charts", {
      name: "Events",
      spec: { type: "number", query: { sql: "select count(*) as events from events" } },
    });
    const buyers = await call("POST", "/v1/charts", {
      name: "Funnel",
      spec: {
        type: "funnel",
        query: { funnel: { steps: ["Product Viewed", "Order Completed"], range: { last: 7 } } },
      },
    });
    const created = await call("POST", "/v1/dashboards", {
      name: "Shop",
      panels: [
        { chartId: events.body.chart.id, x: 0, y: 0, w: 4, h: 3 },
        { chartId: buyers.body.chart.id, x: 4, y: 0, w: 8, h: 3 },
      ],
      filters: [{ name: "currency", label: "Currency" }],
    });
    assert.equal(created.status, 201);
    const id = created.body.dashboard.id;
    const values = (body: Json) => body.panels.map((panel: { rows: unknown[][] }) => panel.rows);

    const all = await call("GET", `/v1/dashboards/${id}/data`);
    assert.deepEqual(values(all.body), [
      [[10]],
      [
        [1, "Product Viewed", 4],
        [2, "Order Completed", 1],
      ],
    ]);
    const eur = await call("GET", `/v1/dashboards/${id}/data?currency=EUR`);
    assert.deepEqual(eur.body.filters, { currency: "EUR" });
    assert.deepEqual(values(eur.body), [
      [[7]],
      [
        [1, "Product Viewed", 2],
        [2, "Order Completed", 1],
      ],
    ]);
    const yesterday = new Date(Date.now() - 86_400_000).toISOString().slice(0, 10);
    const ranged = await call(
      "GET",
      `/v1/dashboards/${id}/data?from=${yesterday}&to=${yesterday}&currency=USD,EUR`,
    );
    assert.deepEqual(values(ranged.body)[0], [[10]]);
    const before = await call("GET", `/v1/dashboards/${id}/data?from=2020-01-01&to=2020-01-31`);
    assert.deepEqual(values(before.body)[0], [[0]], "a date range before the data has nothing");

    const again = await call("GET", `/v1/dashboards/${id}/data?currency=EUR`);
    assert.deepEqual(
      again.body.panels.map((panel: { cached: boolean }) => panel.cached),
      [true, true],
    );
    await sendEvents(server, [
      {
        type: "track",
        event: "Newsletter Signup",
        userId: "u9",
        messageId: "late-1",
        properties: { currency: "EUR" },
      },
    ]);
    const fresh = await call("GET", `/v1/dashboards/${id}/data?currency=EUR`);
    assert.deepEqual(
      fresh.body.panels.map((panel: { cached: boolean }) => panel.cached),
      [false, false],
    );
    assert.deepEqual(values(fresh.body)[0], [[8]]);

    const badFilter = await call("GET", `/v1/dashboards/${id}/data?from=yesterday`);
    assert.equal(badFilter.status, 200);
    assert.match(badFilter.body.panels[0].error, /"from" must be a date like 2026-11-25/);
    const inUse = await call("DELETE", `/v1/charts/${events.body.chart.id}`);
    assert.deepEqual(
      [inUse.status, inUse.body.error],
      [409, `chart ${events.body.chart.id} is on dashboard "Shop": remove it there first`],
    );
    const outside = await call("PUT", `/v1/dashboards/${id}`, {
      panels: [{ chartId: events.body.chart.id, x: 10, y: 0, w: 4, h: 3 }],
    });
    assert.equal(outside.status, 400);
    assert.match(outside.body.error, /within 12 columns/);
    const moved = await call("PUT", `/v1/dashboards/${id}`, {
      panels: [{ chartId: events.body.chart.id, x: 8, y: 2, w: 4, h: 5 }],
      refreshSeconds: 30,
    });
    assert.deepEqual(moved.body.dashboard.panels, [
      { chartId: events.body.chart.id, x: 8, y: 2, w: 4, h: 5 },
    ]);
    assert.equal(moved.body.dashboard.refreshSeconds, 30);
    const page = await fetch(`${server.url}/dashboards/${id}?currency=EUR`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<script type="module" src="\/assets\/main.js">/);
  });

  test("explorer, funnels and retention answer from the events", async () => {
    const call = admin();
    const preview = async (query: Record<string, unknown>) => {
      const response = await call("POST", "/v1/charts/preview", { spec: { type: "table", query } });
      assert.equal(response.status, 200, JSON.stringify(response.body));
      return response.body;
    };
    const byCurrency = await preview({
      explore: {
        events: ["Product Viewed"],
        measure: "users",
        breakdown: "currency",
        granularity: "total",
        range: { last: 7 },
      },
    });
    assert.deepEqual(
      byCurrency.columns.map((column: { name: string }) => column.name),
      ["currency", "users"],
    );
    assert.deepEqual(byCurrency.rows, [
      ["EUR", 2],
      ["USD", 2],
    ]);
    const byProduct = await preview({
      explore: {
        events: ["Product Viewed", "Order Completed"],
        breakdown: "product",
        granularity: "total",
        range: { last: 7 },
      },
    });
    assert.deepEqual(
      byProduct.rows,
      [
        ["(none)", 1],
        ["Tee", 4],
      ],
      "events without the property are (none), not Other",
    );
    const revenue = await preview({
      explore: { events: ["Order Completed"], measure: "sum", property: "revenue", granularity: "total" },
    });
    assert.deepEqual(revenue.rows, [[42.5]]);
    const funnel = await preview({
      funnel: {
        steps: ["Product Viewed", "Product Added", "Checkout Started", "Order Completed"],
        windowHours: 1,
        range: { last: 7 },
      },
    });
    assert.deepEqual(
      funnel.rows.map((row: unknown[]) => row[2]),
      [4, 3, 2, 1],
    );
    const tooShort = await preview({
      funnel: { steps: ["Product Viewed", "Product Added"], windowHours: 0.05, range: { last: 7 } },
    });
    assert.deepEqual(
      tooShort.rows.map((row: unknown[]) => row[2]),
      [4, 0],
      "steps 5 minutes apart miss a 3-minute window",
    );
    const split = await preview({
      funnel: { steps: ["Product Viewed", "Product Added"], breakdown: "currency", range: { last: 7 } },
    });
    assert.deepEqual(split.rows, [
      [1, "Product Viewed", "EUR", 2],
      [1, "Product Viewed", "USD", 2],
      [2, "Product Added", "EUR", 2],
      [2, "Product Added", "USD", 1],
    ]);
    const retention = await preview({
      retention: { cohortEvent: "Product Viewed", granularity: "day", periods: 3 },
    });
    assert.deepEqual(
      retention.columns.map((column: { name: string }) => column.name),
      ["cohort", "cohort_size", "period", "users", "percent"],
    );
    const firstDay = retention.rows.find((row: unknown[]) => row[2] === 0);
    assert.equal(firstDay[4], 100, "everyone is active in their first period");
    const invalid = await call("POST", "/v1/charts/preview", {
      spec: { type: "table", query: { funnel: { steps: ["only one"] } } },
    });
    assert.deepEqual([invalid.status, invalid.body.error], [400, "a funnel needs 2 to 10 steps"]);
    const injection = await preview({
      explore: { events: ["x'); drop table events; --"], granularity: "total" },
    });
    assert.deepEqual(injection.rows, [[0]], "names are values, never SQL");
  });

  test("a signed-in user's queries are kept in their history, errors included", async () => {
    const { cookie } = await userWithRole(server, "hannah", "viewer");
    const call = caller(server, { cookie });
    assert.equal((await call("POST", "/v1/query", { sql: "select 42 as answer" })).status, 200);
    const failed = await call("POST", "/v1/query", { sql: "select * form events" });
    assert.equal(failed.status, 400);
    assert.match(failed.body.error, /LINE 1: select \* form events/, "the error shows where");
    const { history } = (await call("GET", "/v1/history")).body;
    assert.deepEqual(
      history.map((entry: { sql: string; ok: boolean; rows: number | null }) => [
        entry.sql,
        entry.ok,
        entry.rows,
      ]),
      [
        ["select * form events", false, null],
        ["select 42 as answer", true, 1],
      ],
    );
  });

  test("the catalog lists tables with row counts and freshness; properties and values complete", async () => {
    const call = admin();
    const { tables } = (await call("GET", "/v1/catalog")).body;
    const events = tables.find((table: { name: string }) => table.name === "events");
    assert.ok(events.rows >= 10);
    assert.ok(events.files >= 1);
    assert.ok(Date.parse(events.freshness) > Date.now() - 3 * 86_400_000);
    assert.ok(
      events.columns.some(
        (column: { name: string; type: string }) => column.name === "ts" && column.type === "TIMESTAMPTZ",
      ),
    );
    const described = Object.fromEntries(
      events.columns.map((column: { name: string; description: string }) => [
        column.name,
        column.description,
      ]),
    );
    assert.match(described.event, /^What happened/, "Sluice's own columns are described for people");
    assert.match(described.dt, /^Day of the event/, "the partition column is listed too");
    const properties = (await call("GET", "/v1/properties")).body;
    assert.ok(properties.properties.includes("currency"));
    assert.ok(properties.columns.includes("event"));
    assert.equal(properties.events[0].event, "Product Viewed");
    const values = (await call("GET", "/v1/properties/currency/values?q=e")).body.values;
    assert.deepEqual(
      values.map((one: { value: string }) => one.value),
      ["EUR"],
    );
    const live = (await call("GET", "/v1/live/events?limit=5")).body;
    assert.ok(live.rows.length >= 1);
  });

  test("the PostgreSQL port accepts an account's name and password, and API tokens", async () => {
    const { token } = await userWithRole(server, "pat", "viewer");
    const pat = server.sluice.accounts.userByName("pat");
    assert.ok(pat);
    server.sluice.accounts.setPassword(pat.id, "pat's password");
    const port = Number(server.pgAddress.split(":").at(-1));
    const connect = async (user: string, password: string) => {
      const client = new pg.Client({ host: "127.0.0.1", port, user, password, database: "sluice" });
      await client.connect();
      try {
        return (await client.query("select count(*)::int as n from events")).rows[0].n as number;
      } finally {
        await client.end();
      }
    };
    assert.ok((await connect("pat", "pat's password")) >= 10);
    assert.ok((await connect("anyone", token)) >= 10, "a token logs in under any name");
    assert.ok((await connect("pat", token)) >= 10, "an account's name takes a token too");
    await assert.rejects(connect("pat", "wrong password"), /password authentication failed for user "pat"/);
  });
});
