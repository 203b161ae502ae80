import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { EVENTS, loadSynthetic } from "../lake/test-support.js";
import type { ColumnProfile } from "./model.js";
import { lowCardinalityColumns, ROW_GROUP_ROWS, type SampleBlock, sampleBlocks } from "./profile.js";
import { tempQuality } from "./test-support.js";
import { QualityWatcher } from "./watcher.js";

const ORDERS = `order_id,status,amount,note,created_at
1,paid,20,first,2026-11-20T10:00:00Z
2,paid,30,,2026-11-21T10:00:00Z
3,new,40,a longer note,2026-11-22T10:00:00Z
4,,50,,2026-11-23T10:00:00Z
`;

const column = (columns: ColumnProfile[], name: string): ColumnProfile => {
  const found = columns.find((candidate) => candidate.name === name);
  assert.ok(found, `no column ${name}`);
  return found;
};

describe("profiles", () => {
  let ctx: Awaited<ReturnType<typeof tempQuality>>;
  const lake = () => ({ lakeRoot: join(ctx.dataDir, "lake"), catalog: ctx.catalog, engine: ctx.engine });

  before(async () => {
    ctx = await tempQuality({
      project: { "quality.yml": "orders:\n  - { type: schema_change }\n  - { type: row_count, min: 1 }\n" },
    });
  });
  after(() => ctx.close());

  test("a table's profile has per-column nulls, distinct values, ranges, lengths and top values", async () => {
    await ctx.load("orders", "orders.csv", ORDERS);
    const [profile] = await ctx.quality.profileTable("orders");
    assert.equal(profile?.rows, 4);
    assert.equal(profile.partition, "");
    const amount = column(profile.columns, "amount");
    assert.deepEqual(
      { min: amount.min, max: amount.max, mean: amount.mean, nulls: amount.nulls, distinct: amount.distinct },
      { min: 20, max: 50, mean: 35, nulls: 0, distinct: 4 },
    );
    assert.ok(Math.abs((amount.stddev ?? 0) - 12.909944) < 1e-5);
    const status = column(profile.columns, "status");
    assert.equal(status.nullPercent, 25);
    // Low-cardinality: the values with their counts (NULLs are counted in nullPercent).
    assert.deepEqual(status.topValues, [
      { value: "paid", count: 2 },
      { value: "new", count: 1 },
    ]);
    const note = column(profile.columns, "note");
    assert.deepEqual([note.minLength, note.maxLength, note.nullPercent], [5, 13, 50]);
    const created = column(profile.columns, "created_at");
    assert.equal(created.min, "2026-11-20 10:00:00+00");
    assert.equal(created.max, "2026-11-23 10:00:00+00");
  });

  test("an unchanged table is not profiled again; a changed one is, with history", async () => {
    assert.deepEqual(await ctx.quality.profileTable("orders"), []);
    await ctx.load(
      "orders",
      "more.csv",
      "order_id,status,amount,note,created_at\n5,paid,60,x,2026-11-24T10:00:00Z\n",
    );
    const [second] = await ctx.quality.profileTable("orders");
    assert.equal(second?.rows, 5);
    // Known to be low-cardinality from the first profile: counted in the same single pass.
    assert.deepEqual(column(second.columns, "status").topValues?.[0], { value: "paid", count: 3 });
    assert.deepEqual(
      ctx.quality.store.history("orders").map((profile) => profile.rows),
      [5, 4],
    );
  });

  test("a partitioned table is profiled per partition, only those whose rows changed", async () => {
    await ctx.catalog.ensureTable(EVENTS);
    await loadSynthetic(lake(), { count: 300, prefix: "a", perDay: 100 });
    const first = await ctx.quality.profileTable("events");
    assert.deepEqual(
      first.map((profile) => [profile.partition, profile.rows]),
      [
        ["2026-11-01", 100],
        ["2026-11-02", 100],
        ["2026-11-03", 100],
      ],
    );
    assert.equal(column(first[0]?.columns ?? [], "event").distinct, 5);
    await loadSynthetic(lake(), { count: 10, prefix: "b", perDay: 10 });
    const second = await ctx.quality.profileTable("events");
    assert.deepEqual(
      second.map((profile) => [profile.partition, profile.rows]),
      [["2026-11-01", 110]],
    );
  });

  test("the watcher profiles and checks after loads, and streaming partitions at most once per interval", async () => {
    const watcher = new QualityWatcher({
      quality: ctx.quality,
      catalog: ctx.catalog,
      streamingTables: ["events"],
      profiling: true,
      profileIntervalMs: 60_000,
    });
    await watcher.tick();
    assert.equal(watcher.lastError(), null);
    const checked = ctx.quality.store.results({ table: "orders", check: "row_count" });
    assert.equal(checked[0]?.trigger, "load");
    assert.equal(checked[0]?.status, "pass");

    // A load that adds a column: profiled, and schema_change sees the column added since the last profile.
    await ctx.load("orders", "coupon.csv", "order_id,status,amount,coupon\n6,paid,10,XMAS\n");
    await watcher.tick();
    const [changed] = ctx.quality.store.results({ table: "orders", check: "schema_change" });
    assert.equal(changed?.status, "fail");
    assert.match(changed.message, /added coupon \(VARCHAR\)/);
    await ctx.load("orders", "next.csv", "order_id,status,amount,coupon\n7,new,15,\n");
    await watcher.tick();
    assert.equal(ctx.quality.store.results({ table: "orders", check: "schema_change" })[0]?.status, "pass");

    // events partitions were profiled by the test above moments ago: a new load waits for the interval.
    const latestRows = () => ctx.quality.store.history("events", { partition: "2026-11-01" })[0]?.rows;
    assert.equal(latestRows(), 110);
    await loadSynthetic(lake(), { count: 5, prefix: "c", perDay: 5 });
    await watcher.tick();
    assert.equal(latestRows(), 110);
    await watcher.stop();

    const eager = new QualityWatcher({
      quality: ctx.quality,
      catalog: ctx.catalog,
      streamingTables: ["events"],
      profiling: true,
      profileIntervalMs: 0,
    });
    await eager.tick();
    await eager.stop();
    assert.equal(latestRows(), 115);
    // A streaming partition's history keeps the last profile of each hour.
    assert.equal(ctx.quality.store.history("events", { partition: "2026-11-01" }).length, 1);
    assert.equal(ctx.quality.store.history("orders").length, 4);

    // Old history goes, but never the latest profile of a partition or the latest result of a check.
    ctx.quality.store.prune(new Date(Date.now() + 60_000).toISOString());
    assert.equal(ctx.quality.store.history("orders").length, 1);
    assert.deepEqual(
      ctx.quality.store
        .results({ table: "orders" })
        .map((result) => result.check)
        .sort(),
      ["row_count", "schema_change"],
    );
  });
});

describe("profiles of large partitions", () => {
  test("are computed on a sample of row ranges spread over a large file, with exact row counts and scaled-up counts", async () => {
    const ctx = await tempQuality({ config: { profile_sample_rows: 5_000 } });
    try {
      await ctx.catalog.ensureTable(EVENTS);
      await loadSynthetic(
        { lakeRoot: join(ctx.dataDir, "lake"), catalog: ctx.catalog, engine: ctx.engine },
        { count: 30_000, prefix: "s", perDay: 30_000 },
      );
      const [profile] = await ctx.quality.profileTable("events");
      assert.equal(profile?.rows, 30_000);
      // 2048-row blocks, about one in six (30,000 / 5,000).
      assert.ok(profile.sampledRows && profile.sampledRows >= 4_000 && profile.sampledRows <= 7_000);
      const event = column(profile.columns, "event");
      assert.equal(event.distinct, 5);
      for (const top of event.topValues ?? [])
        assert.ok(Math.abs(top.count - 6_000) < 600, JSON.stringify(top));
      const id = column(profile.columns, "event_id");
      assert.ok(Math.abs((id.distinct ?? 0) - 30_000) < 3_000, `distinct ${id.distinct}`);
      assert.equal(column(profile.columns, "anonymous_id").nulls, 30_000);
      // The blocks span the file (its rows are one a second from midnight on): not one end of it.
      const ts = column(profile.columns, "ts");
      const seconds = (value: unknown) =>
        (Date.parse(String(value)) - Date.parse("2026-11-01T00:00:00Z")) / 1000;
      assert.ok(seconds(ts.min) < 6_000 && seconds(ts.max) > 24_000, `${ts.min} – ${ts.max}`);
    } finally {
      await ctx.close();
    }
  });

  test("read whole files, evenly spread, when a partition has many small ones", async () => {
    const ctx = await tempQuality({ config: { profile_sample_rows: 5_000 } });
    try {
      await ctx.catalog.ensureTable(EVENTS);
      const lake = { lakeRoot: join(ctx.dataDir, "lake"), catalog: ctx.catalog, engine: ctx.engine };
      for (let load = 0; load < 20; load++)
        await loadSynthetic(lake, {
          count: 1_500,
          prefix: `l${load}-`,
          perDay: 1_500,
          filePrefix: `load${load}`,
        });
      const [profile] = await ctx.quality.profileTable("events");
      assert.equal(profile?.rows, 30_000);
      assert.ok(profile.sampledRows && profile.sampledRows % 1_500 === 0, `sampled ${profile.sampledRows}`);
      assert.ok(
        profile.sampledRows >= 3_000 && profile.sampledRows <= 7_500,
        `sampled ${profile.sampledRows}`,
      );
      const event = column(profile.columns, "event");
      assert.deepEqual(
        event.topValues?.map((top) => [top.value, top.count]),
        ["e0", "e1", "e2", "e3", "e4"].map((value) => [value, 6_000]),
      );
      const user = column(profile.columns, "user_id");
      assert.ok(Math.abs((user.distinct ?? 0) - 97) <= 3, `distinct ${user.distinct}`);
      assert.deepEqual([user.nulls, user.minLength, user.maxLength], [0, 2, 3]);
      const id = column(profile.columns, "event_id");
      assert.ok(Math.abs((id.distinct ?? 0) - 30_000) < 3_000, `distinct ${id.distinct}`);
    } finally {
      await ctx.close();
    }
  });
});

describe("sample blocks", () => {
  const rows = (blocks: SampleBlock[] | null) => (blocks ?? []).reduce((sum, b) => sum + b.to - b.from, 0);

  test("are whole small files, evenly spread over them", () => {
    const files = Array.from({ length: 20 }, (_, index) => ({ path: `f${index}`, rows: 16_000 }));
    const blocks = sampleBlocks(files, 100_000) ?? [];
    assert.ok(blocks.every((block) => block.whole));
    assert.ok(Math.abs(rows(blocks) - 100_000) <= 16_000, `${rows(blocks)}`);
    const picked = blocks.map((block) => Number(block.path.slice(1)));
    assert.ok((picked[0] ?? 20) < 4 && (picked.at(-1) ?? 0) > 15, picked.join(" "));
    for (let index = 1; index < picked.length; index++) {
      const gap = (picked[index] ?? 0) - (picked[index - 1] ?? 0);
      assert.ok(gap >= 2 && gap <= 4, picked.join(" "));
    }
  });

  test("are row ranges of at most a row group, spread over a large file", () => {
    const blocks = sampleBlocks([{ path: "big", rows: 333_000 }], 100_000) ?? [];
    assert.ok(blocks.every((block) => !block.whole && block.to - block.from <= ROW_GROUP_ROWS));
    assert.ok(Math.abs(rows(blocks) - 100_000) <= 25_000, `${rows(blocks)}`);
    assert.ok((blocks[0]?.from ?? 333_000) < 60_000 && (blocks.at(-1)?.to ?? 0) > 280_000);
  });

  test("are none (read everything) when the rows fit the budget or there is none", () => {
    assert.equal(
      sampleBlocks(
        [
          { path: "a", rows: 60_000 },
          { path: "b", rows: 40_000 },
        ],
        100_000,
      ),
      null,
    );
    assert.equal(sampleBlocks([{ path: "a", rows: 1_000_000 }], 0), null);
  });
});

describe("low-cardinality columns", () => {
  test("are judged by the profile that saw most of a column's values, so a tiny partition cannot make an id column one", () => {
    const profile = (rows: number, distinct: Record<string, number>) => ({
      rows,
      columns: Object.entries(distinct).map(([name, count]) => ({
        name,
        type: "VARCHAR",
        nulls: 0,
        nullPercent: 0,
        distinct: count,
      })),
    });
    const columns = lowCardinalityColumns([
      profile(333_000, { event_id: 333_000, user_id: 40_000, event: 7 }),
      profile(12, { event_id: 12, user_id: 4, event: 3, country: 2 }),
    ]);
    assert.deepEqual([...columns].sort(), ["country", "event"]);
  });
});

describe("schedules", () => {
  test("a table's checks run on its schedule while the watcher runs, and stop with it", async () => {
    const ctx = await tempQuality({
      project: { "quality.yml": "orders:\n  every: 1s\n  checks:\n    - { type: row_count, min: 1 }\n" },
    });
    const watcher = new QualityWatcher({
      quality: ctx.quality,
      catalog: ctx.catalog,
      streamingTables: [],
      profiling: true,
      profileIntervalMs: 60_000,
      pollIntervalMs: 100,
    });
    try {
      await ctx.load("orders", "orders.csv", "id\n1\n");
      watcher.start();
      const scheduled = () =>
        ctx.quality.store.results({ table: "orders" }).filter((r) => r.trigger === "schedule");
      const deadline = Date.now() + 10_000;
      while (scheduled().length < 2 && Date.now() < deadline)
        await new Promise((resolve) => setTimeout(resolve, 100));
      assert.ok(scheduled().length >= 2, "two scheduled runs within 10 s");
      assert.equal(ctx.quality.store.results({ table: "orders" }).at(-1)?.trigger, "load");
      await watcher.stop();
      const count = scheduled().length;
      await new Promise((resolve) => setTimeout(resolve, 1_500));
      assert.equal(scheduled().length, count);
    } finally {
      await watcher.stop();
      await ctx.close();
    }
  });
});
