/**
 * Compiling: a node's template rendered for one build, refs resolved to lake tables and
 * ephemeral models inlined as CTEs. Still no DuckDB: compiling 1,000 models is a loop of
 * string work.
 */
import { TransformError } from "./errors.js";
import type { Project } from "./project.js";
import type { SqlTemplate } from "./render.js";

export interface Resolver {
  env: string;
  /** The lake table a ref to this (non-ephemeral) node reads. */
  tableOf(node: string): string;
  /** The lake table of a source table (`source.table`). */
  sourceTable(key: string): string;
  /** Whether the node builds incrementally in this build. */
  isIncremental(node: string): boolean;
  /** The table the node writes (`{{ this }}`). */
  targetOf(node: string): string;
}

export interface Compiled {
  sql: string;
  /** Lines before the node's own first line (the inlined CTEs): DuckDB's LINE n is n - this. */
  prefixLines: number;
  /** Lake tables the SQL reads (refs and sources, this included). */
  reads: string[];
  /** The node's config() values from this render (e.g. set under is_incremental()). */
  config: Record<string, unknown>;
}

export const quote = (name: string): string => `"${name.replaceAll('"', '""')}"`;
const ephemeralName = (node: string) => `__ephemeral__${node}`;

/** Renders a model (or a singular test's template) for a build. */
export function compileTemplate(
  project: Project,
  template: SqlTemplate,
  path: string,
  resolver: Resolver,
  self: string | null,
): Compiled {
  const reads = new Set<string>();
  const ephemerals: string[] = [];
  const rendered = new Map<string, string>();
  const config: Record<string, unknown> = {};

  const render = (tmpl: SqlTemplate, file: string, node: string | null, collectConfig: boolean): string =>
    tmpl.render(
      {
        path: file,
        vars: project.vars,
        env: resolver.env,
        isIncremental: node !== null && resolver.isIncremental(node),
        ref: (name) => {
          const target = project.nodes.get(name);
          if (!target) throw new Error(`ref('${name}'): no model or seed named ${name}`);
          if (target.config.materialized === "ephemeral") {
            if (!rendered.has(name)) {
              rendered.set(name, "");
              const inner = render(target.template as SqlTemplate, target.path, name, false);
              rendered.set(name, inner);
              ephemerals.push(name);
            }
            return ephemeralName(name);
          }
          const table = resolver.tableOf(name);
          reads.add(table);
          return quote(table);
        },
        source: (source, table) => {
          const key = `${source}.${table}`;
          if (!project.sources.has(key)) {
            throw new Error(`source('${source}', '${table}'): no such source table in any schema.yml`);
          }
          const lake = resolver.sourceTable(key);
          reads.add(lake);
          return quote(lake);
        },
        config: (values) => {
          if (collectConfig) Object.assign(config, values);
        },
        thisRelation: node ? quote(resolver.targetOf(node)) : "this",
      },
      project.macros,
    );

  const body = trimSql(render(template, path, self, true));
  if (self && resolver.isIncremental(self)) reads.add(resolver.targetOf(self));
  if (ephemerals.length === 0) return { sql: body, prefixLines: 0, reads: [...reads], config };
  const ctes = ephemerals.map((name) => `${ephemeralName(name)} AS (\n${trimSql(rendered.get(name) ?? "")})`);
  // A model that starts with its own WITH gets the inlined CTEs in front of its own.
  const leadingWith = /^((?:\s|--[^\n]*\n|\/\*[\s\S]*?\*\/)*)with(\s+recursive)?\s/i.exec(body);
  const prefix = `WITH${leadingWith?.[2] ? " RECURSIVE" : ""} ${ctes.join(",\n")}${leadingWith ? "," : ""}\n`;
  const rest = leadingWith ? `${leadingWith[1]}${body.slice(leadingWith[0].length)}` : body;
  return { sql: prefix + rest, prefixLines: prefix.split("\n").length - 1, reads: [...reads], config };
}

/** SQL without trailing semicolons, ending in a line break so that a wrapper's ")" is not inside a comment. */
export function trimSql(sql: string): string {
  return `${sql.replace(/[\s;]+$/, "")}\n`;
}

/**
 * A DuckDB error in a node's SQL as `file:line: message`: DuckDB's LINE n (in the statement)
 * mapped back to the template line that produced it.
 */
export function sqlError(error: unknown, path: string, raw: string, compiled: Compiled): TransformError {
  const text = String(error instanceof Error ? error.message : error).trim();
  const match = /\bLINE (\d+):\s?(.*)/.exec(text);
  const message = text.split("\n")[0] ?? text;
  if (!match) return new TransformError(message, path);
  const renderedLine = Number(match[1]) - compiled.prefixLines;
  if (renderedLine < 1) return new TransformError(message, path);
  return new TransformError(
    message,
    path,
    templateLine(raw, compiled.sql, Number(match[1]), renderedLine) ?? renderedLine,
  );
}

/** The template line whose text matches line `statementLine` of the compiled SQL, nearest first. */
function templateLine(raw: string, sql: string, statementLine: number, near: number): number | undefined {
  const wanted = sql.split("\n")[statementLine - 1]?.trim();
  const sourceLines = raw.split("\n");
  if (!wanted) return undefined;
  let best: number | undefined;
  for (const [index, line] of sourceLines.entries()) {
    if (line.trim() !== wanted) continue;
    if (best === undefined || Math.abs(index + 1 - near) < Math.abs(best - near)) best = index + 1;
  }
  return best;
}
