import assert from "node:assert/strict";
import { type ChildProcess, execFileSync } from "node:child_process";
import { rm } from "node:fs/promises";
import { after, describe, test } from "node:test";
import {
  ADMIN_TOKEN,
  basicAuth,
  eventually,
  query,
  runCli,
  spawnCli,
  tempDataDir,
  WRITE_KEY,
} from "./test-support.js";

const ENV = {
  SLUICE_WRITE_KEY: WRITE_KEY,
  SLUICE_ADMIN_TOKEN: ADMIN_TOKEN,
  SLUICE_FLUSH_INTERVAL_MS: "100",
  // The check below reads every stored id back: more than the default 100,000 rows in 2.5 s of ingest.
  SLUICE_QUERY_MAX_ROWS: "10000000",
  // These tests are about what is stored, not about priorities: on a busy test machine a niced
  // lake process may wait long for CPU.
  SLUICE_LAKE_PROCESS_NICE: "0",
};

/** Starts `sluice serve` as its own process and resolves with its URL once it listens. */
async function startServerProcess(dataDir: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawnCli(["serve", "--data-dir", dataDir, "--port", "0", "--pg-port", "0"], ENV);
  let output = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`server did not start: ${output}`)), 60_000);
    child.stdout?.on("data", (chunk) => {
      output += chunk;
      const match = /on (http:\/\/\S+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    });
    child.stderr?.on("data", (chunk) => {
      output += chunk;
    });
    child.on("exit", (code) => reject(new Error(`server exited with ${code}: ${output}`)));
  });
  return { child, url };
}

/** Stops a server process, also one that has already exited (a crash fails the test elsewhere). */
async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const closed = new Promise((resolve) => child.once("close", resolve));
  child.kill("SIGTERM");
  await closed;
}

/** Sends batches from several concurrent clients until stopped; returns the acknowledged ids. */
function sustainedIngest(url: string, clients: number, batchSize: number) {
  const acknowledged: string[] = [];
  let stopped = false;
  let sequence = 0;
  const client = async (n: number) => {
    while (!stopped) {
      const ids = Array.from({ length: batchSize }, () => `k${n}-${sequence++}`);
      const batch = ids.map((id) => ({ type: "track", event: "Tick", anonymousId: `a${n}`, messageId: id }));
      try {
        const response = await fetch(`${url}/v1/batch`, {
          method: "POST",
          headers: { authorization: basicAuth(), "content-type": "application/json" },
          body: JSON.stringify({ batch }),
        });
        if (response.status === 200) acknowledged.push(...ids);
      } catch {
        return; // the server was killed mid-request: that batch was never acknowledged
      }
    }
  };
  const running = Promise.all(Array.from({ length: clients }, (_, n) => client(n)));
  return {
    acknowledged,
    async stop() {
      stopped = true;
      await running;
    },
  };
}

describe("durability", () => {
  const dirs: string[] = [];
  after(async () => {
    for (const dir of dirs) await rm(dir, { recursive: true, force: true });
  });

  test("kill -9 of the lake process during ingest: it is restarted and loads every acknowledged event once", async () => {
    const dataDir = await tempDataDir();
    dirs.push(dataDir);
    const server = await startServerProcess(dataDir);
    try {
      const lakePid = () =>
        Number(
          execFileSync("pgrep", ["-P", String(server.child.pid), "-f", "process-main"])
            .toString()
            .trim(),
        );
      const firstLake = lakePid();
      const load = sustainedIngest(server.url, 8, 50);
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      process.kill(firstLake, "SIGKILL");
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      await load.stop();
      const acknowledged = new Set(load.acknowledged);
      assert.ok(acknowledged.size > 1000, `enough load to matter (${acknowledged.size} acknowledged)`);
      await eventually(async () => {
        const health = (await (await fetch(`${server.url}/healthz`)).json()) as {
          loader: { ok: boolean; tables: { lagBytes: number }[] };
        };
        return health.loader.ok && health.loader.tables.every((table) => table.lagBytes === 0);
      }, 60_000);
      assert.equal(server.child.exitCode, null, "the server outlives its lake process");
      assert.notEqual(lakePid(), firstLake, "a new lake process runs");
      const ids = await query(server.url, "SELECT event_id FROM events");
      const stored = new Map<string, number>();
      for (const [id] of ids.rows as [string][]) stored.set(id, (stored.get(id) ?? 0) + 1);
      const wrong = [...acknowledged].filter((id) => stored.get(id) !== 1);
      assert.deepEqual(wrong.slice(0, 5), [], `${wrong.length} acknowledged events missing or doubled`);
      assert.equal(stored.size, ids.rows.length, "no event stored twice");
    } finally {
      await stopProcess(server.child);
    }
  });

  test("kill -9 during sustained ingest: after restart every acknowledged event is present exactly once", async () => {
    const dataDir = await tempDataDir();
    dirs.push(dataDir);
    const first = await startServerProcess(dataDir);
    const load = sustainedIngest(first.url, 8, 50);
    await new Promise((resolve) => setTimeout(resolve, 2_500));
    first.child.kill("SIGKILL");
    await new Promise((resolve) => first.child.on("close", resolve));
    await load.stop();
    const acknowledged = new Set(load.acknowledged);
    assert.ok(acknowledged.size > 1000, `enough load to matter (${acknowledged.size} acknowledged)`);

    // The CLI, with no server running, first loads what the bus still holds.
    const offline = await runCli(
      [
        "query",
        "SELECT count(*) AS n, count(DISTINCT event_id) AS d FROM events",
        "--data-dir",
        dataDir,
        "--format",
        "json",
      ],
      ENV,
    );
    assert.equal(offline.code, 0, offline.stderr);
    const [total, distinct] = (JSON.parse(offline.stdout) as { rows: number[][] }).rows[0] ?? [];
    assert.equal(total, distinct, "no event stored twice");
    assert.ok(Number(total) >= acknowledged.size, "no acknowledged event lost");

    const second = await startServerProcess(dataDir);
    try {
      const ids = await query(second.url, "SELECT event_id FROM events");
      const stored = new Map<string, number>();
      for (const [id] of ids.rows as [string][]) stored.set(id, (stored.get(id) ?? 0) + 1);
      const missing = [...acknowledged].filter((id) => stored.get(id) !== 1);
      assert.deepEqual(missing.slice(0, 5), [], `${missing.length} acknowledged events missing or doubled`);
      assert.equal(ids.rows.length, total, "restarting the loader loaded nothing twice");
    } finally {
      await stopProcess(second.child);
    }
  });

  test("sluice query works while the server runs and prints table, csv and json", async () => {
    const dataDir = await tempDataDir();
    dirs.push(dataDir);
    const server = await startServerProcess(dataDir);
    try {
      const response = await fetch(`${server.url}/v1/batch`, {
        method: "POST",
        headers: { authorization: basicAuth() },
        body: JSON.stringify({
          batch: [
            { type: "track", event: "Signed Up", userId: "a", messageId: "m1" },
            { type: "track", event: "Signed Up", userId: "b", messageId: "m2" },
            { type: "page", name: "Home", userId: "a", messageId: "m3" },
          ],
        }),
      });
      assert.equal(response.status, 200);
      await new Promise((resolve) => setTimeout(resolve, 1_000));
      const sql = "select event, count(*) as n from events group by 1 order by 1";
      const table = await runCli(["query", sql, "--data-dir", dataDir], ENV);
      assert.equal(table.code, 0, table.stderr);
      assert.match(table.stdout, /Home\s+│\s+1/);
      assert.match(table.stdout, /Signed Up\s+│\s+2/);
      const csv = await runCli(["query", sql, "--data-dir", dataDir, "--format", "csv"], ENV);
      assert.equal(csv.stdout.trim(), "event,n\nHome,1\nSigned Up,2");
      const json = await runCli(["query", sql, "--data-dir", dataDir, "--format", "json"], ENV);
      assert.deepEqual(JSON.parse(json.stdout), {
        columns: [
          { name: "event", type: "VARCHAR" },
          { name: "n", type: "BIGINT" },
        ],
        rows: [
          ["Home", 1],
          ["Signed Up", 2],
        ],
      });
      const bad = await runCli(["query", "select nope from events", "--data-dir", dataDir], ENV);
      assert.equal(bad.code, 1);
      assert.match(bad.stderr, /^sluice: SQL error: .*nope/);
    } finally {
      await stopProcess(server.child);
    }
  });

  test("CLI errors are one line and a non-zero exit", async () => {
    const missing = await runCli(["query", "select 1", "--data-dir", "/nonexistent/sluice"]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^sluice: no Sluice data directory at \/nonexistent\/sluice\n$/);
    const badFormat = await runCli(["query", "select 1", "--format", "xml"]);
    assert.notEqual(badFormat.code, 0);
    assert.match(badFormat.stderr, /xml/);
  });
});
