import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, readdir, readFile, utimes, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { LandingWatcher, landingPath } from "./index.js";
import { tempSources } from "./test-support.js";

type Sources = Awaited<ReturnType<typeof tempSources>>;

/** Polls until `check` returns true (or fails after `timeoutMs`). */
async function eventually(check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

describe("landing folder", () => {
  let sources: Sources;
  let webhook: Server;
  const received: Record<string, unknown>[] = [];
  let watcher: LandingWatcher;
  let orders: string;

  before(async () => {
    webhook = createServer((request, response) => {
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
    const address = webhook.address();
    const port = typeof address === "object" && address ? address.port : 0;
    sources = await tempSources({ load_webhook_url: `http://127.0.0.1:${port}/hook` });
    watcher = new LandingWatcher({
      dataDir: sources.dataDir,
      catalog: sources.catalog,
      engine: sources.engine,
      config: sources.config,
    });
    orders = join(landingPath(sources.dataDir), "orders");
    await mkdir(orders, { recursive: true });
  });
  after(async () => {
    await watcher.stop();
    await sources.close();
    await new Promise((resolve) => webhook.close(resolve));
  });

  test("a file dropped into landing/<table>/ is loaded, moved to _done/, and reported to the webhook", async () => {
    watcher.start();
    await writeFile(join(orders, "monday.csv"), "order_id,amount\n1,9.90\n2,15.00\n");
    await eventually(() => existsSync(join(orders, "_done", "monday.csv")));
    assert.ok(!existsSync(join(orders, "monday.csv")));
    assert.deepEqual(await sources.rows("SELECT order_id, amount FROM orders ORDER BY 1"), [
      [1, 9.9],
      [2, 15],
    ]);
    await eventually(() => received.length === 1);
    assert.equal(received[0]?.event, "load.loaded");
    assert.equal(received[0]?.table, "orders");
    assert.equal(received[0]?.file, "monday.csv");
    assert.equal(received[0]?.rows, 2);
    assert.equal(received[0]?.origin, "landing");
  });

  test("a rejected file goes to _failed/ with the reason beside it; nothing of it is loaded", async () => {
    await writeFile(join(orders, "tuesday.csv"), "order_id,amount\n3,1.00\n4,lots\n");
    await eventually(() => existsSync(join(orders, "_failed", "tuesday.csv.error.txt")));
    assert.ok(existsSync(join(orders, "_failed", "tuesday.csv")));
    assert.equal(
      await readFile(join(orders, "_failed", "tuesday.csv.error.txt"), "utf8"),
      'tuesday.csv rejected: column "amount" is DECIMAL(18,2) in table orders, but row 2 has "lots", which is not a number with at most 2 decimal places\n',
    );
    assert.equal((await sources.rows("SELECT count(*) FROM orders"))[0]?.[0], 2);
    await eventually(() => received.some((hook) => hook.event === "load.failed"));
  });

  test("the same content again is moved to _done/ under a new name and loads nothing", async () => {
    await writeFile(join(orders, "monday.csv"), "order_id,amount\n1,9.90\n2,15.00\n");
    await eventually(async () => (await readdir(join(orders, "_done"))).length === 2);
    assert.ok(!existsSync(join(orders, "monday.csv")));
    assert.equal((await sources.rows("SELECT count(*) FROM orders"))[0]?.[0], 2);
    const [last] = await sources.catalog.loads({ table: "orders", limit: 1 });
    assert.equal(last?.status, "skipped");
    assert.equal(last?.origin, "landing");
  });

  test("a folder that is not a valid table name fails its files with the reason", async () => {
    const folder = join(landingPath(sources.dataDir), "Weekly Sales");
    await mkdir(folder);
    await writeFile(join(folder, "w1.csv"), "a\n1\n");
    await eventually(() => existsSync(join(folder, "_failed", "w1.csv.error.txt")));
    assert.match(
      await readFile(join(folder, "_failed", "w1.csv.error.txt"), "utf8"),
      /not a valid table name/,
    );
  });

  test("a file still being written waits; hidden and partial files are left alone; stop() stops", async () => {
    await watcher.stop();
    const direct = new LandingWatcher({
      dataDir: sources.dataDir,
      catalog: sources.catalog,
      engine: sources.engine,
      config: sources.config,
    });
    await writeFile(join(orders, "wednesday.csv"), "order_id,amount\n5,1.00\n");
    await writeFile(join(orders, ".hidden.csv"), "order_id\n6\n");
    await writeFile(join(orders, "big.csv.part"), "order_id\n7\n");
    assert.deepEqual(await direct.scanOnce(), [], "first seen: wait for the next look");
    await writeFile(join(orders, "wednesday.csv"), "order_id,amount\n5,1.00\n6,2.00\n");
    assert.deepEqual(await direct.scanOnce(), [], "changed since: wait again");
    const outcomes = await direct.scanOnce();
    assert.deepEqual(
      outcomes.map((outcome) => outcome.message),
      ["loaded 2 rows from wednesday.csv into orders"],
    );
    assert.ok(existsSync(join(orders, ".hidden.csv")));
    assert.ok(existsSync(join(orders, "big.csv.part")));
  });

  test("at start, Parquet files a crashed load wrote but never committed are removed once an hour old", async () => {
    const lake = join(sources.dataDir, "lake", "orders");
    const live = (await sources.catalog.liveFiles("orders")).map((file) =>
      join(sources.dataDir, "lake", file.path),
    );
    await writeFile(join(lake, "load-crashed.parquet"), "x");
    await writeFile(join(lake, "load-in-progress.parquet"), "x");
    const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
    await utimes(join(lake, "load-crashed.parquet"), twoHoursAgo, twoHoursAgo);
    for (const path of live) await utimes(path, twoHoursAgo, twoHoursAgo);
    const restarted = new LandingWatcher({
      dataDir: sources.dataDir,
      catalog: sources.catalog,
      engine: sources.engine,
      config: sources.config,
    });
    restarted.start();
    await eventually(() => !existsSync(join(lake, "load-crashed.parquet")));
    await restarted.stop();
    assert.ok(
      existsSync(join(lake, "load-in-progress.parquet")),
      "a file another load may still commit stays",
    );
    for (const path of live) assert.ok(existsSync(path), "committed files stay");
    assert.equal(restarted.lastError(), null);
  });
});
