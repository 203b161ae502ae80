/**
 * Node selection, dbt's syntax: `orders` (one node; `stg_*` globs), `orders+` (and everything
 * downstream), `+orders` (and everything upstream), `tag:daily`, `path:models/staging`,
 * `source:shop` (what reads a source), `state:modified` (new, or changed since its last
 * successful build). Space-separated selectors add up; a comma inside one intersects.
 */
import { TransformError } from "./errors.js";
import type { Project } from "./project.js";

export interface SelectionState {
  /** Checksum of each node at its last successful build. */
  builtChecksums: Map<string, string>;
}

/** The selected node names, in build order. No selector selects every node. */
export function selectNodes(
  project: Project,
  selectors: string[],
  excludes: string[] = [],
  state?: SelectionState,
): string[] {
  const chosen = new Set<string>();
  const words = selectors.flatMap((selector) => selector.split(/\s+/)).filter(Boolean);
  if (words.length === 0) for (const name of project.order) chosen.add(name);
  for (const word of words) for (const name of intersect(project, word, state)) chosen.add(name);
  for (const word of excludes.flatMap((selector) => selector.split(/\s+/)).filter(Boolean)) {
    for (const name of intersect(project, word, state)) chosen.delete(name);
  }
  return project.order.filter((name) => chosen.has(name));
}

function intersect(project: Project, word: string, state: SelectionState | undefined): Set<string> {
  const parts = word.split(",").filter(Boolean);
  let result: string[] | null = null;
  for (const part of parts) {
    const matched = atom(project, part, state);
    result = result === null ? [...matched] : result.filter((name) => matched.has(name));
  }
  return new Set(result ?? []);
}

function atom(project: Project, text: string, state: SelectionState | undefined): Set<string> {
  const match = /^(\+?)(.*?)(\+?)$/.exec(text) as RegExpExecArray;
  const [, up, method, down] = match;
  const base = matchMethod(project, method as string, state);
  const result = new Set(base);
  if (up) for (const name of base) for (const parent of closure(name, project.parents)) result.add(parent);
  if (down) for (const name of base) for (const child of closure(name, project.children)) result.add(child);
  return result;
}

function matchMethod(project: Project, method: string, state: SelectionState | undefined): Set<string> {
  const nodes = [...project.nodes.values()];
  const colon = method.indexOf(":");
  const kind = colon > 0 ? method.slice(0, colon) : "name";
  const value = colon > 0 ? method.slice(colon + 1) : method;
  let found: string[];
  switch (kind) {
    case "name": {
      const pattern = glob(value);
      found = nodes.filter((node) => pattern.test(node.name)).map((node) => node.name);
      if (found.length === 0) {
        throw new TransformError(
          `no model or seed matches "${value}" (try tag:, path:, source: or state:modified)`,
        );
      }
      break;
    }
    case "tag":
      found = nodes.filter((node) => node.config.tags.includes(value)).map((node) => node.name);
      if (found.length === 0) throw new TransformError(`no model or seed has tag ${value}`);
      break;
    case "path": {
      const prefix = value.replace(/\/+$/, "");
      found = nodes
        .filter((node) => node.path === prefix || node.path.startsWith(`${prefix}/`))
        .map((node) => node.name);
      if (found.length === 0) throw new TransformError(`no model or seed is under ${value}`);
      break;
    }
    case "source": {
      const [source, table] = value.split(".");
      found = nodes
        .filter((node) =>
          node.sources.some((key) => (table ? key === `${source}.${table}` : key.startsWith(`${source}.`))),
        )
        .map((node) => node.name);
      break;
    }
    case "state":
      if (value !== "modified")
        throw new TransformError(`state:${value} is not a selector: use state:modified`);
      found = nodes
        .filter((node) => state?.builtChecksums.get(node.name) !== node.checksum)
        .map((node) => node.name);
      break;
    default:
      throw new TransformError(
        `unknown selector method "${kind}:" (use tag:, path:, source: or state:modified)`,
      );
  }
  return new Set(found);
}

function closure(start: string, edges: Map<string, string[]>): Set<string> {
  const seen = new Set<string>();
  const stack = [...(edges.get(start) ?? [])];
  while (stack.length > 0) {
    const name = stack.pop() as string;
    if (seen.has(name)) continue;
    seen.add(name);
    stack.push(...(edges.get(name) ?? []));
  }
  return seen;
}

const glob = (pattern: string): RegExp =>
  new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replaceAll("*", ".*")
      .replaceAll("?", ".")}$`,
  );
