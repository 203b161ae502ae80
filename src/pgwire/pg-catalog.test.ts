import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { toDuckDbSql as rewrite } from "./pg-catalog.js";

const toDuckDbSql = (sql: string) => rewrite(sql, { user: "ann" });

describe("PostgreSQL statements in DuckDB's terms", () => {
  test("catalog names Sluice defines go to sluice_pg, qualified or bare; others stay", () => {
    assert.equal(
      toDuckDbSql("SELECT pg_catalog.format_type(a.atttypid, NULL) FROM pg_catalog.pg_attribute a"),
      "SELECT sluice_pg.format_type(a.atttypid, NULL) FROM sluice_pg.pg_attribute a",
    );
    assert.equal(toDuckDbSql("SELECT relname FROM pg_class"), "SELECT relname FROM sluice_pg.pg_class");
    assert.equal(
      toDuckDbSql("SELECT pg_catalog.array_to_string(x, ',') FROM pg_catalog.pg_stat_activity"),
      "SELECT array_to_string(x, ',') FROM pg_catalog.pg_stat_activity",
    );
  });

  test("string literals are left alone", () => {
    assert.equal(
      toDuckDbSql("SELECT 'pg_catalog.pg_class', event FROM events WHERE event = 'pg_type'"),
      "SELECT 'pg_catalog.pg_class', event FROM events WHERE event = 'pg_type'",
    );
  });

  test("PostgreSQL-only syntax becomes DuckDB's", () => {
    assert.equal(
      toDuckDbSql("WHERE c.relname OPERATOR(pg_catalog.~) '^(events)$' COLLATE pg_catalog.default"),
      "WHERE c.relname  ~ '(?s).*(?:^(events)$).*'",
    );
    assert.equal(toDuckDbSql("WHERE n.nspname !~ '^pg_'"), "WHERE n.nspname !~ '(?s).*(?:^pg_).*'");
    assert.equal(
      toDuckDbSql("WHERE c.oid = 'main.events'::regclass"),
      "WHERE c.oid = sluice_pg.regclass_oid('main.events')",
    );
    assert.equal(toDuckDbSql("SELECT a.attrelid::regclass::text"), "SELECT a.attrelid::VARCHAR::text");
    assert.equal(
      toDuckDbSql("JOIN pg_attribute a ON a.attnum = ANY(ix.indkey)"),
      "JOIN sluice_pg.pg_attribute a ON list_contains(ix.indkey, a.attnum)",
    );
    assert.equal(toDuckDbSql("SELECT json_build_object('a', 1)"), "SELECT json_object('a', 1)");
  });

  test("~ matches anywhere in the text, as in PostgreSQL", () => {
    assert.equal(
      toDuckDbSql("SELECT count(*) FROM events WHERE page_path ~* 'checkout'"),
      "SELECT count(*) FROM events WHERE page_path ~ '(?si).*(?:checkout).*'",
    );
  });

  test("a statement with nothing of PostgreSQL's catalog is passed as it is", () => {
    const sql = "SELECT event, count(*) FROM events WHERE properties->>'x' = 'a' GROUP BY 1";
    assert.equal(toDuckDbSql(sql), sql);
  });
});
