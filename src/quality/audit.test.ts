import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { loadConfig } from "../config/index.js";
import type { Builder } from "../transform/index.js";
import { copyShop, type Lab, openLab } from "../transform/test-support.js";
import { openQuality, type Quality } from "./quality.js";
import { QualityWatcher } from "./watcher.js";

/** The shop's orders with a row_count check (error) and an accepted_values check (warn). */
const checks = (minOrders: number) => `orders:
  - { type: row_count, min: ${minOrders} }
  - { type: accepted_values, column: status, values: [completed], severity: warn }
`;

describe("quality checks in model builds (write-audit-publish)", () => {
  let lab: Lab;
  let shop: string;
  let quality: Quality;
  let watcher: QualityWatcher;
  /** A builder wired as the server wires it: audit through the watcher, profile after publishing. */
  let builder: (env?: string) => Builder;

  before(async () => {
    lab = await openLab();
    shop = copyShop(lab);
    // The fixture's failing dbt test is fixed, so only quality checks decide.
    const seed = join(shop, "seeds", "raw_orders.csv");
    writeFileSync(seed, readFileSync(seed, "utf8").replace("4,3,2026-01-07,lost\n", ""));
    const config = loadConfig({ env: {}, overrides: { data_dir: lab.dataDir, transform_project: shop } });
    quality = await openQuality({ config, catalog: lab.catalog, threads: 1 });
    watcher = new QualityWatcher({
      quality,
      catalog: lab.catalog,
      streamingTables: [],
      profiling: true,
      profileIntervalMs: 60_000,
    });
    builder = (env) =>
      lab.builder(shop, {
        env,
        onAudit: (candidate) => watcher.auditBuild(candidate),
        onTableBuilt: (table, _snapshot, published) => watcher.afterBuild(table, published),
      });
  });
  after(async () => {
    await watcher.stop();
    await quality.close();
    await lab.close();
  });

  test("a failing error check keeps the table unpublished, skips what is downstream and is in the run history", async () => {
    writeFileSync(join(shop, "quality.yml"), checks(4));
    const result = await builder().build({ select: ["+customers"] });
    const status = Object.fromEntries(result.runs.map((run) => [run.node, run.status]));
    assert.equal(status.orders, "failed_tests");
    assert.equal(status.customers, "skipped");
    assert.equal(result.ok, false);
    const tables = (await lab.catalog.tables()).map((table) => table.name);
    assert.ok(!tables.includes("orders"), "the checked rows were never published");
    const orders = result.runs.find((run) => run.node === "orders");
    assert.match(orders?.message ?? "", /^not published: quality:row_count \(3 rows; expected at least 4\)$/);
    const [history] = await lab.store.runs({ node: "orders", limit: 1 });
    assert.deepEqual(
      history?.tests.filter((outcome) => outcome.name.startsWith("quality:")).map((o) => [o.name, o.status]),
      [
        ["quality:row_count", "fail"],
        ["quality:accepted_values(status)", "warn"],
      ],
    );
    assert.deepEqual(
      quality.store.results({ table: "orders" }).map((entry) => [entry.check, entry.status, entry.trigger]),
      [
        ["accepted_values(status)", "fail", "build"],
        ["row_count", "fail", "build"],
      ],
    );
    assert.ok(quality.store.openAlert("orders", "row_count"), "a production build's failure alerts");
  });

  test("once the check passes the table is published with the warning, profiled, and not checked twice", async () => {
    writeFileSync(join(shop, "quality.yml"), checks(3));
    const result = await builder().build({ select: ["orders+"] });
    assert.equal(result.ok, true, JSON.stringify(result.runs.map((run) => run.message)));
    const orders = result.runs.find((run) => run.node === "orders");
    assert.match(orders?.message ?? "", /warning: quality:accepted_values\(status\) \(1 row has/);
    assert.deepEqual(await lab.rows("SELECT count(*) FROM orders"), [[3]]);
    assert.equal(quality.store.latestProfiles("orders")[0]?.rows, 3);
    assert.equal(quality.store.results({ table: "orders", check: "row_count" }).length, 2);
    assert.equal(quality.store.openAlert("orders", "row_count"), null, "recovered");
  });

  test("a dev build is checked as its production table, recorded apart and does not alert", async () => {
    writeFileSync(join(shop, "quality.yml"), checks(4));
    const result = await builder("dev").build({ select: ["orders"] });
    assert.equal(result.runs[0]?.status, "failed_tests");
    assert.deepEqual(
      quality.store.results({ table: "dev__orders" }).map((entry) => [entry.check, entry.status]),
      [
        ["accepted_values(status)", "fail"],
        ["row_count", "fail"],
      ],
    );
    assert.equal(quality.store.openAlert("dev__orders", "row_count"), null);
    assert.equal(quality.store.openAlert("orders", "row_count"), null);
    assert.deepEqual(await lab.rows("SELECT count(*) FROM orders"), [[3]], "production is untouched");
  });

  test("a model whose columns change is held back by schema_change, with the way to publish it", async () => {
    writeFileSync(join(shop, "quality.yml"), "orders:\n  - { type: schema_change }\n");
    const model = join(shop, "models", "marts", "orders.sql");
    writeFileSync(model, readFileSync(model, "utf8").replace("o.status,", "o.status,\n    1 as extra,"));
    const result = await builder().build({ select: ["orders"] });
    assert.equal(result.runs[0]?.status, "failed_tests");
    assert.match(
      result.runs[0]?.message ?? "",
      /quality:schema_change \(since the profile of .*: added extra \(INTEGER\) \(a deliberate change is published once the check lists the new columns under columns:, or has severity: warn\)\)$/,
    );
    writeFileSync(join(shop, "quality.yml"), "orders:\n  - { type: schema_change, severity: warn }\n");
    const accepted = await builder().build({ select: ["orders"] });
    assert.equal(accepted.runs[0]?.status, "success");
  });

  test("a malformed check file fails the build, naming the file, rather than switching checks off", async () => {
    writeFileSync(join(shop, "quality.yml"), "orders:\n  - { type: row_count, minimum: 1 }\n");
    const result = await builder().build({ select: ["orders"] });
    assert.equal(result.runs[0]?.status, "error");
    assert.match(
      result.runs[0]?.message ?? "",
      /quality\.yml: orders check 1 \(row_count\): unknown field "minimum"/,
    );
  });
});
