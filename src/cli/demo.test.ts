import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { describe, test } from "node:test";
import { eventually, spawnCli, tempDataDir } from "../server/test-support.js";

describe("sluice demo (what npm start runs)", () => {
  test("serves the live page and streams demo events through the collector; stops cleanly", async () => {
    const dataDir = await tempDataDir();
    const child = spawnCli([
      "demo",
      "--data-dir",
      dataDir,
      "--port",
      "0",
      "--pg-port",
      "0",
      "--backfill-days",
      "0",
      "--rate",
      "6000",
    ]);
    try {
      let output = "";
      child.stdout?.on("data", (chunk) => {
        output += chunk;
      });
      child.stderr?.on("data", (chunk) => {
        output += chunk;
      });
      let url = "";
      await eventually(async () => {
        url = /open (http:\/\/\S+)/.exec(output)?.[1] ?? "";
        return url !== "";
      }, 60_000);
      assert.match(output, /admin token: \S+/);
      const page = await fetch(`${url}/`);
      assert.equal(page.status, 200);
      let stats: { total: number; topEvents: { event: string }[] } = { total: 0, topEvents: [] };
      await eventually(async () => {
        stats = (await (await fetch(`${url}/v1/stats`)).json()) as typeof stats;
        return stats.total > 0;
      }, 30_000);
      assert.ok(stats.topEvents.length > 0, "named shop events arrive");
      child.kill("SIGTERM");
      const code = await new Promise((resolve) => child.on("close", resolve));
      assert.equal(code, 0);
    } finally {
      child.kill("SIGKILL");
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
