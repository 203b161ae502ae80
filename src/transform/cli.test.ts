import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { cp, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { runCli } from "../server/test-support.js";
import { SHOP_FIXTURE } from "./test-support.js";

describe("sluice build, compile and runs", () => {
  let dir: string;
  let dataDir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "sluice-cli-transform-"));
    dataDir = join(dir, "data");
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const cli = (...args: string[]) => runCli([...args, "--project", SHOP_FIXTURE, "--data-dir", dataDir]);

  test("a build whose test fails exits 1 and says which test and where its failing rows are", async () => {
    const build = await cli("build", "+customers");
    assert.equal(build.code, 1, build.stderr);
    assert.match(
      build.stdout,
      /^FAIL +model orders → orders .*not published: accepted_values_orders_status/m,
    );
    assert.match(
      build.stdout,
      /FAIL +test accepted_values_orders_status: 1 failing row, kept in .*accepted_values_orders_status\.json/,
    );
    assert.match(build.stdout, /^SKIP +model customers/m);
    assert.match(build.stdout, /^Done: 5 OK, 1 FAIL, 1 SKIP/m);
  });

  test("compile prints the rendered SQL; runs --format json is the history", async () => {
    const compiled = await cli("compile", "stg_orders");
    assert.equal(compiled.code, 0, compiled.stderr);
    assert.match(compiled.stdout, /^-- models\/staging\/stg_orders\.sql \(view\) → stg_orders\n/);
    assert.match(compiled.stdout, /from "raw_orders";/);
    const runs = await runCli(["runs", "--model", "orders", "--format", "json", "--data-dir", dataDir]);
    const history = JSON.parse(runs.stdout).runs;
    assert.equal(history[0].status, "failed_tests");
    assert.equal(history[0].tests.length, 5);
  });

  test("a build runs the project's quality checks before publishing: a failing error check blocks, a warn one is printed", async () => {
    const shop = join(dir, "checked-shop");
    await cp(SHOP_FIXTURE, shop, { recursive: true });
    await writeFile(
      join(shop, "quality.yml"),
      `stg_orders:
  - { type: row_count, max: 2 }
stg_customers:
  - { type: missing, column: last_name, severity: warn, where: "first_name = 'Ann'" }
  - { type: accepted_values, column: first_name, values: [Ann, Bob], severity: warn }
`,
    );
    const build = await runCli([
      "build",
      "stg_orders",
      "stg_customers",
      "--project",
      shop,
      "--data-dir",
      dataDir,
    ]);
    assert.equal(build.code, 1, build.stderr);
    assert.match(
      build.stdout,
      /^FAIL +model stg_orders → stg_orders .*not published: quality:row_count \(4 rows; expected at most 2\)/m,
    );
    assert.match(build.stdout, /^ +FAIL +check row_count: 4 rows; expected at most 2$/m);
    assert.match(
      build.stdout,
      /^OK +model stg_customers .*warning: quality:accepted_values\(first_name\) \(1 row has/m,
    );
    assert.match(build.stdout, /^ +WARN +check accepted_values\(first_name\): /m);
    const query = await runCli(["query", "select count(*) as n from stg_customers", "--data-dir", dataDir]);
    assert.match(query.stdout, /\b3\b/);
    const profile = await runCli(["profile", "stg_customers", "--format", "json", "--data-dir", dataDir]);
    assert.equal(JSON.parse(profile.stdout).profile.rows, 3, "a built table is profiled");
  });

  test("test on a data dir that does not exist says so and creates nothing", async () => {
    const missing = join(dir, "no-such-data");
    const tested = await runCli(["test", "--project", SHOP_FIXTURE, "--data-dir", missing]);
    assert.equal(tested.code, 1);
    assert.equal(
      tested.stderr.trim(),
      `sluice: no Sluice data directory at ${missing}: build first, or point --data-dir at one`,
    );
    assert.equal(existsSync(missing), false);
  });

  test("a selection that matches nothing is one line and exit 1", async () => {
    const build = await cli("build", "tag:nightly");
    assert.equal(build.code, 1);
    assert.equal(build.stderr.trim(), "sluice: no model or seed has tag nightly");
  });
});
