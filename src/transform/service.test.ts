import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { setTimeout as sleep } from "node:timers/promises";
import Fastify, { type FastifyInstance } from "fastify";
import { loadConfig } from "../config/index.js";
import { transformRoutes } from "./routes.js";
import { TransformService } from "./service.js";
import { appendEvents, copyShop, type Lab, openLab } from "./test-support.js";

describe("transformations in the server", () => {
  let lab: Lab;
  let app: FastifyInstance;
  let service: TransformService;
  const auth = { authorization: "Bearer secret" };

  before(async () => {
    lab = await openLab();
    const config = loadConfig({
      env: {},
      overrides: {
        data_dir: lab.dataDir,
        transform_project: copyShop(lab),
        transform_interval_ms: 100,
        // croner's seconds field: every second, once the service starts.
        transform_schedules: { "* * * * * *": "+stg_customers" },
      },
    });
    service = TransformService.for({ config, catalog: lab.catalog });
    app = Fastify();
    app.removeAllContentTypeParsers();
    app.addContentTypeParser("*", { parseAs: "buffer" }, (_request, body, done) => done(null, body));
    await app.register(transformRoutes, {
      sluice: { config, catalog: lab.catalog },
      authorized: (request) => request.headers.authorization === auth.authorization,
      unauthorized: (reply) => reply.code(401).send({ error: "missing or wrong admin token" }),
    });
  });
  after(async () => {
    await app.close();
    await service.stop();
    await lab.close();
  });

  test("POST /v1/models/build builds a selection and answers with each node's run", async () => {
    const built = await app.inject({
      method: "POST",
      url: "/v1/models/build",
      headers: auth,
      payload: '{"select": "+stg_customers"}',
    });
    assert.equal(built.statusCode, 200);
    assert.deepEqual(
      built.json().runs.map((run: { node: string; status: string }) => [run.node, run.status]),
      [
        ["raw_customers", "success"],
        ["stg_customers", "success"],
      ],
    );
    const failing = await app.inject({
      method: "POST",
      url: "/v1/models/build",
      headers: auth,
      payload: { select: ["+orders"] },
    });
    assert.equal(failing.statusCode, 422, "a build whose tests fail is not a success");
    const bad = await app.inject({
      method: "POST",
      url: "/v1/models/build",
      headers: auth,
      payload: '{"select": "nothing_like_this"}',
    });
    assert.equal(bad.statusCode, 400);
    assert.match(bad.json().error, /no model or seed matches "nothing_like_this"/);
  });

  test("GET /v1/models is the lineage and descriptions; /v1/models/runs the history; both need the token", async () => {
    const docs = await app.inject({ method: "GET", url: "/v1/models", headers: auth });
    assert.equal(docs.statusCode, 200);
    const stg = docs.json().nodes.find((node: { name: string }) => node.name === "stg_customers");
    assert.equal(stg.description, "One row per customer.");
    assert.equal(stg.lastRun.status, "success");
    const runs = await app.inject({
      method: "GET",
      url: "/v1/models/runs?model=orders&limit=5",
      headers: auth,
    });
    assert.equal(runs.json().runs[0].status, "failed_tests");
    assert.equal((await app.inject({ method: "GET", url: "/v1/models" })).statusCode, 401);
    assert.equal(
      (await app.inject({ method: "GET", url: "/v1/models/runs?limit=0", headers: auth })).statusCode,
      400,
    );
  });

  test("new data in a source table rebuilds what is downstream of it", async () => {
    service.start();
    await sleep(150);
    await appendEvents(lab, [
      ["e1", "page", "u1", "2026-01-01 10:00:00+00"],
      ["e2", "signup", "u1", "2026-01-01 10:05:00+00"],
    ]);
    const deadline = Date.now() + 30_000;
    while (
      Date.now() < deadline &&
      !(await lab.catalog.tables()).some((table) => table.name === "daily_event_counts")
    ) {
      await sleep(50);
    }
    assert.deepEqual(await lab.rows("SELECT day, event, events FROM daily_event_counts ORDER BY event"), [
      ["2026-01-01", "page", 1],
      ["2026-01-01", "signup", 1],
    ]);
    const [latest] = await lab.store.runs({ node: "daily_event_counts", limit: 1 });
    assert.equal(latest?.trigger, "on_load");
    assert.equal(service.lastError(), null);
  });

  test("cron schedules build their selection", async () => {
    // A scheduled build records raw_customers before stg_customers: wait for the model itself.
    const deadline = Date.now() + 30_000;
    let scheduled: string[] = [];
    while (Date.now() < deadline && !scheduled.includes("stg_customers")) {
      const runs = await lab.store.runs({ limit: 50 });
      scheduled = runs.filter((run) => run.trigger === "schedule").map((run) => run.node);
      await sleep(100);
    }
    assert.ok(scheduled.includes("stg_customers"), "a scheduled build of +stg_customers ran");
    assert.ok(scheduled.every((node) => node === "stg_customers" || node === "raw_customers"));
  });
});
