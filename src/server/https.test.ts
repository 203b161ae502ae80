/**
 * HTTPS with `tls_cert` and `tls_key`: the collector, the query API and the web app over TLS, the
 * PostgreSQL port with the same certificate, and bad settings refused before anything starts.
 */
import assert from "node:assert/strict";
import { readFile, rm } from "node:fs/promises";
import { request } from "node:https";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { serve } from "./index.js";
import {
  ADMIN_TOKEN,
  basicAuth,
  bearer,
  noOpenssl,
  selfSignedCertificate,
  startTestServer,
  tempDataDir,
  testConfig,
} from "./test-support.js";

/** A request that trusts only `ca`; the status and body. */
function httpsCall(
  url: string,
  ca: Buffer,
  init: { method?: string; headers?: Record<string, string>; body?: string } = {},
): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const call = request(url, { method: init.method ?? "GET", headers: init.headers, ca }, (response) => {
      const chunks: Buffer[] = [];
      response.on("data", (chunk: Buffer) => chunks.push(chunk));
      response.on("end", () =>
        resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }),
      );
    });
    call.on("error", reject);
    call.end(init.body);
  });
}

describe("HTTPS", { skip: noOpenssl }, () => {
  let dir: string;
  let files: { cert: string; key: string };
  let ca: Buffer;
  let server: Awaited<ReturnType<typeof startTestServer>>;
  before(async () => {
    dir = await tempDataDir();
    files = await selfSignedCertificate(dir);
    ca = await readFile(files.cert);
    server = await startTestServer({ tls_cert: files.cert, tls_key: files.key });
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("events are collected and queried over HTTPS", async () => {
    assert.match(server.url, /^https:\/\/127\.0\.0\.1:\d+$/);
    const tracked = await httpsCall(`${server.url}/v1/track`, ca, {
      method: "POST",
      headers: { authorization: basicAuth(), "content-type": "application/json" },
      body: JSON.stringify({ userId: "tls-user", event: "Secured", messageId: "tls-1" }),
    });
    assert.deepEqual(tracked, { status: 200, body: '{"success":true}' });
    const sql = JSON.stringify({ sql: "SELECT event FROM events WHERE event_id = 'tls-1'" });
    const headers = { authorization: bearer(), "content-type": "application/json" };
    for (let attempt = 0; ; attempt++) {
      const answer = await httpsCall(`${server.url}/v1/query`, ca, { method: "POST", headers, body: sql });
      assert.equal(answer.status, 200);
      if ((JSON.parse(answer.body) as { rows: unknown[][] }).rows.length === 1) break;
      assert.ok(attempt < 100, "the event never became queryable");
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.equal((await httpsCall(`${server.url}/healthz`, ca)).status, 200);
  });

  test("the PostgreSQL port uses the same certificate", async () => {
    const port = Number(server.pgAddress.split(":").at(-1));
    const client = new pg.Client({
      host: "127.0.0.1",
      port,
      user: "admin",
      database: "sluice",
      password: ADMIN_TOKEN,
      ssl: { ca, rejectUnauthorized: true },
    });
    await client.connect();
    try {
      assert.equal((await client.query("SELECT 1 AS one")).rows[0]?.one, 1);
    } finally {
      await client.end();
    }
  });

  test("settings that cannot work stop the start-up with the reason", async () => {
    const dataDir = await tempDataDir();
    try {
      const attempts: [Parameters<typeof testConfig>[1], RegExp][] = [
        [{ tls_cert: files.cert }, /tls_cert and tls_key go together/],
        [{ tls_cert: files.cert, tls_key: join(dir, "missing.key") }, /tls_key: cannot read .*missing\.key/],
        [
          { tls_cert: files.key, tls_key: files.key },
          /tls_cert\/tls_key: not a usable PEM certificate and key/,
        ],
      ];
      for (const [settings, reason] of attempts) {
        await assert.rejects(serve(testConfig(dataDir, settings)), reason);
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
