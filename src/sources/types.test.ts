import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type ColumnType, fitsIn, parseType, typeSql, widen } from "./types.js";

const t = (name: string): ColumnType => {
  const type = parseType(name);
  assert.ok(type, name);
  return type;
};
const widened = (existing: string, incoming: string) => {
  const type = widen(t(existing), t(incoming));
  return type ? typeSql(type) : null;
};

describe("column types", () => {
  test("configuration names and aliases parse; unknown ones do not", () => {
    assert.deepEqual(
      ["int", "text", "numeric(12, 2)", "decimal", "timestamp with time zone", "bool"].map((name) =>
        typeSql(t(name)),
      ),
      ["INTEGER", "VARCHAR", "DECIMAL(12,2)", "DECIMAL(18,3)", "TIMESTAMPTZ", "BOOLEAN"],
    );
    assert.deepEqual(
      ["time", "uuid", "bytea", "blob"].map((name) => typeSql(t(name))),
      ["TIME", "UUID", "BLOB", "BLOB"],
    );
    assert.equal(parseType("MONEY"), null);
    assert.equal(parseType("DECIMAL(40,2)"), null);
  });

  test("what fits where", () => {
    assert.ok(fitsIn(t("INTEGER"), t("DECIMAL(18,2)")));
    assert.ok(!fitsIn(t("BIGINT"), t("DECIMAL(18,2)")));
    assert.ok(fitsIn(t("DECIMAL(10,2)"), t("DOUBLE")));
    assert.ok(fitsIn(t("DATE"), t("TIMESTAMPTZ")));
    assert.ok(fitsIn(t("JSON"), t("VARCHAR")));
    assert.ok(!fitsIn(t("VARCHAR"), t("INTEGER")));
    assert.ok(!fitsIn(t("BOOLEAN"), t("INTEGER")));
  });

  test("widening stays within numbers or within time", () => {
    assert.equal(widened("INTEGER", "BIGINT"), "BIGINT");
    assert.equal(widened("BIGINT", "DOUBLE"), "DOUBLE");
    assert.equal(widened("BIGINT", "DECIMAL(18,2)"), "DOUBLE");
    assert.equal(widened("INTEGER", "DECIMAL(18,2)"), "DECIMAL(18,2)");
    assert.equal(widened("DECIMAL(18,1)", "DECIMAL(18,2)"), "DECIMAL(19,2)");
    assert.equal(widened("DATE", "TIMESTAMP"), "TIMESTAMP");
    assert.equal(widened("TIMESTAMP", "TIMESTAMPTZ"), "TIMESTAMPTZ");
    assert.equal(widened("DOUBLE", "INTEGER"), "DOUBLE");
    assert.equal(widened("VARCHAR", "DATE"), "VARCHAR");
    assert.equal(widened("INTEGER", "VARCHAR"), null);
    assert.equal(widened("DATE", "INTEGER"), null);
    assert.equal(widened("BOOLEAN", "INTEGER"), null);
    assert.equal(widened("TIME", "TIMESTAMP"), null, "a time of day is not a point in time");
    assert.equal(widened("UUID", "VARCHAR"), null);
    assert.equal(widened("VARCHAR", "BLOB"), "VARCHAR");
  });
});
