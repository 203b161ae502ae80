/**
 * The baseline for collector throughput: a plain `node:http` server that reads each
 * request body and answers `{"success":true}` without parsing or storing anything.
 * Run as a child process (`node --import tsx bench/lib/bare-http.ts`), like the real
 * server, so both compete with the load generator for the cores the same way.
 */
import { type ChildProcess, fork } from "node:child_process";
import { createServer } from "node:http";
import { fileURLToPath } from "node:url";
import { onCleanup } from "./cleanup.js";

const RESPONSE = '{"success":true}';

if (process.argv[2] === "--serve") {
  const server = createServer((request, response) => {
    request.on("data", () => {});
    request.on("end", () => {
      response.writeHead(200, {
        "content-type": "application/json; charset=utf-8",
        "content-length": RESPONSE.length,
      });
      response.end(RESPONSE);
    });
  });
  server.keepAliveTimeout = 72_000;
  server.listen(0, "127.0.0.1", () => {
    const address = server.address();
    process.send?.(typeof address === "object" && address ? address.port : 0);
  });
}

export interface BareServer {
  url: string;
  pid: number;
  stop(): Promise<void>;
}

export async function startBareServer(): Promise<BareServer> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), ["--serve"], {
    execArgv: ["--import", "tsx"],
    stdio: "ignore",
  });
  const stop = onCleanup(async () => {
    if (child.exitCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill("SIGKILL");
    await exited;
  });
  const port = await new Promise<number>((resolve, reject) => {
    child.once("message", (message) => resolve(Number(message)));
    child.once("exit", (code) => reject(new Error(`the baseline server exited with code ${code}`)));
  });
  return { url: `http://127.0.0.1:${port}`, pid: child.pid ?? 0, stop };
}
