import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { EVENTS, loadSynthetic, tempLake } from "../lake/test-support.js";
import { QueryError } from "./index.js";

/** Sums "Total Files Read: n" over the scans of an EXPLAIN ANALYZE plan. */
const filesRead = (plan: string): number =>
  [...plan.matchAll(/Total Files Read: (\d+)/g)].reduce((sum, match) => sum + Number(match[1]), 0);

describe("warehouse", () => {
  test("an empty table is queryable with its canonical columns", async () => {
    const lake = await tempLake();
    try {
      const result = await lake.warehouse.query("SELECT * FROM events");
      assert.deepEqual(result.rows, []);
      assert.deepEqual(
        result.columns.map((c) => c.name),
        [...EVENTS.columns.map((c) => c.name), "dt"],
      );
    } finally {
      await lake.close();
    }
  });

  test("results are typed JSON; JSON columns answer ->> ; SQL errors are QueryErrors", async () => {
    const lake = await tempLake();
    try {
      const files = await loadSynthetic(lake, { count: 300, prefix: "a", perDay: 100 });
      assert.equal(files.length, 3, "one file per UTC day");
      assert.deepEqual(
        files.map((f) => f.partition),
        ["2026-11-01", "2026-11-02", "2026-11-03"],
      );
      const result = await lake.warehouse.query(
        "SELECT dt, count(*) AS n, sum((properties->>'price')::INT) AS revenue, min(ts) AS first FROM events GROUP BY 1 ORDER BY 1",
      );
      assert.deepEqual(result.columns, [
        { name: "dt", type: "DATE" },
        { name: "n", type: "BIGINT" },
        { name: "revenue", type: "HUGEINT" },
        { name: "first", type: "TIMESTAMP WITH TIME ZONE" },
      ]);
      assert.deepEqual(result.rows[0], ["2026-11-01", 100, 4950, "2026-11-01 00:00:00+00"]);
      await assert.rejects(lake.warehouse.query("SELECT nope FROM events"), QueryError);
      const capped = await lake.warehouse.query("SELECT * FROM events", { maxRows: 7 });
      assert.equal(capped.rows.length, 7);
      assert.equal(capped.truncated, true);
    } finally {
      await lake.close();
    }
  });

  test("filters on dt or ts read only the matching partitions", async () => {
    const lake = await tempLake();
    try {
      await loadSynthetic(lake, { count: 500, prefix: "a", perDay: 100 });
      const byDt = await lake.warehouse.query(
        "EXPLAIN ANALYZE SELECT count(*) FROM events WHERE dt = DATE '2026-11-02'",
      );
      assert.equal(filesRead(byDt.rows.map((row) => row.join("\n")).join("\n")), 1);
      const byTs = await lake.warehouse.query(
        "EXPLAIN ANALYZE SELECT count(*) FROM events WHERE ts >= TIMESTAMPTZ '2026-11-03 00:00:10Z' AND ts < TIMESTAMPTZ '2026-11-03 00:00:50Z'",
      );
      assert.equal(filesRead(byTs.rows.map((row) => row.join("\n")).join("\n")), 1);
      // Without a constant bound on ts, one scan over all files is cheaper than one per day.
      const unbounded = await lake.warehouse.query(
        "EXPLAIN SELECT count(*) FROM events a JOIN events b ON a.event_id = b.event_id AND b.ts > a.ts",
      );
      const withoutTs = await lake.warehouse.query(
        "EXPLAIN SELECT count(*) FROM events a JOIN events b ON a.event_id = b.event_id",
      );
      const scans = (result: { rows: unknown[][] }) =>
        result.rows
          .map((row) => row.join("\n"))
          .join("\n")
          .match(/READ_PARQUET/g)?.length;
      assert.equal(scans(unbounded), scans(withoutTs), "a join on ts keeps one scan per side");
      const counts = await lake.warehouse.query(
        "SELECT (SELECT count(*) FROM events WHERE dt = DATE '2026-11-02'), (SELECT count(*) FROM events WHERE ts >= TIMESTAMPTZ '2026-11-03 00:00:00Z' AND ts < TIMESTAMPTZ '2026-11-04 00:00:00Z'), (SELECT count(*) FROM events)",
      );
      assert.deepEqual(counts.rows, [[100, 100, 500]]);
    } finally {
      await lake.close();
    }
  });
});
