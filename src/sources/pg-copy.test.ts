import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type TestDatabase, tempDbSync, testDatabase, uniqueName } from "./test-support.js";

describe("PostgreSQL rows staged from COPY's CSV in many parts", () => {
  let db: TestDatabase;
  let lake: Awaited<ReturnType<typeof tempDbSync>>;
  const table = uniqueName("copied");

  before(async () => {
    db = await testDatabase("postgres");
    // Text that CSV must quote (commas, quotes, newlines), empty text beside NULL, and long values.
    await db.exec(`CREATE TABLE ${table} (id integer PRIMARY KEY, note text, blob bytea, tags text[])`);
    await db.exec(`INSERT INTO ${table} SELECT i,
        CASE i % 6 WHEN 0 THEN NULL WHEN 1 THEN '' WHEN 2 THEN 'say "hi",' || chr(10) || 'twice' || chr(13) || chr(10)
          WHEN 3 THEN repeat('long,', 2000) ELSE 'plain ' || i END,
        CASE WHEN i % 5 = 0 THEN NULL ELSE decode(md5(i::text), 'hex') END,
        CASE WHEN i % 4 = 0 THEN NULL ELSE ARRAY['a,b', '"q"', NULL, ''] END
      FROM generate_series(1, 20000) AS i`);
    lake = await tempDbSync(
      { shop: { url_env: "SHOP_URL", tables: { [table]: null } } },
      { SHOP_URL: db.url },
      // Parts far smaller than the data: row ends are found in every chunk that arrives.
      { partBytes: 4096 },
    );
  });
  after(async () => {
    await db.exec(`DROP TABLE IF EXISTS ${table}`);
    await db.close();
    await lake.close();
  });

  test("every value arrives exactly, however the text was cut into parts", async () => {
    const parts: number[] = [];
    const staging = join(lake.dataDir, "landing", ".staging");
    const watching = setInterval(async () => {
      for (const run of await readdir(staging).catch(() => [])) {
        parts.push((await readdir(join(staging, run)).catch(() => [])).length);
      }
    }, 5);
    const [outcome] = await lake.run(`shop.${table}`);
    clearInterval(watching);
    assert.equal(outcome?.run.status, "loaded", outcome?.message);
    assert.equal(outcome?.run.rows, 20000);
    assert.ok(Math.max(0, ...parts) > 2, "the rows were staged in several parts");
    const fingerprint = `count(*) AS a, count(note) AS b, sum(length(note)) AS c, count(*) FILTER (WHERE note = '') AS d,
      md5(string_agg(coalesce(note, '~null~'), '|' ORDER BY id)) AS e`;
    const source = await db.exec(
      `SELECT ${fingerprint}, md5(string_agg(coalesce(encode(blob, 'hex'), '-'), '' ORDER BY id)) AS f,
        md5(string_agg(coalesce(to_json(tags)::text, '-'), '|' ORDER BY id)) AS g FROM ${table}`,
    );
    const copied = await lake.rows(
      `SELECT ${fingerprint}, md5(string_agg(coalesce(lower(hex(blob)), '-'), '' ORDER BY id)),
        md5(string_agg(coalesce(CAST(tags AS VARCHAR), '-'), '|' ORDER BY id)) FROM shop_${table}`,
    );
    assert.deepEqual(copied[0]?.map(String), Object.values(source[0] ?? {}).map(String));
  });
});
