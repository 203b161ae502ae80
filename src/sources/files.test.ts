import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { sqlString } from "../warehouse/index.js";
import { tempSources } from "./test-support.js";

type Sources = Awaited<ReturnType<typeof tempSources>>;

describe("loading files: formats and types", () => {
  let sources: Sources;
  before(async () => {
    sources = await tempSources({ load_column_types: { "typed.zip": "INTEGER", "typed.amount": "DOUBLE" } });
  });
  after(async () => {
    await sources.close();
  });

  test("CSV: delimiter, quoting and header are detected; names become snake_case; types are inferred", async () => {
    const csv = [
      "Order ID;Customer Name;Amount;Order Date;Paid?;Shipped At;Updated At;Zip;Card Number;Ratio",
      '1;"Smith; John";12.50;2026-11-01;yes;2026-11-01 10:00;2026-11-01T10:00:00Z;02134;12345678901234567890;1e-3',
      '2;"Ann ""The"" Lee";3;2026-11-02;no;2026-11-02 11:30:15;2026-11-02T12:00:00+02:00;10115;1;2.5',
      "3;;;;;;;;;",
    ].join("\n");
    const outcome = await sources.load("orders.csv", csv, { table: "csv_orders" });
    assert.equal(outcome.run.status, "loaded", outcome.message);
    assert.equal(outcome.message, "loaded 3 rows from orders.csv into csv_orders");
    assert.deepEqual(await sources.types("csv_orders"), {
      order_id: "INTEGER",
      customer_name: "VARCHAR",
      amount: "DECIMAL(18,2)",
      order_date: "DATE",
      paid: "BOOLEAN",
      shipped_at: "TIMESTAMP",
      updated_at: "TIMESTAMPTZ",
      zip: "VARCHAR",
      card_number: "VARCHAR",
      ratio: "DOUBLE",
    });
    assert.deepEqual(
      await sources.rows(
        "SELECT order_id, customer_name, amount::VARCHAR, order_date::VARCHAR, paid, shipped_at::VARCHAR, updated_at::VARCHAR, zip, card_number, ratio FROM csv_orders ORDER BY order_id",
      ),
      [
        [
          1,
          "Smith; John",
          "12.50",
          "2026-11-01",
          true,
          "2026-11-01 10:00:00",
          "2026-11-01 10:00:00+00",
          "02134",
          "12345678901234567890",
          0.001,
        ],
        [
          2,
          'Ann "The" Lee',
          "3.00",
          "2026-11-02",
          false,
          "2026-11-02 11:30:15",
          "2026-11-02 10:00:00+00",
          "10115",
          "1",
          2.5,
        ],
        [3, null, null, null, null, null, null, null, null, null],
      ],
    );
    const table = (await sources.catalog.tables()).find((def) => def.name === "csv_orders");
    assert.deepEqual(
      table?.columns.slice(0, 5).map((column) => [column.name, column.description]),
      [
        ["order_id", "Order ID"],
        ["customer_name", "Customer Name"],
        ["amount", "Amount"],
        ["order_date", "Order Date"],
        ["paid", "Paid?"],
      ],
    );
  });

  test("TSV, and CSV in windows-1252 and UTF-16 (Excel's exports) keep every character", async () => {
    await sources.load("cities.tsv", "name\tcity, country\tprice\nJosé\tKöln, DE\t1.5\n", { table: "tsv" });
    assert.deepEqual(await sources.rows("SELECT * FROM tsv"), [["José", "Köln, DE", 1.5]]);

    const cp1252 = Buffer.concat([
      Buffer.from("product,price,note\n", "latin1"),
      Buffer.from("Caf\xe9 cr\xe8me,3.20,", "latin1"),
      Buffer.from([0x93, 0x80, 0x20, 0x33, 0x94, 0x0a]), // “€ 3” in windows-1252
    ]);
    const outcome = await sources.load("menu.csv", cp1252, { table: "cp1252" });
    assert.equal(outcome.run.status, "loaded", outcome.message);
    assert.deepEqual(await sources.rows("SELECT * FROM cp1252"), [["Café crème", 3.2, "“€ 3”"]]);

    const utf16 = Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from("name,n\nZoë,7\n", "utf16le")]);
    await sources.load("utf16.csv", utf16, { table: "utf16" });
    assert.deepEqual(await sources.rows("SELECT * FROM utf16"), [["Zoë", 7]]);
  });

  test("NDJSON and JSON arrays: numbers and booleans as typed, dates in strings inferred, nested values as JSON", async () => {
    const ndjson = [
      '{"id": 1, "price": 9.99, "active": true, "day": "2026-11-01", "at": "2026-11-01T10:00:00Z", "tags": ["a", "b"], "meta": {"k": 1}, "code": "007"}',
      '{"id": 2, "price": 10, "active": false, "day": "2026-11-02", "at": "2026-11-02T10:00:00Z", "extra": "only here"}',
    ].join("\n");
    const outcome = await sources.load("events.ndjson", ndjson, { table: "ndjson" });
    assert.equal(outcome.run.status, "loaded", outcome.message);
    assert.deepEqual(await sources.types("ndjson"), {
      id: "BIGINT",
      price: "DOUBLE",
      active: "BOOLEAN",
      day: "DATE",
      at: "TIMESTAMPTZ",
      tags: "JSON",
      meta: "JSON",
      code: "VARCHAR",
      extra: "VARCHAR",
    });
    assert.deepEqual(
      await sources.rows("SELECT id, tags->>'$[1]', meta->>'k', code, extra FROM ndjson ORDER BY id"),
      [
        [1, "b", "1", "007", null],
        [2, null, null, null, "only here"],
      ],
    );

    await sources.load("array.json", '[{"sku": "A1", "qty": 2}, {"sku": "B2", "qty": 5}]', {
      table: "json_array",
    });
    assert.deepEqual(await sources.rows("SELECT sku, qty FROM json_array ORDER BY sku"), [
      ["A1", 2],
      ["B2", 5],
    ]);
  });

  test("Parquet keeps the types it was written with", async () => {
    const path = join(sources.dataDir, "typed.parquet");
    const connection = await sources.engine.connect();
    await connection.run(
      `COPY (SELECT 1::SMALLINT AS "Small", 2::BIGINT AS big, 1.25::DECIMAL(10,2) AS price, 0.5::FLOAT AS f,
        DATE '2026-11-01' AS day, TIMESTAMP '2026-11-01 10:00:00' AS ts, 'x' AS label, [1, 2] AS list)
       TO ${sqlString(path)} (FORMAT parquet)`,
    );
    connection.closeSync();
    const outcome = await sources.loader.load(path, { table: "parquet", origin: "cli" });
    assert.equal(outcome.run.status, "loaded", outcome.message);
    assert.deepEqual(await sources.types("parquet"), {
      small: "INTEGER",
      big: "BIGINT",
      price: "DECIMAL(10,2)",
      f: "DOUBLE",
      day: "DATE",
      ts: "TIMESTAMP",
      label: "VARCHAR",
      list: "JSON",
    });
  });

  test("load_column_types overrides inference, and a value that is not of that type rejects the file", async () => {
    const ok = await sources.load("typed.csv", "zip,amount\n10115,3\n", { table: "typed" });
    assert.equal(ok.run.status, "loaded", ok.message);
    assert.deepEqual(await sources.types("typed"), { zip: "INTEGER", amount: "DOUBLE" });

    const bad = await sources.load("typed2.csv", "zip,amount\n10117,1\n1011A,2\n", { table: "typed" });
    assert.equal(bad.run.status, "failed");
    assert.equal(
      bad.message,
      'typed2.csv rejected: column "zip" must be INTEGER (load_column_types), but row 2 has "1011A", which is not an integer',
    );
  });

  test("files that cannot be read are rejected with a one-line reason", async () => {
    const cases: [string, string, RegExp][] = [
      ["empty.csv", "", /^empty\.csv rejected: the file is empty$/],
      ["ragged.csv", "a,b\n1,2\n3,4,5\n", /^ragged\.csv rejected: cannot read it as CSV: .*Line: 3/],
      ["scalars.json", "[1, 2]", /^scalars\.json rejected: expected JSON objects/],
      ["broken.json", '{"a": 1}\n{"a": ', /^broken\.json rejected: cannot read it as JSON: Malformed JSON/],
      ["fake.parquet", "not parquet", /^fake\.parquet rejected: cannot read it as PARQUET/],
      ["fake.xlsx", "not a workbook", /^fake\.xlsx rejected: not a readable \.xlsx workbook/],
      ["old.xls", "x", /^old\.xls rejected: old binary \.xls workbooks are not supported/],
      ["binary.csv", "a\u0000\u0001\n", /^binary\.csv rejected: this is not a text file/],
    ];
    for (const [name, content, expected] of cases) {
      const outcome = await sources.load(name, content, { table: "bad_files" });
      assert.equal(outcome.run.status, "failed", name);
      assert.match(outcome.message, expected);
      assert.doesNotMatch(outcome.message, /\n/);
    }
    const invalid = await sources.load("x.csv", "a\n1\n", { table: "Bad Name" });
    assert.equal(
      invalid.message,
      'x.csv rejected: "Bad Name" is not a valid table name: use lower case letters, digits and _, starting with a letter (e.g. bad_name)',
    );
    const events = await sources.load("x.csv", "a\n1\n", { table: "events_like" });
    assert.equal(events.run.status, "loaded");
    await sources.catalog.ensureTable({
      name: "stream",
      columns: [{ name: "a", type: "VARCHAR" }],
      partitionBy: { column: "dt", fromTimestamp: "ts" },
    });
    const stream = await sources.load("y.csv", "a\n2\n", { table: "stream" });
    assert.match(stream.message, /table stream is fed by the collector/);
    assert.ok(!(await sources.catalog.tables()).some((table) => table.name === "bad_files"));
  });
});
