import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { EVENTS, loadSynthetic, tempLake } from "../lake/test-support.js";
import { QueryError, sqlString } from "./index.js";

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
      // Five days, 2026-11-01 to 2026-11-05, one file each.
      await loadSynthetic(lake, { count: 500, prefix: "a", perDay: 100 });
      const read = async (sql: string) => {
        const plan = await lake.warehouse.query(`EXPLAIN ANALYZE ${sql}`);
        return filesRead(plan.rows.map((row) => row.join("\n")).join("\n"));
      };
      assert.equal(await read("SELECT count(*) FROM events WHERE dt = DATE '2026-11-02'"), 1);
      // A bound on ts reads its days and one on either side (now() moves while a query starts).
      const nov3In = (ts: string) =>
        `${ts} >= TIMESTAMPTZ '2026-11-03 00:00:10Z' AND ${ts} < TIMESTAMPTZ '2026-11-03 00:00:50Z'`;
      const nov3 = nov3In("ts");
      assert.equal(await read(`SELECT count(*) FROM events WHERE ${nov3}`), 3);
      assert.equal(await read(`SELECT count(*) FROM events e WHERE event = 'e1' AND ${nov3In("e.ts")}`), 3);
      assert.equal(
        await read("SELECT count(*) FROM events WHERE ts BETWEEN '2026-11-05' AND '2026-11-06'"),
        2,
      );
      assert.equal(
        await read("SELECT count(*) FROM events WHERE TIMESTAMPTZ '2026-11-04 12:00:00Z' < ts"),
        3,
      );
      // No day in range: only the table's empty file, which gives the view its columns.
      assert.equal(await read("SELECT count(*) FROM events WHERE ts >= now() - INTERVAL 1 HOUR"), 1);
      assert.equal(
        await read(`WITH recent AS (SELECT * FROM events WHERE ${nov3}) SELECT count(*) FROM recent`),
        3,
      );
      // Bounds that do not hold for every row read are not used.
      assert.equal(await read(`SELECT count(*) FROM events WHERE ${nov3} OR event = 'e1'`), 5);
      assert.equal(
        await read(`SELECT count(*) FROM events a JOIN events b USING (event_id) WHERE ${nov3In("a.ts")}`),
        10,
        "a join side without its own bound reads every file",
      );
      assert.equal(
        await read(
          `SELECT count(*) FROM events a WHERE ${nov3} AND event_id IN (SELECT event_id FROM events WHERE event = 'e2')`,
        ),
        10,
        "the subquery reads events unbounded, so both scans read every file",
      );

      const counts = await lake.warehouse.query(
        `SELECT (SELECT count(*) FROM events WHERE dt = DATE '2026-11-02'),
          (SELECT count(*) FROM events WHERE ts >= TIMESTAMPTZ '2026-11-03 00:00:00Z' AND ts < TIMESTAMPTZ '2026-11-04 00:00:00Z'),
          (SELECT count(*) FROM events WHERE ts >= now() - INTERVAL 1 HOUR),
          (SELECT count(*) FROM events)`,
      );
      assert.deepEqual(counts.rows, [[100, 100, 0, 500]]);
      const bounded = await lake.warehouse.query(`SELECT count(*) FROM events WHERE ${nov3} OR event = 'e1'`);
      // e1 is every 5th event (100 of 500); the window holds 40 events of Nov 3, 8 of them e1.
      assert.deepEqual(bounded.rows, [[100 + 40 - 8]]);
    } finally {
      await lake.close();
    }
  });

  test("users' SQL only reads the lake: other files, writes, settings and extensions are refused", async () => {
    const lake = await tempLake({ sandboxed: true });
    try {
      await loadSynthetic(lake, { count: 100, prefix: "a" });
      const refusals: [string, RegExp][] = [
        ["SELECT * FROM read_csv('/etc/passwd')", /Permission Error/],
        ["SELECT * FROM read_text('/etc/hostname')", /Permission Error/],
        [`SELECT * FROM read_blob(${sqlString(join(lake.dir, "catalog.db"))})`, /Permission Error/],
        [`SELECT * FROM read_parquet(${sqlString(`${lake.lakeRoot}/../catalog.db`)})`, /Permission Error/],
        ["SELECT * FROM glob('/*')", /Permission Error/],
        [`COPY (SELECT 1) TO ${sqlString(join(lake.lakeRoot, "x.csv"))}`, /Only read-only .* COPY/],
        ["CREATE TABLE t AS SELECT 1", /Only read-only .* CREATE/],
        ["CREATE OR REPLACE VIEW events AS SELECT 1", /Only read-only .* CREATE/],
        ["SELECT 1; DROP SCHEMA main CASCADE", /statement 2 is DROP/],
        ["ATTACH ':memory:' AS other", /Only read-only .* ATTACH/],
        ["INSTALL httpfs", /Only read-only .* INSTALL\/LOAD/],
        ["LOAD parquet", /Only read-only .* INSTALL\/LOAD/],
        ["SET enable_external_access = true", /Only read-only/],
        ["SELECT * FROM query('COPY (SELECT 1) TO ''/tmp/sluice-escape.csv''')", /single SELECT/],
        ["PRAGMA enable_profiling", /Only read-only .* PRAGMA/],
      ];
      for (const [sql, message] of refusals) {
        await assert.rejects(lake.warehouse.query(sql), (error: Error) => {
          assert.ok(error instanceof QueryError, `${sql}: ${error}`);
          assert.match(error.message, message, sql);
          return true;
        });
      }
      assert.equal(existsSync(join(lake.lakeRoot, "x.csv")), false);
      // Reading is untouched, DuckDB's read-only conveniences included.
      assert.deepEqual((await lake.warehouse.query("SELECT count(*) FROM events")).rows, [[100]]);
      // Tables keep their names whatever the snapshot, for tools that read the catalog.
      const listed = await lake.warehouse.query(
        "SELECT table_schema, table_name FROM information_schema.tables ORDER BY ALL",
      );
      assert.deepEqual(listed.rows, [["main", "events"]]);
      for (const sql of ["DESCRIBE events", "SHOW TABLES", "SUMMARIZE events", "EXPLAIN SELECT 1"]) {
        assert.ok((await lake.warehouse.query(sql)).rows.length > 0, sql);
      }
    } finally {
      await lake.close();
    }
  });
});
