import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import type { CheckResult } from "./model.js";
import { tempQuality } from "./test-support.js";

const ORDERS = `order_id,customer_id,status,email,amount,created_at
1,10,paid,a@example.com,20.5,2026-11-20T10:00:00Z
2,11,new,b@example.com,5,2026-11-21T10:00:00Z
3,,shipped,c@example,100,2026-11-22T10:00:00Z
3,12,lost,d@example.com,-4,2026-11-23T10:00:00Z
`;
const CUSTOMERS = "id,name\n10,Ada\n11,Grace\n";

/** Each kind twice: a rule the fixture keeps (`<kind> passes`) and one it breaks (`<kind> fails`). */
const PROJECT = `
orders:
  checks:
    - { type: row_count, name: row_count passes, min: 1, max: 10 }
    - { type: row_count, name: row_count fails, min: 5 }
    - { type: missing, name: missing passes, column: email }
    - { type: missing, name: missing fails, column: customer_id }
    - { type: missing, name: missing percent passes, column: customer_id, max_percent: 25 }
    - { type: missing, name: missing percent fails, column: customer_id, max_percent: 10 }
    - { type: duplicates, name: duplicates passes, columns: [order_id, customer_id] }
    - { type: duplicates, name: duplicates fails, column: order_id }
    - { type: accepted_values, name: accepted_values passes, column: status, values: [paid, new, shipped, lost] }
    - { type: accepted_values, name: accepted_values fails, column: status, values: [paid, new, shipped] }
    - { type: regex, name: regex passes, column: email, pattern: "@" }
    - { type: regex, name: regex fails, column: email, pattern: '^[^@]+@[^@]+\\.[a-z]+$' }
    - { type: range, name: range passes, column: amount, min: -10, max: 100 }
    - { type: range, name: range fails, column: amount, min: 0 }
    - { type: range, name: range of times passes, column: created_at, min: "2026-11-01", max: "2026-12-01" }
    - { type: freshness, name: freshness passes, column: created_at, max_age: 2h }
    - { type: freshness, name: freshness fails, column: created_at, max_age: 30m }
    - type: schema_change
      name: schema_change passes
      columns: { order_id: INTEGER, customer_id: INTEGER, status: VARCHAR, email: VARCHAR, amount: "DECIMAL(18,1)", created_at: TIMESTAMPTZ }
    - { type: schema_change, name: schema_change fails, columns: { order_id: INTEGER, status: INTEGER, coupon: VARCHAR } }
    - { type: references, name: references passes, column: customer_id, to: customers.id, where: "customer_id < 12" }
    - { type: references, name: references fails, column: customer_id, to: customers.id }
    - { type: sql, name: sql passes, sql: "select * from {{ table }} where amount > 1000" }
    - { type: sql, name: sql fails, sql: "select * from orders where amount < 0", severity: warn }
    - { type: sql, name: sql that cannot run, sql: "select * from nowhere" }
    - { type: range, name: misspelt column, column: amout, min: 0 }
`;

describe("checks on fixture data", () => {
  let ctx: Awaited<ReturnType<typeof tempQuality>>;
  let results: Map<string, CheckResult>;
  let blocking: boolean;

  before(async () => {
    ctx = await tempQuality({ project: { "quality.yml": PROJECT } });
    await ctx.load("orders", "orders.csv", ORDERS);
    await ctx.load("customers", "customers.csv", CUSTOMERS);
    const run = await ctx.quality.runChecks("orders", {
      trigger: "cli",
      now: new Date("2026-11-23T11:00:00Z"),
    });
    results = new Map(run.results.map((result) => [result.check, result]));
    blocking = run.blocking;
  });
  after(() => ctx.close());

  test("every check kind passes on data that keeps its rule", () => {
    const passing = [...results.values()].filter((result) => result.check.endsWith("passes"));
    assert.equal(passing.length, 12);
    for (const result of passing) assert.equal(result.status, "pass", `${result.check}: ${result.message}`);
  });

  test("every check kind fails on data that breaks its rule, saying how", () => {
    const expected: Record<string, RegExp> = {
      "row_count fails": /^4 rows; expected at least 5$/,
      "missing fails": /^1 of 4 rows \(25%\) has no customer_id; expected at most 0$/,
      "missing percent fails": /25%.*at most 10%/,
      "duplicates fails": /^1 value of order_id occurs more than once \(1 extra row\)/,
      "accepted_values fails": /^1 row has a value of status not in paid, new, shipped \(1 other value\)$/,
      "regex fails": /^1 row has a value of email that does not match/,
      "range fails": /^1 row has a value of amount outside the range \(expected at least 0\)$/,
      "freshness fails": /newest created_at \(2026-11-23T10:00:00.000Z\) is 1h old; expected at most 30m/,
      "schema_change fails":
        /added customer_id.*; removed coupon \(VARCHAR\); retyped status \(INTEGER → VARCHAR\)/,
      "references fails": /^1 row \(1 value\) has a value of customer_id not found in customers.id$/,
      "sql fails": /^the query returned 1 failing row; expected at most 0$/,
    };
    for (const [name, message] of Object.entries(expected)) {
      const result = results.get(name);
      assert.equal(result?.status, "fail", `${name}: ${result?.message}`);
      assert.match(result.message, message);
    }
    assert.deepEqual(results.get("accepted_values fails")?.sample, {
      columns: ["status", "rows"],
      rows: [["lost", 1]],
    });
    assert.deepEqual(results.get("regex fails")?.sample?.rows, [["c@example"]]);
  });

  test("a check that cannot run is an error result with DuckDB's reason, not a crash", () => {
    const result = results.get("sql that cannot run");
    assert.equal(result?.status, "error");
    assert.match(result.message, /^could not run: .*nowhere/);
    assert.doesNotMatch(result.message, /\n/, "one line, without DuckDB's SQL excerpt");
    assert.equal(
      results.get("misspelt column")?.message,
      "could not run: orders has no column amout (its columns: order_id, customer_id, status, email, amount, created_at)",
    );
  });

  test("an error-severity failure blocks; warn-severity ones alone do not", async () => {
    assert.equal(blocking, true);
    const warnOnly = await ctx.quality.runChecks("orders", {
      trigger: "cli",
      names: ["sql fails", "row_count passes"],
    });
    assert.equal(warnOnly.results.find((result) => result.check === "sql fails")?.status, "fail");
    assert.equal(warnOnly.blocking, false);
  });

  test("a candidate's uncommitted files are audited as if they were the table (write-audit-publish)", async () => {
    const table = await ctx.quality.table("orders");
    const path = join(ctx.dataDir, "lake", "orders", "candidate.parquet");
    const connection = await ctx.engine.connect();
    await connection.run(
      `COPY (SELECT 9 AS order_id, 10 AS customer_id, 'paid' AS status, 'z@example.com' AS email, 1.0 AS amount,
        TIMESTAMPTZ '2026-11-23 10:30:00Z' AS created_at) TO '${path}' (FORMAT parquet)`,
    );
    connection.closeSync();
    const audit = await ctx.quality.runChecks("orders", {
      trigger: "audit",
      candidate: { table, paths: [path] },
      names: ["row_count fails", "missing fails", "duplicates fails", "references fails"],
      alert: false,
    });
    assert.deepEqual(
      audit.results.map((result) => [result.check, result.status, result.observed]),
      [
        ["row_count fails", "fail", 1],
        ["missing fails", "pass", 0],
        ["duplicates fails", "pass", 0],
        ["references fails", "pass", 0],
      ],
    );
    assert.equal(audit.blocking, true);
    // The live table is untouched and still judged on its own rows.
    const live = await ctx.quality.runChecks("orders", {
      trigger: "cli",
      names: ["missing fails"],
      alert: false,
    });
    assert.equal(live.results[0]?.status, "fail");
  });

  test("results are searchable by table and part of the check name", () => {
    const found = ctx.quality.store.results({ table: "orders", check: "DUPLICATES" });
    assert.deepEqual(
      new Set(found.map((result) => result.check)),
      new Set(["duplicates passes", "duplicates fails"]),
    );
    assert.equal(ctx.quality.store.results({ table: "customers" }).length, 0);
    assert.ok(ctx.quality.store.results({ status: "fail" }).every((result) => result.status === "fail"));
  });
});
