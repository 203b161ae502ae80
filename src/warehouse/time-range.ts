/**
 * Partition pruning from filters on a table's timestamp. A filter on `dt` prunes
 * Parquet files through the Hive path by itself, but DuckDB cannot infer `dt` from
 * `ts >= now() - INTERVAL 7 DAY`. So the warehouse reads the query's parse tree
 * (DuckDB's `json_serialize_sql`), finds the constant bounds every reference to a
 * partitioned table is filtered by, evaluates them, and lists only the files of the
 * days in range.
 *
 * Only bounds that must hold for every row read are used: comparisons (and BETWEEN)
 * of the table's timestamp column with a constant, ANDed at the top of the WHERE of
 * a SELECT whose FROM is the table itself. A table referenced anywhere without such
 * a bound (a join side, a subquery, an OR) is read whole.
 */
import type { DuckDBConnection } from "@duckdb/node-api";
import type { TableDef } from "../catalog/index.js";

/** Inclusive UTC days (`YYYY-MM-DD`) a query can read; null is open-ended. */
export interface DayRange {
  from: string | null;
  to: string | null;
}

/** A reference's constant bounds on the timestamp, ANDed: the row must be after every lower and before every upper. */
interface ReferenceBounds {
  lower: unknown[];
  upper: unknown[];
}

/** Per partitioned table whose every reference is bounded: the bounds of each reference. */
type Analysis = Map<string, ReferenceBounds[]>;

/** What is kept per SQL text. */
interface Plan {
  analysis: Analysis;
  /** The statement that evaluates every bound (as epoch ms), in analysis order; null until first needed. */
  evaluationSql: string | null;
  /** The bounds' values when they are literals, which need no evaluating again. */
  literalValues: (number | null)[] | null;
}

interface Node {
  class?: string;
  type?: string;
  [key: string]: unknown;
}

const DAY_MS = 86_400_000;
/**
 * Each range is widened by a day on both sides: `now()` moves between evaluating a bound and
 * running the query, and `>` versus `>=` at midnight need not be told apart.
 */
const MARGIN_DAYS = 1;
const CACHED_PLANS = 512;
/** Functions whose value changes from one call to the next: a bound using them is not a constant. */
const VOLATILE_FUNCTIONS = new Set([
  "random",
  "gen_random_uuid",
  "uuid",
  "uuidv4",
  "uuidv7",
  "setseed",
  "nextval",
]);
const LOWER_WHEN_COLUMN_LEFT = new Set(["COMPARE_GREATERTHAN", "COMPARE_GREATERTHANOREQUALTO"]);
const UPPER_WHEN_COLUMN_LEFT = new Set(["COMPARE_LESSTHAN", "COMPARE_LESSTHANOREQUALTO"]);

export class TimeRanges {
  /** Plans by SQL text: dashboards send the same statements again and again. */
  readonly #plans = new Map<string, Plan>();
  #selectTemplate: Node | null = null;

  /**
   * The days each partitioned table in `tables` can be read on by `sql`; tables the
   * query does not bound are absent (read whole).
   */
  async ranges(
    connection: DuckDBConnection,
    sql: string,
    tables: TableDef[],
  ): Promise<Map<string, DayRange>> {
    const timestamps = new Map<string, string>();
    for (const table of tables) {
      const column = table.partitionBy?.fromTimestamp;
      if (column && mentions(sql, column)) timestamps.set(table.name.toLowerCase(), column.toLowerCase());
    }
    if (timestamps.size === 0) return new Map();
    const plan = await this.#plan(connection, sql, timestamps);
    if (plan.analysis.size === 0) return new Map();
    let values: (number | null)[];
    try {
      values = plan.literalValues ?? (await this.#evaluate(connection, plan));
    } catch {
      return new Map(); // a bound DuckDB cannot evaluate on its own: read everything
    }
    return dayRanges(plan.analysis, values);
  }

  async #plan(connection: DuckDBConnection, sql: string, timestamps: Map<string, string>): Promise<Plan> {
    const key = `${[...timestamps].join(",")}\n${sql}`;
    let plan = this.#plans.get(key);
    if (plan === undefined) {
      const tree = await serialize(connection, sql.replace(/^\s*EXPLAIN(\s+ANALY[SZ]E)?\s+/i, ""));
      plan = {
        analysis: tree === null ? new Map() : analyse(tree, timestamps),
        evaluationSql: null,
        literalValues: null,
      };
      if (this.#plans.size >= CACHED_PLANS) this.#plans.delete(this.#plans.keys().next().value as string);
      this.#plans.set(key, plan);
    }
    return plan;
  }

  /** Evaluates every bound in one statement, as epoch ms. */
  async #evaluate(connection: DuckDBConnection, plan: Plan): Promise<(number | null)[]> {
    const expressions = boundExpressions(plan.analysis);
    plan.evaluationSql ??= await this.#evaluationSql(connection, expressions);
    const reader = await connection.runAndReadAll(plan.evaluationSql);
    const row = (reader.getRowsJson()[0] ?? []) as (string | number | null)[];
    const values = row.map((value) => (value === null ? null : Number(value)));
    if (expressions.every(isLiteral)) plan.literalValues = values;
    return values;
  }

  /** `SELECT epoch_ms(TRY_CAST(bound AS TIMESTAMPTZ)), ...` for the bounds, built from their parse trees. */
  async #evaluationSql(connection: DuckDBConnection, expressions: unknown[]): Promise<string> {
    this.#selectTemplate ??= await serialize(connection, "SELECT 1");
    const statement = structuredClone(this.#selectTemplate) as { statements: { node: Node }[] };
    const select = statement.statements[0]?.node;
    if (!select) throw new Error("unexpected parse tree of SELECT 1");
    select.select_list = expressions.map((expression) => epochMsOf(expression));
    // Positions are unsigned 64-bit and some are the maximum, which JSON numbers cannot carry.
    const json = JSON.stringify(statement, (name, value) => (name === "query_location" ? 0 : value));
    const text = await connection.runAndReadAll("SELECT json_deserialize_sql($1::JSON)", [json]);
    return String(text.getRowsJson()[0]?.[0]);
  }
}

function boundExpressions(analysis: Analysis): unknown[] {
  const expressions: unknown[] = [];
  for (const references of analysis.values()) {
    for (const { lower, upper } of references) expressions.push(...lower, ...upper);
  }
  return expressions;
}

/** Bound values (in `boundExpressions` order) as day ranges per table. */
function dayRanges(analysis: Analysis, values: (number | null)[]): Map<string, DayRange> {
  const ranges = new Map<string, DayRange>();
  let next = 0;
  const take = (count: number) => {
    const taken = values.slice(next, next + count).filter((value): value is number => value !== null);
    next += count;
    return taken;
  };
  for (const [table, references] of analysis) {
    let from: number | null = Number.POSITIVE_INFINITY;
    let to: number | null = Number.NEGATIVE_INFINITY;
    for (const { lower, upper } of references) {
      const lowers = take(lower.length);
      const uppers = take(upper.length);
      // One reference's bounds all hold (AND); the table is read by every reference (union).
      if (from !== null) from = lowers.length > 0 ? Math.min(from, Math.max(...lowers)) : null;
      if (to !== null) to = uppers.length > 0 ? Math.max(to, Math.min(...uppers)) : null;
    }
    if (from === null && to === null) continue;
    ranges.set(table, {
      from: from === null ? null : utcDay(from - MARGIN_DAYS * DAY_MS),
      to: to === null ? null : utcDay(to + MARGIN_DAYS * DAY_MS),
    });
  }
  return ranges;
}

/** A literal, or a cast of one: its value never changes. */
function isLiteral(expression: unknown): boolean {
  const node = expression as Node;
  if (node?.class === "CONSTANT") return true;
  return node?.class === "CAST" && isLiteral(node.child);
}

async function serialize(connection: DuckDBConnection, sql: string): Promise<Node | null> {
  const reader = await connection.runAndReadAll("SELECT json_serialize_sql($1::VARCHAR)", [sql]);
  const tree = JSON.parse(String(reader.getRowsJson()[0]?.[0])) as Node;
  return tree.error ? null : tree;
}

/** Per partitioned table: the bounds of each of its references, when every reference has some. */
function analyse(tree: Node, timestamps: Map<string, string>): Analysis {
  const references = new Map<string, Node[]>();
  const boundsByReference = new Map<Node, ReferenceBounds>();
  walk(tree, (node) => {
    if (node.type === "BASE_TABLE") {
      const table = lakeTable(node, timestamps);
      if (table !== null) references.set(table, [...(references.get(table) ?? []), node]);
    } else if (node.type === "SELECT_NODE") {
      const from = node.from_table as Node | undefined;
      const table = from?.type === "BASE_TABLE" ? lakeTable(from, timestamps) : null;
      if (from && table !== null) {
        const names = new Set([String(from.alias || from.table_name).toLowerCase()]);
        boundsByReference.set(from, boundsOf(node.where_clause, timestamps.get(table) ?? "", names));
      }
    }
  });
  const analysis: Analysis = new Map();
  for (const [table, nodes] of references) {
    const bounds = nodes.map((node) => boundsByReference.get(node));
    if (bounds.every((bound) => bound !== undefined && bound.lower.length + bound.upper.length > 0)) {
      analysis.set(table, bounds as ReferenceBounds[]);
    }
  }
  return analysis;
}

/** The lake table a FROM item names, or null (another table, a CTE of another name, a qualified name). */
function lakeTable(node: Node, timestamps: Map<string, string>): string | null {
  if (node.schema_name || node.catalog_name) return null;
  const name = String(node.table_name ?? "").toLowerCase();
  return timestamps.has(name) ? name : null;
}

function boundsOf(where: unknown, column: string, names: Set<string>): ReferenceBounds {
  const bounds: ReferenceBounds = { lower: [], upper: [] };
  for (const conjunct of conjuncts(where)) {
    if (conjunct.class === "COMPARISON") {
      const type = String(conjunct.type);
      const onLeft = isColumn(conjunct.left, column, names) && isConstant(conjunct.right);
      const onRight = isColumn(conjunct.right, column, names) && isConstant(conjunct.left);
      const value = onLeft ? conjunct.right : onRight ? conjunct.left : undefined;
      if (value === undefined) continue;
      const isLower = onLeft ? LOWER_WHEN_COLUMN_LEFT.has(type) : UPPER_WHEN_COLUMN_LEFT.has(type);
      const isUpper = onLeft ? UPPER_WHEN_COLUMN_LEFT.has(type) : LOWER_WHEN_COLUMN_LEFT.has(type);
      if (isLower || type === "COMPARE_EQUAL") bounds.lower.push(value);
      if (isUpper || type === "COMPARE_EQUAL") bounds.upper.push(value);
    } else if (conjunct.type === "COMPARE_BETWEEN" && isColumn(conjunct.input, column, names)) {
      if (isConstant(conjunct.lower) && isConstant(conjunct.upper)) {
        bounds.lower.push(conjunct.lower);
        bounds.upper.push(conjunct.upper);
      }
    }
  }
  return bounds;
}

function conjuncts(expression: unknown): Node[] {
  const node = expression as Node | null;
  if (typeof node !== "object" || node === null) return [];
  if (node.type === "CONJUNCTION_AND") return (node.children as unknown[]).flatMap(conjuncts);
  return [node];
}

/** `ts`, or `alias.ts` with the FROM item's own alias or name. */
function isColumn(expression: unknown, column: string, names: Set<string>): boolean {
  const node = expression as Node;
  if (node?.class !== "COLUMN_REF") return false;
  const parts = (node.column_names as string[]).map((part) => part.toLowerCase());
  if (parts.at(-1) !== column) return false;
  return parts.length === 1 || (parts.length === 2 && names.has(parts[0] ?? ""));
}

/** No columns, subqueries, parameters or volatile functions anywhere inside. */
function isConstant(expression: unknown): boolean {
  let constant = true;
  walk(expression, (node) => {
    if (
      node.class === "COLUMN_REF" ||
      node.class === "SUBQUERY" ||
      node.class === "PARAMETER" ||
      node.class === "STAR" ||
      (node.class === "FUNCTION" && VOLATILE_FUNCTIONS.has(String(node.function_name).toLowerCase()))
    ) {
      constant = false;
    }
  });
  return constant;
}

function walk(value: unknown, visit: (node: Node) => void): void {
  if (typeof value !== "object" || value === null) return;
  if (Array.isArray(value)) {
    for (const item of value) walk(item, visit);
    return;
  }
  visit(value as Node);
  for (const child of Object.values(value)) walk(child, visit);
}

/** `epoch_ms(TRY_CAST(expression AS TIMESTAMPTZ))` as a parse-tree node. */
function epochMsOf(expression: unknown): Node {
  const cast: Node = {
    class: "CAST",
    type: "OPERATOR_CAST",
    alias: "",
    query_location: 0,
    child: expression,
    cast_type: { id: "TIMESTAMP WITH TIME ZONE", type_info: null },
    try_cast: true,
  };
  return {
    class: "FUNCTION",
    type: "FUNCTION",
    alias: "",
    query_location: 0,
    function_name: "epoch_ms",
    schema: "",
    children: [cast],
    filter: null,
    order_bys: { type: "ORDER_MODIFIER", orders: [] },
    distinct: false,
    is_operator: false,
    export_state: false,
    catalog: "",
  };
}

/** Whether `sql` contains `name` as a word (case-insensitive); a false positive only costs time. */
export function mentions(sql: string, name: string): boolean {
  const escaped = name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  return new RegExp(`(^|[^A-Za-z0-9_$])${escaped}($|[^A-Za-z0-9_$])`, "i").test(sql);
}

function utcDay(epochMs: number): string {
  return new Date(Math.max(-8.64e15, Math.min(8.64e15, epochMs))).toISOString().slice(0, 10);
}

/** Whether a file of partition `day` can hold rows in `range`. */
export function dayInRange(day: string, range: DayRange): boolean {
  return (range.from === null || day >= range.from) && (range.to === null || day <= range.to);
}
