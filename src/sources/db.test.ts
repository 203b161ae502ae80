import assert from "node:assert/strict";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { type TestDatabase, tempDbSync, testDatabase, uniqueName } from "./test-support.js";

type Lake = Awaited<ReturnType<typeof tempDbSync>>;

/** What differs between the two servers in the statements these tests run. */
const DIALECTS = {
  postgres: {
    text: "text",
    timestamp: "timestamp",
    retype: (table: string, column: string, type: string) =>
      `ALTER TABLE ${table} ALTER COLUMN ${column} TYPE ${type}`,
  },
  mysql: {
    text: "varchar(100)",
    timestamp: "datetime(6)",
    retype: (table: string, column: string, type: string) => `ALTER TABLE ${table} MODIFY ${column} ${type}`,
  },
} as const;

for (const kind of ["postgres", "mysql"] as const) {
  const dialect = DIALECTS[kind];

  describe(`syncing ${kind} tables`, () => {
    let db: TestDatabase;
    let lake: Lake;
    const orders = uniqueName("orders");
    const customers = uniqueName("customers");
    const ordersLake = `shop_${orders}`;
    const customersLake = `shop_${customers}`;

    before(async () => {
      db = await testDatabase(kind);
      await db.exec(
        `CREATE TABLE ${orders} (id integer PRIMARY KEY, item ${dialect.text}, qty integer, updated_at ${dialect.timestamp})`,
      );
      await db.exec(`CREATE TABLE ${customers} (id integer PRIMARY KEY, name ${dialect.text})`);
      lake = await tempDbSync(
        {
          shop: {
            url_env: "SHOP_URL",
            tables: {
              [orders]: { watermark: "updated_at", primary_key: "id" },
              [customers]: null,
            },
          },
        },
        { SHOP_URL: db.url },
        // Small batches, so that every read spans several batches and staged parts.
        { batchRows: 3 },
      );
    });
    after(async () => {
      await db.exec(`DROP TABLE IF EXISTS ${orders}`);
      await db.exec(`DROP TABLE IF EXISTS ${customers}`);
      await db.close();
      await lake.close();
    });

    const sync = async (target: string) => {
      const [outcome] = await lake.run(target);
      assert.ok(outcome);
      return outcome;
    };
    const ordersRows = () =>
      lake.rows(
        `SELECT id, item, qty, strftime(updated_at, '%Y-%m-%d %H:%M:%S') FROM ${ordersLake} ORDER BY id`,
      );

    test("a full copy replaces the lake table with the source's rows on every run; an unchanged source is a no-op", async () => {
      const values = Array.from({ length: 25 }, (_, i) => `(${i + 1}, 'customer ${i + 1}')`);
      await db.exec(`INSERT INTO ${customers} (id, name) VALUES ${values.join(", ")}`);
      const first = await sync(`shop.${customers}`);
      assert.equal(first.run.status, "loaded", first.message);
      assert.equal(first.message, `synced shop.${customers} into ${customersLake}: 25 rows`);
      assert.equal(first.run.mode, "replace");
      assert.deepEqual(
        await lake.rows(`SELECT count(*), count(DISTINCT id), max(name) FROM ${customersLake}`),
        [[25, 25, "customer 9"]],
      );

      await db.exec(`DELETE FROM ${customers} WHERE id > 20`);
      await db.exec(`UPDATE ${customers} SET name = 'renamed' WHERE id = 1`);
      const second = await sync(`shop.${customers}`);
      assert.equal(
        second.message,
        `synced shop.${customers} into ${customersLake}: 20 rows, replacing the previous rows`,
      );
      assert.deepEqual(await lake.rows(`SELECT count(*), min(name) FROM ${customersLake}`), [
        [20, "customer 10"],
      ]);
      assert.deepEqual(await lake.rows(`SELECT name FROM ${customersLake} WHERE id = 1`), [["renamed"]]);

      const third = await sync(`shop.${customers}`);
      assert.equal(third.run.status, "skipped");
      assert.equal(third.message, `shop.${customers} has not changed since the last sync: nothing to do`);
      assert.equal((await lake.catalog.liveFiles(customersLake)).length, 1);
    });

    test("an incremental sync reads rows past the bookmark and merges them by key: a changed row replaces its old version", async () => {
      await db.exec(
        `INSERT INTO ${orders} (id, item, qty, updated_at) VALUES
          (1, 'apple', 5, '2026-11-01 10:00:00'), (2, 'pear', 1, '2026-11-01 11:00:00'),
          (3, 'plum', 7, '2026-11-01 12:00:00'), (4, 'fig', 2, NULL)`,
      );
      const first = await sync(`shop.${orders}`);
      assert.equal(first.run.mode, "merge");
      assert.equal(
        first.message,
        `synced shop.${orders} into ${ordersLake}: read 4 rows: 4 new, 0 updated (bookmark updated_at = 2026-11-01 12:00:00.000000)`,
      );
      assert.equal(first.run.rows, 4);

      await db.exec(`UPDATE ${orders} SET qty = 6, updated_at = '2026-11-02 09:00:00' WHERE id = 1`);
      await db.exec(
        `INSERT INTO ${orders} (id, item, qty, updated_at) VALUES (5, 'kiwi', 3, '2026-11-02 08:00:00')`,
      );
      const second = await sync(`shop.${orders}`);
      assert.equal(
        second.message,
        `synced shop.${orders} into ${ordersLake}: read 3 rows: 1 new, 1 updated (bookmark updated_at = 2026-11-02 09:00:00.000000)`,
        "reads rows at or past the bookmark (plum again), merges the two that changed",
      );
      assert.deepEqual(await ordersRows(), [
        [1, "apple", 6, "2026-11-02 09:00:00"],
        [2, "pear", 1, "2026-11-01 11:00:00"],
        [3, "plum", 7, "2026-11-01 12:00:00"],
        [4, "fig", 2, null],
        [5, "kiwi", 3, "2026-11-02 08:00:00"],
      ]);
      const history = await lake.catalog.loads({ table: ordersLake });
      assert.deepEqual(
        history.map((run) => [run.status, run.origin, run.file, run.rows]),
        [
          ["loaded", "sync", `shop.${orders}`, 3],
          ["loaded", "sync", `shop.${orders}`, 4],
        ],
      );
    });

    test("rows that share the last watermark value are not lost; a rerun with nothing new changes nothing", async () => {
      // Committed after the last sync with the same updated_at as the bookmark.
      await db.exec(
        `INSERT INTO ${orders} (id, item, qty, updated_at) VALUES (6, 'lime', 4, '2026-11-02 09:00:00')`,
      );
      const shared = await sync(`shop.${orders}`);
      assert.equal(shared.message, `synced shop.${orders} into ${ordersLake}: read 2 rows: 1 new, 0 updated`);
      assert.deepEqual(await lake.rows(`SELECT item FROM ${ordersLake} WHERE id = 6`), [["lime"]]);

      const snapshot = await lake.catalog.tableSnapshot(ordersLake);
      const again = await sync(`shop.${orders}`);
      assert.equal(again.run.status, "skipped");
      assert.equal(
        again.message,
        `nothing new in shop.${orders} since updated_at 2026-11-02 09:00:00.000000 (2 rows read again, unchanged)`,
      );
      assert.equal(await lake.catalog.tableSnapshot(ordersLake), snapshot);
      assert.deepEqual(await lake.rows(`SELECT count(*), count(DISTINCT id) FROM ${ordersLake}`), [[6, 6]]);
    });

    test("schema drift: a new column is added, a widened one widens, an incompatible change is rejected", async () => {
      await db.exec(`ALTER TABLE ${orders} ADD COLUMN region ${dialect.text}`);
      await db.exec(dialect.retype(orders, "qty", "bigint"));
      await db.exec(
        `INSERT INTO ${orders} (id, item, qty, updated_at, region) VALUES (7, 'date', 9000000000, '2026-11-03 10:00:00', 'north')`,
      );
      const drift = await sync(`shop.${orders}`);
      assert.equal(drift.run.status, "loaded", drift.message);
      assert.deepEqual(drift.run.changes, [
        "widened column qty from INTEGER to BIGINT",
        "added column region (VARCHAR)",
      ]);
      assert.deepEqual(await lake.types(ordersLake), {
        id: "INTEGER",
        item: "VARCHAR",
        qty: "BIGINT",
        updated_at: "TIMESTAMP",
        region: "VARCHAR",
      });
      assert.deepEqual(
        await lake.rows(`SELECT id, qty, region FROM ${ordersLake} WHERE id IN (1, 7) ORDER BY id`),
        [
          [1, 6, null],
          [7, 9000000000, "north"],
        ],
      );

      await db.exec(dialect.retype(orders, "qty", dialect.text));
      const snapshot = await lake.catalog.tableSnapshot(ordersLake);
      const rejected = await sync(`shop.${orders}`);
      assert.equal(rejected.run.status, "failed");
      assert.equal(
        rejected.message,
        `shop.${orders} failed: column "qty" is BIGINT in table ${ordersLake}, but the source's qty is now VARCHAR, which does not widen to it: run \`sluice sync shop.${orders} --full-refresh\` to rebuild the table with the source's types`,
      );
      assert.equal(await lake.catalog.tableSnapshot(ordersLake), snapshot, "nothing committed");

      const [rebuilt] = await lake.run(`shop.${orders}`, { fullRefresh: true });
      assert.equal(rebuilt?.run.status, "loaded", rebuilt?.message);
      assert.deepEqual(rebuilt?.run.changes, ["changed column qty from BIGINT to VARCHAR"]);
      assert.deepEqual(await lake.rows(`SELECT count(*), max(qty) FROM ${ordersLake}`), [[7, "9000000000"]]);
      const [after] = await lake.run(`shop.${orders}`);
      assert.equal(after?.run.status, "skipped", "the full refresh stored the bookmark");
    });

    test("a lookback re-reads rows committed late behind the bookmark, by time or by id", async () => {
      const byTime = uniqueName("late_at");
      const byId = uniqueName("late_id");
      await db.exec(`CREATE TABLE ${byTime} (id integer PRIMARY KEY, at ${dialect.timestamp})`);
      await db.exec(`CREATE TABLE ${byId} (id integer PRIMARY KEY, note ${dialect.text})`);
      const late = await tempDbSync(
        {
          late: {
            url_env: "SHOP_URL",
            tables: {
              [byTime]: { watermark: "at", lookback: "1h", into: "by_time" },
              [byId]: { watermark: "id", lookback: 5, into: "by_id" },
            },
          },
        },
        { SHOP_URL: db.url },
      );
      try {
        await db.exec(`INSERT INTO ${byTime} VALUES (1, '2026-11-01 10:00:00'), (2, '2026-11-01 12:00:00')`);
        await db.exec(`INSERT INTO ${byId} VALUES (1, 'a'), (2, 'b'), (3, 'c'), (4, 'd'), (10, 'j')`);
        await late.run();
        // Rows whose transactions began before the last sync but committed after it.
        await db.exec(`INSERT INTO ${byTime} VALUES (3, '2026-11-01 11:30:00'), (4, '2026-11-01 09:00:00')`);
        await db.exec(`INSERT INTO ${byId} VALUES (6, 'f'), (9, 'i')`);
        const [time, id] = await late.run();
        assert.equal(time?.message, `synced late.${byTime} into by_time: read 2 rows: 1 new, 0 updated`);
        assert.equal(id?.message, `synced late.${byId} into by_id: read 3 rows: 2 new, 0 updated`);
        assert.deepEqual(
          await late.rows("SELECT list(id ORDER BY id) FROM by_time"),
          [[[1, 2, 3]]],
          "09:00 is beyond the hour",
        );
        assert.deepEqual(await late.rows("SELECT list(id ORDER BY id) FROM by_id"), [
          [[1, 2, 3, 4, 6, 9, 10]],
        ]);
      } finally {
        await late.close();
        await db.exec(`DROP TABLE IF EXISTS ${byTime}`);
        await db.exec(`DROP TABLE IF EXISTS ${byId}`);
      }
    });

    test("a bad URL, a missing table or an unset variable fails the run with a clear reason", async () => {
      const broken = await tempDbSync(
        {
          down: { url_env: "DOWN_URL", tables: { [orders]: null } },
          missing: { url_env: "SHOP_URL", tables: { no_such_table: null } },
          unset: { url_env: "UNSET_URL", tables: { [orders]: null } },
          nonsense: { url_env: "NONSENSE_URL", tables: { [orders]: null } },
        },
        {
          DOWN_URL: db.url.replace(/:\d+\//, ":1/").replace("//", "//someone:secret@"),
          SHOP_URL: db.url,
          NONSENSE_URL: "oracle://db.example.com/orders",
        },
      );
      try {
        const [down, missing, unset, nonsense] = await broken.run();
        assert.equal(down?.run.status, "failed");
        assert.match(
          down?.message ?? "",
          new RegExp(
            `^down\\.${orders} failed: cannot connect to ${kind === "postgres" ? "postgres" : "mysql"}://someone:\\*\\*\\*@127\\.0\\.0\\.1:1/test: .*ECONNREFUSED`,
          ),
        );
        assert.doesNotMatch(down?.message ?? "", /secret/);
        assert.match(
          missing?.message ?? "",
          /^missing\.no_such_table failed: no table (test\.)?no_such_table in /,
        );
        assert.equal(
          unset?.message,
          `unset.${orders} failed: the environment variable UNSET_URL (db_sources.unset.url_env) is not set: it holds the connection URL`,
        );
        assert.equal(
          nonsense?.message,
          `nonsense.${orders} failed: "oracle://db.example.com/orders" is not a postgres://, postgresql://, mysql:// or mariadb:// URL`,
        );
        const history = await broken.catalog.loads();
        assert.deepEqual(
          history.map((run) => run.status),
          ["failed", "failed", "failed", "failed"],
        );
      } finally {
        await broken.close();
      }
    });
  });
}

describe("sync runs and the webhook", () => {
  test("every run, loaded, skipped or failed, is POSTed to load_webhook_url like a file load", async () => {
    const received: { event: string; file: string; mode: string; origin: string }[] = [];
    const webhook = createServer((request, response) => {
      let body = "";
      request.on("data", (chunk) => {
        body += chunk;
      });
      request.on("end", () => {
        received.push(JSON.parse(body));
        response.end();
      });
    });
    await new Promise<void>((resolve) => webhook.listen(0, "127.0.0.1", resolve));
    const db = await testDatabase("postgres");
    const table = uniqueName("hooked");
    await db.exec(`CREATE TABLE ${table} (id integer PRIMARY KEY)`);
    const lake = await tempDbSync(
      {
        shop: { url_env: "SHOP_URL", tables: { [table]: null } },
        gone: { url_env: "GONE_URL", tables: { x: null } },
      },
      { SHOP_URL: db.url },
      { webhookUrl: `http://127.0.0.1:${(webhook.address() as AddressInfo).port}/hook` },
    );
    try {
      await lake.run("shop");
      await lake.run("shop");
      await lake.run("gone");
      assert.deepEqual(
        received.map((body) => [body.event, body.file, body.mode, body.origin]),
        [
          ["load.loaded", `shop.${table}`, "replace", "sync"],
          ["load.skipped", `shop.${table}`, "replace", "sync"],
          ["load.failed", "gone.x", "replace", "sync"],
        ],
      );
    } finally {
      await lake.close();
      await db.exec(`DROP TABLE IF EXISTS ${table}`);
      await db.close();
      webhook.close();
    }
  });
});
