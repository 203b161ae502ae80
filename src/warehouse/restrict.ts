/**
 * What a non-admin's SQL may reach: the catalog's tables by name, common table expressions and
 * the system catalogs; never a file. The query engine's sandbox already keeps every query inside
 * the lake directory and read-only (engine.ts); this narrows non-admins further, so that a viewer
 * cannot read the lake's files directly (`read_parquet('…/events_raw/…')`, `FROM 'x.parquet'`)
 * around a table kept from them, such as the raw zone.
 *
 * The check reads DuckDB's parse tree (`json_serialize_sql`): table functions other than a few
 * that read no files (range, unnest, ...), functions that reach other tables or variables
 * (query_table, getvariable, ...), and table names that are paths are refused, each with the
 * reason; what DuckDB cannot serialize is refused too. EXPLAIN is checked by the statement it
 * explains.
 */
import type { DuckDBConnection } from "@duckdb/node-api";
import { sqlString } from "./engine.js";

export interface Restriction {
  /** Tables this reader may not read (lower case), e.g. the raw zone. */
  hiddenTables: readonly string[];
}

/** Table functions that compute rows without reading anything stored. */
const ROW_FUNCTIONS = new Set([
  "range",
  "generate_series",
  "unnest",
  "json_each",
  "json_tree",
  "duckdb_tables",
  "duckdb_views",
  "duckdb_columns",
  "duckdb_schemas",
  "duckdb_types",
  "duckdb_functions",
  "duckdb_constraints",
  "duckdb_indexes",
  "pragma_table_info",
]);

/** Scalar functions that reach what a view hides: a connection's variables, or tables by computed name. */
const REACHING_FUNCTIONS = new Set(["getvariable", "query", "query_table", "current_setting"]);

/** Schemas of metadata, readable by everyone. */
const SYSTEM_SCHEMAS = new Set(["information_schema", "pg_catalog", "sluice_pg"]);

export interface Node {
  [key: string]: unknown;
}

export interface ParseTree {
  error: boolean;
  error_type?: string;
  error_message?: string;
  statements?: Node[];
}

/** DuckDB's parse tree of `sql` (`json_serialize_sql`); EXPLAIN is read as the statement it explains. */
export async function parseTree(
  connection: DuckDBConnection,
  sql: string,
): Promise<{ checked: string; tree: ParseTree }> {
  const explained = /^\s*EXPLAIN(?:\s+ANALYZE)?\s+/i.exec(sql);
  const checked = explained ? sql.slice(explained[0].length) : sql;
  const reader = await connection.runAndReadAll(`SELECT json_serialize_sql(${sqlString(checked)})`);
  return { checked, tree: JSON.parse(String(reader.getRowsJson()[0]?.[0])) as ParseTree };
}

/** Whether the parser found a statement other than SELECT (it serializes SELECTs only). */
export const notOnlySelects = (tree: ParseTree): boolean =>
  /Only SELECT statements/.test(tree.error_message ?? "");

/** Null when `sql` keeps to what `restriction` allows; else why it does not. */
export async function restrictionProblem(
  connection: DuckDBConnection,
  sql: string,
  restriction: Restriction,
): Promise<string | null> {
  const { checked, tree } = await parseTree(connection, sql);
  if (tree.error) {
    // Not SQL, or not a SELECT: DuckDB's parser error and the read-only rule, checked next, say so
    // better. Anything else that cannot be checked does not run.
    if (tree.error_type === "parser") return null;
    if (notOnlySelects(tree)) {
      // Writes, settings and COPY are the read-only rule's to refuse; but a PRAGMA becomes a call of
      // a table function (pragma_table_info, ...) that passes that rule unchecked by this one.
      return /(?:^|;)\s*PRAGMA\b/i.test(checked)
        ? "PRAGMA calls table functions; only admins may use it"
        : null;
    }
    return `this statement cannot be checked for access (${tree.error_message}), so only admins may run it`;
  }
  const hidden = new Set(restriction.hiddenTables.map((name) => name.toLowerCase()));
  let problem: string | null = null;
  const visit = (value: unknown): void => {
    if (problem !== null || value === null || typeof value !== "object") return;
    if (Array.isArray(value)) {
      for (const item of value) visit(item);
      return;
    }
    const node = value as Node;
    problem = nodeProblem(node, hidden);
    for (const child of Object.values(node)) visit(child);
  };
  visit(tree.statements);
  return problem;
}

function nodeProblem(node: Node, hidden: Set<string>): string | null {
  if (node.type === "TABLE_FUNCTION") {
    const name = String((node.function as Node | undefined)?.function_name ?? "").toLowerCase();
    return ROW_FUNCTIONS.has(name)
      ? null
      : `${name}() reads outside the catalog's tables; only admins may use it: query tables by name`;
  }
  if (node.class === "FUNCTION") {
    const name = String(node.function_name ?? "").toLowerCase();
    return REACHING_FUNCTIONS.has(name) ? `${name}() is for admins only` : null;
  }
  if (node.type === "BASE_TABLE" || node.type === "SHOW_REF") {
    const name = String(node.table_name ?? "");
    const schema = String(node.schema_name ?? "").toLowerCase();
    if (name === "" || SYSTEM_SCHEMAS.has(schema)) return null;
    if (/[./\\:]/.test(name)) return `"${name}" is a file, not a table; only admins may read files`;
    if (hidden.has(name.toLowerCase())) return `table ${name} is for admins only`;
  }
  return null;
}
