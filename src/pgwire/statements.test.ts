import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { answerLocally, SettingRefused, splitStatements } from "./statements.js";

describe("session statements", () => {
  const engineSettings = new Set(["enable_external_access", "memory_limit", "timezone", "search_path"]);

  test("a simple query splits at semicolons outside literals, quoted names, comments and dollar quotes", () => {
    assert.deepEqual(
      splitStatements(`SELECT 'a;b', "c;d" FROM t; -- one; two
        SELECT $$x;y$$ /* ; */ ;;  ; SELECT 'it''s; fine'`),
      [`SELECT 'a;b', "c;d" FROM t`, "-- one; two\n        SELECT $$x;y$$ /* ; */", "SELECT 'it''s; fine'"],
    );
    assert.deepEqual(splitStatements(" ; -- nothing\n"), []);
    assert.deepEqual(splitStatements("SELECT E'it\\'s; one'; SELECT 'a\\'; SELECT 2"), [
      "SELECT E'it\\'s; one'",
      "SELECT 'a\\'",
      "SELECT 2",
    ]);
  });

  test("SET of a PostgreSQL parameter is accepted; of the query engine's settings refused", () => {
    for (const sql of [
      "SET extra_float_digits = 3",
      "SET application_name = 'x'",
      "SET TIME ZONE 'UTC'",
      "SET search_path = main",
      "RESET ALL",
    ]) {
      assert.match(answerLocally(sql, engineSettings)?.tag ?? "", /^(SET|RESET)$/, sql);
    }
    for (const sql of [
      "SET enable_external_access = true",
      "set session memory_limit='1TB'",
      "RESET Memory_Limit",
      'SET "enable_external_access" TO true',
    ]) {
      assert.throws(() => answerLocally(sql, engineSettings), SettingRefused, sql);
    }
  });

  test("SHOW answers under the parameter's own name", () => {
    assert.deepEqual(answerLocally("SHOW TRANSACTION ISOLATION LEVEL", engineSettings)?.columns, [
      "transaction_isolation",
    ]);
    assert.deepEqual(answerLocally("show time zone;", engineSettings)?.columns, ["TimeZone"]);
    assert.deepEqual(answerLocally("SHOW datestyle", engineSettings)?.rows, [["ISO, MDY"]]);
    assert.equal(answerLocally("SHOW TABLES", engineSettings), null, "DuckDB's SHOW TABLES reaches DuckDB");
  });
});
