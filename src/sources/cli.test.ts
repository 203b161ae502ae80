import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runCli } from "../server/test-support.js";

describe("sluice load and sluice loads", () => {
  let dir: string;
  let dataDir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "sluice-cli-load-"));
    dataDir = join(dir, "data");
    await writeFile(
      join(dir, "customers.csv"),
      "Customer ID,Name,Signed Up\n1,Ada,2026-01-05\n2,Linus,2026-02-11\n",
    );
    await writeFile(join(dir, "more.csv"), "Customer ID,Name,Signed Up\n3,Grace,someday\n");
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const cli = (...args: string[]) => runCli([...args, "--data-dir", dataDir]);

  test("loads a file, says what it did, and the table is queryable", async () => {
    const loaded = await cli("load", join(dir, "customers.csv"), "--table", "customers");
    assert.equal(loaded.code, 0, loaded.stderr);
    assert.equal(loaded.stdout.trim(), "loaded 2 rows from customers.csv into customers");
    assert.equal(loaded.stderr, "", "no progress bar when stderr is not a terminal");
    const query = await runCli([
      "query",
      "SELECT customer_id, name, signed_up FROM customers ORDER BY 1",
      "--data-dir",
      dataDir,
      "--format",
      "csv",
    ]);
    assert.equal(query.code, 0, query.stderr);
    assert.equal(query.stdout.trim(), "customer_id,name,signed_up\n1,Ada,2026-01-05\n2,Linus,2026-02-11");
  });

  test("loading the same file again is a no-op that says so, with exit 0", async () => {
    const again = await cli("load", join(dir, "customers.csv"), "--table", "customers");
    assert.equal(again.code, 0, again.stderr);
    assert.match(
      again.stdout,
      /^customers\.csv is already in table customers \(load #1 .*\): nothing to do$/m,
    );
  });

  test("a rejected file exits 1 with one line naming the column and row", async () => {
    const rejected = await cli("load", join(dir, "more.csv"), "--table", "customers");
    assert.equal(rejected.code, 1);
    assert.equal(
      rejected.stderr,
      'sluice: more.csv rejected: column "signed_up" is DATE in table customers, but row 1 has "someday", which is not a date (YYYY-MM-DD)\n',
    );
  });

  test("bad arguments are one line and exit 1", async () => {
    const missing = await cli("load", join(dir, "nope.csv"), "--table", "customers");
    assert.equal(missing.code, 1);
    assert.equal(missing.stderr, `sluice: no file at ${join(dir, "nope.csv")}\n`);
    const table = await cli("load", join(dir, "customers.csv"), "--table", "Customers!");
    assert.equal(table.code, 1);
    assert.match(table.stderr, /^sluice: "Customers!" is not a valid table name/);
    const mode = await cli("load", join(dir, "customers.csv"), "--table", "customers", "--mode", "merge");
    assert.equal(mode.code, 1);
    assert.match(mode.stderr, /--mode <mode>' argument 'merge' is invalid/);
  });

  test("sluice loads shows the history, newest first", async () => {
    const history = await cli("loads", "--format", "json");
    assert.equal(history.code, 0, history.stderr);
    const { loads } = JSON.parse(history.stdout) as { loads: { status: string; file: string }[] };
    assert.deepEqual(
      loads.map((load) => [load.status, load.file]),
      [
        ["failed", "more.csv"],
        ["skipped", "customers.csv"],
        ["loaded", "customers.csv"],
      ],
    );
    const table = await cli("loads", "--table", "customers", "--limit", "1");
    assert.match(table.stdout, /failed/);
    assert.match(table.stdout, /\(1 row\)/);
  });
});
