import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { DuckDBDecimalValue, DuckDBIntervalValue } from "@duckdb/node-api";
import { decodeBinaryParameter, encodeBinary, encodeText, OID } from "./types.js";

describe("PostgreSQL's formats of DuckDB values", () => {
  test("numeric in binary reads back as the same decimal, whatever its digits and sign", () => {
    for (const text of [
      "0",
      "1",
      "-1",
      "12.345",
      "-12345.678",
      "0.001",
      "0.0000",
      "10000",
      "100000000.5",
      "-0.5",
    ]) {
      const [whole = "", fraction = ""] = text.replace("-", "").split(".");
      const unscaled = BigInt((text.startsWith("-") ? "-" : "") + whole + fraction);
      const value = new DuckDBDecimalValue(unscaled, 18, fraction.length);
      const binary = encodeBinary(value, OID.numeric) as Buffer;
      assert.equal(decodeBinaryParameter(binary, OID.numeric), text);
    }
    const huge = 123456789012345678901234567890n;
    assert.equal(decodeBinaryParameter(encodeBinary(huge, OID.numeric) as Buffer, OID.numeric), String(huge));
  });

  test("numeric in binary is PostgreSQL's layout: base-10000 digits, weight, sign, scale", () => {
    const binary = encodeBinary(new DuckDBDecimalValue(-12345678n, 12, 3), OID.numeric) as Buffer;
    // -12345.678 = -(1 × 10000 + 2345 + 6780 / 10000): 3 digits, weight 1, negative, 3 decimals.
    assert.deepEqual(
      [0, 2, 4, 6, 8, 10, 12].map((offset) => binary.readUInt16BE(offset)),
      [3, 1, 0x4000, 3, 1, 2345, 6780],
    );
  });

  test("intervals are written as PostgreSQL writes them", () => {
    const text = (months: number, days: number, micros: bigint) =>
      encodeText(new DuckDBIntervalValue(months, days, micros), OID.interval)?.toString();
    assert.equal(text(0, 0, 0n), "00:00:00");
    assert.equal(text(14, 3, 4_500_000n), "1 year 2 mons 3 days 00:00:04.5");
    assert.equal(text(-1, -1, 3_600_000_000n), "-1 mons -1 days +01:00:00");
    assert.equal(text(0, 1, -60_000_000n), "1 day -00:01:00");
  });

  test("floats are written in their shortest form; special values PostgreSQL's way", () => {
    assert.equal(encodeText(Math.fround(0.1), OID.float4)?.toString(), "0.1");
    assert.equal(encodeText(Math.fround(16777217), OID.float4)?.toString(), "16777216");
    assert.equal(encodeText(0.1, OID.float8)?.toString(), "0.1");
    assert.equal(encodeText(Number.NEGATIVE_INFINITY, OID.float8)?.toString(), "-Infinity");
  });

  test("binary parameters of dates and timestamps read as DuckDB text", () => {
    const days = Buffer.alloc(4);
    days.writeInt32BE(-1);
    assert.equal(decodeBinaryParameter(days, OID.date), "1999-12-31");
    const micros = Buffer.alloc(8);
    micros.writeBigInt64BE(1_500_000n);
    assert.equal(decodeBinaryParameter(micros, OID.timestamptz), "2000-01-01T00:00:01.500000+00");
    micros.writeBigInt64BE(-1n);
    assert.equal(decodeBinaryParameter(micros, OID.timestamp), "1999-12-31T23:59:59.999999");
    assert.throws(
      () => decodeBinaryParameter(Buffer.alloc(16), 600),
      /OID 600 are not supported; send them as text/,
    );
  });
});
