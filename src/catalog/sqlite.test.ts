import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Catalog, CommitConflictError, type DataFile, openSqliteCatalog } from "./index.js";

const DT = { column: "dt", fromTimestamp: "ts" } as const;
const file = (path: string, rows = 10): DataFile => ({
  table: "events",
  path,
  partition: "2026-11-25",
  rows,
  bytes: 100,
});

describe("SQLite catalog", () => {
  let dir: string;
  let catalog: Catalog;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "sluice-catalog-"));
    catalog = openSqliteCatalog(join(dir, "catalog.db"));
    await catalog.ensureTable({ name: "events", columns: [{ name: "a", type: "VARCHAR" }], partitionBy: DT });
  });
  after(async () => {
    await catalog.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("a commit adds files and the consumer offset atomically, as a new snapshot", async () => {
    const before = await catalog.currentSnapshot();
    const snapshot = await catalog.commit({
      table: "events",
      operation: "load",
      add: [file("events/dt=2026-11-25/a.parquet"), file("events/dt=2026-11-25/b.parquet")],
      offset: { consumer: "loader:events", position: 42 },
    });
    assert.equal(snapshot, before + 1);
    assert.deepEqual(
      (await catalog.liveFiles("events")).map((f) => f.path),
      ["events/dt=2026-11-25/a.parquet", "events/dt=2026-11-25/b.parquet"],
    );
    assert.equal(await catalog.offset("loader:events"), 42);
    assert.deepEqual(await catalog.tables(), [
      { name: "events", columns: [{ name: "a", type: "VARCHAR" }], partitionBy: DT },
    ]);
  });

  test("a failed commit changes nothing: removing a file that is not live is a conflict", async () => {
    const before = await catalog.currentSnapshot();
    await assert.rejects(
      catalog.commit({
        table: "events",
        operation: "compact",
        add: [file("events/dt=2026-11-25/c.parquet")],
        remove: ["events/dt=2026-11-25/nope.parquet"],
        offset: { consumer: "loader:events", position: 99 },
      }),
      CommitConflictError,
    );
    assert.equal(await catalog.currentSnapshot(), before);
    assert.equal(await catalog.offset("loader:events"), 42);
    assert.equal((await catalog.liveFiles("events")).length, 2);
  });

  test("a lease keeps seeing its snapshot, and pins replaced files until released", async () => {
    const lease = await catalog.lease(60_000);
    await catalog.commit({
      table: "events",
      operation: "compact",
      add: [file("events/dt=2026-11-25/merged.parquet", 20)],
      remove: ["events/dt=2026-11-25/a.parquet", "events/dt=2026-11-25/b.parquet"],
    });
    assert.deepEqual(
      lease.files("events").map((f) => f.path),
      ["events/dt=2026-11-25/a.parquet", "events/dt=2026-11-25/b.parquet"],
    );
    assert.deepEqual(
      (await catalog.liveFiles("events")).map((f) => f.path),
      ["events/dt=2026-11-25/merged.parquet"],
    );
    assert.deepEqual(await catalog.garbage(0), [], "pinned files are not garbage");
    await lease.release();
    const garbage = (await catalog.garbage(0)).map((f) => f.path).sort();
    assert.deepEqual(garbage, ["events/dt=2026-11-25/a.parquet", "events/dt=2026-11-25/b.parquet"]);
    assert.deepEqual(await catalog.garbage(60_000), [], "the grace period holds them back");
    await catalog.forget(garbage);
    assert.deepEqual(await catalog.listedPaths("events"), ["events/dt=2026-11-25/merged.parquet"]);
  });

  test("an expired lease no longer pins files", async () => {
    const lease = await catalog.lease(1);
    await catalog.commit({
      table: "events",
      operation: "compact",
      add: [file("events/dt=2026-11-25/merged2.parquet", 20)],
      remove: ["events/dt=2026-11-25/merged.parquet"],
    });
    await new Promise((resolve) => setTimeout(resolve, 10));
    assert.deepEqual(
      (await catalog.garbage(0)).map((f) => f.path),
      ["events/dt=2026-11-25/merged.parquet"],
    );
    await lease.release();
  });

  test("a second process sees committed changes (WAL)", async () => {
    const other = openSqliteCatalog(join(dir, "catalog.db"));
    assert.deepEqual(
      (await other.liveFiles("events")).map((f) => f.path),
      ["events/dt=2026-11-25/merged2.parquet"],
    );
    assert.equal(await other.offset("loader:events"), 42);
    await other.close();
  });
});
