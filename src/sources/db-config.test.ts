import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ConfigError, type DbSourceConfig, loadConfig } from "../config/index.js";
import { parseDbSources, parseDuration, selectTables } from "./db-config.js";

const parse = (yaml: Record<string, unknown>) => parseDbSources(yaml as Record<string, DbSourceConfig>);
const fails = (yaml: Record<string, unknown>, message: string | RegExp) =>
  assert.throws(
    () => parse(yaml),
    (error: Error) => {
      assert.ok(error instanceof ConfigError);
      if (typeof message === "string") assert.equal(error.message, message);
      else assert.match(error.message, message);
      return true;
    },
  );

describe("db_sources configuration", () => {
  test("sluice.yaml and SLUICE_DB_SOURCES give the sources; tables default to full copies into <source>_<table>", async () => {
    const dir = await mkdtemp(join(tmpdir(), "sluice-db-config-"));
    try {
      await writeFile(
        join(dir, "sluice.yaml"),
        `db_sources:
  shop:
    url_env: SHOP_URL
    every: 5m
    tables:
      customers:
      public.Orders: { watermark: updated_at, primary_key: [id, line], lookback: 10m, into: orders }
      events: { mode: incremental, watermark: id, lookback: 100 }
`,
      );
      const config = loadConfig({ env: {}, overrides: { data_dir: dir } });
      const [shop] = parseDbSources(config.db_sources);
      assert.equal(shop?.urlEnv, "SHOP_URL");
      assert.deepEqual(shop?.schedule, { everyMs: 300_000 });
      assert.deepEqual(
        shop?.tables.map((table) => [
          table.table,
          table.into,
          table.mode,
          table.watermark,
          table.primaryKey,
          table.lookback,
        ]),
        [
          ["customers", "shop_customers", "full", null, null, null],
          ["public.Orders", "orders", "incremental", "updated_at", ["id", "line"], { micros: 600_000_000 }],
          ["events", "shop_events", "incremental", "id", null, { amount: 100 }],
        ],
      );
      const fromEnv = loadConfig({
        env: {
          SLUICE_DB_SOURCES:
            '{"crm": {"url_env": "CRM_URL", "cron": "0 * * * *", "tables": {"deals": null}}}',
        },
        overrides: { data_dir: dir },
      });
      assert.deepEqual(parseDbSources(fromEnv.db_sources)[0]?.schedule, { cron: "0 * * * *" });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test("mistakes are one ConfigError naming the key", () => {
    fails({ shop: { tables: { a: null } } }, /^db_sources\.shop\.url_env must name the environment variable/);
    fails(
      { shop: { url: "postgres://…", url_env: "X", tables: { a: null } } },
      'db_sources.shop: unknown key "url" (use url_env, every, cron, tables)',
    );
    fails({ shop: { url_env: "X", tables: {} } }, "db_sources.shop.tables lists no table");
    fails(
      { shop: { url_env: "X", tables: { a: { mode: "incremental" } } } },
      /^db_sources\.shop\.tables\.a: an incremental table needs a watermark column/,
    );
    fails(
      { shop: { url_env: "X", tables: { a: { mode: "merge" } } } },
      'db_sources.shop.tables.a.mode must be full or incremental, not "merge"',
    );
    fails(
      { shop: { url_env: "X", every: "often", tables: { a: null } } },
      "db_sources.shop.every must be a duration such as 30s, 5m, 1h or 1d",
    );
    fails(
      { shop: { url_env: "X", cron: "61 * * * *", tables: { a: null } } },
      /^db_sources\.shop\.cron "61 \* \* \* \*" is not a cron expression/,
    );
    fails(
      { shop: { url_env: "X", every: "5m", cron: "* * * * *", tables: { a: null } } },
      "db_sources.shop: set every or cron, not both",
    );
    fails(
      { shop: { url_env: "X", tables: { a: { into: "Bad Name" } } } },
      /^db_sources\.shop\.tables\.a\.into: "Bad Name" is not a valid table name/,
    );
    fails(
      { shop: { url_env: "X", tables: { a: { watermark: "t", lookback: "soon" } } } },
      /lookback must be a duration/,
    );
    fails(
      {
        shop: { url_env: "X", tables: { a: null } },
        shop2: { url_env: "Y", tables: { a: { into: "shop_a" } } },
      },
      'db_sources: shop2.a and shop.a both go into table shop_a: give one of them another "into"',
    );
  });

  test("a sync target names every table, a source's, or one table", () => {
    const sources = parse({
      shop: { url_env: "X", tables: { "public.orders": null, customers: null } },
      crm: { url_env: "Y", tables: { deals: null } },
    });
    const names = (target?: string) =>
      selectTables(sources, target).map((table) => `${table.source}.${table.table}`);
    assert.deepEqual(names(), ["shop.public.orders", "shop.customers", "crm.deals"]);
    assert.deepEqual(names("shop"), ["shop.public.orders", "shop.customers"]);
    assert.deepEqual(names("shop.orders"), ["shop.public.orders"]);
    assert.deepEqual(names("shop.public.orders"), ["shop.public.orders"]);
    assert.deepEqual(names("crm_deals"), ["crm.deals"], "or by its lake table");
  });

  test("durations", () => {
    assert.deepEqual(
      ["500ms", "30s", "5m", "1.5h", "2d"].map(parseDuration),
      [500, 30_000, 300_000, 5_400_000, 172_800_000],
    );
    assert.deepEqual(["", "5", "0s", "5 minutes"].map(parseDuration), [null, null, null, null]);
  });
});
