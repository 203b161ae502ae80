import assert from "node:assert/strict";
import { rm } from "node:fs/promises";
import { describe, test } from "node:test";
import { eventually, runCli, spawnCli, tempDataDir } from "../server/test-support.js";

describe("accounts on the command line", () => {
  test("serve prints a one-time login link on first start that signs the admin in", async () => {
    const dataDir = await tempDataDir();
    const child = spawnCli(["serve", "--data-dir", dataDir, "--port", "0", "--pg-port", "0"], {
      SLUICE_ADMIN_TOKEN: "cli-test-token",
    });
    try {
      let output = "";
      child.stdout?.on("data", (chunk) => {
        output += chunk;
      });
      let link = "";
      await eventually(async () => {
        link = /(http:\/\/\S+\/login\/\S+)/.exec(output)?.[1] ?? "";
        return link !== "";
      }, 60_000);
      assert.match(output, /sign in as admin \(admin\) with this one-time link, valid 24 hours/);
      const response = await fetch(link, { method: "POST", redirect: "manual" });
      assert.equal(response.status, 303);
      assert.match(String(response.headers.get("set-cookie")), /^sluice_session=/);
      child.kill("SIGTERM");
      assert.equal(await new Promise((resolve) => child.on("close", resolve)), 0);

      // Once the admin has signed in, no new link is printed; `users login-link` makes one on request.
      const list = await runCli(["users", "list", "--data-dir", dataDir]);
      assert.equal(list.code, 0);
      assert.match(list.stdout, /^1\tadmin\tadmin\tlast sign-in \d{4}-/m);
      const added = await runCli([
        "users",
        "add",
        "ann@example.com",
        "--role",
        "editor",
        "--data-dir",
        dataDir,
        "--url",
        "https://sluice.example.com",
      ]);
      assert.equal(added.code, 0, added.stderr);
      assert.match(
        added.stdout,
        /added ann@example\.com \(editor\); invite link, valid 7 days:\n {2}https:\/\/sluice\.example\.com\/login\/\S+/,
      );
      const again = await runCli(["users", "add", "ann@example.com", "--data-dir", dataDir]);
      assert.deepEqual(
        [again.code, again.stderr.trim()],
        [1, 'sluice: a user named "ann@example.com" already exists'],
      );
      const missing = await runCli(["users", "login-link", "nobody", "--data-dir", dataDir]);
      assert.deepEqual(
        [missing.code, missing.stderr.trim()],
        [1, 'sluice: no user named "nobody" (see: sluice users list)'],
      );
      const link2 = await runCli(["users", "login-link", "admin", "--data-dir", dataDir]);
      assert.match(link2.stdout, /^http:\/\/127\.0\.0\.1:8080\/login\/\S+\n$/);
    } finally {
      child.kill("SIGKILL");
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
