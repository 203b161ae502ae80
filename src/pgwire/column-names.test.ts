import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { type DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import { type ParseTree, sqlString } from "../warehouse/index.js";
import { postgresColumnNames, renameColumns } from "./column-names.js";

describe("PostgreSQL's column names", () => {
  let instance: DuckDBInstance;
  let connection: DuckDBConnection;
  before(async () => {
    instance = await DuckDBInstance.create(":memory:");
    connection = await instance.connect();
    await connection.run("CREATE TABLE t (a INTEGER, b VARCHAR, ts TIMESTAMP, tags VARCHAR[], props JSON)");
  });
  after(() => {
    connection.closeSync();
    instance.closeSync();
  });

  /** The column names DuckDB gives `sql`, renamed as the Postgres port names them. */
  const named = async (sql: string): Promise<string[]> => {
    const tree = JSON.parse(
      String(
        (await connection.runAndReadAll(`SELECT json_serialize_sql(${sqlString(sql)})`)).getRows()[0]?.[0],
      ),
    ) as ParseTree;
    const reader = await connection.runAndReadAll(sql);
    const columns = reader.columnNames().map((name) => ({ name }));
    return renameColumns(columns, postgresColumnNames(tree, sql)).map((column) => column.name);
  };

  test("names functions, casts, CASE, subqueries and the rest as PostgreSQL does; folds unquoted aliases", async () => {
    assert.deepEqual(
      await named(
        "SELECT count(*), sum(a::DOUBLE), max(ts)::DATE, 1 + 1, 'x', '7'::INTEGER, '{}'::JSON, " +
          "CASE WHEN a > 1 THEN 1 END, coalesce(b, ''), (SELECT max(a) FROM t), EXISTS (SELECT 1), " +
          "tags[1], props->>'k', a IS NULL, a AS Folded, a AS \"Kept\", b, t.ts, row_number() OVER (), [1, 2] FROM t GROUP BY a, b, ts, tags, props",
      ),
      [
        "count",
        "sum",
        "max",
        "?column?",
        "?column?",
        "int4",
        "json",
        "case",
        "coalesce",
        "max",
        "exists",
        "tags",
        "?column?",
        "?column?",
        "folded",
        "Kept",
        "b",
        "ts",
        "row_number",
        "array",
      ],
    );
  });

  test("a star keeps its columns' names, the entries around it are renamed; a UNION is named by its first SELECT", async () => {
    assert.deepEqual(await named("SELECT count(*) OVER (), *, upper(b) FROM t"), [
      "count",
      "a",
      "b",
      "ts",
      "tags",
      "props",
      "upper",
    ]);
    assert.deepEqual(await named("SELECT min(a), 2 FROM t UNION ALL SELECT 1 AS one, 3"), [
      "min",
      "?column?",
    ]);
    assert.deepEqual(await named("WITH x AS (SELECT a FROM t) SELECT avg(a) FROM x"), ["avg"]);
  });

  test("leaves names as they are when the statement is not one SELECT", () => {
    const columns = [{ name: "count_star()" }];
    assert.equal(
      postgresColumnNames({ error: true, error_message: "Only SELECT statements…" }, "COPY t"),
      null,
    );
    assert.deepEqual(renameColumns(columns, null), columns);
    assert.deepEqual(renameColumns(columns, ["count", "?column?"]), columns, "a list that does not line up");
  });
});
