/**
 * TLS on the PostgreSQL port, with a certificate made for the test: clients that verify it log in,
 * plain-text logins are refused when TLS is required, and bad settings stop the start-up.
 */
import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import pg from "pg";
import { serve } from "../server/index.js";
import {
  ADMIN_TOKEN,
  noOpenssl,
  selfSignedCertificate,
  startTestServer,
  tempDataDir,
  testConfig,
} from "../server/test-support.js";

const run = promisify(execFile);
const noPsql =
  spawnSync("psql", ["--version"], { stdio: "ignore" }).status === 0 ? false : "needs postgresql-client";

describe("TLS on the PostgreSQL port", { skip: noOpenssl }, () => {
  let dir: string;
  let cert: string;
  let key: string;
  let server: Awaited<ReturnType<typeof startTestServer>>;
  let port = 0;
  before(async () => {
    dir = await tempDataDir();
    ({ cert, key } = await selfSignedCertificate(dir));
    server = await startTestServer({ pg_tls_cert: cert, pg_tls_key: key, pg_tls_required: true });
    port = Number(server.pgAddress.split(":").at(-1));
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  const login = { host: "127.0.0.1", user: "admin", database: "sluice", password: ADMIN_TOKEN };

  test("a client that verifies the certificate logs in and queries over TLS", async () => {
    const client = new pg.Client({
      ...login,
      port,
      ssl: { ca: await readFile(cert), rejectUnauthorized: true },
    });
    await client.connect();
    try {
      // TLS is required on this port, so an answer means the connection was encrypted.
      assert.equal((await client.query("SELECT 40 + 2 AS answer")).rows[0]?.answer, 42);
    } finally {
      await client.end();
    }
  });

  test("psql with sslmode=verify-full", { skip: noPsql }, async () => {
    const args = ["-At", "-c", "SELECT 'over tls'"];
    const env = {
      ...process.env,
      PGPASSWORD: ADMIN_TOKEN,
      PGSSLMODE: "verify-full",
      PGSSLROOTCERT: cert,
      PGCONNECT_TIMEOUT: "10",
    };
    const target = ["-h", "localhost", "-p", String(port), "-U", "admin", "-d", "sluice"];
    const { stdout } = await run("psql", [...target, ...args], { env });
    assert.equal(stdout.trim(), "over tls");
  });

  test("a plain-text login is refused with the reason when TLS is required", async () => {
    const client = new pg.Client({ ...login, port, ssl: false });
    await assert.rejects(client.connect(), (error: Error & { code?: string }) => {
      assert.equal(error.code, "28000");
      assert.match(error.message, /only TLS connections.*sslmode=require/);
      return true;
    });
  });

  test("settings that cannot work stop the start-up with the reason", async () => {
    const dataDir = await tempDataDir();
    const attempts: [Partial<Parameters<typeof testConfig>[1]>, RegExp][] = [
      [{ pg_tls_cert: cert }, /pg_tls_cert and pg_tls_key go together/],
      [{ pg_tls_required: true }, /pg_tls_required needs pg_tls_cert and pg_tls_key/],
      [{ pg_tls_cert: cert, pg_tls_key: join(dir, "missing.key") }, /pg_tls_key: cannot read .*missing\.key/],
      [{ pg_tls_cert: key, pg_tls_key: key }, /not a usable PEM certificate and key/],
    ];
    try {
      for (const [settings, reason] of attempts) {
        await assert.rejects(serve(testConfig(dataDir, settings)), reason);
      }
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
