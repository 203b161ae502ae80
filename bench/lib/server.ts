/**
 * The real Sluice server as a child process (`sluice serve`), the way users run
 * it, on a temp data dir unless one is given. Always stopped and cleaned up,
 * also on errors and Ctrl-C (see cleanup.ts).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { onCleanup } from "./cleanup.js";

export const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));

export interface ServerOptions {
  /** Use this data dir (kept afterwards); default: a fresh temp dir, deleted on stop. */
  dataDir?: string;
  /** Config overrides as `SLUICE_<KEY>` values, e.g. `{ FLUSH_INTERVAL_MS: "250" }`. */
  config?: Record<string, string>;
  /** Write a V8 CPU profile of the server's main thread into this dir (on stop). */
  cpuProfileDir?: string;
  /** How long start-up may take (loading a big lake takes a while). */
  startTimeoutMs?: number;
}

export interface SluiceServer {
  url: string;
  /** The PostgreSQL protocol port. */
  pgPort: number;
  pid: number;
  dataDir: string;
  writeKey: string;
  adminToken: string;
  /** Peak resident memory of the server so far (VmHWM), in bytes; null off Linux. */
  peakRssBytes(): Promise<number | null>;
  /** CPU seconds (user + system, all threads) the server has used so far; null off Linux. */
  cpuSeconds(): Promise<number | null>;
  stop(): Promise<void>;
}

/**
 * Parses `--server-config` text, `key=value,key=value` with Sluice config keys
 * (see src/config/index.ts), into `SLUICE_<KEY>` overrides.
 */
export function parseServerConfig(text: string): Record<string, string> {
  const config: Record<string, string> = {};
  for (const pair of text.split(",").filter((part) => part.trim() !== "")) {
    const [key, ...value] = pair.split("=");
    if (!key || value.length === 0) throw new Error(`--server-config: "${pair}" is not key=value`);
    config[key.trim().toUpperCase()] = value.join("=").trim();
  }
  return config;
}

export async function startServer(options: ServerOptions = {}): Promise<SluiceServer> {
  const ownDir = options.dataDir === undefined;
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "sluice-bench-")));
  const removeDir = ownDir ? onCleanup(() => rm(dataDir, { recursive: true, force: true })) : null;

  const writeKey = `bench-${randomBytes(6).toString("hex")}`;
  const adminToken = randomBytes(16).toString("hex");
  // Inherited SLUICE_* variables would silently change what is measured: only ours apply.
  const env: NodeJS.ProcessEnv = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !key.startsWith("SLUICE_")),
  );
  env.SLUICE_WRITE_KEY = writeKey;
  env.SLUICE_ADMIN_TOKEN = adminToken;
  for (const [key, value] of Object.entries(options.config ?? {})) env[`SLUICE_${key}`] = value;

  const nodeFlags = ["--import", "tsx"];
  if (options.cpuProfileDir) nodeFlags.push("--cpu-prof", "--cpu-prof-dir", options.cpuProfileDir);
  const child = spawn(
    process.execPath,
    [
      ...nodeFlags,
      "src/cli/main.ts",
      "serve",
      "--data-dir",
      dataDir,
      "--port",
      "0",
      "--pg-port",
      "0",
      "--host",
      "127.0.0.1",
    ],
    { cwd: REPO_ROOT, env, stdio: ["ignore", "pipe", "pipe"] },
  );
  const output: string[] = [];
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  // Last resort if the benchmark process dies without running its cleanup.
  const killOnExit = () => child.kill("SIGKILL");
  process.once("exit", killOnExit);
  const stopChild = onCleanup(async () => {
    await stopProcess(child, exited);
    process.removeListener("exit", killOnExit);
  });

  const stop = async () => {
    await stopChild();
    await removeDir?.();
  };
  try {
    const { url, pgPort } = await waitForUrl(child, output, exited, options.startTimeoutMs ?? 120_000);
    await waitForHealthy(url, exited, output, options.startTimeoutMs ?? 120_000);
    const pid = child.pid ?? 0;
    return {
      url,
      pgPort,
      pid,
      dataDir,
      writeKey,
      adminToken,
      peakRssBytes: () => procStatusBytes(pid, "VmHWM"),
      cpuSeconds: () => procCpuSeconds(pid),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}

/** SIGTERM (a clean stop, which also writes the CPU profile), then SIGKILL after 20 s. */
async function stopProcess(child: ChildProcess, exited: Promise<number | null>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 20_000);
  await exited;
  clearTimeout(timer);
}

function waitForUrl(
  child: ChildProcess,
  output: string[],
  exited: Promise<number | null>,
  timeoutMs: number,
): Promise<{ url: string; pgPort: number }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error(`server did not start within ${timeoutMs / 1000} s:\n${output.join("")}`)),
      timeoutMs,
    );
    const collect = (chunk: Buffer) => {
      output.push(chunk.toString());
      if (output.length > 200) output.shift();
      const text = output.join("");
      const url = /sluice: serving .* on (http:\/\/\S+)/.exec(text)?.[1];
      const pgPort = /PostgreSQL protocol on \S+:(\d+)/.exec(text)?.[1];
      if (url && pgPort) {
        clearTimeout(timer);
        resolve({ url, pgPort: Number(pgPort) });
      }
    };
    child.stdout?.on("data", collect);
    child.stderr?.on("data", collect);
    exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`server exited with code ${code} before serving:\n${output.join("")}`));
    });
  });
}

async function waitForHealthy(
  url: string,
  exited: Promise<number | null>,
  output: string[],
  timeoutMs: number,
): Promise<void> {
  let gone = false;
  exited.then(() => {
    gone = true;
  });
  const deadline = Date.now() + timeoutMs;
  let last = "";
  while (Date.now() < deadline) {
    if (gone) throw new Error(`server exited during start-up:\n${output.join("")}`);
    try {
      const response = await fetch(`${url}/healthz`);
      last = `${response.status} ${await response.text()}`;
      if (response.ok) return;
    } catch (error) {
      last = (error as Error).message;
    }
    await sleep(100);
  }
  throw new Error(`server at ${url} not healthy after ${timeoutMs / 1000} s: ${last}`);
}

async function procStatusBytes(pid: number, field: string): Promise<number | null> {
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(status);
    return match?.[1] ? Number(match[1]) * 1024 : null;
  } catch {
    return null;
  }
}

async function procCpuSeconds(pid: number): Promise<number | null> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may contain spaces) start at state, field 3.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const ticks = Number(fields[11]) + Number(fields[12]);
    return ticks / 100; // USER_HZ is 100 on Linux
  } catch {
    return null;
  }
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
