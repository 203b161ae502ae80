import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, test } from "node:test";
import { Compactor } from "./compactor.js";
import { EVENTS, loadSynthetic, syntheticEventsSql, tempLake } from "./test-support.js";
import { writeParquet } from "./writer.js";

async function loadSmallFiles(lake: Awaited<ReturnType<typeof tempLake>>, files: number, rowsEach: number) {
  for (let n = 0; n < files; n++) {
    await loadSynthetic(lake, { count: rowsEach, prefix: `f${n}-`, filePrefix: `part-${n}` });
  }
}

describe("compaction", () => {
  test("merges small files of a partition into one and keeps every row exactly once", async () => {
    const lake = await tempLake();
    try {
      await loadSmallFiles(lake, 10, 500);
      const before = await lake.catalog.liveFiles("events");
      assert.equal(before.length, 10);
      const compactor = new Compactor({ ...lake, tables: [EVENTS], minFiles: 4, deleteGraceMs: 0 });
      const result = await compactor.runOnce();
      assert.equal(result.merged, 10);
      const after = await lake.catalog.liveFiles("events");
      assert.equal(after.length, 1);
      assert.equal(after[0]?.rows, 5000);
      const day = before[0]?.partition;
      assert.ok(
        after[0]?.path.startsWith(`events/dt=${day}/`),
        "the merged file stays in its partition's folder",
      );
      const check = await lake.warehouse.query(
        `SELECT count(*), count(DISTINCT event_id), count(*) FILTER (WHERE dt = DATE '${day}') FROM events`,
      );
      assert.deepEqual(check.rows, [[5000, 5000, 5000]]);
      assert.equal(result.deleted, 10, "replaced files are deleted once nothing pins them");
      for (const file of before) assert.equal(existsSync(join(lake.lakeRoot, file.path)), false);
    } finally {
      await lake.close();
    }
  });

  test("queries running during compaction see stable counts, and pinned files outlive the swap", async () => {
    const lake = await tempLake();
    try {
      await loadSmallFiles(lake, 12, 2000);
      const compactor = new Compactor({ ...lake, tables: [EVENTS], minFiles: 2, deleteGraceMs: 0 });
      const lease = await lake.catalog.lease(60_000);
      const counts: number[] = [];
      let compacting = true;
      const readers = (async () => {
        while (compacting) {
          const result = await lake.warehouse.query("SELECT count(*), count(DISTINCT event_id) FROM events");
          counts.push(Number(result.rows[0]?.[0]), Number(result.rows[0]?.[1]));
        }
      })();
      await compactor.runOnce();
      compacting = false;
      await readers;
      assert.ok(counts.length >= 2);
      assert.deepEqual(new Set(counts), new Set([24000]));
      // The old snapshot is still readable while the lease holds it.
      for (const file of lease.files("events")) assert.ok(existsSync(join(lake.lakeRoot, file.path)));
      await lease.release();
      await compactor.deleteGarbage();
      for (const file of lease.files("events"))
        assert.equal(existsSync(join(lake.lakeRoot, file.path)), false);
    } finally {
      await lake.close();
    }
  });

  test("waits while loading is behind, then merges", async () => {
    const lake = await tempLake();
    try {
      await loadSmallFiles(lake, 6, 100);
      let behind = true;
      const compactor = new Compactor({
        ...lake,
        tables: [EVENTS],
        minFiles: 4,
        deleteGraceMs: 0,
        deferWhile: () => behind,
      });
      assert.equal((await compactor.runOnce()).merged, 0);
      assert.equal((await lake.catalog.liveFiles("events")).length, 6);
      behind = false;
      assert.equal((await compactor.runOnce()).merged, 6);
      assert.equal((await lake.catalog.liveFiles("events")).length, 1);
    } finally {
      await lake.close();
    }
  });

  test("orphans from a crashed write are swept, listed files are kept", async () => {
    const lake = await tempLake();
    try {
      await loadSmallFiles(lake, 2, 10);
      const connection = await lake.engine.connect();
      const orphans = await writeParquet(connection, {
        lakeRoot: lake.lakeRoot,
        table: EVENTS,
        prefix: "part-crashed",
        selectSql: syntheticEventsSql(10, "x"),
      });
      connection.closeSync();
      const compactor = new Compactor({ ...lake, tables: [EVENTS] });
      assert.equal(await compactor.sweepOrphans(), orphans.length);
      const check = await lake.warehouse.query("SELECT count(*) FROM events");
      assert.deepEqual(check.rows, [[20]]);
    } finally {
      await lake.close();
    }
  });
});
