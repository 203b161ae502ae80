import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { openSqliteCatalog } from "../catalog/index.js";
import { runCli, spawnCli } from "../server/test-support.js";
import { MYSQL_URL, PG_URL, type TestDatabase, testDatabase, uniqueName } from "./test-support.js";

/**
 * Starts `sluice sync TARGET` on `dataDir`, and kills it with SIGKILL once a file whose name
 * starts with `prefix` is staged: a crash in the middle of reading or merging.
 */
async function killWhenStaged(
  dataDir: string,
  env: NodeJS.ProcessEnv,
  target: string,
  prefix: string,
): Promise<void> {
  const child = spawnCli(["sync", target, "--data-dir", dataDir], env);
  const exited = new Promise((resolve) => child.on("exit", resolve));
  const staging = join(dataDir, "landing", ".staging");
  let killed = false;
  while (!killed && child.exitCode === null) {
    for (const run of existsSync(staging) ? await readdir(staging) : []) {
      const files = await readdir(join(staging, run)).catch(() => []);
      if (files.some((name) => name.startsWith(prefix))) {
        child.kill("SIGKILL");
        killed = true;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  await exited;
  assert.ok(killed, `sluice sync finished before a ${prefix} file was staged`);
}

describe("sluice sync", () => {
  let db: TestDatabase;
  let dir: string;
  let dataDir: string;
  const big = uniqueName("big");
  const small = uniqueName("small");
  const bigLake = `shop_${big}`;
  const env = { SHOP_URL: PG_URL };

  before(async () => {
    db = await testDatabase("postgres");
    await db.exec(
      `CREATE TABLE ${big} (id integer PRIMARY KEY, payload text, qty integer, updated_at timestamp)`,
    );
    await db.exec(`INSERT INTO ${big}
      SELECT i, repeat(md5(i::text), 4), i % 100, TIMESTAMP '2026-11-01' + i * INTERVAL '1 second'
      FROM generate_series(1, 200000) AS i`);
    await db.exec(`CREATE TABLE ${small} (code text PRIMARY KEY, label text)`);
    await db.exec(`INSERT INTO ${small} VALUES ('a', 'Alpha'), ('b', 'Beta')`);
    dir = await mkdtemp(join(tmpdir(), "sluice-cli-sync-"));
    dataDir = join(dir, "data");
    await mkdir(dataDir);
    await writeFile(
      join(dataDir, "sluice.yaml"),
      `db_sources:
  shop:
    url_env: SHOP_URL
    tables:
      ${big}: { watermark: updated_at, primary_key: id }
      ${small}:
  broken:
    url_env: BROKEN_URL
    tables:
      ${small}:
`,
    );
  });
  after(async () => {
    await db.exec(`DROP TABLE IF EXISTS ${big}`);
    await db.exec(`DROP TABLE IF EXISTS ${small}`);
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });

  const cli = (...args: string[]) => runCli([...args, "--data-dir", dataDir], env);
  const lakeTotals = async () => {
    const result = await cli(
      "query",
      `SELECT count(*), count(DISTINCT id), sum(qty) FROM ${bigLake}`,
      "--format",
      "csv",
    );
    assert.equal(result.code, 0, result.stderr);
    return result.stdout.trim().split("\n")[1];
  };
  const sourceTotals = async () => {
    const [row] = (await db.exec(
      `SELECT count(*) AS n, count(DISTINCT id) AS d, sum(qty) AS s FROM ${big}`,
    )) as {
      n: string;
      d: string;
      s: string;
    }[];
    return `${row?.n},${row?.d},${row?.s}`;
  };

  const bookmark = async () => {
    const catalog = openSqliteCatalog(join(dataDir, "catalog.db"));
    try {
      return await catalog.bookmark(bigLake);
    } finally {
      await catalog.close();
    }
  };

  test("kill -9 while staging, then a rerun: exactly the source's rows", async () => {
    await killWhenStaged(dataDir, env, `shop.${big}`, "part-0");
    assert.equal(await bookmark(), null, "nothing was committed");
    const rerun = await cli("sync", `shop.${big}`);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.match(
      rerun.stdout,
      new RegExp(`^synced shop\\.${big} into ${bigLake}: read 200,000 rows: 200,000 new`),
    );
    assert.equal(await lakeTotals(), await sourceTotals());
  });

  test("kill -9 while merging changed rows, then a rerun: the changes exactly once", async () => {
    const before = await bookmark();
    await db.exec(`UPDATE ${big} SET qty = qty + 1000, updated_at = TIMESTAMP '2026-12-01' + id * INTERVAL '1 second'
      WHERE id % 4 = 0`);
    await db.exec(`INSERT INTO ${big}
      SELECT i, 'new', 7, TIMESTAMP '2026-12-02' + i * INTERVAL '1 second' FROM generate_series(200001, 210000) AS i`);
    await killWhenStaged(dataDir, env, `shop.${big}`, "changed-");
    assert.equal(await bookmark(), before, "the bookmark did not move");
    const rerun = await cli("sync", `shop.${big}`);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.match(rerun.stdout, /read 60,000 rows: 10,000 new, 50,000 updated/);
    assert.equal(await lakeTotals(), await sourceTotals());
  });

  test("syncs every table of a source and prints what it did", async () => {
    const result = await cli("sync", "shop");
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      result.stdout,
      `nothing new in shop.${big} since updated_at 2026-12-04 10:20:00.000000 (1 row read again, unchanged)\n` +
        `synced shop.${small} into shop_${small}: 2 rows\n`,
    );
  });

  test("a failed table exits 1 with one line saying why; the others still run", async () => {
    const result = await cli("sync");
    assert.equal(result.code, 1);
    assert.equal(
      result.stderr,
      `sluice: broken.${small} failed: the environment variable BROKEN_URL (db_sources.broken.url_env) is not set: it holds the connection URL\n`,
    );
    assert.match(result.stdout, new RegExp(`^nothing new in shop\\.${big}`, "m"));
    assert.match(result.stdout, new RegExp(`^shop\\.${small} has not changed since the last sync`, "m"));
  });

  test("an unknown source or table, or a configuration without sources, is one line and exit 1", async () => {
    const source = await cli("sync", "nope");
    assert.equal(source.code, 1);
    assert.equal(source.stderr, 'sluice: no source "nope" in db_sources (sources: shop, broken)\n');
    const table = await cli("sync", "shop.nope");
    assert.equal(table.code, 1);
    assert.equal(
      table.stderr,
      `sluice: source shop has no table "nope" in db_sources (tables: ${big}, ${small})\n`,
    );
    const empty = await runCli(["sync", "--data-dir", join(dir, "empty")], env);
    assert.equal(empty.code, 1);
    assert.equal(
      empty.stderr,
      'sluice: no db_sources in the configuration (see "Loading databases" in the README)\n',
    );
  });

  test("sluice loads lists the syncs", async () => {
    const history = await cli("loads", "--table", bigLake, "--format", "json");
    assert.equal(history.code, 0, history.stderr);
    const { loads } = JSON.parse(history.stdout) as {
      loads: { status: string; mode: string; origin: string; rows: number }[];
    };
    assert.deepEqual(
      loads.map((run) => [run.status, run.mode, run.origin, run.rows]),
      [
        ["skipped", "merge", "sync", 1],
        ["skipped", "merge", "sync", 1],
        ["loaded", "merge", "sync", 60000],
        ["loaded", "merge", "sync", 200000],
      ],
    );
  });

  test("bookmarks: shown, paused (syncs leave them), resumed, reset to a value or to the beginning", async () => {
    const show = async () => {
      const result = await cli("bookmark", "show", `shop.${big}`, "--format", "json");
      assert.equal(result.code, 0, result.stderr);
      return (JSON.parse(result.stdout) as { bookmarks: { value: string | null; paused: boolean }[] })
        .bookmarks[0];
    };
    const sync = async () => {
      const result = await cli("sync", `shop.${big}`);
      assert.equal(result.code, 0, result.stderr);
      return result.stdout;
    };
    assert.deepEqual(await show(), {
      table: `shop.${big}`,
      into: bigLake,
      watermark: "updated_at",
      value: "2026-12-04 10:20:00.000000",
      paused: false,
    });

    assert.equal((await cli("bookmark", "pause", `shop.${big}`)).code, 0);
    await db.exec(`INSERT INTO ${big} VALUES (300000, 'late', 1, TIMESTAMP '2026-12-10')`);
    assert.match(
      await sync(),
      /read 2 rows: 1 new, 0 updated \(bookmark paused at updated_at = 2026-12-04 10:20:00\.000000\)/,
    );
    assert.equal((await show())?.value, "2026-12-04 10:20:00.000000", "a paused bookmark stays");
    assert.match(await sync(), /2 rows read again, unchanged/);

    assert.equal((await cli("bookmark", "resume", `shop.${big}`)).code, 0);
    assert.match(await sync(), /bookmark updated_at = 2026-12-10 00:00:00\.000000/);
    assert.deepEqual(await show(), {
      table: `shop.${big}`,
      into: bigLake,
      watermark: "updated_at",
      value: "2026-12-10 00:00:00.000000",
      paused: false,
    });

    const reset = await cli("bookmark", "reset", `shop.${big}`, "--to", "2026-12-04 10:00:00");
    assert.equal(reset.code, 0, reset.stderr);
    assert.equal((await show())?.value, "2026-12-04 10:00:00.000000");
    // Rows 208,800 to 210,000 and the late one are at or past it.
    assert.match(await sync(), /read 1,202 rows: 0 new, 0 updated \(bookmark updated_at = 2026-12-10/);

    assert.equal((await cli("bookmark", "reset", `shop.${big}`)).code, 0);
    assert.equal((await show())?.value, null, "reset to the beginning");
    assert.match(await sync(), /read 210,001 rows: 0 new, 0 updated/);
    assert.equal(await lakeTotals(), await sourceTotals());

    const bad = await cli("bookmark", "reset", `shop.${big}`, "--to", "last tuesday");
    assert.equal(bad.code, 1);
    assert.equal(
      bad.stderr,
      'sluice: "last tuesday" is not a value of watermark column updated_at (timestamp without time zone)\n',
    );
    const full = await cli("bookmark", "pause", `shop.${small}`);
    assert.equal(full.code, 1);
    assert.equal(
      full.stderr,
      `sluice: no incremental table in shop.${small}: full copies have no bookmark\n`,
    );
  });
});

describe("sluice sync from MariaDB, killed mid-run", () => {
  let db: TestDatabase;
  let dir: string;
  const table = uniqueName("mbig");
  const env = { SHOP_URL: MYSQL_URL };

  before(async () => {
    db = await testDatabase("mysql");
    await db.exec(
      `CREATE TABLE ${table} (id int PRIMARY KEY, payload text, qty int, updated_at datetime(6))`,
    );
    // MariaDB's sequence engine: seq_1_to_200000 is a table of those numbers.
    await db.exec(`INSERT INTO ${table}
      SELECT seq, repeat(md5(seq), 4), seq % 100, TIMESTAMP '2026-11-01 00:00:00' + INTERVAL seq SECOND
      FROM seq_1_to_200000`);
    dir = await mkdtemp(join(tmpdir(), "sluice-cli-sync-mariadb-"));
    await writeFile(
      join(dir, "sluice.yaml"),
      `db_sources:\n  shop:\n    url_env: SHOP_URL\n    tables:\n      ${table}: { watermark: updated_at }\n`,
    );
  });
  after(async () => {
    await db.exec(`DROP TABLE IF EXISTS ${table}`);
    await db.close();
    await rm(dir, { recursive: true, force: true });
  });

  const totals = async () => {
    const lake = await runCli(
      [
        "query",
        `SELECT count(*), count(DISTINCT id), sum(qty) FROM shop_${table}`,
        "--format",
        "csv",
        "--data-dir",
        dir,
      ],
      env,
    );
    assert.equal(lake.code, 0, lake.stderr);
    const [source] = (await db.exec(
      `SELECT count(*) AS n, count(DISTINCT id) AS d, sum(qty) AS s FROM ${table}`,
    )) as {
      n: number;
      d: number;
      s: string;
    }[];
    return { lake: lake.stdout.trim().split("\n")[1], source: `${source?.n},${source?.d},${source?.s}` };
  };

  test("kill -9 while reading and while merging, each followed by a rerun: exactly the source's rows", async () => {
    await killWhenStaged(dir, env, `shop.${table}`, "part-1");
    const first = await runCli(["sync", `shop.${table}`, "--data-dir", dir], env);
    assert.equal(first.code, 0, first.stderr);
    assert.match(first.stdout, /read 200,000 rows: 200,000 new/);
    let { lake, source } = await totals();
    assert.equal(lake, source);

    await db.exec(`UPDATE ${table} SET qty = qty + 1000, updated_at = TIMESTAMP '2026-12-01 00:00:00' + INTERVAL id SECOND
      WHERE id % 4 = 0`);
    await killWhenStaged(dir, env, `shop.${table}`, "changed-");
    const rerun = await runCli(["sync", `shop.${table}`, "--data-dir", dir], env);
    assert.equal(rerun.code, 0, rerun.stderr);
    assert.match(rerun.stdout, /read 50,000 rows: 0 new, 50,000 updated/);
    ({ lake, source } = await totals());
    assert.equal(lake, source);
  });
});
