/**
 * Rendering SQL templates with nunjucks (Jinja-compatible): dbt's `ref`, `source`, `config`,
 * `var`, `is_incremental()`, `this`, `target`, `env_var`. The functions are globals of the
 * environment, set for each render, so macros see them too; rendering is synchronous, so
 * one render never sees another's.
 */
import { randomUUID } from "node:crypto";
import nunjucks from "nunjucks";
import { quote } from "./compile.js";
import { TransformError } from "./errors.js";

export interface RenderContext {
  /** The file rendered, for errors. */
  path: string;
  vars: Record<string, unknown>;
  /** The build environment: `prod` or `--env` (`target.name`). */
  env: string;
  isIncremental: boolean;
  /** The relation (SQL) a ref resolves to; throws for an unknown one. */
  ref(name: string): string;
  source(source: string, table: string): string;
  config(values: Record<string, unknown>): void;
  /** `{{ this }}`: the model's own table. */
  thisRelation: string;
}

/** dbt's `run_started_at` (a Python datetime in UTC) and `invocation_id`, once per process. */
const RUN_STARTED_AT = runStartedAt(new Date());
const INVOCATION_ID = randomUUID();

/**
 * dbt macros may `{{ return(value) }}` a value (a list, a mapping) instead of text. Every
 * nunjucks macro call gets a slot on this stack; `return` fills the innermost one, and the
 * call then answers the value instead of its rendered text.
 */
const returnSlots: { value: unknown; returned: boolean }[] = [];
const runtime = nunjucks.runtime as unknown as {
  makeMacro(args: string[], kwargs: string[], body: (...args: unknown[]) => unknown): unknown;
};
const makeMacro = runtime.makeMacro;
runtime.makeMacro = (args, kwargs, body) =>
  makeMacro(args, kwargs, function (this: unknown, ...values: unknown[]) {
    const slot = { value: undefined as unknown, returned: false };
    returnSlots.push(slot);
    try {
      const text = body.apply(this, values);
      return slot.returned ? slot.value : text;
    } finally {
      returnSlots.pop();
    }
  });

function returnValue(value: unknown): string {
  const slot = returnSlots.at(-1);
  if (!slot) throw new Error("return() is for macros: a model's SQL is its text");
  if (!slot.returned) Object.assign(slot, { value, returned: true });
  return "";
}

// Jinja's Python-isms that dbt macros use: list.append, dict.items()/get(), True/False/None, slices.
nunjucks.installJinjaCompat();

/** Jinja's `{% do expression %}` (an extension dbt enables): evaluates it, prints nothing. */
const DO_TAG = {
  tags: ["do"],
  parse(parser: DoParser, nodes: DoNodes) {
    const token = parser.nextToken();
    const expression = parser.parseExpression();
    parser.advanceAfterBlockEnd(token.value);
    return new nodes.CallExtension(
      DO_TAG,
      "run",
      new nodes.NodeList(token.lineno, token.colno, [expression]),
    );
  },
  run: () => "",
};

interface DoParser {
  nextToken(): { value: string; lineno: number; colno: number };
  parseExpression(): unknown;
  advanceAfterBlockEnd(name: string): void;
}

interface DoNodes {
  CallExtension: new (extension: object, method: string, args: unknown) => unknown;
  NodeList: new (line: number, column: number, children: unknown[]) => unknown;
}

export function templateEnvironment(): nunjucks.Environment {
  const env = new nunjucks.Environment(null, { autoescape: false, throwOnUndefined: false });
  env.addExtension("do", DO_TAG);
  return env;
}

/**
 * A model's (or test's) SQL template. Most models use Jinja only for `{{ ref(…) }}`,
 * `{{ source(…) }}`, `{{ this }}` and a `{{ config(…) }}` of literals: those are rendered by
 * string substitution, without compiling a nunjucks template (as dbt's static parser does),
 * which keeps compiling 1,000 models well under a second. Anything else goes to nunjucks.
 */
export class SqlTemplate {
  readonly #parts: Part[] | null;
  #compiled: nunjucks.Template | null = null;

  constructor(
    readonly raw: string,
    readonly path: string,
    readonly env: nunjucks.Environment,
  ) {
    this.#parts = staticParts(raw);
  }

  render(context: RenderContext, macros: Record<string, unknown>): string {
    if (!this.#parts) {
      this.#compiled ??= new nunjucks.Template(this.raw, this.env, this.path);
      try {
        return renderTemplate(this.#compiled, this.env, context, macros);
      } catch (error) {
        // nunjucks knows no line for an error thrown inside a function: find the call in the file.
        if (!(error instanceof TransformError) || error.line !== undefined) throw error;
        const call = /\b(\w+)\('([^']*)'/.exec(error.message);
        const line = call
          ? lineOf(this.raw, new RegExp(`\\b${call[1]}\\(\\s*['"]${escapeRegExp(call[2] ?? "")}['"]`))
          : undefined;
        throw line ? new TransformError(error.message.slice(this.path.length + 2), this.path, line) : error;
      }
    }
    return this.#substitute(this.#parts, context);
  }

  #substitute(parts: Part[], context: RenderContext): string {
    let out = "";
    for (const part of parts) {
      if (typeof part === "string") {
        out += part;
        continue;
      }
      if ("incremental" in part) {
        if (context.isIncremental) out += this.#substitute(part.incremental, context);
        continue;
      }
      try {
        if (part.call === "ref") out += context.ref(part.args.at(-1) as string);
        else if (part.call === "source")
          out += context.source(part.args[0] as string, part.args[1] as string);
        else if (part.call === "this") out += context.thisRelation;
        else context.config(part.keywords);
      } catch (error) {
        throw new TransformError((error as Error).message, this.path, part.line);
      }
    }
    return out;
  }
}

const escapeRegExp = (text: string): string => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");

function lineOf(text: string, pattern: RegExp): number | undefined {
  const match = pattern.exec(text);
  return match ? text.slice(0, match.index).split("\n").length : undefined;
}

type Part =
  | string
  | {
      call: "ref" | "source" | "config" | "this";
      args: unknown[];
      keywords: Record<string, unknown>;
      line: number;
    }
  /** `{% if is_incremental() %}…{% endif %}`: the parts rendered when the build is incremental. */
  | { incremental: Part[] };

/** The one block the substitution renders, as dbt's incremental models write it (no nesting, no else). */
const IF_INCREMENTAL = /\{%\s*if\s+is_incremental\(\)\s*%\}([\s\S]*?)\{%\s*endif\s*%\}/g;

const EXPRESSION = /\{\{\s*(ref|source|config|this)\b([^}]*?)\s*\}\}/g;

/**
 * The template as text and calls, when it uses nothing but literal ref/source/config calls,
 * `this` and `{% if is_incremental() %}` blocks of those; else null.
 */
function staticParts(raw: string): Part[] | null {
  const parts: Part[] = [];
  let last = 0;
  for (const block of raw.matchAll(IF_INCREMENTAL)) {
    const start = block.index ?? 0;
    const before = expressionParts(raw, last, start);
    const innerStart = start + block[0].indexOf("%}") + 2;
    const inner = expressionParts(raw, innerStart, innerStart + (block[1] as string).length);
    if (!before || !inner) return null;
    parts.push(...before, { incremental: inner });
    last = start + block[0].length;
  }
  const rest = expressionParts(raw, last, raw.length);
  if (!rest) return null;
  parts.push(...rest);
  return parts;
}

/** `raw[start, end)` as text and literal calls; null when it holds any other Jinja. */
function expressionParts(raw: string, start: number, end: number): Part[] | null {
  const text = raw.slice(start, end);
  const parts: Part[] = [];
  let last = 0;
  for (const match of text.matchAll(EXPRESSION)) {
    const [whole, call, rest] = match as unknown as [string, "ref" | "source" | "config" | "this", string];
    const index = match.index ?? 0;
    const parsed = call === "this" ? (rest === "" ? { args: [], keywords: {} } : null) : parseCall(rest);
    if (!parsed) return null;
    if (
      call === "ref" &&
      !(
        parsed.args.length >= 1 &&
        parsed.args.length <= 2 &&
        parsed.args.every((arg) => typeof arg === "string")
      )
    )
      return null;
    if (
      call === "source" &&
      !(parsed.args.length === 2 && parsed.args.every((arg) => typeof arg === "string"))
    )
      return null;
    if (call === "config" && parsed.args.length > 0) return null;
    parts.push(text.slice(last, index));
    parts.push({ call, ...parsed, line: raw.slice(0, start + index).split("\n").length });
    last = index + whole.length;
  }
  parts.push(text.slice(last));
  // Any other Jinja (blocks, comments, other expressions) needs the real engine.
  if (parts.some((part) => typeof part === "string" && /\{[{%#]/.test(part))) return null;
  return parts;
}

/** `('a', 'b')` or `(materialized='table', tags=['x'])`: literal arguments only, else null. */
function parseCall(text: string): { args: unknown[]; keywords: Record<string, unknown> } | null {
  const source = text.trim();
  if (!source.startsWith("(") || !source.endsWith(")")) return null;
  const reader = { text: source.slice(1, -1), at: 0 };
  const args: unknown[] = [];
  const keywords: Record<string, unknown> = {};
  skipSpace(reader);
  while (reader.at < reader.text.length) {
    const name = /^([A-Za-z_]\w*)\s*=(?!=)/.exec(reader.text.slice(reader.at));
    if (name) reader.at += name[0].length;
    const value = parseLiteral(reader);
    if (value === NOT_LITERAL) return null;
    if (name?.[1]) keywords[name[1]] = value;
    else if (Object.keys(keywords).length > 0) return null;
    else args.push(value);
    skipSpace(reader);
    if (reader.text[reader.at] === ",") reader.at++;
    else if (reader.at < reader.text.length) return null;
    skipSpace(reader);
  }
  return { args, keywords };
}

const NOT_LITERAL = Symbol("not a literal");

function skipSpace(reader: { text: string; at: number }): void {
  while (/\s/.test(reader.text[reader.at] ?? "")) reader.at++;
}

/** A Python/Jinja literal: string, number, true/false/none, list or dict of literals. */
function parseLiteral(reader: { text: string; at: number }): unknown {
  skipSpace(reader);
  const rest = reader.text.slice(reader.at);
  const string = /^(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")/.exec(rest);
  if (string) {
    reader.at += string[0].length;
    return (string[1] ?? string[2] ?? "").replace(/\\(.)/g, "$1");
  }
  const number = /^-?\d+(?:\.\d+)?(?![\w.])/.exec(rest);
  if (number) {
    reader.at += number[0].length;
    return Number(number[0]);
  }
  const word = /^(true|false|True|False|none|None)\b/.exec(rest);
  if (word?.[1]) {
    reader.at += word[0].length;
    return word[1].toLowerCase() === "none" ? null : word[1].toLowerCase() === "true";
  }
  const open = rest[0];
  if (open !== "[" && open !== "{") return NOT_LITERAL;
  const close = open === "[" ? "]" : "}";
  reader.at++;
  const list: unknown[] = [];
  const object: Record<string, unknown> = {};
  skipSpace(reader);
  while (reader.text[reader.at] !== close) {
    const value = parseLiteral(reader);
    if (value === NOT_LITERAL) return NOT_LITERAL;
    skipSpace(reader);
    if (open === "{") {
      if (typeof value !== "string" || reader.text[reader.at] !== ":") return NOT_LITERAL;
      reader.at++;
      const entry = parseLiteral(reader);
      if (entry === NOT_LITERAL) return NOT_LITERAL;
      object[value] = entry;
      skipSpace(reader);
    } else list.push(value);
    if (reader.text[reader.at] === ",") {
      reader.at++;
      skipSpace(reader);
    } else if (reader.text[reader.at] !== close) return NOT_LITERAL;
  }
  reader.at++;
  return open === "[" ? list : object;
}

/** Renders `template` with `context`; template and function errors name the file and line. */
function renderTemplate(
  template: nunjucks.Template,
  env: nunjucks.Environment,
  context: RenderContext,
  macros: Record<string, unknown>,
): string {
  const relation = (sql: string, name: string) => ({
    name,
    identifier: name,
    schema: "main",
    toString: () => sql,
  });
  const thisName = context.thisRelation.replace(/^"|"$/g, "");
  const globals: Record<string, unknown> = {
    ref: (...args: unknown[]) => {
      const name = String(args.filter((arg) => typeof arg === "string").at(-1) ?? "");
      return relation(context.ref(name), name);
    },
    source: (source: unknown, table: unknown) => {
      const sql = context.source(String(source), String(table));
      // dbt's identifier is the physical table: the source table's `identifier:` when set.
      return relation(sql, sql.replace(/^"|"$/g, ""));
    },
    config: (...args: unknown[]) => {
      const values = (args.at(-1) ?? {}) as Record<string, unknown>;
      const { __keywords: _, ...rest } = values;
      context.config(rest);
      return "";
    },
    var: (name: unknown, fallback?: unknown) => {
      const key = String(name);
      if (key in context.vars) return context.vars[key];
      if (fallback !== undefined) return fallback;
      throw new Error(`var('${key}') is not defined: set it under vars in dbt_project.yml or with --vars`);
    },
    env_var: (name: unknown, fallback?: unknown) => {
      const value = process.env[String(name)];
      if (value !== undefined) return value;
      if (fallback !== undefined) return fallback;
      throw new Error(`env_var('${String(name)}') is not set`);
    },
    is_incremental: () => context.isIncremental,
    this: relation(context.thisRelation, thisName),
    target: { name: context.env, type: "duckdb", schema: "main", database: "sluice", threads: 1 },
    run_started_at: RUN_STARTED_AT,
    invocation_id: INVOCATION_ID,
    return: returnValue,
    log: () => "",
    exceptions: {
      raise_compiler_error: (message: unknown) => {
        throw new Error(String(message));
      },
    },
    adapter: { quote: (identifier: unknown) => quote(String(identifier)) },
    dbt: CROSS_DATABASE_MACROS,
    ...macros,
  };
  for (const [name, value] of Object.entries(globals)) env.addGlobal(name, value);
  try {
    return template.render({});
  } catch (error) {
    throw templateError(error, context.path);
  }
}

/**
 * dbt's cross-database macros (`{{ dbt.date_trunc('day', 'ts') }}`), as dbt-duckdb renders
 * them. Arguments are SQL text, as in dbt.
 */
const CROSS_DATABASE_MACROS = {
  current_timestamp: () => "now()",
  type_string: () => "varchar",
  type_timestamp: () => "timestamp",
  type_int: () => "integer",
  type_bigint: () => "bigint",
  type_float: () => "double",
  type_numeric: () => "numeric(28,6)",
  type_boolean: () => "boolean",
  cast: (field: unknown, type: unknown) => `cast(${field} as ${type})`,
  safe_cast: (field: unknown, type: unknown) => `try_cast(${field} as ${type})`,
  concat: (fields: unknown) => `concat(${(fields as unknown[]).join(", ")})`,
  dateadd: (datepart: unknown, interval: unknown, from: unknown) =>
    `(${from} + (${interval}) * interval 1 ${datepart})`,
  datediff: (first: unknown, second: unknown, datepart: unknown) =>
    `date_diff('${datepart}', cast(${first} as timestamp), cast(${second} as timestamp))`,
  date_trunc: (datepart: unknown, date: unknown) => `date_trunc('${datepart}', ${date})`,
  last_day: (date: unknown, datepart: unknown) =>
    `cast(date_trunc('${datepart}', ${date}) + interval 1 ${datepart} - interval 1 day as date)`,
  date: (year: unknown, month: unknown, day: unknown) => `make_date(${year}, ${month}, ${day})`,
  hash: (field: unknown) => `md5(cast(${field} as varchar))`,
  split_part: (text: unknown, delimiter: unknown, part: unknown) =>
    `split_part(${text}, ${delimiter}, ${part})`,
  replace: (field: unknown, old: unknown, replacement: unknown) =>
    `replace(${field}, ${old}, ${replacement})`,
  length: (expression: unknown) => `length(${expression})`,
  position: (substring: unknown, text: unknown) => `position(${substring} in ${text})`,
  right: (text: unknown, length: unknown) => `right(${text}, ${length})`,
  any_value: (expression: unknown) => `any_value(${expression})`,
  bool_or: (expression: unknown) => `bool_or(${expression})`,
  cast_bool_to_text: (field: unknown) => `cast(${field} as varchar)`,
  escape_single_quotes: (text: unknown) => String(text).replaceAll("'", "''"),
  string_literal: (text: unknown) => `'${text}'`,
  listagg: (measure: unknown, delimiter: unknown = "','", orderBy?: unknown) =>
    `string_agg(${measure}, ${delimiter}${orderBy ? ` ${orderBy}` : ""})`,
};

/**
 * A stand-in for Python's datetime: prints as `2026-12-03 06:12:04.563000+00:00` and answers
 * `strftime` (the common directives) and `isoformat()`, as models use `run_started_at`.
 */
function runStartedAt(date: Date) {
  const two = (value: number) => String(value).padStart(2, "0");
  const directives: Record<string, string> = {
    Y: String(date.getUTCFullYear()),
    m: two(date.getUTCMonth() + 1),
    d: two(date.getUTCDate()),
    H: two(date.getUTCHours()),
    M: two(date.getUTCMinutes()),
    S: two(date.getUTCSeconds()),
    f: `${String(date.getUTCMilliseconds()).padStart(3, "0")}000`,
    z: "+0000",
    Z: "UTC",
    "%": "%",
  };
  const strftime = (format: unknown) =>
    String(format).replace(/%(.)/g, (whole, directive: string) => directives[directive] ?? whole);
  return {
    strftime,
    isoformat: () => strftime("%Y-%m-%dT%H:%M:%S.%f+00:00"),
    toString: () => strftime("%Y-%m-%d %H:%M:%S.%f+00:00"),
  };
}

/** nunjucks' "(path) [Line 3, Column 12]\n  Error: …" as "path:3: …". */
function templateError(error: unknown, path: string): TransformError {
  const text = error instanceof Error ? error.message : String(error);
  const line = /\[Line (\d+), Column \d+\]/.exec(text);
  const message = text
    .replace(/^\([^)]*\)\s*/, "")
    .replace(/\[Line \d+, Column \d+\]\s*/, "")
    .replace(/^\s*(?:Template render error:\s*)?/, "")
    .replace(/^\s*Error:\s*/, "")
    .trim();
  return new TransformError(message, path, line ? Number(line[1]) : undefined);
}
