import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { tempSources } from "./test-support.js";

type Sources = Awaited<ReturnType<typeof tempSources>>;

describe("loading files: schema evolution, exactly once, replace", () => {
  let sources: Sources;
  before(async () => {
    sources = await tempSources();
  });
  after(async () => {
    await sources.close();
  });

  const count = async (table: string) =>
    Number((await sources.rows(`SELECT count(*) FROM ${table}`))[0]?.[0]);

  test("new columns are added (earlier rows read NULL) and types widen: int → bigint → double, date → timestamp", async () => {
    await sources.load("day1.csv", "id,qty,day\n1,5,2026-11-01\n", { table: "sales" });
    assert.deepEqual(await sources.types("sales"), { id: "INTEGER", qty: "INTEGER", day: "DATE" });

    const day2 = await sources.load(
      "day2.csv",
      "id,qty,day,region\n2,9000000000,2026-11-02 08:30:00,north\n",
      {
        table: "sales",
      },
    );
    assert.equal(
      day2.message,
      "loaded 1 row from day2.csv into sales (widened column qty from INTEGER to BIGINT; widened column day from DATE to TIMESTAMP; added column region (VARCHAR))",
    );
    assert.deepEqual(day2.run.changes, [
      "widened column qty from INTEGER to BIGINT",
      "widened column day from DATE to TIMESTAMP",
      "added column region (VARCHAR)",
    ]);

    const day3 = await sources.load("day3.csv", "qty,id\n2.5,3\n", { table: "sales" });
    assert.match(day3.message, /widened column qty from BIGINT to DOUBLE/);
    assert.deepEqual(await sources.types("sales"), {
      id: "INTEGER",
      qty: "DOUBLE",
      day: "TIMESTAMP",
      region: "VARCHAR",
    });
    assert.deepEqual(await sources.rows("SELECT id, qty, day::VARCHAR, region FROM sales ORDER BY id"), [
      [1, 5, "2026-11-01 00:00:00", null],
      [2, 9000000000, "2026-11-02 08:30:00", "north"],
      [3, 2.5, null, null],
    ]);
  });

  test("narrower values fit existing columns without changing them; text fits any column that is text", async () => {
    const outcome = await sources.load("day4.csv", "id,qty,region\n4,7,44\n", { table: "sales" });
    assert.equal(outcome.message, "loaded 1 row from day4.csv into sales");
    assert.deepEqual(await sources.rows("SELECT qty, region FROM sales WHERE id = 4"), [[7, "44"]]);
  });

  test("an incompatible file is rejected whole, naming the column and the first bad row; none of it is queryable", async () => {
    const before = await count("sales");
    const snapshot = await sources.catalog.tableSnapshot("sales");
    const outcome = await sources.load(
      "day5.csv",
      "id,qty,day\n5,1,2026-11-05\n6,two,2026-11-06\n7,three,x\n",
      {
        table: "sales",
      },
    );
    assert.equal(outcome.run.status, "failed");
    assert.equal(
      outcome.message,
      'day5.csv rejected: column "qty" is DOUBLE in table sales, but row 2 has "two", which is not a number',
    );
    assert.equal(await count("sales"), before);
    assert.equal(await sources.rows("SELECT * FROM sales WHERE id = 5").then((rows) => rows.length), 0);
    assert.equal(await sources.catalog.tableSnapshot("sales"), snapshot);
    const [last] = await sources.catalog.loads({ table: "sales", limit: 1 });
    assert.equal(last?.status, "failed");
    assert.equal(last?.message, outcome.message.replace("day5.csv rejected: ", ""));

    const dates = await sources.load("day6.csv", "id,day\n8,2026-11-08\n9,soon\n", { table: "sales" });
    assert.match(
      dates.message,
      /column "day" is TIMESTAMP in table sales, but row 2 has "soon", which is not a timestamp/,
    );
  });

  test("the same content is loaded once: a reload, under any name, is a no-op that says so", async () => {
    const before = await count("sales");
    const again = await sources.load("day1-copy.csv", "id,qty,day\n1,5,2026-11-01\n", { table: "sales" });
    assert.equal(again.run.status, "skipped");
    assert.match(
      again.message,
      /^day1-copy\.csv is already in table sales \(load #1 of day1\.csv at .+\): nothing to do$/,
    );
    assert.equal(await count("sales"), before);
    // Another table is another matter.
    const elsewhere = await sources.load("day1.csv", "id,qty,day\n1,5,2026-11-01\n", { table: "sales_copy" });
    assert.equal(elsewhere.run.status, "loaded");
  });

  test("replace swaps the whole table in one commit: readers see all before or all after", async () => {
    const lease = await sources.catalog.lease(60_000);
    const beforeFiles = lease.files("sales").map((file) => file.path);
    const outcome = await sources.load("full.csv", "sku,price\nA,1.50\nB,2.25\n", {
      table: "sales",
      mode: "replace",
    });
    assert.equal(outcome.message, "loaded 2 rows from full.csv into sales (replacing the previous rows)");
    assert.deepEqual(
      lease.files("sales").map((file) => file.path),
      beforeFiles,
      "a reader pinned before the replace keeps every old file",
    );
    await lease.release();
    const after = await sources.catalog.liveFiles("sales");
    assert.equal(after.length, 1);
    assert.ok(!beforeFiles.includes(after[0]?.path ?? ""));
    assert.deepEqual(await sources.types("sales"), { sku: "VARCHAR", price: "DECIMAL(18,2)" });
    assert.deepEqual(await sources.rows("SELECT sku, price FROM sales ORDER BY sku"), [
      ["A", 1.5],
      ["B", 2.25],
    ]);
    // Content that a replace took out of the table may be loaded again.
    const back = await sources.load("day1.csv", "id,qty,day\n1,5,2026-11-01\n", { table: "sales" });
    assert.equal(back.run.status, "loaded", back.message);
    assert.equal(await count("sales"), 3);
    // Replacing with the content that is the whole table is a no-op too.
    const same = await sources.load("full.csv", "sku,price\nA,1.50\nB,2.25\n", {
      table: "sales",
      mode: "replace",
    });
    assert.equal(same.run.status, "skipped");
  });

  test("loads into one table at the same time all land: a commit that lost the race is redone", async () => {
    const files = Array.from({ length: 4 }, (_, i) => [`part${i}.csv`, `n,part${i}\n${i},x\n`] as const);
    const outcomes = await Promise.all(
      files.map(([name, content]) => sources.load(name, content, { table: "race" })),
    );
    assert.deepEqual(
      outcomes.map((outcome) => outcome.run.status),
      ["loaded", "loaded", "loaded", "loaded"],
    );
    assert.equal(await count("race"), 4);
    assert.deepEqual(Object.keys(await sources.types("race")).sort(), [
      "n",
      "part0",
      "part1",
      "part2",
      "part3",
    ]);
  });

  test("a column that no file holds yet (added by a header-only file) reads as NULL", async () => {
    await sources.load("a.csv", "id\n1\n", { table: "sparse" });
    const empty = await sources.load("b.csv", "id,note\n", { table: "sparse" });
    assert.equal(empty.message, "loaded 0 rows from b.csv into sparse (added column note (VARCHAR))");
    assert.deepEqual(await sources.rows("SELECT id, note FROM sparse"), [[1, null]]);
  });
});
