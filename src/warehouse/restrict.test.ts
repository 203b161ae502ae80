import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { loadSynthetic, tempLake } from "../lake/test-support.js";
import { QueryError } from "./warehouse.js";

describe("a restricted reader's SQL reaches the catalog's tables by name, never files", () => {
  let lake: Awaited<ReturnType<typeof tempLake>>;
  let aFile = "";
  const viewer = { restriction: { hiddenTables: ["secret_raw"] } };

  before(async () => {
    lake = await tempLake({ sandboxed: true });
    const files = await loadSynthetic(lake, { count: 100, prefix: "r" });
    aFile = join(lake.lakeRoot, files[0]?.path ?? "");
  });
  after(() => lake.close());

  const refusal = async (sql: string, options = viewer): Promise<string> => {
    try {
      await lake.warehouse.query(sql, options);
    } catch (error) {
      assert.ok(error instanceof QueryError, String(error));
      return error.message;
    }
    assert.fail(`${sql} was not refused`);
  };

  test("tables, CTEs, row functions, system catalogs, DESCRIBE, SUMMARIZE and EXPLAIN run", async () => {
    for (const sql of [
      "SELECT count(*) FROM events",
      "WITH t AS (SELECT * FROM events) SELECT count(*) FROM t",
      "SELECT * FROM range(3)",
      "SELECT count(*) FROM information_schema.tables",
      "DESCRIBE events",
      "SUMMARIZE events",
      "EXPLAIN SELECT count(*) FROM events",
    ]) {
      await lake.warehouse.query(sql, viewer);
    }
    assert.deepEqual((await lake.warehouse.query("SELECT count(*) FROM events", viewer)).rows, [[100]]);
  });

  test("reading the lake's files directly, by path or by function, is refused with the reason", async () => {
    assert.match(
      await refusal(`SELECT count(*) FROM read_parquet('${aFile}')`),
      /^Not allowed: read_parquet\(\) reads outside the catalog's tables; only admins may use it/,
    );
    assert.match(await refusal(`FROM '${aFile}'`), /is a file, not a table; only admins may read files/);
    assert.match(await refusal("SELECT * FROM query_table('events')"), /query_table\(\) reads outside/);
    assert.match(
      await refusal("SELECT getvariable('sluice_files_events')"),
      /getvariable\(\) is for admins only/,
    );
    assert.match(
      await refusal(`EXPLAIN SELECT * FROM read_parquet('${aFile}')`),
      /read_parquet\(\) reads outside/,
    );
  });

  test("SQL that is not SQL gets DuckDB's parser error; writes the read-only rule; PRAGMA is an admin's", async () => {
    assert.match(await refusal("SELEC 1"), /^Parser Error/);
    assert.match(await refusal("CREATE TABLE t AS SELECT 1"), /^Only read-only queries/);
    assert.match(await refusal("UPDATE events SET event = 'x'"), /^Only read-only queries/);
    assert.match(await refusal("SELECT 1; COPY (SELECT 1) TO 'x.csv'"), /^Only read-only queries/);
    assert.match(
      await refusal("PRAGMA table_info('secret_raw')"),
      /^Not allowed: PRAGMA calls table functions/,
    );
    assert.equal(
      (await lake.warehouse.query("PRAGMA database_list")).rows.length,
      1,
      "an admin's PRAGMA runs",
    );
  });

  test("a hidden table is refused however it is named; an admin reads it and the files", async () => {
    const hideEvents = { restriction: { hiddenTables: ["events"] } };
    assert.match(
      await refusal("SELECT count(*) FROM main.EVENTS", hideEvents),
      /table EVENTS is for admins only/,
    );
    assert.match(
      await refusal("SELECT * FROM (SELECT 1) JOIN (DESCRIBE events) ON true", hideEvents),
      /table events is for admins only/,
    );
    assert.deepEqual((await lake.warehouse.query("SELECT count(*) FROM events")).rows, [[100]]);
    assert.deepEqual(
      (await lake.warehouse.query(`SELECT count(*) FROM read_parquet('${aFile}')`)).rows.length,
      1,
    );
  });
});
