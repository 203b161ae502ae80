/**
 * PostgreSQL's names for the result columns a query leaves unnamed. DuckDB names `count(*)`
 * "count_star()" and `sum(x::DOUBLE)` after its text; PostgreSQL names a function call after the
 * function ("count", "sum"), a cast after what it casts (else its type), CASE "case", a scalar
 * subquery after its column, and other expressions "?column?". Applications read rows by these
 * names (`rows[0].count` in node-postgres, `row["max"]` with psycopg's dict rows), so the Postgres
 * port names columns PostgreSQL's way, from DuckDB's parse tree of the statement. Aliases and
 * column references keep DuckDB's names, which are theirs.
 */
import type { ParseNode, ParseTree } from "../warehouse/index.js";

/** A select-list entry that expands to any number of columns (`*`, `COLUMNS(...)`). */
const STAR = Symbol("star");

/** Per select-list entry: PostgreSQL's name, null to keep DuckDB's, or STAR. */
export type SelectListNames = (string | null | typeof STAR)[];

/**
 * PostgreSQL's names of the result columns of `sql` (whose parse tree `tree` is), or null when it
 * is no single SELECT. An alias written without quotes is folded to lower case, as PostgreSQL
 * folds every unquoted name (`AS Total` is `total`); DuckDB keeps it as written.
 */
export function postgresColumnNames(tree: ParseTree, sql: string): SelectListNames | null {
  if (tree.error || tree.statements?.length !== 1) return null;
  const node = firstSelect((tree.statements[0] as ParseNode).node as ParseNode | undefined);
  if (node === null) return null;
  return (node.select_list as ParseNode[]).map((entry) => {
    if (entry.class === "STAR") return STAR;
    const alias = entry.alias as string;
    if (alias) return alias === alias.toLowerCase() || quoted(alias, sql) ? null : alias.toLowerCase();
    return entry.class === "COLUMN_REF" ? null : (nameOf(entry) ?? "?column?");
  });
}

/** Whether `sql` writes the name in double quotes somewhere (then its case is kept). */
const quoted = (name: string, sql: string): boolean => sql.includes(`"${name.replaceAll('"', '""')}"`);

/** `columns` with the names of `names` where it has them; as they are where the two do not line up. */
export function renameColumns<T extends { name: string }>(columns: T[], names: SelectListNames | null): T[] {
  if (names === null) return columns;
  const star = names.indexOf(STAR);
  // Entries after a single star line up with the last columns; after a second one nothing does.
  const tail = star === -1 || names.lastIndexOf(STAR) !== star ? [] : names.slice(star + 1);
  const head = star === -1 ? names : names.slice(0, star);
  if (star === -1 && names.length !== columns.length) return columns;
  if (head.length + tail.length > columns.length) return columns;
  return columns.map((column, index) => {
    const fromEnd = columns.length - index;
    const name =
      index < head.length ? head[index] : fromEnd <= tail.length ? tail[tail.length - fromEnd] : null;
    return typeof name === "string" ? { ...column, name } : column;
  });
}

/** The SELECT whose select list names the result: a set operation's first (leftmost) one. */
function firstSelect(node: ParseNode | undefined): ParseNode | null {
  if (node === undefined) return null;
  if (node.type === "SELECT_NODE") return node;
  if (node.type === "SET_OPERATION_NODE") return firstSelect(node.left as ParseNode);
  return null;
}

/** PostgreSQL's name of an expression (its FigureColname), null for "?column?". */
function nameOf(node: ParseNode): string | null {
  switch (node.class) {
    case "COLUMN_REF":
      return ((node.column_names as string[]).at(-1) as string) ?? null;
    case "FUNCTION": {
      if (node.is_operator) return null;
      const name = String(node.function_name);
      return FUNCTION_NAMES[name] ?? name;
    }
    case "WINDOW":
      return String(node.function_name);
    case "CAST":
      return nameOf(node.child as ParseNode) ?? typeName(node.cast_type as ParseNode);
    case "CASE":
      return "case";
    case "OPERATOR":
      if (node.type === "OPERATOR_COALESCE") return "coalesce";
      // arr[1] and s.field are named after what they index, as PostgreSQL does.
      if (node.type === "ARRAY_EXTRACT" || node.type === "ARRAY_SLICE") {
        return nameOf((node.children as ParseNode[])[0] as ParseNode);
      }
      return null;
    case "SUBQUERY": {
      if (node.subquery_type === "EXISTS") return "exists";
      if (node.subquery_type !== "SCALAR") return null;
      const select = firstSelect((node.subquery as ParseNode).node as ParseNode);
      const first = (select?.select_list as ParseNode[] | undefined)?.[0];
      if (first === undefined || first.class === "STAR") return null;
      return (first.alias as string) || nameOf(first);
    }
    default:
      return null;
  }
}

/** DuckDB's names for functions PostgreSQL spells otherwise. */
const FUNCTION_NAMES: Record<string, string> = {
  count_star: "count",
  list_value: "array",
  struct_pack: "row",
};

/** PostgreSQL's name of a cast's type, as it names a cast of something nameless (`'1'::int` → int4). */
function typeName(type: ParseNode): string | null {
  const id = String(type.id);
  if (id === "UNBOUND") return String((type.type_info as ParseNode | null)?.name ?? "").toLowerCase() || null;
  return TYPE_NAMES[id] ?? id.toLowerCase();
}

const TYPE_NAMES: Record<string, string> = {
  BOOLEAN: "bool",
  TINYINT: "int2",
  SMALLINT: "int2",
  INTEGER: "int4",
  BIGINT: "int8",
  HUGEINT: "numeric",
  DECIMAL: "numeric",
  FLOAT: "float4",
  DOUBLE: "float8",
  VARCHAR: "text",
  BLOB: "bytea",
  "TIMESTAMP WITH TIME ZONE": "timestamptz",
  "TIME WITH TIME ZONE": "timetz",
};
