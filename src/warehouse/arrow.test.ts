import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { tableFromIPC } from "apache-arrow";
import { ArrowStreamEncoder } from "./arrow.js";
import { createEngine } from "./engine.js";

/** Runs `sql` and encodes its rows as an Arrow stream, `batchRows` rows per batch. */
async function arrowOf(sql: string, batchRows: number): Promise<ReturnType<typeof tableFromIPC>> {
  const engine = await createEngine({ threads: 1 });
  const connection = await engine.connect();
  try {
    const reader = await connection.runAndReadAll(sql);
    const columns = reader
      .columnNames()
      .map((name, index) => ({ name, type: reader.columnTypes()[index] as never }));
    const encoder = new ArrowStreamEncoder(columns);
    const rows = reader.getRows();
    const parts = [encoder.header()];
    for (let start = 0; start < rows.length; start += batchRows) {
      parts.push(encoder.batch(rows.slice(start, start + batchRows)));
    }
    parts.push(encoder.end());
    return tableFromIPC(Buffer.concat(parts));
  } finally {
    connection.closeSync();
    engine.closeSync();
  }
}

describe("Arrow IPC results", () => {
  test("types survive: integers, floats, decimals, text, JSON, dates, timestamps, booleans, NULLs", async () => {
    const table = await arrowOf(
      `SELECT * FROM (VALUES
         (1::INTEGER, 9007199254740993::BIGINT, 2.5::DOUBLE, 12.34::DECIMAL(10,2), 'a', '{"k":1}'::JSON,
          DATE '2026-11-25', TIMESTAMPTZ '2026-11-25 10:00:00.123456+00', true, [1, 2]),
         (NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
         (3, -1, -0.5, 0.01, 'ü', '[]', DATE '1970-01-01', TIMESTAMPTZ '1970-01-01 00:00:00+00', false, [])
       ) AS t(i, big, f, d, s, j, day, ts, b, list)`,
      2,
    );
    assert.equal(table.numRows, 3);
    assert.deepEqual(
      table.schema.fields.map((field) => String(field.type)),
      [
        "Int32",
        "Int64",
        "Float64",
        "Float64",
        "Utf8",
        "Utf8",
        "Date32<DAY>",
        "Timestamp<MICROSECOND, UTC>",
        "Bool",
        "Utf8",
      ],
    );
    const [first, empty, last] = table.toArray().map((row) => row.toJSON());
    assert.deepEqual(first, {
      i: 1,
      big: 9007199254740993n,
      f: 2.5,
      d: 12.34,
      s: "a",
      j: '{"k":1}',
      day: Date.UTC(2026, 10, 25),
      ts: Date.UTC(2026, 10, 25, 10) + 123.456,
      b: true,
      list: "[1, 2]",
    });
    assert.ok(Object.values(empty ?? {}).every((value) => value === null));
    assert.equal(last?.s, "ü");
    assert.equal(last?.ts, 0);
  });

  test("an empty result is a stream with the schema and no rows", async () => {
    const table = await arrowOf("SELECT 1 AS one, 'x' AS s WHERE false", 10);
    assert.equal(table.numRows, 0);
    assert.deepEqual(
      table.schema.fields.map((field) => field.name),
      ["one", "s"],
    );
  });
});
