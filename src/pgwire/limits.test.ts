import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import pg from "pg";
import { loadConfig } from "../config/index.js";
import { ADMIN_TOKEN, bearer, spawnCli, startTestServer } from "../server/test-support.js";

const run = promisify(execFile);
const noPsql =
  spawnSync("psql", ["--version"], { stdio: "ignore" }).status === 0
    ? false
    : "needs postgresql-client (apt-get install -y postgresql-client)";

describe("query limits hold on every path: HTTP, the web app and the Postgres port", () => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  let client: pg.Client;
  const notices: string[] = [];

  before(async () => {
    server = await startTestServer({
      query_timeout_ms: 3_000,
      duckdb_memory_limit: "100MB",
      query_max_rows: 5,
      pg_max_rows: 5,
    });
    client = new pg.Client({
      host: "127.0.0.1",
      port: Number(server.pgAddress.split(":").at(-1)),
      user: "admin",
      database: "sluice",
      password: ADMIN_TOKEN,
    });
    client.on("notice", (notice) => notices.push(notice.message ?? ""));
    await client.connect();
  });
  after(async () => {
    await client.end();
    await server.close();
  });

  const http = async (body: unknown) => {
    const response = await fetch(`${server.url}/v1/query`, {
      method: "POST",
      headers: { authorization: bearer(), "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    return { status: response.status, text: await response.text() };
  };

  test("a query past query_timeout_ms is stopped, and says why", async () => {
    const slow = "SELECT sum(i) FROM range(100000000000) t(i)";
    const answer = await http({ sql: slow });
    assert.equal(answer.status, 400);
    assert.match(
      JSON.parse(answer.text).error,
      /statement timeout: it ran longer than 3000 ms \(query_timeout_ms\)/,
    );
    await assert.rejects(client.query(slow), (error: Error & { code?: string }) => {
      assert.equal(error.code, "57014");
      assert.match(error.message, /statement timeout/);
      return true;
    });
    assert.deepEqual((await client.query("SELECT 1 AS one")).rows, [{ one: 1 }]);
    // A download stopped by the timeout is cut short, never passed off as the whole result.
    const download = await fetch(`${server.url}/v1/query`, {
      method: "POST",
      headers: { authorization: bearer(), "content-type": "application/json" },
      body: JSON.stringify({ sql: "SELECT i FROM range(10000000000) t(i)", format: "csv" }),
    });
    assert.equal(download.status, 200);
    const reader = (download.body as ReadableStream<Uint8Array>).getReader();
    await assert.rejects(async () => {
      while (!(await reader.read()).done) {}
    });
  });

  test("a query past the memory limit fails with DuckDB's reason; the next one runs", async () => {
    const hungry = "SELECT list(range) FROM range(30000000)";
    const answer = await http({ sql: hungry });
    assert.equal(answer.status, 400);
    assert.match(JSON.parse(answer.text).error, /^Out of Memory Error/);
    await assert.rejects(client.query(hungry), (error: Error & { code?: string }) => {
      assert.equal(error.code, "53200");
      assert.match(error.message, /^Out of Memory Error/);
      return true;
    });
    assert.equal(JSON.parse((await http({ sql: "SELECT 42 AS n" })).text).rows[0][0], 42);
  });

  test("results past the row limit are cut and flagged; downloads are whole", async () => {
    const eight = "SELECT range AS i FROM range(8)";
    const json = JSON.parse((await http({ sql: eight })).text);
    assert.equal(json.rows.length, 5);
    assert.equal(json.truncated, true);
    assert.equal(JSON.parse((await http({ sql: "SELECT range FROM range(5)" })).text).truncated, undefined);
    const csv = await http({ sql: eight, format: "csv" });
    assert.equal(csv.text, "i\n0\n1\n2\n3\n4\n5\n6\n7\n");
    // The web app's charts keep their own cap of 10,000 rows.
    const preview = await fetch(`${server.url}/v1/charts/preview`, {
      method: "POST",
      headers: { authorization: bearer(), "content-type": "application/json" },
      body: JSON.stringify({ spec: { type: "table", query: { sql: "SELECT range FROM range(10001)" } } }),
    });
    const chart = (await preview.json()) as { rows: unknown[]; truncated?: boolean };
    assert.equal(chart.rows.length, 10_000);
    assert.equal(chart.truncated, true);
    const result = await client.query(eight);
    assert.equal(result.rows.length, 5);
    assert.deepEqual(notices, ["the result was cut to its first 5 rows"]);
  });
});

test("the Postgres port is 127.0.0.1:5433 unless told otherwise; `serve --pg-port N` moves it, psql logs in with the admin token", {
  skip: noPsql,
}, async () => {
  const port = await new Promise<number>((resolve) => {
    const probe = createServer().listen(0, "127.0.0.1", () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
  const dataDir = await mkdtemp(join(tmpdir(), "sluice-pg-port-"));
  // Unless told otherwise: port 5433, on loopback only.
  const defaults = loadConfig({ env: {}, overrides: { data_dir: dataDir } });
  assert.deepEqual([defaults.host, defaults.pg_port], ["127.0.0.1", 5433]);
  const child = spawnCli(["serve", "--data-dir", dataDir, "--port", "0", "--pg-port", String(port)], {
    SLUICE_ADMIN_TOKEN: ADMIN_TOKEN,
    SLUICE_WRITE_KEY: "k",
  });
  try {
    let output = "";
    await new Promise<void>((resolve, reject) => {
      child.stdout?.on("data", (chunk) => {
        output += chunk;
        if (output.includes("PostgreSQL protocol on")) resolve();
      });
      child.on("exit", () => reject(new Error(`serve exited: ${output}`)));
    });
    assert.match(output, new RegExp(`PostgreSQL protocol on 127\\.0\\.0\\.1:${port} `));
    const { stdout } = await run(
      "psql",
      [
        "-h",
        "127.0.0.1",
        "-p",
        String(port),
        "-U",
        "admin",
        "sluice",
        "-At",
        "-c",
        "SELECT 'hello from ' || current_user",
      ],
      { env: { ...process.env, PGPASSWORD: ADMIN_TOKEN, PGCONNECT_TIMEOUT: "10" } },
    );
    assert.equal(stdout.trim(), "hello from admin");
  } finally {
    const exited = new Promise((resolve) => child.on("exit", resolve));
    child.kill("SIGTERM");
    await exited;
    await rm(dataDir, { recursive: true, force: true });
  }
});

test("pg_host opens the PostgreSQL port on its own interface, apart from HTTP's", async () => {
  const server = await startTestServer({ pg_host: "127.0.0.2" });
  try {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:/);
    const [host, port] = [server.pgAddress.split(":")[0], Number(server.pgAddress.split(":").at(-1))];
    assert.equal(host, "127.0.0.2");
    const login = { port, user: "admin", database: "sluice", password: ADMIN_TOKEN };
    const client = new pg.Client({ ...login, host: "127.0.0.2" });
    await client.connect();
    assert.equal((await client.query("SELECT 1 AS one")).rows[0]?.one, 1);
    await client.end();
    await assert.rejects(new pg.Client({ ...login, host: "127.0.0.1" }).connect(), { code: "ECONNREFUSED" });
  } finally {
    await server.close();
  }
});
