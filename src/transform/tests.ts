/**
 * The SQL of the generic tests (dbt's semantics): each returns the failing rows, so a test
 * passes when it returns none. Column names go in as written, as in dbt (an expression works).
 */
import type { TestDef } from "./project.js";

/** `relation` is the tested table (SQL); `other` the relationships test's other side. */
export function genericTestSql(test: TestDef, relation: string, other: string | null): string {
  const column = test.column ?? "";
  const from = test.where ? `(SELECT * FROM ${relation} WHERE ${test.where})` : relation;
  switch (test.kind) {
    case "unique":
      return `SELECT ${column} AS unique_field, count(*) AS n_records FROM ${from}
WHERE ${column} IS NOT NULL GROUP BY ${column} HAVING count(*) > 1`;
    case "not_null":
      return `SELECT * FROM ${from} WHERE ${column} IS NULL`;
    case "accepted_values": {
      const values = test.values.map(literal).join(", ");
      return `SELECT ${column} AS value_field, count(*) AS n_records FROM ${from}
WHERE ${column} IS NOT NULL AND CAST(${column} AS VARCHAR) NOT IN (${values}) GROUP BY ${column}`;
    }
    case "relationships":
      return `SELECT child.${column} AS from_field FROM ${from} AS child
LEFT JOIN ${other} AS parent ON child.${column} = parent.${test.field}
WHERE child.${column} IS NOT NULL AND parent.${test.field} IS NULL`;
    case "freshness": {
      // epoch() reads a TIMESTAMP as UTC and a TIMESTAMPTZ as the instant it is, as dbt assumes.
      const age = `epoch(now()) - epoch(max(${column}))`;
      const { seconds, upTo } = test.maxAge ?? { seconds: 0, upTo: null };
      const stale =
        upTo === null
          ? `max(${column}) IS NULL OR ${age} > ${seconds}`
          : `${age} > ${seconds} AND ${age} <= ${upTo}`;
      return `SELECT max(${column}) AS max_loaded_at, round((${age}) / 3600, 2) AS hours_ago FROM ${from}
HAVING ${stale}`;
    }
    case "singular":
      throw new Error("a singular test's SQL is its own template");
    case "custom":
      throw new Error("a project's generic test's SQL is its macro's");
  }
}

/** Values compare as text, so `values: [1, 2]` matches an integer column as dbt's quoting does a text one. */
const literal = (value: unknown): string => `'${String(value).replaceAll("'", "''")}'`;
