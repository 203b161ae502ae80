import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { basicAuth, bearer, eventually, startTestServer } from "../server/test-support.js";
import type { CheckResult, Profile } from "./model.js";

type Server = Awaited<ReturnType<typeof startTestServer>>;

const PROJECT = `
orders:
  checks:
    - { type: missing, column: customer_id, severity: warn }
    - { type: row_count, min: 1 }
events:
  checks:
    - { type: freshness, max_age: 1h }
`;

describe("HTTP: quality profiles and check results", () => {
  let server: Server;
  let projectDir: string;

  const get = async (path: string, token: string | null = bearer()) => {
    const response = await fetch(`${server.url}${path}`, { headers: token ? { authorization: token } : {} });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };
  const post = async (path: string, body: string) => {
    const response = await fetch(`${server.url}${path}`, {
      method: "POST",
      headers: { authorization: bearer(), "content-type": "application/json" },
      body,
    });
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  before(async () => {
    projectDir = await mkdtemp(join(tmpdir(), "sluice-quality-project-"));
    await writeFile(join(projectDir, "quality.yml"), PROJECT);
    server = await startTestServer({ quality_project: projectDir, profile_interval_ms: 0 });
  });
  after(async () => {
    await server.close();
    await rm(projectDir, { recursive: true, force: true });
  });

  // The missing check is a warning: an error-severity failure would reject the upload (write-audit-publish).
  test("an upload is profiled and checked by the server, and the results are searchable", async () => {
    const form = new FormData();
    form.append("file", new Blob(["id,customer_id\n1,10\n2,\n3,12\n"]), "orders.csv");
    const upload = await fetch(`${server.url}/v1/tables/orders/upload`, {
      method: "POST",
      headers: { authorization: bearer() },
      body: form,
    });
    assert.equal(upload.status, 200);
    let results: CheckResult[] = [];
    await eventually(async () => {
      results = (await get("/v1/quality/checks?table=orders")).body.results as CheckResult[];
      const profiled = (await get("/v1/quality/profiles/orders")).body.latest as Profile[] | undefined;
      return results.length === 2 && (profiled?.length ?? 0) > 0;
    });
    // The upload's audit checked the rows before its commit: the server does not check them again.
    await new Promise((resolve) => setTimeout(resolve, 500));
    results = (await get("/v1/quality/checks?table=orders")).body.results as CheckResult[];
    assert.deepEqual(
      results.map((result) => result.trigger),
      ["audit", "audit"],
    );
    const missing = results.find((result) => result.check === "missing(customer_id)");
    assert.equal(missing?.status, "fail");
    assert.equal(missing.trigger, "audit");
    assert.match(missing.message, /^1 of 3 rows/);

    const byName = (await get("/v1/quality/checks?check=ROW_COUNT")).body.results as CheckResult[];
    assert.deepEqual(
      byName.map((result) => [result.table, result.check, result.status]),
      [["orders", "row_count", "pass"]],
    );
    const failed = (await get("/v1/quality/checks?status=fail")).body.results as CheckResult[];
    assert.deepEqual(
      failed.map((result) => result.check),
      ["missing(customer_id)"],
    );

    const profiles = (await get("/v1/quality/profiles/orders")).body;
    const [latest] = profiles.latest as Profile[];
    assert.equal(latest?.rows, 3);
    assert.equal(latest.columns.find((column) => column.name === "customer_id")?.nulls, 1);
    assert.equal((profiles.history as Profile[]).length, 1);
  });

  test("events are profiled per partition as they are loaded", async () => {
    const track = await fetch(`${server.url}/v1/track`, {
      method: "POST",
      headers: { authorization: basicAuth(), "content-type": "application/json" },
      body: JSON.stringify({ userId: "u1", event: "Signed Up", messageId: "quality-1" }),
    });
    assert.equal(track.status, 200);
    const today = new Date().toISOString().slice(0, 10);
    await eventually(async () => {
      const { body } = await get("/v1/quality/profiles/events");
      return (body.latest as Profile[]).some((profile) => profile.partition === today && profile.rows === 1);
    });
    const all = (await get("/v1/quality/profiles")).body.profiles as Profile[];
    assert.deepEqual(all.map((profile) => profile.table).sort(), ["events", "orders"]);
  });

  test("checks run on request; bad requests get a 4xx with a reason", async () => {
    const run = await post("/v1/quality/checks/run", JSON.stringify({ table: "orders" }));
    assert.equal(run.status, 200);
    assert.equal(run.body.blocking, false, "only a warning fails");
    const latest = (await get("/v1/quality/checks/latest?table=orders")).body;
    assert.equal(
      (latest.results as CheckResult[]).find((result) => result.status === "fail")?.trigger,
      "api",
    );
    assert.deepEqual(
      (latest.openAlerts as { check: string }[]).map((alert) => alert.check),
      ["missing(customer_id)"],
    );

    assert.deepEqual(await post("/v1/quality/checks/run", JSON.stringify({ table: "nope" })), {
      status: 404,
      body: { error: `no checks for table nope in ${projectDir}` },
    });
    const profiled = await post("/v1/quality/profiles/orders", "");
    assert.equal(profiled.status, 200);
    assert.deepEqual(
      (profiled.body.profiles as Profile[]).map((profile) => profile.rows),
      [3],
    );
    assert.equal((await post("/v1/quality/profiles/orders", '{"partitions": "x"}')).status, 400);
    assert.equal((await post("/v1/quality/checks/run", "{not json")).status, 400);
    assert.deepEqual(await get("/v1/quality/profiles/nope"), {
      status: 404,
      body: { error: "no table nope in the lake" },
    });
    assert.equal((await get("/v1/quality/checks?status=bogus")).status, 400);
    assert.equal((await get("/v1/quality/checks", null)).status, 401);
  });

  test("a malformed check file is reported by health and the API, and the server keeps running", async () => {
    await writeFile(join(projectDir, "quality.yml"), "orders:\n  - { type: missing }\n");
    const expected = "quality.yml: orders check 1 (missing): column is required";
    assert.deepEqual(await post("/v1/quality/checks/run", "{}"), { status: 400, body: { error: expected } });
    await eventually(async () => {
      const health = (await get("/healthz", null)).body;
      return (health.quality as { lastError: string | null }).lastError === expected;
    });
    await writeFile(join(projectDir, "quality.yml"), PROJECT);
    assert.equal((await post("/v1/quality/checks/run", "{}")).status, 200);
  });
});
