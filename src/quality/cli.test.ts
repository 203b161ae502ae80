import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { runCli } from "../server/test-support.js";
import { tempQuality } from "./test-support.js";

describe("sluice check and sluice profile", () => {
  let ctx: Awaited<ReturnType<typeof tempQuality>>;

  before(async () => {
    ctx = await tempQuality({
      project: {
        "checks/orders.yml": `
orders:
  checks:
    - { type: row_count, min: 1 }
    - { type: accepted_values, column: status, values: [paid, new], severity: warn }
`,
      },
    });
    await ctx.load("orders", "orders.csv", "id,status\n1,paid\n2,new\n3,lost\n");
  });
  after(() => ctx.close());

  const cli = (args: string[]) => runCli([...args, "--data-dir", ctx.dataDir], { SLUICE_DATA_DIR: "" });

  test("prints each result; only error-severity failures make the exit code non-zero", async () => {
    const warned = await cli(["check", "orders", "--project", ctx.projectDir]);
    assert.equal(warned.code, 0, warned.stderr);
    assert.deepEqual(warned.stdout.trim().split("\n"), [
      "PASS         orders row_count: 3 rows; expected at least 1",
      "FAIL [warn]  orders accepted_values(status): 1 row has a value of status not in paid, new (1 other value)",
      `${" ".repeat(15)}e.g. status=lost, rows=1`,
      "2 checks: 1 passed, 1 failed, 0 could not run",
    ]);

    await ctx.write("checks/orders.yml", "orders:\n  - { type: row_count, min: 10 }\n");
    const failed = await cli(["check", "--project", ctx.projectDir, "--format", "json"]);
    assert.equal(failed.code, 1);
    const body = JSON.parse(failed.stdout);
    assert.equal(body.blocking, true);
    assert.equal(body.results[0].message, "3 rows; expected at least 10");
  });

  test("a malformed check file is one clear line naming the file and the check", async () => {
    await ctx.write(
      "checks/orders.yml",
      "orders:\n  - { type: row_count, min: 1 }\n  - { type: missing, colum: id }\n",
    );
    const result = await cli(["check", "--project", ctx.projectDir]);
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr.trim(),
      'sluice: checks/orders.yml: orders check 2 (missing): unknown field "colum" (missing takes column, max_count, max_percent)',
    );
  });

  test("sluice profile prints the table's profile", async () => {
    const result = await cli(["profile", "orders"]);
    assert.equal(result.code, 0, result.stderr);
    const lines = result.stdout.split("\n");
    assert.match(lines[0] ?? "", /^orders: 3 rows, profiled \S+ at snapshot \d+ in [\d.]+ ms$/);
    assert.match(result.stdout, /status\s+│ VARCHAR\s+│\s+0 │\s+3 │.*│ lost \(1\), new \(1\), paid \(1\)/);
  });
});
