import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { TableDef } from "../catalog/index.js";
import { applyFilters, filtersFromQuery } from "./filters.js";

const events: TableDef = {
  name: "events",
  columns: [
    { name: "ts", type: "TIMESTAMPTZ" },
    { name: "country", type: "VARCHAR" },
    { name: "properties", type: "JSON" },
  ],
  partitionBy: { column: "dt", fromTimestamp: "ts" },
};
const orders: TableDef = { name: "orders", columns: [{ name: "amount", type: "DOUBLE" }], partitionBy: null };
const tables = [events, orders];

describe("dashboard filters", () => {
  test("a filtered table is a same-named CTE; columns compare as text, other names read properties", () => {
    assert.equal(
      applyFilters("select count(*) from events", { country: "NL,DE", plan: "pro" }, tables),
      `WITH "events" AS (SELECT * FROM "events" WHERE "country"::VARCHAR IN ('NL', 'DE') AND (properties->>'plan') IN ('pro')) select count(*) from events`,
    );
  });

  test("dates bound the timestamp (a bare day is inclusive, `last` counts back from now) and the partitions", () => {
    assert.equal(
      applyFilters("select 1 from events", { from: "2026-11-01", to: "2026-11-02", last: "24h" }, tables),
      `WITH "events" AS (SELECT * FROM "events" WHERE "ts" >= now() - INTERVAL 24 HOUR AND "ts" >= TIMESTAMPTZ '2026-11-01' AND "ts" < TIMESTAMPTZ '2026-11-02' + INTERVAL 1 DAY AND "dt" >= CAST(now() - INTERVAL 24 HOUR AS DATE) AND "dt" >= CAST(TIMESTAMPTZ '2026-11-01' AS DATE) AND "dt" <= CAST(TIMESTAMPTZ '2026-11-02' AS DATE)) select 1 from events`,
    );
    assert.throws(
      () => applyFilters("select 1 from events", { from: "last week" }, tables),
      /"from" must be a date/,
    );
    assert.throws(
      () => applyFilters("select 1 from events", { last: "7 days" }, tables),
      /"last" must be like 7d or 24h/,
    );
  });

  test("tables without the filter's column, and tables the SQL does not read, are left alone", () => {
    assert.equal(
      applyFilters("select sum(amount) from orders", { country: "NL", from: "2026-11-01" }, tables),
      "select sum(amount) from orders",
    );
    assert.equal(applyFilters("select * from eventsy", { country: "NL" }, tables), "select * from eventsy");
  });

  test("the query's own WITH list is kept; a RECURSIVE one or a non-SELECT is wrapped", () => {
    assert.equal(
      applyFilters("with t as (select * from events) select count(*) from t;", { country: "NL" }, tables),
      `WITH "events" AS (SELECT * FROM "events" WHERE "country"::VARCHAR IN ('NL')), t as (select * from events) select count(*) from t`,
    );
    assert.match(
      applyFilters("with recursive r(n) as (select 1) select * from r, events", { country: "NL" }, tables),
      /^WITH "events" AS \(.*\) SELECT \* FROM \(with recursive r\(n\)/,
    );
    assert.match(
      applyFilters("pivot events on country", { country: "NL" }, tables),
      /SELECT \* FROM \(pivot events on country\)$/,
    );
  });

  test("filter names are checked, values are always literals", () => {
    assert.throws(
      () => applyFilters("select 1 from events", { "x') or 1=1 --": "1" }, tables),
      /is not a filter name/,
    );
    assert.match(applyFilters("select 1 from events", { country: "N'L" }, tables), /IN \('N''L'\)/);
  });

  test("URL parameters become filters, without empty values or the refresh interval", () => {
    assert.deepEqual(filtersFromQuery({ country: "NL", browser: "", refresh: "30", plan: ["a", "b"] }), {
      country: "NL",
      plan: "a,b",
    });
  });
});
