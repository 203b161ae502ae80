import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { loadConfig } from "../config/index.js";
import { openQuality, type Quality } from "../quality/index.js";
import { runCli } from "../server/test-support.js";
import { FileLoader, LandingWatcher, landingPath } from "./index.js";
import { tempSources } from "./test-support.js";

/** An error check (no negative amounts), a warn check, and a key that must stay unique across loads. */
const CHECKS = `orders:
  checks:
    - { type: range, name: no refunds, column: amount, min: 0 }
    - { type: accepted_values, name: known status, column: status, values: [paid, new], severity: warn }
    - { type: duplicates, name: one row per order, column: id }
`;

describe("quality checks audit file loads before they are committed (write-audit-publish)", () => {
  let sources: Awaited<ReturnType<typeof tempSources>>;
  let quality: Quality;
  let loader: FileLoader;
  const projectDir = () => join(sources.dataDir, "project");

  before(async () => {
    sources = await tempSources();
    await mkdir(projectDir(), { recursive: true });
    await writeFile(join(projectDir(), "quality.yml"), CHECKS);
    const config = loadConfig({
      env: {},
      overrides: { data_dir: sources.dataDir, quality_project: projectDir() },
    });
    quality = await openQuality({ config, catalog: sources.catalog, threads: 2 });
    loader = new FileLoader({
      dataDir: sources.dataDir,
      catalog: sources.catalog,
      engine: sources.engine,
      config,
      quality,
    });
  });
  after(async () => {
    await quality.close();
    await sources.close();
  });

  const load = async (name: string, content: string) =>
    loader.load(await sources.file(name, content), { table: "orders", origin: "cli" });
  const lakeFiles = async () => (await readdir(join(sources.dataDir, "lake", "orders"))).length;

  test("a load that passes its error checks is committed; a failed warn check does not stop it", async () => {
    const outcome = await load("first.csv", "id,status,amount\n1,paid,10\n2,lost,5\n");
    assert.equal(outcome.run.status, "loaded", outcome.message);
    const audited = quality.store.results({ table: "orders" });
    assert.deepEqual(audited.map((result) => [result.check, result.status, result.trigger]).sort(), [
      ["known status", "fail", "audit"],
      ["no refunds", "pass", "audit"],
      ["one row per order", "pass", "audit"],
    ]);
  });

  test("a failed error check rejects the load, naming the check; nothing of it is committed or left", async () => {
    const snapshot = await sources.catalog.tableSnapshot("orders");
    const files = await lakeFiles();
    const outcome = await load("refunds.csv", "id,status,amount\n3,paid,-4\n4,new,7\n");
    assert.equal(outcome.run.status, "failed");
    assert.match(
      outcome.message,
      /^refunds\.csv rejected: quality check "no refunds" failed: .+; nothing was loaded$/,
    );
    assert.equal(await sources.catalog.tableSnapshot("orders"), snapshot);
    assert.deepEqual(await sources.rows("SELECT count(*) FROM orders"), [[2]]);
    assert.equal(await lakeFiles(), files, "the written files were removed");
    const [last] = await sources.catalog.loads({ table: "orders", limit: 1 });
    assert.equal(last?.status, "failed");
    assert.equal(last?.file, "refunds.csv");
    assert.match(last?.message ?? "", /quality check "no refunds" failed/);
  });

  test("an appended file is checked with the rows already in the table", async () => {
    const outcome = await load("again.csv", "id,status,amount\n2,paid,1\n");
    assert.equal(outcome.run.status, "failed");
    assert.match(outcome.message, /quality check "one row per order" failed/);
    // Replacing the table's rows, the same file is checked on its own rows only.
    const replaced = await loader.load(await sources.file("again.csv", "id,status,amount\n2,paid,1\n"), {
      table: "orders",
      origin: "cli",
      mode: "replace",
    });
    assert.equal(replaced.run.status, "loaded", replaced.message);
  });

  test("the landing folder moves a file that fails its checks to _failed/, with the reason beside it", async () => {
    const watcher = new LandingWatcher({
      dataDir: sources.dataDir,
      catalog: sources.catalog,
      engine: sources.engine,
      config: { ...sources.config, landing_poll_interval_ms: 50 },
      quality,
    });
    const folder = join(landingPath(sources.dataDir), "orders");
    await mkdir(folder, { recursive: true });
    await writeFile(join(folder, "negative.csv"), "id,status,amount\n9,paid,-1\n");
    await watcher.scanOnce();
    await watcher.scanOnce();
    const failed = join(folder, "_failed", "negative.csv");
    assert.ok(existsSync(failed), "the file is in _failed/");
    assert.match(await readFile(`${failed}.error.txt`, "utf8"), /quality check "no refunds" failed/);
    assert.deepEqual(await sources.rows("SELECT count(*) FROM orders WHERE id = 9"), [[0]]);
  });

  test("sluice load exits non-zero naming the check when the project declares checks for the table", async () => {
    const dataDir = join(sources.dataDir, "cli-data");
    const file = await sources.file("cli.csv", "id,status,amount\n1,paid,-2\n");
    const env = { SLUICE_QUALITY_PROJECT: projectDir() };
    const rejected = await runCli(["load", file, "--table", "orders", "--data-dir", dataDir], env);
    assert.equal(rejected.code, 1);
    assert.match(rejected.stderr, /^sluice: cli\.csv rejected: quality check "no refunds" failed: /);
    const unchecked = await runCli(["load", file, "--table", "refunds", "--data-dir", dataDir], env);
    assert.equal(unchecked.code, 0, unchecked.stderr);
  });
});
