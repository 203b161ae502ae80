import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  type Catalog,
  CommitConflictError,
  type DataFile,
  type NewLoadRun,
  openSqliteCatalog,
} from "./index.js";

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

describe("SQLite catalog: loaded tables", () => {
  let dir: string;
  let catalog: Catalog;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "sluice-catalog-"));
    catalog = openSqliteCatalog(join(dir, "catalog.db"));
  });
  after(async () => {
    await catalog.close();
    await rm(dir, { recursive: true, force: true });
  });

  const orders = (path: string): DataFile => ({ table: "orders", path, partition: "", rows: 2, bytes: 100 });
  const run = (sha256: string | null, mode: NewLoadRun["mode"] = "append"): NewLoadRun => ({
    table: "orders",
    file: `${sha256}.csv`,
    sha256,
    bytes: 10,
    mode,
    origin: "cli",
    status: "loaded",
    rows: 2,
    changes: [],
    message: null,
    startedAt: "2026-11-25T10:00:00.000Z",
    finishedAt: "2026-11-25T10:00:01.000Z",
  });

  test("a load commit creates the table with its columns and records the load with its snapshot", async () => {
    assert.equal(await catalog.tableSnapshot("orders"), 0);
    const columns = [{ name: "order_id", type: "INTEGER", description: "Order ID" }];
    const snapshot = await catalog.commit({
      table: "orders",
      operation: "load",
      add: [orders("orders/a.parquet")],
      columns,
      ifTableSnapshot: 0,
      load: run("aaa"),
    });
    assert.equal(await catalog.tableSnapshot("orders"), snapshot);
    assert.deepEqual(await catalog.tables(), [{ name: "orders", columns, partitionBy: null }]);
    const live = await catalog.liveLoad("orders", "aaa");
    assert.equal(live?.snapshot, snapshot);
    assert.equal(live?.status, "loaded");
    assert.equal(await catalog.liveLoad("orders", "bbb"), null);
  });

  test("a commit planned on an older snapshot of the table is a conflict and changes nothing", async () => {
    const before = await catalog.tableSnapshot("orders");
    await assert.rejects(
      catalog.commit({
        table: "orders",
        operation: "load",
        add: [orders("orders/b.parquet")],
        ifTableSnapshot: before - 1,
        load: run("bbb"),
      }),
      CommitConflictError,
    );
    assert.equal(await catalog.tableSnapshot("orders"), before);
    assert.equal(await catalog.liveLoad("orders", "bbb"), null);
  });

  test("the same content cannot be live twice in a table", async () => {
    await assert.rejects(catalog.commit({ table: "orders", operation: "load", add: [], load: run("aaa") }));
    assert.equal((await catalog.loads({ table: "orders" })).length, 1);
  });

  test("a replace load supersedes earlier loads, so their content may be loaded again", async () => {
    await catalog.commit({
      table: "orders",
      operation: "load",
      add: [orders("orders/c.parquet")],
      remove: ["orders/a.parquet"],
      load: run("ccc", "replace"),
    });
    assert.equal(await catalog.liveLoad("orders", "aaa"), null);
    assert.equal((await catalog.liveLoad("orders", "ccc"))?.mode, "replace");
    assert.deepEqual(
      (await catalog.liveFiles("orders")).map((f) => f.path),
      ["orders/c.parquet"],
    );
  });

  test("skipped and failed runs are recorded without a snapshot; history is newest first", async () => {
    const failed = await catalog.recordLoad({
      ...run("ddd"),
      status: "failed",
      rows: 0,
      message: 'column "amount" is INTEGER in table orders, but row 3 has "abc"',
    });
    assert.equal(failed.snapshot, null);
    const history = await catalog.loads({ table: "orders" });
    assert.deepEqual(
      history.map((load) => [load.sha256, load.status]),
      [
        ["ddd", "failed"],
        ["ccc", "loaded"],
        ["aaa", "loaded"],
      ],
    );
    assert.equal((await catalog.loads({ limit: 1 }))[0]?.id, failed.id);
    assert.equal((await catalog.loads({ table: "nope" })).length, 0);
  });

  test("a bookmark is stored with its rows; a failed commit keeps the old one; a replace without one drops it", async () => {
    assert.equal(await catalog.bookmark("synced"), null);
    const synced = (path: string): DataFile => ({ table: "synced", path, partition: "", rows: 1, bytes: 10 });
    const merge = { ...run(null, "merge"), table: "synced", file: "shop.orders", origin: "sync" };
    const first = await catalog.commit({
      table: "synced",
      operation: "sync",
      add: [synced("synced/a.parquet")],
      columns: [{ name: "id", type: "INTEGER" }],
      load: merge,
      bookmark: '{"value":"1"}',
    });
    assert.equal(await catalog.bookmark("synced"), '{"value":"1"}');
    await assert.rejects(
      catalog.commit({
        table: "synced",
        operation: "sync",
        add: [synced("synced/b.parquet")],
        ifTableSnapshot: first - 1,
        load: merge,
        bookmark: '{"value":"2"}',
      }),
      CommitConflictError,
    );
    assert.equal(await catalog.bookmark("synced"), '{"value":"1"}');
    await catalog.commit({
      table: "synced",
      operation: "load",
      add: [synced("synced/c.parquet")],
      load: merge,
    });
    assert.equal(await catalog.bookmark("synced"), '{"value":"1"}', "other commits leave it alone");
    await catalog.commit({
      table: "synced",
      operation: "load",
      add: [synced("synced/d.parquet")],
      remove: ["synced/a.parquet", "synced/c.parquet"],
      load: { ...run("eee", "replace"), table: "synced" },
    });
    assert.equal(await catalog.bookmark("synced"), null);
  });
});
