import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { columnNames, snakeCase, tableNameProblem } from "./names.js";

describe("names", () => {
  test("headers become snake_case", () => {
    assert.deepEqual(
      [
        "Order ID",
        "customerName",
        "HTTPStatus",
        "Café Crème",
        "Margin %",
        "Order #",
        "2024 Revenue",
        "  a--b  ",
      ].map(snakeCase),
      [
        "order_id",
        "customer_name",
        "http_status",
        "cafe_creme",
        "margin_pct",
        "order_num",
        "_2024_revenue",
        "a_b",
      ],
    );
  });

  test("column names are unique, and empty headers are named by position", () => {
    assert.deepEqual(columnNames(["Amount", "amount", "", "€", "Amount"]), [
      "amount",
      "amount_2",
      "column_3",
      "column_4",
      "amount_3",
    ]);
  });

  test("table names are plain identifiers", () => {
    assert.equal(tableNameProblem("orders_2026"), null);
    assert.match(tableNameProblem("Orders") ?? "", /not a valid table name.*\(e\.g\. orders\)/);
    assert.match(tableNameProblem("_x") ?? "", /starting with a letter/);
  });
});
