/**
 * Parsing a project (no DuckDB): `dbt_project.yml` (optional), models (`models/**.sql`),
 * `schema.yml` files (sources, descriptions, tests), seeds (`seeds/*.csv`), singular tests
 * (`tests/**.sql`) and macros (`macros/**.sql`). Each model is rendered once with
 * is_incremental() false to learn its refs, sources and config; the DAG comes from those.
 * A small dbt project written for DuckDB runs as it is.
 */
import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, extname, join, relative, resolve, sep } from "node:path";
import nunjucks from "nunjucks";
import { type Document, LineCounter, parseDocument } from "yaml";
import { TransformError } from "./errors.js";
import { type RenderContext, SqlTemplate, templateEnvironment } from "./render.js";

export const MATERIALIZATIONS = ["view", "table", "incremental", "ephemeral"] as const;
export type Materialization = (typeof MATERIALIZATIONS)[number];
export const STRATEGIES = ["append", "merge", "delete+insert", "insert_overwrite"] as const;
export type Strategy = (typeof STRATEGIES)[number];

export interface ModelConfig {
  materialized: Materialization;
  strategy: Strategy;
  uniqueKey: string[];
  /** insert_overwrite: the column whose values are the partitions (one file per value). */
  partitionBy: string | null;
  /** Incremental runs read only rows whose value of this column is past the table's maximum. */
  watermark: string | null;
  /** How far behind the maximum to read again: an interval (`'2 hours'`) or a number. */
  lookback: string | null;
  tags: string[];
  /** The lake table's name, when not the model's. */
  alias: string | null;
  enabled: boolean;
  severity: "error" | "warn";
  /** Seeds: DuckDB types of columns the CSV sniffer should not guess (dbt's `column_types`). */
  columnTypes: Record<string, string>;
}

export interface ColumnDoc {
  name: string;
  description: string;
}

export interface ProjectNode {
  kind: "model" | "seed";
  name: string;
  /** dbt's fully qualified name: the project, the folders under the model (or seed) path, the name. */
  fqn: string[];
  /** Path relative to the project dir (what errors name). */
  path: string;
  file: string;
  /** A model's SQL template; "" for a seed. */
  raw: string;
  description: string;
  columns: ColumnDoc[];
  config: ModelConfig;
  refs: string[];
  sources: string[];
  /** Changes when the file or its configuration does: `state:modified`. */
  checksum: string;
  template: SqlTemplate | null;
}

export interface SourceTable {
  /** `source.table` */
  key: string;
  source: string;
  name: string;
  /** The lake table: `identifier`, else the table's name. */
  table: string;
  description: string;
  columns: ColumnDoc[];
  path: string;
}

export type TestKind =
  | "unique"
  | "not_null"
  | "accepted_values"
  | "relationships"
  | "singular"
  | "freshness"
  | "custom";

export interface TestDef {
  name: string;
  kind: TestKind;
  /** The tested model or seed, or source (`source.table`). */
  target: { kind: "node"; name: string } | { kind: "source"; key: string } | null;
  column: string | null;
  severity: "error" | "warn";
  where: string | null;
  values: unknown[];
  /**
   * freshness: the newest `column` (dbt's `loaded_at_field`) fails the test when older than
   * `seconds` (and, for the warn_after test of a source that has an error_after too, not older
   * than `upTo`, where the error test takes over).
   */
  maxAge: { seconds: number; upTo: number | null } | null;
  /** custom: the project's generic test (`{% test name(model, column_name) %}`) and its arguments. */
  generic: { macro: string; args: Record<string, unknown> } | null;
  /** relationships: the other side. */
  to: { kind: "node"; name: string } | { kind: "source"; key: string } | null;
  field: string | null;
  /** Nodes the test reads (its target, the other side of a relationship, a singular test's refs). */
  refs: string[];
  sources: string[];
  path: string;
  line: number | undefined;
  template: SqlTemplate | null;
}

export interface Project {
  dir: string;
  name: string;
  vars: Record<string, unknown>;
  nodes: Map<string, ProjectNode>;
  sources: Map<string, SourceTable>;
  tests: TestDef[];
  /** Node → the nodes it refs (seeds and models); ephemeral ones included. */
  parents: Map<string, string[]>;
  children: Map<string, string[]>;
  /** Nodes in an order where every parent comes first. */
  order: string[];
  env: nunjucks.Environment;
  macros: Record<string, unknown>;
  warnings: string[];
}

interface ProjectFile {
  name?: string;
  "model-paths"?: string[];
  "source-paths"?: string[];
  "seed-paths"?: string[];
  "data-paths"?: string[];
  "test-paths"?: string[];
  "macro-paths"?: string[];
  vars?: Record<string, unknown>;
  models?: Record<string, unknown>;
  seeds?: Record<string, unknown>;
}

const CONFIG_KEYS = new Set([
  "materialized",
  "incremental_strategy",
  "unique_key",
  "partition_by",
  "watermark",
  "lookback",
  "tags",
  "alias",
  "enabled",
  "severity",
  "column_types",
]);

/**
 * dbt settings that change what a build does and that Sluice does not do: a project that sets
 * them gets a warning rather than a silent difference (on_schema_change: fail is what Sluice does).
 */
const UNSUPPORTED_KEYS = new Map([
  ["pre_hook", "hooks are not run"],
  ["pre-hook", "hooks are not run"],
  ["post_hook", "hooks are not run"],
  ["post-hook", "hooks are not run"],
  ["on_schema_change", "a changed column list stops an incremental build and asks for --full-refresh"],
  ["full_refresh", "--full-refresh rebuilds every selected incremental model"],
]);

/** Configuration keys whose values are mappings (other mappings in dbt_project.yml are folders). */
const MAPPING_KEYS = new Set(["partition_by", "column_types"]);

/** Reads and parses the project in `dir`; `vars` (from `--vars`) override the project's. */
export function loadProject(dir: string, options: { vars?: Record<string, unknown> } = {}): Project {
  const root = resolve(dir);
  if (!existsSync(root) || !statSync(root).isDirectory()) {
    throw new TransformError(`no project directory at ${root}`);
  }
  const projectFile = join(root, "dbt_project.yml");
  const settings: ProjectFile = existsSync(projectFile) ? (readYaml(root, projectFile).doc.toJS() ?? {}) : {};
  const name = typeof settings.name === "string" ? settings.name : basename(root);
  const modelPaths = settings["model-paths"] ?? settings["source-paths"] ?? ["models"];
  const seedPaths = settings["seed-paths"] ?? settings["data-paths"] ?? ["seeds"];
  const testPaths = settings["test-paths"] ?? ["tests"];
  const macroPaths = settings["macro-paths"] ?? ["macros"];
  const projectVars = settings.vars ?? {};
  // Vars may be scoped to the project (dbt's nested form) or flat.
  const scoped = projectVars[name];
  const vars = {
    ...projectVars,
    ...(scoped && typeof scoped === "object" && !Array.isArray(scoped) ? scoped : {}),
    ...options.vars,
  };
  const env = templateEnvironment();
  const warnings: string[] = [];
  // Generic tests (`{% test %}` blocks) are in macros/ or, as dbt recommends, tests/generic/.
  const macros = loadMacros(
    root,
    [...macroPaths, ...testPaths.map((testPath) => join(testPath, "generic"))],
    env,
  );

  const nodes = new Map<string, ProjectNode>();
  const addNode = (node: ProjectNode) => {
    const existing = nodes.get(node.name);
    if (existing) {
      throw new TransformError(
        `two nodes are named ${node.name}: ${existing.path} and ${node.path}`,
        node.path,
      );
    }
    nodes.set(node.name, node);
  };
  const folderConfigs = (settings.models ?? {}) as Record<string, unknown>;
  const modelFiles: { path: string; file: string; folders: string[] }[] = [];
  const ymlFiles: string[] = [];
  const docBlocks = new Map<string, string>();
  for (const modelPath of modelPaths) {
    for (const file of walk(join(root, modelPath))) {
      const ext = extname(file);
      if (ext === ".sql") {
        const folders = relative(join(root, modelPath), file).split(sep).slice(0, -1);
        modelFiles.push({ path: relative(root, file), file, folders });
      } else if (ext === ".yml" || ext === ".yaml") ymlFiles.push(file);
      else if (ext === ".md") {
        for (const block of readFileSync(file, "utf8").matchAll(DOCS_BLOCK)) {
          docBlocks.set(block[1] as string, (block[2] as string).trim());
        }
      }
    }
  }
  const seedFiles: { path: string; file: string; folders: string[] }[] = [];
  for (const seedPath of seedPaths) {
    for (const file of walk(join(root, seedPath))) {
      if (extname(file) === ".csv") {
        const folders = relative(join(root, seedPath), file).split(sep).slice(0, -1);
        seedFiles.push({ path: relative(root, file), file, folders });
      } else if (extname(file) === ".yml" || extname(file) === ".yaml") ymlFiles.push(file);
    }
  }

  // schema.yml: sources, then model and seed properties (attached once the nodes exist).
  const sources = new Map<string, SourceTable>();
  const freshnessTests: TestDef[] = [];
  const properties = new Map<string, { entry: Record<string, unknown>; path: string; line?: number }>();
  const pendingTests: {
    entry: unknown;
    target: TestDef["target"];
    column: string | null;
    path: string;
    line?: number;
    owner: string;
  }[] = [];
  for (const file of ymlFiles) {
    const { doc, lineOf, path } = readYaml(root, file);
    const content = doc.toJS() as Record<string, unknown> | null;
    if (!content || typeof content !== "object") continue;
    for (const [s, source] of asList(content.sources, path).entries()) {
      const sourceName = String(source.name ?? "");
      if (!sourceName) throw new TransformError("a source needs a name", path, lineOf(["sources", s]));
      for (const [t, table] of asList(source.tables, path).entries()) {
        const tableName = String(table.name ?? "");
        const at = lineOf(["sources", s, "tables", t]);
        if (!tableName) throw new TransformError(`a table of source ${sourceName} needs a name`, path, at);
        const key = `${sourceName}.${tableName}`;
        sources.set(key, {
          key,
          source: sourceName,
          name: tableName,
          table: String(table.identifier ?? tableName),
          description: String(table.description ?? ""),
          columns: columnDocs(table.columns, path),
          path,
        });
        const target = { kind: "source" as const, key };
        const base = ["sources", s, "tables", t];
        collectTests(table, base, target, path, lineOf, pendingTests, key);
        freshnessTests.push(...sourceFreshness(source, table, key, path, at));
      }
    }
    for (const section of ["models", "seeds"] as const) {
      for (const [m, entry] of asList(content[section], path).entries()) {
        const entryName = String(entry.name ?? "");
        if (!entryName)
          throw new TransformError(`an entry of ${section} needs a name`, path, lineOf([section, m]));
        properties.set(entryName, { entry, path, line: lineOf([section, m]) });
        collectTests(
          entry,
          [section, m],
          { kind: "node", name: entryName },
          path,
          lineOf,
          pendingTests,
          entryName,
        );
      }
    }
  }

  // dbt's "unused configuration paths": a misspelt folder or project name would apply nothing.
  warnings.push(
    ...configPathWarnings(folderConfigs, name, modelFiles, "models"),
    ...configPathWarnings((settings.seeds ?? {}) as Record<string, unknown>, name, seedFiles, "seeds"),
  );
  for (const { path, file, folders } of seedFiles) {
    const seedName = basename(file, ".csv");
    const property = properties.get(seedName);
    const seedConfig = mergeConfigs(
      folderConfig((settings.seeds ?? {}) as Record<string, unknown>, name, folders),
      (property?.entry.config as Record<string, unknown> | undefined) ?? {},
    );
    addNode({
      kind: "seed",
      name: seedName,
      fqn: [name, ...folders, seedName],
      path,
      file,
      raw: "",
      description: "",
      columns: [],
      config: modelConfig({ ...seedConfig, materialized: "table" }, property?.path ?? path, property?.line),
      refs: [],
      sources: [],
      checksum: sha256(`${sha256(readFileSync(file))}\n${JSON.stringify(seedConfig)}`),
      template: null,
    });
  }

  const parseContext = (node: { path: string }) => parseCapture(node.path, vars, sources);
  /** dbt settings Sluice does not act on → the models that set them. */
  const unsupported = new Map<string, string[]>();
  for (const { path, file, folders } of modelFiles) {
    const raw = readFileSync(file, "utf8");
    const nodeName = basename(file, ".sql");
    const template = new SqlTemplate(raw, path, env);
    const property = properties.get(nodeName);
    const yamlConfig = mergeConfigs(
      folderConfig(folderConfigs, name, folders),
      (property?.entry.config as Record<string, unknown> | undefined) ?? {},
    );
    const capture = parseContext({ path });
    template.render(capture.context, macros);
    const merged = mergeConfigs(yamlConfig, capture.config);
    for (const key of UNSUPPORTED_KEYS.keys()) {
      const value = merged[key];
      if (value === undefined || value === null || (key === "on_schema_change" && value === "fail")) continue;
      unsupported.set(key, [...(unsupported.get(key) ?? []), nodeName]);
    }
    for (const key of Object.keys(capture.config)) {
      const meant = misspeltConfigKey(key);
      if (meant)
        warnings.push(`${path}:${findLine(raw, /config\s*\(/) ?? 1}: config ${key}: did you mean ${meant}?`);
    }
    const config = modelConfig(merged, path, findLine(raw, /config\s*\(/));
    addNode({
      kind: "model",
      name: nodeName,
      fqn: [name, ...folders, nodeName],
      path,
      file,
      raw,
      description: String(property?.entry.description ?? ""),
      columns: columnDocs(property?.entry.columns, property?.path ?? path),
      config,
      refs: capture.refs,
      sources: capture.sources,
      checksum: sha256(`${raw}\n${JSON.stringify(yamlConfig)}`),
      template,
    });
  }
  for (const [nodeName, property] of properties) {
    const node = nodes.get(nodeName);
    if (!node) {
      warnings.push(
        `${property.path}:${property.line ?? 0}: properties for ${nodeName}, which is no model or seed`,
      );
      continue;
    }
    if (node.kind === "seed") {
      node.description = String(property.entry.description ?? "");
      node.columns = columnDocs(property.entry.columns, property.path);
    }
  }
  for (const [nodeName, node] of nodes) {
    if (!node.config.enabled) nodes.delete(nodeName);
  }
  for (const [key, consequence] of UNSUPPORTED_KEYS) {
    const names = (unsupported.get(key) ?? []).filter((model) => nodes.has(model));
    if (names.length === 0) continue;
    warnings.push(
      `${key} is not supported (${consequence}); set for ${names.length > 3 ? `${names.slice(0, 3).join(", ")} and ${names.length - 3} more` : names.join(", ")}`,
    );
  }
  for (const node of nodes.values()) checkReferences(node, nodes);

  const tests: TestDef[] = [];
  const testNames = new Set<string>();
  const uniqueName = (base: string) => {
    let candidate = base;
    for (let n = 2; testNames.has(candidate); n++) candidate = `${base}_${n}`;
    testNames.add(candidate);
    return candidate;
  };
  for (const pending of pendingTests) {
    if (pending.target?.kind === "node" && !nodes.has(pending.target.name)) continue;
    tests.push(genericTest(pending, uniqueName, macros));
  }
  for (const test of freshnessTests) tests.push({ ...test, name: uniqueName(test.name) });
  for (const testPath of testPaths) {
    for (const file of walk(join(root, testPath))) {
      if (extname(file) !== ".sql" || relative(join(root, testPath), file).split(sep)[0] === "generic")
        continue;
      const path = relative(root, file);
      const raw = readFileSync(file, "utf8");
      const template = new SqlTemplate(raw, path, env);
      const capture = parseContext({ path });
      template.render(capture.context, macros);
      const test: TestDef = {
        name: uniqueName(basename(file, ".sql")),
        kind: "singular",
        target: null,
        column: null,
        severity: capture.config.severity === "warn" ? "warn" : "error",
        where: null,
        values: [],
        maxAge: null,
        generic: null,
        to: null,
        field: null,
        refs: capture.refs,
        sources: capture.sources,
        path,
        line: 1,
        template,
      };
      for (const ref of test.refs) {
        if (!nodes.has(ref)) {
          throw new TransformError(
            `ref('${ref}'): no model or seed named ${ref}`,
            path,
            findRefLine(raw, ref),
          );
        }
      }
      tests.push(test);
    }
  }

  const parents = new Map<string, string[]>();
  const children = new Map<string, string[]>();
  for (const node of nodes.values()) {
    parents.set(node.name, [...new Set(node.refs)]);
    children.set(node.name, []);
  }
  for (const [child, list] of parents) for (const parent of list) children.get(parent)?.push(child);
  const order = topologicalOrder(nodes, parents);
  // Descriptions may be `{{ doc("name") }}`: the text of a {% docs name %} block in a .md file.
  const withDocs = (text: string) =>
    text.replace(DOC_CALL, (call, name: string) => docBlocks.get(name) ?? call);
  for (const described of [...nodes.values(), ...sources.values()]) {
    described.description = withDocs(described.description);
    for (const column of described.columns) column.description = withDocs(column.description);
  }
  return { dir: root, name, vars, nodes, sources, tests, parents, children, order, env, macros, warnings };
}

/** Every file under `dir`, sorted; none when it does not exist. */
function walk(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const files: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) =>
    a.name.localeCompare(b.name),
  )) {
    if (entry.name.startsWith(".")) continue;
    const path = join(dir, entry.name);
    if (entry.isDirectory()) files.push(...walk(path));
    else if (entry.isFile()) files.push(path);
  }
  return files;
}

function readYaml(root: string, file: string) {
  const path = relative(root, file);
  const lineCounter = new LineCounter();
  const doc: Document = parseDocument(readFileSync(file, "utf8"), { lineCounter });
  const [error] = doc.errors;
  if (error) {
    throw new TransformError(
      `not valid YAML: ${error.message.split("\n")[0]}`,
      path,
      error.linePos?.[0]?.line,
    );
  }
  const lineOf = (at: (string | number)[]): number | undefined => {
    const node = doc.getIn(at, true) as { range?: [number, number, number] } | undefined;
    return node?.range ? lineCounter.linePos(node.range[0]).line : undefined;
  };
  return { doc, lineOf, path };
}

function asList(value: unknown, path: string): Record<string, unknown>[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new TransformError("expected a list", path);
  return value.filter(
    (entry): entry is Record<string, unknown> => typeof entry === "object" && entry !== null,
  );
}

function columnDocs(value: unknown, path: string): ColumnDoc[] {
  return asList(value, path).map((column) => ({
    name: String(column.name ?? ""),
    description: String(column.description ?? ""),
  }));
}

/** Generic tests of a model, seed or source table: its `tests` (or `data_tests`) and its columns'. */
function collectTests(
  entry: Record<string, unknown>,
  base: (string | number)[],
  target: TestDef["target"],
  path: string,
  lineOf: (at: (string | number)[]) => number | undefined,
  out: {
    entry: unknown;
    target: TestDef["target"];
    column: string | null;
    path: string;
    line?: number;
    owner: string;
  }[],
  owner: string,
): void {
  // dbt's spellings over the versions: tests, data_tests, data-tests.
  const testsKey = (object: Record<string, unknown>) =>
    ["data_tests", "data-tests"].find((key) => object[key] !== undefined) ?? "tests";
  const key = testsKey(entry);
  for (const [i, test] of ((entry[key] as unknown[]) ?? []).entries()) {
    out.push({ entry: test, target, column: null, path, line: lineOf([...base, key, i]), owner });
  }
  for (const [c, column] of asList(entry.columns, path).entries()) {
    const columnKey = testsKey(column);
    for (const [i, test] of ((column[columnKey] as unknown[]) ?? []).entries()) {
      out.push({
        entry: test,
        target,
        column: String(column.name ?? ""),
        path,
        line: lineOf([...base, "columns", c, columnKey, i]),
        owner,
      });
    }
  }
}

const DOCS_BLOCK = /\{%-?\s*docs\s+(\w+)\s*-?%\}([\s\S]*?)\{%-?\s*enddocs\s*-?%\}/g;
const DOC_CALL = /\{\{\s*doc\(\s*['"](\w+)['"]\s*\)\s*\}\}/g;

const GENERIC_TESTS = ["unique", "not_null", "accepted_values", "relationships"];

function genericTest(
  pending: {
    entry: unknown;
    target: TestDef["target"];
    column: string | null;
    path: string;
    line?: number;
    owner: string;
  },
  uniqueName: (base: string) => string,
  macros: Record<string, unknown>,
): TestDef {
  const { entry, path, line } = pending;
  let kind: string;
  let args: Record<string, unknown> = {};
  if (typeof entry === "string") kind = entry;
  else if (entry && typeof entry === "object" && Object.keys(entry).length >= 1) {
    const [first] = Object.keys(entry);
    kind = first as string;
    const value = (entry as Record<string, unknown>)[kind];
    args = (value && typeof value === "object" ? value : {}) as Record<string, unknown>;
    if (args.arguments && typeof args.arguments === "object") {
      args = { ...args, ...(args.arguments as Record<string, unknown>) };
    }
  } else throw new TransformError("a test must be a name or a mapping", path, line);
  const custom =
    !GENERIC_TESTS.includes(kind) && typeof macros[`${GENERIC_TEST_PREFIX}${kind}`] === "function";
  if (!GENERIC_TESTS.includes(kind) && !custom) {
    throw new TransformError(
      `unknown test "${kind}": Sluice runs ${GENERIC_TESTS.join(", ")}, the project's own generic tests ({% test %} in macros/ or tests/generic/) and singular tests (SQL files in tests/)`,
      path,
      line,
    );
  }
  const config = (args.config ?? {}) as Record<string, unknown>;
  const severityText = String(config.severity ?? args.severity ?? "error").toLowerCase();
  if (severityText !== "error" && severityText !== "warn") {
    throw new TransformError(`severity must be error or warn, not "${severityText}"`, path, line);
  }
  if (pending.column === null && kind !== "relationships" && !custom && !args.column_name) {
    throw new TransformError(`test ${kind} needs a column: list it under the column`, path, line);
  }
  const column = pending.column ?? (args.column_name ? String(args.column_name) : null);
  let to: TestDef["to"] = null;
  let field: string | null = null;
  if (kind === "accepted_values" && !Array.isArray(args.values)) {
    throw new TransformError("accepted_values needs values: [...]", path, line);
  }
  if (kind === "relationships") {
    to = parseRelationTarget(String(args.to ?? ""), path, line);
    field = args.field ? String(args.field) : null;
    if (!field)
      throw new TransformError("relationships needs field: (the column of the other table)", path, line);
  }
  const base = [kind, pending.owner.replace(".", "_"), column ?? ""].filter(Boolean).join("_");
  const refs: string[] = [];
  const sources: string[] = [];
  for (const side of [pending.target, to]) {
    if (side?.kind === "node") refs.push(side.name);
    if (side?.kind === "source") sources.push(side.key);
  }
  return {
    name: uniqueName(typeof args.name === "string" ? args.name : base),
    kind: custom ? "custom" : (kind as TestKind),
    target: pending.target,
    column,
    severity: severityText,
    where:
      typeof config.where === "string" ? config.where : typeof args.where === "string" ? args.where : null,
    values: Array.isArray(args.values) ? args.values : [],
    maxAge: null,
    generic: custom ? { macro: `${GENERIC_TEST_PREFIX}${kind}`, args: customArgs(args) } : null,
    to,
    field,
    refs,
    sources,
    path,
    line,
    template: null,
  };
}

const PERIOD_SECONDS: Record<string, number> = { minute: 60, hour: 3_600, day: 86_400 };

/**
 * A source table's `freshness` (its own, else its source's; `freshness: null` turns it off)
 * over `loaded_at_field`, as tests: one of severity warn for `warn_after`, one of severity error
 * for `error_after`. `sluice test` runs them, as `dbt source freshness` does; builds do not.
 */
function sourceFreshness(
  source: Record<string, unknown>,
  table: Record<string, unknown>,
  key: string,
  path: string,
  line: number | undefined,
): TestDef[] {
  const loadedAt = table.loaded_at_field ?? source.loaded_at_field;
  const freshness = (table.freshness !== undefined ? table.freshness : source.freshness) as
    | Record<string, unknown>
    | null
    | undefined;
  if (!freshness || typeof loadedAt !== "string") return [];
  const seconds = (name: "warn_after" | "error_after"): number | null => {
    const threshold = freshness[name] as { count?: unknown; period?: unknown } | undefined | null;
    if (threshold === undefined || threshold === null) return null;
    const count = Number(threshold.count);
    const period = PERIOD_SECONDS[String(threshold.period)];
    if (!(count > 0) || period === undefined) {
      throw new TransformError(
        `freshness ${name} must be {count: N, period: minute|hour|day}, not ${JSON.stringify(threshold)}`,
        path,
        line,
      );
    }
    return count * period;
  };
  const warn = seconds("warn_after");
  const error = seconds("error_after");
  const test = (severity: "warn" | "error", maxAge: NonNullable<TestDef["maxAge"]>): TestDef => ({
    name: `source_freshness_${key.replace(".", "_")}${severity === "warn" ? "_warn" : ""}`,
    kind: "freshness",
    target: { kind: "source", key },
    column: loadedAt,
    severity,
    where: typeof freshness.filter === "string" ? freshness.filter : null,
    values: [],
    maxAge,
    generic: null,
    to: null,
    field: null,
    refs: [],
    sources: [key],
    path,
    line,
    template: null,
  });
  return [
    ...(warn !== null && (error === null || warn < error)
      ? [test("warn", { seconds: warn, upTo: error })]
      : []),
    ...(error !== null ? [test("error", { seconds: error, upTo: null })] : []),
  ];
}

/** A generic test's arguments, without the keys every test takes. */
function customArgs(args: Record<string, unknown>): Record<string, unknown> {
  const {
    config: _config,
    severity: _severity,
    where: _where,
    name: _name,
    arguments: _arguments,
    ...rest
  } = args;
  return rest;
}

function parseRelationTarget(text: string, path: string, line: number | undefined): TestDef["to"] {
  const ref = /^\s*ref\(\s*['"]([^'"]+)['"]\s*\)\s*$/.exec(text);
  if (ref?.[1]) return { kind: "node", name: ref[1] };
  const source = /^\s*source\(\s*['"]([^'"]+)['"]\s*,\s*['"]([^'"]+)['"]\s*\)\s*$/.exec(text);
  if (source?.[1] && source[2]) return { kind: "source", key: `${source[1]}.${source[2]}` };
  throw new TransformError(
    `relationships: to must be ref('model') or source('s', 't'), not "${text}"`,
    path,
    line,
  );
}

/** The `models:` settings of dbt_project.yml that apply to a model in `folders` (deepest wins, tags add up). */
function folderConfig(
  models: Record<string, unknown>,
  projectName: string,
  folders: string[],
): Record<string, unknown> {
  const result: Record<string, unknown> = {};
  const apply = (level: Record<string, unknown>) => {
    for (const [key, value] of Object.entries(level)) {
      const bare = key.startsWith("+") ? key.slice(1) : key;
      const mapping = typeof value === "object" && value !== null && !Array.isArray(value);
      // A mapping is a folder's settings, unless it is the value of a key that takes one.
      if (!(CONFIG_KEYS.has(bare) || UNSUPPORTED_KEYS.has(bare)) || (mapping && !MAPPING_KEYS.has(bare)))
        continue;
      if (bare === "tags") result.tags = [...toList(result.tags), ...toList(value)];
      else result[bare] = value;
    }
  };
  apply(models);
  let level = models[projectName] as Record<string, unknown> | undefined;
  if (!level || typeof level !== "object") return result;
  apply(level);
  for (const folder of folders) {
    level = level[folder] as Record<string, unknown> | undefined;
    if (!level || typeof level !== "object") break;
    apply(level);
  }
  return result;
}

/**
 * Warnings for dbt_project.yml's `models:` (or `seeds:`) settings that apply to nothing: a path
 * of folders no model is in (a misspelt folder, or a project name that is not this project's),
 * and `+keys` that look like a misspelt setting Sluice knows.
 */
function configPathWarnings(
  tree: Record<string, unknown>,
  projectName: string,
  files: { folders: string[] }[],
  section: "models" | "seeds",
): string[] {
  const warnings: string[] = [];
  const folders = new Set(
    files.flatMap(({ folders }) => folders.map((_, depth) => folders.slice(0, depth + 1).join("/"))),
  );
  const visit = (level: Record<string, unknown>, path: string[]) => {
    for (const [key, value] of Object.entries(level)) {
      const bare = key.startsWith("+") ? key.slice(1) : key;
      const mapping = typeof value === "object" && value !== null && !Array.isArray(value);
      // A mapping under a bare key is a folder, whatever its name; only settings can be misspelt.
      const meant = key.startsWith("+") || !mapping ? misspeltConfigKey(bare) : null;
      if (meant) {
        warnings.push(`dbt_project.yml: ${[section, ...path, key].join(".")}: did you mean +${meant}?`);
        continue;
      }
      if (key.startsWith("+") || !mapping || CONFIG_KEYS.has(bare)) continue;
      if (path.length === 0 && key !== projectName) {
        warnings.push(
          `dbt_project.yml: ${section}.${key} applies to nothing: this project is named ${projectName} (packages are not supported)`,
        );
        continue;
      }
      const inner = path.length === 0 ? [] : [...path.slice(1), key];
      if (inner.length > 0 && !folders.has(inner.join("/"))) {
        warnings.push(
          `dbt_project.yml: ${[section, ...path, key].join(".")} applies to nothing: no ${section === "models" ? "model" : "seed"} is in a folder ${inner.join("/")}`,
        );
        continue;
      }
      visit(value as Record<string, unknown>, [...path, key]);
    }
  };
  visit(tree, []);
  return warnings;
}

/** The configuration key Sluice knows that `key` most likely misspells (one or two letters off), or null. */
function misspeltConfigKey(key: string): string | null {
  if (CONFIG_KEYS.has(key)) return null;
  for (const known of CONFIG_KEYS) if (editDistance(key, known) <= 2) return known;
  return null;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, index) => index);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(
        (previous[j] as number) + 1,
        (current[j - 1] as number) + 1,
        (previous[j - 1] as number) + (a[i - 1] === b[j - 1] ? 0 : 1),
      );
    }
    previous = current;
  }
  return previous[b.length] as number;
}

/** Configuration levels, most general first: a later level wins, except that tags add up (as in dbt). */
function mergeConfigs(...levels: Record<string, unknown>[]): Record<string, unknown> {
  const merged: Record<string, unknown> = Object.assign({}, ...levels);
  const tags = levels.flatMap((level) => toList(level.tags));
  if (tags.length > 0) merged.tags = [...new Set(tags)];
  return merged;
}

const toList = (value: unknown): string[] =>
  value === undefined || value === null ? [] : Array.isArray(value) ? value.map(String) : [String(value)];

/** Checks and normalises a model's configuration. */
function modelConfig(raw: Record<string, unknown>, path: string, line: number | undefined): ModelConfig {
  const fail = (message: string): never => {
    throw new TransformError(message, path, line);
  };
  const materialized = String(raw.materialized ?? "view");
  if (!(MATERIALIZATIONS as readonly string[]).includes(materialized)) {
    fail(`materialized must be one of ${MATERIALIZATIONS.join(", ")}, not "${materialized}"`);
  }
  const uniqueKey = toList(raw.unique_key).flatMap((key) => key.split(",").map((part) => part.trim()));
  const strategy = String(raw.incremental_strategy ?? (uniqueKey.length > 0 ? "merge" : "append"));
  if (!(STRATEGIES as readonly string[]).includes(strategy)) {
    fail(`incremental_strategy must be one of ${STRATEGIES.join(", ")}, not "${strategy}"`);
  }
  if ((strategy === "merge" || strategy === "delete+insert") && uniqueKey.length === 0) {
    fail(`incremental_strategy ${strategy} needs unique_key`);
  }
  let partitionBy: string | null = null;
  if (raw.partition_by !== undefined && raw.partition_by !== null) {
    const value = raw.partition_by;
    partitionBy =
      typeof value === "object" && !Array.isArray(value)
        ? String((value as Record<string, unknown>).field ?? "")
        : (toList(value)[0] ?? null);
    if (!partitionBy) fail("partition_by must name a column");
  }
  if (strategy === "insert_overwrite" && !partitionBy)
    fail("incremental_strategy insert_overwrite needs partition_by");
  const lookback = raw.lookback === undefined || raw.lookback === null ? null : String(raw.lookback);
  const watermark = raw.watermark ? String(raw.watermark) : null;
  if (lookback !== null && !watermark) fail("lookback needs watermark (the column it goes back on)");
  if (lookback !== null && strategy === "append") {
    fail("lookback re-reads rows, which append would add twice: use merge or delete+insert with unique_key");
  }
  const severity = String(raw.severity ?? "error").toLowerCase();
  const columnTypes = raw.column_types ?? {};
  if (typeof columnTypes !== "object" || columnTypes === null || Array.isArray(columnTypes))
    fail("column_types must map column names to types, e.g. {zip: varchar}");
  return {
    materialized: materialized as Materialization,
    strategy: strategy as Strategy,
    uniqueKey,
    partitionBy,
    watermark,
    lookback,
    tags: [...new Set(toList(raw.tags))],
    alias: raw.alias ? String(raw.alias) : null,
    enabled: raw.enabled !== false && raw.enabled !== "false",
    severity: severity === "warn" ? "warn" : "error",
    columnTypes: Object.fromEntries(
      Object.entries(columnTypes as Record<string, unknown>).map(([column, type]) => [column, String(type)]),
    ),
  };
}

/** A parse-time render context: records refs, sources and config calls. */
function parseCapture(path: string, vars: Record<string, unknown>, sources: Map<string, SourceTable>) {
  const refs: string[] = [];
  const used: string[] = [];
  const config: Record<string, unknown> = {};
  const context: RenderContext = {
    path,
    vars,
    env: "prod",
    isIncremental: false,
    ref: (name) => {
      refs.push(name);
      return `"${name}"`;
    },
    source: (source, table) => {
      const key = `${source}.${table}`;
      if (!sources.has(key))
        throw new Error(`source('${source}', '${table}'): no such source table in any schema.yml`);
      used.push(key);
      return `"${sources.get(key)?.table}"`;
    },
    config: (values) => Object.assign(config, values),
    thisRelation: "this",
  };
  return { refs, sources: used, config, context };
}

function checkReferences(node: ProjectNode, nodes: Map<string, ProjectNode>) {
  for (const ref of node.refs) {
    if (!nodes.has(ref)) {
      throw new TransformError(
        `ref('${ref}'): no model or seed named ${ref}`,
        node.path,
        findRefLine(node.raw, ref),
      );
    }
  }
}

function findRefLine(raw: string, ref: string): number | undefined {
  return findLine(raw, new RegExp(`ref\\(\\s*['"]${ref.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}['"]`));
}

/** The 1-based line of the first match of `pattern` in `text`. */
export function findLine(text: string, pattern: RegExp): number | undefined {
  const match = pattern.exec(text);
  return match ? text.slice(0, match.index).split("\n").length : undefined;
}

/** Kahn's algorithm; a cycle is reported with its path. */
function topologicalOrder(nodes: Map<string, ProjectNode>, parents: Map<string, string[]>): string[] {
  const remaining = new Map([...parents].map(([name, list]) => [name, new Set(list)]));
  const order: string[] = [];
  const ready = [...remaining].filter(([, list]) => list.size === 0).map(([name]) => name);
  const children = new Map<string, string[]>();
  for (const [child, list] of parents) {
    for (const parent of list) {
      const known = children.get(parent);
      if (known) known.push(child);
      else children.set(parent, [child]);
    }
  }
  for (let next = 0; next < ready.length; next++) {
    const name = ready[next] as string;
    order.push(name);
    for (const child of children.get(name) ?? []) {
      const list = remaining.get(child);
      list?.delete(name);
      if (list?.size === 0) ready.push(child);
    }
    remaining.delete(name);
  }
  if (remaining.size > 0) {
    const cycle = findCycle([...remaining.keys()], parents);
    const first = nodes.get(cycle[0] as string);
    throw new TransformError(
      `models depend on each other in a cycle: ${cycle.join(" -> ")} (${cycle
        .slice(0, -1)
        .map((name) => nodes.get(name)?.path)
        .join(", ")})`,
      first?.path,
      first ? findRefLine(first.raw, cycle[1] as string) : undefined,
    );
  }
  return order;
}

function findCycle(candidates: string[], parents: Map<string, string[]>): string[] {
  const inCandidates = new Set(candidates);
  const state = new Map<string, "visiting" | "done">();
  const stack: string[] = [];
  const visit = (name: string): string[] | null => {
    state.set(name, "visiting");
    stack.push(name);
    for (const parent of parents.get(name) ?? []) {
      if (!inCandidates.has(parent)) continue;
      if (state.get(parent) === "visiting") {
        // Report in data-flow order: each model feeds the next.
        const loop = stack.slice(stack.indexOf(parent));
        return [...loop, parent].reverse();
      }
      if (!state.has(parent)) {
        const found = visit(parent);
        if (found) return found;
      }
    }
    stack.pop();
    state.set(name, "done");
    return null;
  };
  for (const name of candidates) {
    if (!state.has(name)) {
      const found = visit(name);
      if (found) return found;
    }
  }
  return candidates;
}

/** Macros of generic tests are named with this prefix (dbt's `test_<name>` too). */
const GENERIC_TEST_PREFIX = "test_";

/** dbt's `{% test name(model, …) %}…{% endtest %}`: a macro to nunjucks. */
const TEST_BLOCK = /\{%(-?)\s*test\s+(\w+)\s*\(/g;
const END_TEST = /\{%(-?)\s*endtest\s*(-?)%\}/g;

function loadMacros(root: string, macroPaths: string[], env: nunjucks.Environment): Record<string, unknown> {
  const macros: Record<string, unknown> = {};
  for (const macroPath of macroPaths) {
    for (const file of walk(join(root, macroPath))) {
      if (extname(file) !== ".sql") continue;
      const path = relative(root, file);
      const text = readFileSync(file, "utf8")
        .replace(TEST_BLOCK, `{%$1 macro ${GENERIC_TEST_PREFIX}$2(`)
        .replace(END_TEST, "{%$1 endmacro $2%}");
      const template = new nunjucks.Template(text, env, path);
      let exported: Record<string, unknown> = {};
      const exporter = template as unknown as {
        getExported(context: object, callback: (error: Error | null, result: unknown) => void): void;
      };
      exporter.getExported({}, (error, result) => {
        if (error) throw new TransformError(String(error.message), path);
        exported = result as Record<string, unknown>;
      });
      Object.assign(macros, exported);
    }
  }
  return macros;
}

const sha256 = (content: string | Buffer): string => createHash("sha256").update(content).digest("hex");
