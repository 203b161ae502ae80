/**
 * Node selection, dbt's syntax: `orders` (one node; `stg_*` globs), `staging` or
 * `marts.finance` (a folder, by dbt's fully qualified name), `models/staging` (a path),
 * `orders+` (and everything downstream; `orders+1` one generation), `+orders` (and everything
 * upstream; `2+orders`), `@orders` (downstream and all their parents), `tag:daily`,
 * `path:models/staging`, `source:shop` (what reads a source), `config.materialized:table`,
 * `resource_type:seed`, `state:modified` (new, or changed since its last successful build).
 * Space-separated selectors add up; a comma inside one intersects.
 */
import { TransformError } from "./errors.js";
import type { Project, ProjectNode } from "./project.js";

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
  const match = /^(@)?(?:(\d*)(\+))?(.*?)(?:(\+)(\d*))?$/.exec(text) as RegExpExecArray;
  const [, at, upDepth, up, method, down, downDepth] = match;
  const base = matchMethod(project, method as string, state);
  const result = new Set(base);
  const depth = (digits: string | undefined) => (digits ? Number(digits) : Number.POSITIVE_INFINITY);
  if (up) {
    for (const name of base)
      for (const parent of closure(name, project.parents, depth(upDepth))) result.add(parent);
  }
  if (down || at) {
    for (const name of base)
      for (const child of closure(name, project.children, depth(downDepth))) result.add(child);
  }
  // `@`: what is downstream, and everything those need, so they can be built.
  if (at) {
    for (const name of [...result])
      for (const parent of closure(name, project.parents, Number.POSITIVE_INFINITY)) result.add(parent);
  }
  return result;
}

const METHODS = "tag:, path:, source:, config.materialized:, resource_type: or state:modified";

function matchMethod(project: Project, method: string, state: SelectionState | undefined): Set<string> {
  const nodes = [...project.nodes.values()];
  const colon = method.indexOf(":");
  const kind = colon > 0 ? method.slice(0, colon) : "name";
  const value = colon > 0 ? method.slice(colon + 1) : method;
  let found: string[];
  switch (kind) {
    case "name": {
      // dbt's default: a path when it looks like one, else a name or a folder (fully qualified name).
      if (value.includes("/") || /\.(sql|csv)$/.test(value))
        return matchMethod(project, `path:${value}`, state);
      const pattern = glob(value);
      const parts = value.split(".").map(glob);
      found = nodes
        .filter((node) => pattern.test(node.name) || fqnMatches(node.fqn, parts))
        .map((node) => node.name);
      if (found.length === 0)
        throw new TransformError(`no model or seed matches "${value}" (try ${METHODS})`);
      break;
    }
    case "fqn": {
      const parts = value.split(".").map(glob);
      found = nodes.filter((node) => fqnMatches(node.fqn, parts)).map((node) => node.name);
      if (found.length === 0) throw new TransformError(`no model or seed matches fqn:${value}`);
      break;
    }
    case "resource_type":
      if (value !== "model" && value !== "seed") {
        throw new TransformError(
          `resource_type:${value} is not a selector here: Sluice selects models and seeds (resource_type:model or resource_type:seed)`,
        );
      }
      found = nodes.filter((node) => node.kind === value).map((node) => node.name);
      break;
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
    default: {
      const setting = /^config\.(\w+)$/.exec(kind)?.[1];
      if (!setting) throw new TransformError(`unknown selector method "${kind}:" (use ${METHODS})`);
      found = nodes.filter((node) => configValues(node, setting).includes(value)).map((node) => node.name);
    }
  }
  return new Set(found);
}

/**
 * dbt's fqn method: the parts name the node, or a folder path (from the project or from a
 * top folder) with the node's name optionally after it.
 */
function fqnMatches(fqn: string[], parts: RegExp[]): boolean {
  for (const start of [0, 1]) {
    const path = fqn.slice(start);
    if (parts.length > path.length) continue;
    if (parts.every((part, index) => part.test(path[index] as string))) return true;
  }
  return false;
}

/** A node's value of a dbt config key, as text, for `config.<key>:<value>`. */
function configValues(node: ProjectNode, key: string): string[] {
  const { config } = node;
  switch (key) {
    case "materialized":
      return [config.materialized];
    case "incremental_strategy":
      return node.config.materialized === "incremental" ? [config.strategy] : [];
    case "unique_key":
      return config.uniqueKey;
    case "tags":
      return config.tags;
    case "alias":
      return config.alias ? [config.alias] : [];
    case "severity":
      return [config.severity];
    case "enabled":
      return [String(config.enabled)];
    default:
      throw new TransformError(
        `config.${key}: is not a selector: use config.materialized, config.incremental_strategy, config.unique_key, config.tags, config.alias or config.severity`,
      );
  }
}

/** The nodes reachable from `start` along `edges`, at most `depth` steps away. */
function closure(start: string, edges: Map<string, string[]>, depth: number): Set<string> {
  const seen = new Set<string>();
  let frontier = [start];
  for (let step = 0; step < depth && frontier.length > 0; step++) {
    const next: string[] = [];
    for (const name of frontier) {
      for (const neighbour of edges.get(name) ?? []) {
        if (seen.has(neighbour)) continue;
        seen.add(neighbour);
        next.push(neighbour);
      }
    }
    frontier = next;
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
