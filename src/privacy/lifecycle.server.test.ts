/**
 * Retention and forget on a running server: over HTTP and from the CLI alongside it, with queries
 * running all the while (each sees the table all before or all after a run).
 */
import assert from "node:assert/strict";
import { readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type RunningServer, serve } from "../server/index.js";
import {
  basicAuth,
  bearer,
  eventually,
  query,
  runCli,
  tempDataDir,
  testConfig,
} from "../server/test-support.js";
import { piiToken } from "./obfuscate.js";
import { piiSecret } from "./store.js";

const DAY_MS = 86_400_000;
const RETENTION = `retention:
  events:
    drop_after_days: 60
    scrub:
      - { after_days: 20, columns: [ip, user_agent], action: "null" }
      - { after_days: 20, columns: [anonymous_id], action: hash }
`;

function track(id: string, daysAgo: number, ids: { userId?: string; anonymousId?: string }): unknown {
  return {
    type: "track",
    event: "Viewed",
    messageId: id,
    timestamp: new Date(Date.now() - daysAgo * DAY_MS).toISOString(),
    context: { ip: "198.51.100.7", userAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/120.0" },
    ...ids,
  };
}

async function ingest(server: RunningServer, batch: unknown[]): Promise<void> {
  const response = await fetch(`${server.url}/v1/batch`, {
    method: "POST",
    headers: { authorization: basicAuth(), "content-type": "application/json" },
    body: JSON.stringify({ batch }),
  });
  assert.equal(response.status, 200);
  assert.equal(((await response.json()) as { rejected: number }).rejected, 0);
}

async function rows(server: RunningServer, sql: string): Promise<unknown[][]> {
  return (await query(server.url, sql)).rows;
}

async function admin(server: RunningServer, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${server.url}${path}`, {
    method,
    headers: { authorization: bearer(), "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
}

/** Runs `work` while querying `sql` in a loop; returns every distinct answer seen. */
async function answersDuring<T>(
  server: RunningServer,
  sql: string,
  work: () => Promise<T>,
): Promise<{ result: T; answers: Set<string> }> {
  const answers = new Set<string>();
  let stop = false;
  const loop = (async () => {
    while (!stop) answers.add(JSON.stringify(await rows(server, sql)));
  })();
  try {
    return { result: await work(), answers };
  } finally {
    stop = true;
    await loop;
  }
}

describe("retention and forget on a running server", () => {
  let dataDir: string;
  let server: RunningServer;
  before(async () => {
    dataDir = await tempDataDir();
    await writeFile(join(dataDir, "sluice.yaml"), RETENTION);
    server = await serve(testConfig(dataDir, { compaction_interval_ms: 200, compaction_min_files: 2 }));
    const batch: unknown[] = [];
    for (let index = 0; index < 10; index++) {
      batch.push(track(`old-${index}`, 90, { userId: `keeper-${index}` }));
      batch.push(track(`month-${index}`, 30, { anonymousId: `visitor-${index}` }));
      batch.push(track(`new-${index}`, 0, { userId: `keeper-${index}` }));
    }
    await ingest(server, batch);
    await ingest(server, [
      { type: "identify", userId: "forget-me", anonymousId: "anon-forget", messageId: "f-identify" },
      track("f-before-login", 1, { anonymousId: "anon-forget" }),
      track("f-after-login", 0, { userId: "forget-me" }),
      track("f-old", 30, { userId: "forget-me" }),
      // The same device later used by someone else: theirs, kept.
      track("other-on-device", 0, { userId: "other-user", anonymousId: "anon-forget" }),
    ]);
    // Plain JSON sent as gzip: quarantined in base64, and theirs too.
    const mislabelled = await fetch(`${server.url}/v1/identify`, {
      method: "POST",
      headers: { authorization: basicAuth(), "content-type": "application/json", "content-encoding": "gzip" },
      body: JSON.stringify({ userId: "forget-me", traits: { plan: "pro" } }),
    });
    assert.equal(mislabelled.status, 400);
    await eventually(async () => (await rows(server, "SELECT count(*) FROM events"))[0]?.[0] === 35);
    await eventually(async () => (await rows(server, "SELECT count(*) FROM events_rejected"))[0]?.[0] === 1);
  });
  after(async () => {
    await server.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  test("a retention run drops old days and scrubs old values in one step, then has nothing left to do", async () => {
    const sql = "SELECT count(*), count(ip), count(user_agent) FROM events";
    const { result, answers } = await answersDuring(server, sql, async () => {
      const response = await admin(server, "POST", "/v1/privacy/retention/run");
      assert.equal(response.status, 200);
      return (await response.json()) as {
        tables: { table: string; rowsDeleted: number; rowsChanged: number }[];
      };
    });
    assert.deepEqual(
      result.tables.map(({ table, rowsDeleted, rowsChanged }) => ({ table, rowsDeleted, rowsChanged })),
      [{ table: "events", rowsDeleted: 10, rowsChanged: 11 }],
    );
    // Before: 35 rows, all with ip and user agent but the identify; after: 25, 11 of them scrubbed.
    const allowed = new Set([JSON.stringify([[35, 35, 34]]), JSON.stringify([[25, 14, 13]])]);
    for (const answer of answers) assert.ok(allowed.has(answer), `a query saw ${answer}`);
    assert.deepEqual(await rows(server, sql), [[25, 14, 13]]);

    const secret = piiSecret(server.sluice.config);
    assert.deepEqual(await rows(server, "SELECT anonymous_id FROM events WHERE event_id = 'month-3'"), [
      [piiToken(secret, "visitor-3")],
    ]);
    const again = (await (await admin(server, "POST", "/v1/privacy/retention/run")).json()) as {
      tables: { rowsDeleted: number; rowsChanged: number; snapshot: number | null }[];
    };
    assert.deepEqual(again.tables[0], { ...again.tables[0], rowsDeleted: 0, rowsChanged: 0, snapshot: null });
  });

  test("forget removes the user's rows and their linked anonymous ones at once, logs no personal data, and is idempotent", async () => {
    const sql = "SELECT count(*) FROM events";
    const { result, answers } = await answersDuring(server, sql, async () => {
      const response = await admin(server, "POST", "/v1/privacy/forget", {
        user_id: "forget-me",
        requested_by: "dpo",
      });
      assert.equal(response.status, 200);
      return (await response.json()) as { total_rows: number; subject: string; rows: Record<string, number> };
    });
    // identify, before and after login; the 30-day-old one was scrubbed (anonymous id hashed) but is theirs too.
    assert.deepEqual(result.rows, { events: 4, events_rejected: 1 });
    const secret = piiSecret(server.sluice.config);
    assert.equal(result.subject, piiToken(secret, "forget-me"));
    for (const answer of answers)
      assert.ok([JSON.stringify([[25]]), JSON.stringify([[21]])].includes(answer), answer);
    assert.deepEqual(
      await rows(
        server,
        "SELECT event_id FROM events WHERE user_id = 'forget-me' OR anonymous_id = 'anon-forget' ORDER BY 1",
      ),
      [["other-on-device"]],
    );

    // Again, by an admin user's API token and naming no one: the log names the user.
    const accounts = server.sluice.accounts;
    const { secret: token } = accounts.createToken(accounts.createUser("alice", "admin").user, "t", "admin");
    const repeated = (await (
      await fetch(`${server.url}/v1/privacy/forget`, {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify({ user_id: "forget-me" }),
      })
    ).json()) as { total_rows: number };
    assert.equal(repeated.total_rows, 0);
    const log = (await (await admin(server, "GET", "/v1/privacy/deletions")).json()) as {
      deletions: { requested_by: string; total_rows: number }[];
    };
    assert.deepEqual(
      log.deletions.map(({ requested_by, total_rows }) => ({ requested_by, total_rows })),
      [
        { requested_by: "alice", total_rows: 0 },
        { requested_by: "dpo", total_rows: 5 },
      ],
    );
    const logText = await readFile(join(dataDir, "privacy", "deletions.jsonl"), "utf8");
    assert.ok(!logText.includes("forget-me") && !logText.includes("anon-forget"));
    // Nor does the bus hold them any more: its segments already in the lake were dropped.
    const busDir = join(dataDir, "bus");
    for (const name of await readdir(busDir, { recursive: true })) {
      const path = join(busDir, name);
      if (!(await stat(path)).isFile()) continue;
      assert.ok(!(await readFile(path, "utf8")).includes("forget-me"), `${path} holds the forgotten user`);
    }

    const bad = await admin(server, "POST", "/v1/privacy/forget", { userId: "forget-me" });
    assert.equal(bad.status, 400);
  });

  test("the CLI forgets alongside the server, including events still on the bus", async () => {
    await ingest(server, [
      track("late-1", 0, { userId: "late-user" }),
      track("late-2", 0, { userId: "late-user", anonymousId: "late-anon" }),
    ]);
    // No wait for the loader: the CLI waits until what was on the bus when it started is loaded.
    const forgot = await runCli([
      "forget",
      "--user-id",
      "late-user",
      "--requested-by",
      "cli-test",
      "--data-dir",
      dataDir,
    ]);
    assert.equal(forgot.code, 0, forgot.stderr);
    assert.match(forgot.stdout, /2 rows removed \(events: 2\)/);
    assert.deepEqual(await rows(server, "SELECT count(*) FROM events WHERE user_id = 'late-user'"), [[0]]);

    const retention = await runCli(["retention", "run", "--data-dir", dataDir]);
    assert.equal(retention.code, 0, retention.stderr);
    assert.match(retention.stdout, /events: 0 rows deleted, 0 rows scrubbed/);
    // A rule for a table the lake does not have (misspelt, or not loaded yet) says so.
    await writeFile(join(dataDir, "sluice.yaml"), `${RETENTION}  evnets:\n    drop_after_days: 30\n`);
    const misspelt = await runCli(["retention", "run", "--data-dir", dataDir]);
    assert.equal(misspelt.code, 0, misspelt.stderr);
    assert.match(misspelt.stdout, /evnets: no table of that name in the lake \(yet\): its rule did nothing/);
  });
});
