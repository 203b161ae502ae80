import { type ChildProcess, execFile, spawn, spawnSync } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { type Config, loadConfig } from "../config/index.js";
import { type RunningServer, serve } from "./index.js";

export const WRITE_KEY = "test-write-key";
export const ADMIN_TOKEN = "test-admin-token";

export const basicAuth = (key = WRITE_KEY): string => `Basic ${Buffer.from(`${key}:`).toString("base64")}`;
export const bearer = (token = ADMIN_TOKEN): string => `Bearer ${token}`;

/** Why a test of TLS cannot run here, or false: it makes its certificates with openssl. */
export const noOpenssl =
  spawnSync("openssl", ["version"], { stdio: "ignore" }).status === 0 ? false : "needs openssl";

/** A self-signed certificate for localhost and 127.0.0.1 in `dir`: its PEM files. */
export async function selfSignedCertificate(dir: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, "server.crt");
  const key = join(dir, "server.key");
  await promisify(execFile)("openssl", [
    ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost"],
    ...["-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key, "-out", cert],
  ]);
  return { cert, key };
}

export async function tempDataDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), "sluice-server-"));
}

export function testConfig(dataDir: string, overrides: Partial<Config> = {}): Config {
  return loadConfig({
    env: {},
    overrides: {
      data_dir: dataDir,
      port: 0,
      pg_port: 0,
      // Tests are about behaviour, not priorities: a niced lake process could starve on a busy machine.
      lake_process_nice: 0,
      write_key: WRITE_KEY,
      admin_token: ADMIN_TOKEN,
      flush_interval_ms: 50,
      duckdb_threads: 2,
      ...overrides,
    },
  });
}

/** A real server on a free loopback port over a fresh data dir; `close` removes the dir too. */
export async function startTestServer(
  overrides: Partial<Config> = {},
): Promise<RunningServer & { dataDir: string }> {
  const dataDir = await tempDataDir();
  const server = await serve(testConfig(dataDir, overrides));
  return {
    ...server,
    dataDir,
    async close() {
      await server.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** POST /v1/query over HTTP, returning the parsed body; throws on a non-200. */
export async function query(
  baseUrl: string,
  sql: string,
): Promise<{ columns: unknown[]; rows: unknown[][] }> {
  const response = await fetch(`${baseUrl}/v1/query`, {
    method: "POST",
    headers: { authorization: bearer(), "content-type": "application/json" },
    body: JSON.stringify({ sql }),
  });
  const body = await response.json();
  if (response.status !== 200) throw new Error(`query failed ${response.status}: ${JSON.stringify(body)}`);
  return body as { columns: unknown[]; rows: unknown[][] };
}

/** Polls until `check` returns true (or fails after `timeoutMs`). */
export async function eventually(check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

const CLI = join(import.meta.dirname, "..", "cli", "main.ts");

/** Runs the CLI from source (`node --import tsx src/cli/main.ts ...`). */
export function spawnCli(args: string[], env: NodeJS.ProcessEnv = {}): ChildProcess {
  return spawn(process.execPath, ["--import", "tsx", CLI, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

/** Runs the CLI to completion. */
export async function runCli(
  args: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawnCli(args, env);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (chunk) => {
    stdout += chunk;
  });
  child.stderr?.on("data", (chunk) => {
    stderr += chunk;
  });
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  return { code, stdout, stderr };
}
