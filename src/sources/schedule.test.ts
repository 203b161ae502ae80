import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { DbSourceConfig } from "../config/index.js";
import { eventually } from "../server/test-support.js";
import { DbSyncScheduler } from "./schedule.js";
import { type TestDatabase, tempSources, testDatabase, uniqueName } from "./test-support.js";

type Sources = Awaited<ReturnType<typeof tempSources>>;

describe("DbSyncScheduler", () => {
  let db: TestDatabase;
  let sources: Sources;
  const table = uniqueName("scheduled");
  const big = uniqueName("scheduled_big");

  before(async () => {
    db = await testDatabase("postgres");
    await db.exec(
      `CREATE TABLE ${table} (id integer PRIMARY KEY, updated_at timestamptz NOT NULL DEFAULT now())`,
    );
    await db.exec(`CREATE TABLE ${big} (id integer PRIMARY KEY, payload text)`);
    await db.exec(`INSERT INTO ${big} SELECT i, md5(i::text) FROM generate_series(1, 50000) AS i`);
    sources = await tempSources();
  });
  after(async () => {
    await db.exec(`DROP TABLE IF EXISTS ${table}`);
    await db.exec(`DROP TABLE IF EXISTS ${big}`);
    await db.close();
    await sources.close();
  });

  /** `slow`: small batches and staged parts, so that a sync takes seconds. */
  const scheduler = (dbSources: Record<string, DbSourceConfig>, slow = false) =>
    new DbSyncScheduler({
      dataDir: sources.dataDir,
      catalog: sources.catalog,
      engine: sources.engine,
      config: { db_sources: dbSources, load_webhook_url: "", compaction_target_bytes: 64 * 1024 * 1024 },
      env: { SHOP_URL: db.url },
      batchRows: slow ? 100 : undefined,
      partBytes: slow ? 4096 : undefined,
    });
  const count = async (lakeTable: string) =>
    Number((await sources.rows(`SELECT count(*) FROM ${lakeTable}`))[0]?.[0]);

  test("an `every` source syncs at start and again each interval, until stopped", async () => {
    const running = scheduler({
      shop: { url_env: "SHOP_URL", every: "100ms", tables: { [table]: { watermark: "updated_at" } } },
    });
    await db.exec(`INSERT INTO ${table} (id) VALUES (1), (2)`);
    running.start();
    await eventually(async () =>
      (await sources.catalog.tables()).some((def) => def.name === `shop_${table}`),
    );
    await eventually(async () => (await count(`shop_${table}`)) === 2);
    await db.exec(`INSERT INTO ${table} (id) VALUES (3)`);
    await eventually(async () => (await count(`shop_${table}`)) === 3);
    await running.stop();
    const runs = (await sources.catalog.loads({ table: `shop_${table}` })).length;
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal(
      (await sources.catalog.loads({ table: `shop_${table}` })).length,
      runs,
      "no run after stop()",
    );
    const history = await sources.catalog.loads({ table: `shop_${table}` });
    assert.ok(history.every((run) => run.origin === "schedule"));
    // stop() may have caught a run in progress: that one is abandoned (tested below); none other failed.
    const failed = history.filter(
      (run) => run.status === "failed" && !/^stopped before it finished/.test(run.message ?? ""),
    );
    assert.deepEqual(failed, []);
    assert.equal(running.lastError(), null);
  });

  test("a cron source runs at its times", async () => {
    const running = scheduler({
      cron: { url_env: "SHOP_URL", cron: "* * * * * *", tables: { [table]: { into: "by_cron" } } },
    });
    running.start();
    try {
      await eventually(async () => (await sources.catalog.loads({ table: "by_cron" })).length > 0, 5_000);
      assert.equal(await count("by_cron"), 3);
    } finally {
      await running.stop();
    }
  });

  test("stop() abandons a sync in progress: nothing of it is committed, and the history says so", async () => {
    const running = scheduler({ slow: { url_env: "SHOP_URL", every: "1h", tables: { [big]: null } } }, true);
    running.start();
    const staging = join(sources.dataDir, "landing", ".staging");
    await eventually(async () => existsSync(staging) && (await readdir(staging)).length > 0);
    await running.stop();
    const [last] = await sources.catalog.loads({ table: `slow_${big}` });
    assert.equal(last?.status, "failed");
    assert.equal(last?.message, "stopped before it finished; nothing was committed");
    assert.equal(await sources.catalog.tableSnapshot(`slow_${big}`), 0);
  });

  test("failing tables show in lastError() until they sync again", async () => {
    const running = scheduler({ broken: { url_env: "NOT_SET", every: "1h", tables: { [table]: null } } });
    running.start();
    await eventually(async () => running.lastError() !== null);
    assert.equal(
      running.lastError(),
      `broken.${table} failed: the environment variable NOT_SET (db_sources.broken.url_env) is not set: it holds the connection URL`,
    );
    await running.stop();
  });
});
