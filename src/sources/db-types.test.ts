import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type TestDatabase, tempDbSync, testDatabase, uniqueName } from "./test-support.js";

type Lake = Awaited<ReturnType<typeof tempDbSync>>;

/**
 * Every mapped type: one row of values and one of NULLs go through a sync, and come out
 * with the documented lake type and the same value (read back as text, so nothing is
 * rounded by the test itself).
 */
async function syncTypes(db: TestDatabase, table: string): Promise<Lake> {
  const lake = await tempDbSync(
    { src: { url_env: "SRC_URL", tables: { [table]: { into: "typed" } } } },
    { SRC_URL: db.url },
  );
  const [outcome] = await lake.run();
  assert.equal(outcome?.run.status, "loaded", outcome?.message);
  assert.equal(outcome?.run.rows, 2);
  return lake;
}

/** Each lake column's values as DuckDB prints them: row 1 (values), row 2 (NULLs). */
async function columnValues(lake: Lake): Promise<Record<string, [unknown, unknown]>> {
  const types = await lake.types("typed");
  const text = Object.keys(types).map((name) =>
    types[name] === "BLOB" ? `hex("${name}") AS "${name}"` : `CAST("${name}" AS VARCHAR) AS "${name}"`,
  );
  const rows = await lake.rows(`SELECT ${text.join(", ")} FROM typed ORDER BY id`);
  return Object.fromEntries(Object.keys(types).map((name, i) => [name, [rows[0]?.[i], rows[1]?.[i]]]));
}

describe("PostgreSQL types in the lake", () => {
  let db: TestDatabase;
  let lake: Lake;
  const table = uniqueName("pg_types");
  const mood = uniqueName("mood");

  before(async () => {
    db = await testDatabase("postgres");
    await db.exec(`CREATE TYPE ${mood} AS ENUM ('sad', 'happy')`);
    await db.exec(`CREATE TABLE ${table} (
      id integer PRIMARY KEY, small smallint, big bigint, num numeric(12,3), num_any numeric, real_v real,
      dbl double precision, price money, flag boolean, txt text, vc varchar(10), ch char(5), day date, clock time,
      at_local timestamp, at_utc timestamptz, doc json, docb jsonb, uid uuid, bytes bytea, ints integer[],
      tags text[], mood ${mood}, span interval, addr inet, "Order ID" bigint)`);
    await db.exec(`INSERT INTO ${table} VALUES (1, -32768, 9007199254740993, 123456789.125, 3.14159265358979,
      1.5, 2.25, 12.34, true, 'multi
line, "quoted"', 'héllo', 'ab', '2026-11-25', '23:59:59.5', '2026-11-25 10:00:00.123456',
      '2026-11-25 10:00:00+02', '{"a": [1, 2]}', '{"b": {"c": null}}', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
      '\\xdeadbeef', '{1,2,NULL}', '{"a b",c}', 'happy', '1 day 02:00:00', '10.0.0.1/8', 42)`);
    await db.exec(`INSERT INTO ${table} (id) VALUES (2)`);
    lake = await syncTypes(db, table);
  });
  after(async () => {
    await db.exec(`DROP TABLE IF EXISTS ${table}`);
    await db.exec(`DROP TYPE IF EXISTS ${mood}`);
    await db.close();
    await lake.close();
  });

  test("each type maps to its DuckDB type; column names become snake_case", async () => {
    assert.deepEqual(await lake.types("typed"), {
      id: "INTEGER",
      small: "INTEGER",
      big: "BIGINT",
      num: "DECIMAL(12,3)",
      num_any: "DOUBLE",
      real_v: "DOUBLE",
      dbl: "DOUBLE",
      price: "DECIMAL(19,2)",
      flag: "BOOLEAN",
      txt: "VARCHAR",
      vc: "VARCHAR",
      ch: "VARCHAR",
      day: "DATE",
      clock: "TIME",
      at_local: "TIMESTAMP",
      at_utc: "TIMESTAMPTZ",
      doc: "JSON",
      docb: "JSON",
      uid: "UUID",
      bytes: "BLOB",
      ints: "JSON",
      tags: "JSON",
      mood: "VARCHAR",
      span: "VARCHAR",
      addr: "VARCHAR",
      order_id: "BIGINT",
    });
    const described = (await lake.catalog.tables()).find((def) => def.name === "typed");
    assert.equal(described?.columns.find((column) => column.name === "order_id")?.description, "Order ID");
  });

  test("values arrive exactly, and NULLs stay NULL", async () => {
    const values = await columnValues(lake);
    const utc = await lake.rows(
      `SELECT strftime(at_utc AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S') FROM typed WHERE id = 1`,
    );
    assert.deepEqual(utc, [["2026-11-25 08:00:00"]]);
    delete values.at_utc;
    assert.deepEqual(values, {
      id: ["1", "2"],
      small: ["-32768", null],
      big: ["9007199254740993", null],
      num: ["123456789.125", null],
      num_any: ["3.14159265358979", null],
      real_v: ["1.5", null],
      dbl: ["2.25", null],
      price: ["12.34", null],
      flag: ["true", null],
      txt: ['multi\nline, "quoted"', null],
      vc: ["héllo", null],
      ch: ["ab", null],
      day: ["2026-11-25", null],
      clock: ["23:59:59.5", null],
      at_local: ["2026-11-25 10:00:00.123456", null],
      doc: ['{"a":[1,2]}', null],
      docb: ['{"b":{"c":null}}', null],
      uid: ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", null],
      bytes: ["DEADBEEF", null],
      ints: ["[1,2,null]", null],
      tags: ['["a b","c"]', null],
      mood: ["happy", null],
      span: ["1 day 02:00:00", null],
      addr: ["10.0.0.1/8", null],
      order_id: ["42", null],
    });
  });
});

describe("MySQL/MariaDB types in the lake", () => {
  let db: TestDatabase;
  let lake: Lake;
  const table = uniqueName("my_types");

  before(async () => {
    db = await testDatabase("mysql");
    await db.exec(`CREATE TABLE ${table} (
      id int PRIMARY KEY, tiny tinyint, flag tinyint(1), small smallint, medium mediumint, uint int unsigned,
      big bigint, ubig bigint unsigned, num decimal(12,3), wide decimal(50,10), f float, d double, bits bit(3),
      bit1 bit(1), day date, zero_day date, at_local datetime(6), at_utc timestamp(6) NULL, clock time, yr year,
      txt text, vc varchar(10), ch char(5), mood enum('sad','happy'), tags set('a','b'), doc json,
      bin varbinary(8), blb blob, uid uuid, geo point, OrderID bigint)`);
    // Zero dates are MySQL's placeholder for "no date": allowed only without the strict modes.
    await db.exec(`SET SESSION sql_mode = '', time_zone = '+02:00'`);
    await db.exec(`INSERT INTO ${table} VALUES (1, -128, 1, -32768, 8388607, 4294967295, -9223372036854775808,
      18446744073709551615, 123456789.125, 1234567890123456789012345678901234567890.0123456789, 1.5, 2.25, b'101',
      b'1', '2026-11-25', '0000-00-00', '2026-11-25 10:00:00.123456', '2026-11-25 10:00:00', '838:59:59', 2026,
      'multi\nline, "quoted"', 'héllo', 'ab', 'happy', 'a,b', '{"a": [1, 2]}', x'DEADBEEF', x'00FF',
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', ST_GeomFromText('POINT(1 2)'), 42)`);
    await db.exec(`INSERT INTO ${table} (id) VALUES (2)`);
    lake = await syncTypes(db, table);
  });
  after(async () => {
    await db.exec(`DROP TABLE IF EXISTS ${table}`);
    await db.close();
    await lake.close();
  });

  test("each type maps to its DuckDB type: tinyint(1) and bit(1) as BOOLEAN, unsigned ints widened, datetime as TIMESTAMP", async () => {
    assert.deepEqual(await lake.types("typed"), {
      id: "INTEGER",
      tiny: "INTEGER",
      flag: "BOOLEAN",
      small: "INTEGER",
      medium: "INTEGER",
      uint: "BIGINT",
      big: "BIGINT",
      ubig: "DECIMAL(20,0)",
      num: "DECIMAL(12,3)",
      wide: "DOUBLE",
      f: "DOUBLE",
      d: "DOUBLE",
      bits: "BIGINT",
      bit1: "BOOLEAN",
      day: "DATE",
      zero_day: "DATE",
      at_local: "TIMESTAMP",
      at_utc: "TIMESTAMPTZ",
      clock: "VARCHAR",
      yr: "INTEGER",
      txt: "VARCHAR",
      vc: "VARCHAR",
      ch: "VARCHAR",
      mood: "VARCHAR",
      tags: "VARCHAR",
      doc: "JSON",
      bin: "BLOB",
      blb: "BLOB",
      uid: "UUID",
      geo: "VARCHAR",
      order_id: "BIGINT",
    });
  });

  test("values arrive exactly (timestamps in UTC, zero dates as NULL), and NULLs stay NULL", async () => {
    const values = await columnValues(lake);
    const utc = await lake.rows(
      `SELECT strftime(at_utc AT TIME ZONE 'UTC', '%Y-%m-%d %H:%M:%S') FROM typed WHERE id = 1`,
    );
    assert.deepEqual(utc, [["2026-11-25 08:00:00"]], "TIMESTAMP values were written at +02:00");
    delete values.at_utc;
    assert.deepEqual(values, {
      id: ["1", "2"],
      tiny: ["-128", null],
      flag: ["true", null],
      small: ["-32768", null],
      medium: ["8388607", null],
      uint: ["4294967295", null],
      big: ["-9223372036854775808", null],
      ubig: ["18446744073709551615", null],
      num: ["123456789.125", null],
      wide: ["1.2345678901234568e+39", null],
      f: ["1.5", null],
      d: ["2.25", null],
      bits: ["5", null],
      bit1: ["true", null],
      day: ["2026-11-25", null],
      zero_day: [null, null],
      at_local: ["2026-11-25 10:00:00.123456", null],
      clock: ["838:59:59", null],
      yr: ["2026", null],
      txt: ['multi\nline, "quoted"', null],
      vc: ["héllo", null],
      ch: ["ab", null],
      mood: ["happy", null],
      tags: ["a,b", null],
      doc: ['{"a":[1,2]}', null],
      bin: ["DEADBEEF", null],
      blb: ["00FF", null],
      uid: ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", null],
      geo: ["POINT(1 2)", null],
      order_id: ["42", null],
    });
  });
});
