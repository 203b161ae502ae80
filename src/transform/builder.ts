/**
 * Running a project: builds (write → audit → publish), tests, compile, promote and docs.
 *
 * A model's build writes new Parquet files without committing them, defines the model's
 * name in its DuckDB connection as a view over the table-to-be (live files minus those
 * replaced, plus the new ones), runs the model's tests on that view, and only when no
 * error-severity test failed commits the files in one catalog commit (`ifTableSnapshot`,
 * so a concurrent change is never overwritten). Readers of production never see an
 * untested table; failing rows are kept as JSON under `<data-dir>/transform/failures/`.
 * Independent models build in parallel (bounded); a failed model's descendants are skipped.
 */
import { randomUUID } from "node:crypto";
import { closeSync, openSync, readSync } from "node:fs";
import { mkdir, readdir, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import {
  type Catalog,
  CommitConflictError,
  type DataFile,
  type ReadLease,
  type TableDef,
} from "../catalog/index.js";
import { adoptFiles } from "../lake/index.js";
import { Warehouse } from "../warehouse/index.js";
import { type Compiled, compileTemplate, quote, type Resolver, trimSql } from "./compile.js";
import { TransformError } from "./errors.js";
import {
  checkSameColumns,
  checkUniqueKey,
  count,
  describeChange,
  discard,
  incrementalChange,
  literal,
  modelColumns,
  withWatermark,
  writeRows,
} from "./materialize.js";
import { findLine, type Project, type ProjectNode, type TestDef } from "./project.js";
import { SqlTemplate } from "./render.js";
import { selectNodes } from "./select.js";
import type { ModelRun, NewModelRun, RunStatus, TestOutcome, TransformStore } from "./store.js";
import { genericTestSql } from "./tests.js";

export const PROD_ENV = "prod";

export interface BuilderOptions {
  project: Project;
  dataDir: string;
  catalog: Catalog;
  /** DuckDB for writing (not the sandboxed query engine: builds read and write the lake). */
  engine: DuckDBInstance;
  store: TransformStore;
  /** `prod` (default) or another namespace: tables `<env>__<model>`, reading production sources. */
  env?: string;
  /** Models built at once (default 4). */
  threads?: number;
  /** What started the build, for the history: cli, schedule, on_load, api. */
  trigger?: string;
  /**
   * Called after a table is published, e.g. to profile it; `audited`: `onAudit` already checked
   * exactly these rows (a promote's table was not).
   */
  onTableBuilt?: (table: string, snapshot: number, published: { audited: boolean }) => Promise<void>;
  /**
   * More checks of the table-to-be (its Parquet files, not committed yet), after its tests
   * passed, e.g. the quality checks of `quality.yml`. Their outcomes count as the model's
   * tests: an error-severity one that fails keeps the table unpublished.
   */
  onAudit?: (candidate: AuditCandidate) => Promise<TestOutcome[]>;
  /** Each node's result, as it finishes. */
  onResult?: (run: ModelRun) => void;
}

/** A model's table-to-be, offered to `onAudit` before it is published. */
export interface AuditCandidate {
  /** The lake table it becomes (`dev__orders` in environment dev). */
  table: string;
  /** The production table of the same model: whose declared checks apply in every environment. */
  productionTable: string;
  def: TableDef;
  /** Absolute paths of every file the table would have: live ones kept, plus the new ones. */
  paths: string[];
}

export interface BuildRequest {
  select?: string[];
  exclude?: string[];
  fullRefresh?: boolean;
  /** The environment `state:modified` compares with (default prod). */
  stateEnv?: string;
}

export interface TestResult extends TestOutcome {
  /** The tested node or source, or null for a singular test. */
  target: string | null;
  path: string;
  line: number | null;
}

export interface BuildResult {
  ok: boolean;
  runs: ModelRun[];
  /** Tests of sources, run before the models that read them. */
  sourceTests: TestResult[];
}

/** Keeps the first failing rows of a test. */
const FAILING_ROWS_KEPT = 500;
/** Leases pin the files a build reads; a build step longer than this could lose them. */
const LEASE_MS = 6 * 3_600_000;

export class Builder {
  readonly #options: BuilderOptions;
  readonly #env: string;
  readonly #lakeRoot: string;
  /** For `tableSql`: how the warehouse reads a table, so models read exactly what queries do. */
  readonly #reader: Warehouse;
  /** `onTableBuilt` hooks still running. */
  readonly #hooks: Promise<void>[] = [];

  constructor(options: BuilderOptions) {
    this.#options = options;
    this.#env = options.env ?? PROD_ENV;
    if (!/^[a-z][a-z0-9_]{0,30}$/.test(this.#env)) {
      throw new TransformError(
        `--env must be a short lower-case name (letters, digits, _), not "${this.#env}"`,
      );
    }
    this.#lakeRoot = join(options.dataDir, "lake");
    this.#reader = new Warehouse({
      catalog: options.catalog,
      engine: options.engine,
      lakeRoot: this.#lakeRoot,
    });
  }

  get env(): string {
    return this.#env;
  }

  /** The lake table a node writes in an environment. */
  tableFor(name: string, env = this.#env): string {
    const node = this.#node(name);
    const base = node.config.alias ?? node.name;
    return env === PROD_ENV ? base : `${env}__${base}`;
  }

  /** The selected nodes, in build order. */
  async select(request: BuildRequest = {}): Promise<string[]> {
    const builtChecksums = await this.#options.store.builtChecksums(request.stateEnv ?? PROD_ENV);
    return selectNodes(this.#options.project, request.select ?? [], request.exclude ?? [], {
      builtChecksums,
    });
  }

  async build(request: BuildRequest = {}): Promise<BuildResult> {
    const { project } = this.#options;
    const selected = await this.select(request);
    const buildable = selected.filter((name) => this.#node(name).config.materialized !== "ephemeral");
    const invocation = randomUUID();
    const selectedSet = new Set(buildable);
    const tables = await this.#tables();
    const owned = await this.#options.store.ownedTables();
    await this.#sweepOrphans(buildable.map((name) => this.tableFor(name)));

    // Source tests first: an error there skips the models reading that source.
    const usedSources = new Set(buildable.flatMap((name) => this.#sourcesOf(name)));
    // Freshness is `sluice test`'s, as `dbt source freshness` is not part of dbt build.
    const sourceTests = project.tests.filter(
      (test) =>
        (test.target?.kind === "source" && test.kind !== "freshness" && usedSources.has(test.target.key)) ||
        (test.kind === "singular" &&
          test.refs.length === 0 &&
          test.sources.some((key) => usedSources.has(key))),
    );
    const sourceResults = await this.#runTests(
      sourceTests,
      this.#resolver(selectedSet, tables, false),
      new Map(),
    );
    const failedSources = new Set(
      sourceResults.filter(isBlocking).flatMap((result) => {
        const test = sourceTests.find((candidate) => candidate.name === result.name);
        return test?.target?.kind === "source" ? [test.target.key] : (test?.sources ?? []);
      }),
    );

    const runs = new Map<string, Promise<ModelRun>>();
    const waits = this.#waitGraph();
    const limit = semaphore(this.#options.threads ?? 4);
    const runNode = (name: string): Promise<ModelRun> => {
      let run = runs.get(name);
      if (run) return run;
      run = (async () => {
        const deps = (waits.get(name) ?? []).filter((dep) => selectedSet.has(dep));
        const parents = await Promise.all(deps.map(runNode));
        const started = new Date();
        // Only a parent that did not build blocks; a table a test reads is merely waited for.
        const readFrom = new Set(this.#buildDeps(name));
        const blocked = parents.find(
          (parent) =>
            readFrom.has(parent.node) && parent.status !== "success" && parent.status !== "up_to_date",
        );
        const failedSource = this.#sourcesOf(name).find((key) => failedSources.has(key));
        if (blocked || failedSource) {
          return this.#record(invocation, name, started, {
            status: "skipped",
            message: blocked
              ? `skipped: ${blocked.node} did not build (${blocked.status})`
              : `skipped: a test of source ${failedSource} failed`,
          });
        }
        return limit(() =>
          this.#buildNode(invocation, name, selectedSet, request.fullRefresh ?? false, owned),
        );
      })();
      runs.set(name, run);
      return run;
    };
    const results = await Promise.all(buildable.map(runNode));
    // An ephemeral model counts as built (for state:modified) once everything built on it was.
    const succeeded = new Set(
      results.filter((run) => run.status === "success" || run.status === "up_to_date").map((run) => run.node),
    );
    for (const name of selected) {
      const node = this.#node(name);
      if (node.config.materialized !== "ephemeral") continue;
      const users = buildable.filter((other) => this.#readsThrough(other, name));
      if (users.every((user) => succeeded.has(user)))
        await this.#options.store.setBuiltChecksum(this.#env, name, node.checksum);
    }
    const ok =
      results.every((run) => run.status === "success" || run.status === "up_to_date") &&
      sourceResults.every((result) => result.status === "pass" || result.severity === "warn");
    await this.#hooksDone();
    return { ok, runs: results, sourceTests: sourceResults };
  }

  /** Runs the tests of the selected nodes (and of sources, when nothing or a source is selected) on the tables as they are. */
  async test(request: BuildRequest = {}): Promise<{ ok: boolean; tests: TestResult[] }> {
    const { project } = this.#options;
    const selected = new Set(await this.select(request));
    const all = (request.select ?? []).length === 0;
    const tests = project.tests.filter((test) => {
      if (test.target?.kind === "node") return selected.has(test.target.name);
      if (test.kind === "singular" && test.refs.length > 0) return test.refs.some((ref) => selected.has(ref));
      return (
        all || test.sources.some((key) => [...selected].some((name) => this.#sourcesOf(name).includes(key)))
      );
    });
    const results = await this.#runTests(
      tests,
      this.#resolver(new Set(), await this.#tables(), false),
      new Map(),
    );
    return {
      ok: results.every((result) => result.status === "pass" || result.severity === "warn"),
      tests: results,
    };
  }

  /** The SQL a node (or singular test) runs in this environment, as `sluice compile` prints it. */
  async compile(name: string, fullRefresh = false): Promise<string> {
    const { project } = this.#options;
    const tables = await this.#tables();
    const resolver = this.#resolver(new Set(), tables, fullRefresh);
    const node = project.nodes.get(name);
    if (node) {
      const compiled = this.#compileNode(node, resolver);
      return withWatermark(node, compiled.sql, await this.#watermarkBound(node, resolver, tables));
    }
    const test = project.tests.find((candidate) => candidate.name === name);
    if (test) return this.#testSql(test, resolver);
    throw new TransformError(`no model, seed or test named ${name}`);
  }

  /**
   * Publishes the `--env` build of the selected models to production: each production table
   * gets the environment table's files (hard links, no copy) in one commit. Only nodes whose
   * latest build in the environment succeeded (and so passed its tests) are promoted.
   */
  async promote(request: BuildRequest = {}): Promise<ModelRun[]> {
    if (this.#env === PROD_ENV)
      throw new TransformError("promote publishes an --env build: name it, e.g. --env dev");
    const { catalog, store } = this.#options;
    const selected = (await this.select(request)).filter(
      (name) => this.#node(name).config.materialized !== "ephemeral",
    );
    const latest = await store.latestRuns(this.#env);
    const checksums = await store.builtChecksums(this.#env);
    const owned = await store.ownedTables();
    const tables = await this.#tables();
    const invocation = randomUUID();
    const runs: ModelRun[] = [];
    for (const name of selected) {
      const started = new Date();
      const source = this.tableFor(name);
      const target = this.tableFor(name, PROD_ENV);
      const last = latest.get(name);
      const sourceDef = tables.get(source);
      if (!sourceDef || !last) {
        if ((request.select ?? []).length > 0) {
          runs.push(
            await this.#record(invocation, name, started, {
              status: "skipped",
              table: target,
              message: `skipped: no ${this.#env} build of ${name} to promote`,
            }),
          );
        }
        continue;
      }
      if (last.status !== "success" && last.status !== "up_to_date") {
        runs.push(
          await this.#record(invocation, name, started, {
            status: "error",
            table: target,
            message: `the latest ${this.#env} build of ${name} did not succeed (${last.status}): build it again before promoting`,
          }),
        );
        continue;
      }
      const ownership = this.#ownershipProblem(name, target, tables, owned);
      if (ownership) {
        runs.push(
          await this.#record(invocation, name, started, {
            status: "error",
            table: target,
            message: ownership,
          }),
        );
        continue;
      }
      const files = await catalog.liveFiles(source);
      let linked: DataFile[] = [];
      try {
        linked = await adoptFiles(
          this.#lakeRoot,
          target,
          "promoted",
          files.map(({ path, partition, rows, bytes }) => ({
            path: join(this.#lakeRoot, path),
            file: { partition, rows, bytes },
          })),
        );
        const snapshot = await catalog.commit({
          table: target,
          operation: "promote",
          add: linked,
          remove: (await catalog.liveFiles(target)).map((file) => file.path),
          columns: sourceDef.columns,
          ifTableSnapshot: await catalog.tableSnapshot(target),
        });
        await store.claimTable(target, PROD_ENV, name);
        const checksum = checksums.get(name);
        if (checksum) await store.setBuiltChecksum(PROD_ENV, name, checksum);
        const rows = linked.reduce((sum, file) => sum + file.rows, 0);
        runs.push(
          await this.#record(invocation, name, started, {
            status: "success",
            table: target,
            rows,
            snapshot,
            env: PROD_ENV,
            trigger: "promote",
            message: `promoted ${source} to ${target} (${plural(rows, "row")})`,
          }),
        );
        this.#afterPublish(target, snapshot, false);
      } catch (error) {
        for (const file of linked) await rm(join(this.#lakeRoot, file.path), { force: true });
        runs.push(
          await this.#record(invocation, name, started, {
            status: "error",
            table: target,
            message: (error as Error).message,
          }),
        );
      }
    }
    await this.#hooksDone();
    return runs;
  }

  /** Lineage and descriptions: models, seeds, sources, tests, with each table's columns and last run. */
  async docs(): Promise<unknown> {
    const { project, store } = this.#options;
    const tables = await this.#tables();
    const latest = await store.latestRuns(this.#env);
    const testsOf = (target: string, column: string | null) =>
      project.tests
        .filter(
          (test) =>
            ((test.target?.kind === "node" && test.target.name === target) ||
              (test.target?.kind === "source" && test.target.key === target)) &&
            test.column === column,
        )
        .map((test) => ({ name: test.name, kind: test.kind, severity: test.severity }));
    const columnsOf = (
      table: string,
      documented: { name: string; description: string }[],
      target: string,
    ) => {
      const actual = tables.get(table)?.columns ?? [];
      const names = [
        ...new Set([...actual.map((column) => column.name), ...documented.map((column) => column.name)]),
      ];
      return names.map((columnName) => ({
        name: columnName,
        type: actual.find((column) => column.name === columnName)?.type ?? null,
        description: documented.find((column) => column.name === columnName)?.description ?? "",
        tests: testsOf(target, columnName),
      }));
    };
    const nodes = [...project.nodes.values()].map((node) => {
      const table = node.config.materialized === "ephemeral" ? null : this.tableFor(node.name);
      return {
        name: node.name,
        kind: node.kind,
        path: node.path,
        description: node.description,
        materialized: node.config.materialized,
        strategy: node.config.materialized === "incremental" ? node.config.strategy : null,
        tags: node.config.tags,
        table,
        built: table ? tables.has(table) : false,
        columns: columnsOf(table ?? "", node.columns, node.name),
        tests: testsOf(node.name, null),
        dependsOn: { nodes: project.parents.get(node.name) ?? [], sources: [...new Set(node.sources)] },
        lastRun: latest.get(node.name) ?? null,
      };
    });
    const sources = [...project.sources.values()].map((source) => ({
      name: source.key,
      source: source.source,
      table: source.table,
      path: source.path,
      description: source.description,
      exists: tables.has(source.table),
      columns: columnsOf(source.table, source.columns, source.key),
      tests: testsOf(source.key, null),
    }));
    const edges = [
      ...[...project.nodes.values()].flatMap((node) => [
        ...new Set(node.refs.map((ref) => JSON.stringify({ from: ref, to: node.name }))),
        ...new Set(node.sources.map((key) => JSON.stringify({ from: `source:${key}`, to: node.name }))),
      ]),
    ].map((edge) => JSON.parse(edge) as { from: string; to: string });
    return {
      project: project.name,
      env: this.#env,
      generatedAt: new Date().toISOString(),
      nodes,
      sources,
      tests: project.tests.map((test) => ({
        name: test.name,
        kind: test.kind,
        severity: test.severity,
        target: test.target?.kind === "node" ? test.target.name : (test.target?.key ?? null),
        column: test.column,
        path: test.path,
        line: test.line ?? null,
      })),
      lineage: edges,
      warnings: project.warnings,
    };
  }

  // --- one node ---

  async #buildNode(
    invocation: string,
    name: string,
    selected: Set<string>,
    fullRefresh: boolean,
    owned: Map<string, { env: string; node: string }>,
  ): Promise<ModelRun> {
    const { catalog } = this.#options;
    const node = this.#node(name);
    const started = new Date();
    const target = this.tableFor(name);
    const tables = await this.#tables();
    const ownership = this.#ownershipProblem(name, target, tables, owned);
    if (ownership) return this.#record(invocation, name, started, { status: "error", message: ownership });
    const resolver = this.#resolver(selected, tables, fullRefresh);
    const lease = await catalog.lease(LEASE_MS);
    const connection = await this.#options.engine.connect();
    let written: DataFile[] = [];
    try {
      const compiled = this.#compileNode(node, resolver);
      const tableSnapshot = await catalog.tableSnapshot(target);
      await this.#defineViews(connection, lease, tables, compiled.reads, new Map(), node);
      const columns = await modelColumns(connection, node, compiled);
      for (const key of node.config.materialized === "incremental" ? node.config.uniqueKey : []) {
        if (!columns.some((column) => column.name === key)) {
          throw new TransformError(
            `unique_key ${key} is not a column of ${node.name}`,
            node.path,
            findLine(node.raw, /unique_key/),
          );
        }
      }
      const existing = tables.get(target);
      const incremental = resolver.isIncremental(name);
      if (incremental && existing) checkSameColumns(node, existing.columns, columns);
      const def: TableDef = { name: target, columns, partitionBy: null };
      const live = lease.files(target);
      const bound = incremental ? await this.#watermarkBound(node, resolver, tables) : null;
      const select = withWatermark(node, compiled.sql, bound);
      const into = { connection, lakeRoot: this.#lakeRoot, node, def, compiled };
      const change = incremental
        ? await incrementalChange(into, select, live)
        : {
            add: await writeRows(into, select, node.config.partitionBy),
            remove: live.map((file) => file.path),
            rows: -1,
          };
      written = change.add;
      const rows = change.rows >= 0 ? change.rows : written.reduce((sum, file) => sum + file.rows, 0);
      if (incremental && change.add.length === 0 && change.remove.length === 0) {
        // Nothing new: the table stays as it is (and is not tested again).
        await this.#options.store.setBuiltChecksum(this.#env, name, node.checksum);
        return this.#record(invocation, name, started, {
          status: "up_to_date",
          rows: 0,
          message: "no new rows",
        });
      }

      // Audit: the model's name is the table-to-be while its tests run.
      const removed = new Set(change.remove);
      const next = [...live.filter((file) => !removed.has(file.path)), ...written];
      const audit = new Map([[target, { def, paths: next.map((file) => join(this.#lakeRoot, file.path)) }]]);
      if (!incremental && node.config.materialized === "incremental" && node.config.strategy === "merge") {
        // Later merges rely on the key: a first (or full) build must already have a unique, non-NULL one.
        await this.#defineViews(connection, lease, tables, [target], audit, node);
        await checkUniqueKey(connection, node, quote(target), "its rows");
      }
      const tests = this.#testsAt(name, selected);
      const pending = new Set([...selected].map((other) => this.tableFor(other)));
      // TestOutcome: quality checks join the tests, as outcomes without a path.
      const outcomes: TestOutcome[] = await this.#runTests(
        tests,
        resolver,
        audit,
        connection,
        lease,
        tables,
        pending,
      );
      // Quality checks only once the model's own tests passed (dbt's tests come first, as in dbt build).
      const { onAudit } = this.#options;
      const audited = onAudit !== undefined && !outcomes.some(isBlocking);
      if (audited) {
        outcomes.push(
          ...(await onAudit({
            table: target,
            productionTable: this.tableFor(name, PROD_ENV),
            def,
            paths: audit.get(target)?.paths ?? [],
          })),
        );
      }
      const blocking = outcomes.filter(isBlocking);
      if (blocking.length > 0) {
        await discard(this.#lakeRoot, written);
        written = [];
        const reasons = blocking.map(
          (outcome) => `${outcome.name} (${outcome.message ?? `${outcome.failures} failing rows`})`,
        );
        return this.#record(invocation, name, started, {
          status: "failed_tests",
          rows,
          tests: outcomes,
          message: `not published: ${reasons.join("; ")}`,
        });
      }

      const described = columns.map((column) => {
        const doc = node.columns.find((candidate) => candidate.name === column.name);
        return doc?.description ? { ...column, description: doc.description } : column;
      });
      let snapshot: number;
      try {
        snapshot = await catalog.commit({
          table: target,
          operation: node.kind === "seed" ? "seed" : "model",
          add: written,
          remove: change.remove,
          columns: described,
          ifTableSnapshot: tableSnapshot,
        });
      } catch (error) {
        if (error instanceof CommitConflictError) {
          throw new TransformError(
            `table ${target} changed while ${name} was built (another build?); build it again`,
            node.path,
          );
        }
        throw error;
      }
      written = [];
      await this.#options.store.claimTable(target, this.#env, name);
      await this.#options.store.setBuiltChecksum(this.#env, name, node.checksum);
      const total = next.reduce((sum, file) => sum + file.rows, 0);
      const warned = outcomes.filter((outcome) => outcome.status !== "pass");
      const run = await this.#record(invocation, name, started, {
        status: "success",
        rows,
        snapshot,
        tests: outcomes,
        message: [
          incremental
            ? `${plural(rows, "row")} ${describeChange(node)}; ${total} in the table`
            : plural(total, "row"),
          ...warned.map((outcome) =>
            outcome.status === "skipped"
              ? `${outcome.name} ${outcome.message}`
              : `warning: ${outcome.name} (${outcome.failuresFile === null && outcome.message ? outcome.message : plural(outcome.failures, "failing row")})`,
          ),
        ].join("; "),
      });
      this.#afterPublish(target, snapshot, audited);
      return run;
    } catch (error) {
      await discard(this.#lakeRoot, written);
      const message =
        error instanceof TransformError ? error.message : `${node.path}: ${(error as Error).message}`;
      return this.#record(invocation, name, started, { status: "error", message });
    } finally {
      connection.closeSync();
      await lease.release();
    }
  }

  /** The watermark bound of an incremental run: the table's maximum, less the lookback, as an SQL literal. */
  async #watermarkBound(
    node: ProjectNode,
    resolver: Resolver,
    tables: Map<string, TableDef>,
  ): Promise<string | null> {
    const { watermark, lookback } = node.config;
    if (!watermark || !resolver.isIncremental(node.name)) return null;
    const target = resolver.targetOf(node.name);
    const def = tables.get(target);
    const column = def?.columns.find((candidate) => candidate.name === watermark);
    if (!def || !column) {
      throw new TransformError(
        `watermark ${watermark} is not a column of ${target}: rebuild with --full-refresh`,
        node.path,
      );
    }
    const files = (await this.#options.catalog.liveFiles(target)).map((file) =>
      join(this.#lakeRoot, file.path),
    );
    if (files.length === 0) return null;
    const back =
      lookback === null
        ? ""
        : /^-?\d+(\.\d+)?$/.test(lookback)
          ? ` - ${lookback}`
          : ` - INTERVAL ${literal(lookback)}`;
    const connection = await this.#options.engine.connect();
    try {
      const reader = await connection.runAndReadAll(
        `SELECT CAST(max(${quote(watermark)})${back} AS VARCHAR) FROM read_parquet([${files.map(literal).join(", ")}], union_by_name = true)`,
      );
      const value = reader.getRowsJson()[0]?.[0];
      return value === null || value === undefined
        ? null
        : `CAST(${literal(String(value))} AS ${column.type})`;
    } catch (error) {
      throw new TransformError(`lookback ${lookback}: ${(error as Error).message.split("\n")[0]}`, node.path);
    } finally {
      connection.closeSync();
    }
  }

  // --- tests ---

  /** Tests run when `name` is built: its own, and singular tests for which it is the last of their refs built. */
  #testsAt(name: string, selected: Set<string>): TestDef[] {
    const { project } = this.#options;
    const position = new Map(project.order.map((node, index) => [node, index]));
    return project.tests.filter((test) => {
      if (test.target?.kind === "node") return test.target.name === name;
      if (test.kind !== "singular" || !test.refs.includes(name)) return false;
      const built = test.refs.filter((ref) => selected.has(ref));
      const last = built.sort((a, b) => (position.get(a) ?? 0) - (position.get(b) ?? 0)).at(-1);
      return last === name;
    });
  }

  async #runTests(
    tests: TestDef[],
    resolver: Resolver,
    overrides: Map<string, { def: TableDef; paths: string[] }>,
    shared?: DuckDBConnection,
    sharedLease?: ReadLease,
    knownTables?: Map<string, TableDef>,
    /** Tables this build has yet to publish: a test reading one that does not exist yet is skipped. */
    pending: Set<string> = new Set(),
  ): Promise<TestResult[]> {
    if (tests.length === 0) return [];
    const connection = shared ?? (await this.#options.engine.connect());
    const lease = sharedLease ?? (await this.#options.catalog.lease(LEASE_MS));
    const tables = knownTables ?? (await this.#tables());
    const results: TestResult[] = [];
    try {
      for (const test of tests) {
        const base = {
          name: test.name,
          severity: test.severity,
          target: test.target?.kind === "node" ? test.target.name : (test.target?.key ?? null),
          path: test.path,
          line: test.line ?? null,
        };
        try {
          const reads = new Set<string>();
          const sql = this.#testSql(test, resolver, reads);
          const later = [...reads].find(
            (table) => pending.has(table) && !tables.has(table) && !overrides.has(table),
          );
          if (later) {
            const message = `not run: it reads ${later}, which this build has not published yet`;
            results.push({ ...base, status: "skipped", failures: 0, failuresFile: null, message });
            continue;
          }
          await this.#defineViews(connection, lease, tables, [...reads], overrides, null);
          const failures = await count(connection, `SELECT count(*) FROM (${trimSql(sql)})`);
          const file = this.#failuresFile(test.name);
          if (failures > 0) {
            await mkdir(join(this.#options.dataDir, "transform", "failures", this.#env), { recursive: true });
            await connection.run(
              `COPY (SELECT * FROM (${trimSql(sql)}) LIMIT ${FAILING_ROWS_KEPT}) TO ${literal(file)} (FORMAT json, ARRAY true)`,
            );
          } else await rm(file, { force: true });
          results.push({
            ...base,
            status: failures === 0 ? "pass" : test.severity === "warn" ? "warn" : "fail",
            failures,
            failuresFile: failures > 0 ? file : null,
            message:
              failures === 0
                ? null
                : test.kind === "freshness"
                  ? await this.#staleness(connection, test, sql)
                  : `${failures} failing row${failures === 1 ? "" : "s"}, kept in ${file}`,
          });
        } catch (error) {
          const message =
            error instanceof TransformError
              ? error.message
              : `${test.path}${test.line ? `:${test.line}` : ""}: ${(error as Error).message.split("\n")[0]}`;
          results.push({ ...base, status: "error", failures: 0, failuresFile: null, message });
        }
      }
    } finally {
      if (!shared) connection.closeSync();
      if (!sharedLease) await lease.release();
    }
    return results;
  }

  /**
   * A project's generic test (`{% test name(model, column_name) %}`): its macro rendered with
   * the tested relation as `model`, the column and the test's arguments, as dbt calls it.
   */
  #customTestSql(test: TestDef, relation: string, resolver: Resolver, reads: Set<string>): string {
    const { project } = this.#options;
    const generic = test.generic as NonNullable<TestDef["generic"]>;
    const macro = project.macros[generic.macro] as (...args: unknown[]) => unknown;
    const sql = test.where ? `(SELECT * FROM ${relation} WHERE ${test.where})` : relation;
    const model = {
      name: relation.replace(/^"|"$/g, ""),
      identifier: relation.replace(/^"|"$/g, ""),
      toString: () => sql,
    };
    const call = () =>
      String(
        macro({
          __keywords: true,
          model,
          ...(test.column === null ? {} : { column_name: test.column }),
          ...generic.args,
        }),
      );
    const template = new SqlTemplate("{{ __generic_test() }}", test.path, project.env);
    const compiled = compileTemplate(
      { ...project, macros: { ...project.macros, __generic_test: call } },
      template,
      test.path,
      resolver,
      null,
    );
    for (const table of compiled.reads) reads.add(table);
    return compiled.sql;
  }

  /** A failed freshness test in words: how old the newest row is, against the limit. */
  async #staleness(connection: DuckDBConnection, test: TestDef, sql: string): Promise<string> {
    const reader = await connection.runAndReadAll(
      `SELECT CAST(max_loaded_at AS VARCHAR), hours_ago FROM (${trimSql(sql)})`,
    );
    const [newest, hours] = reader.getRowsJson()[0] ?? [];
    const limit = plural((test.maxAge?.seconds ?? 0) / 3600, "hour");
    return newest === null || newest === undefined
      ? `no ${test.column} at all (${test.severity} after ${limit})`
      : `newest ${test.column} is ${newest}, ${plural(Number(hours), "hour")} ago (${test.severity} after ${limit})`;
  }

  #testSql(test: TestDef, resolver: Resolver, reads = new Set<string>()): string {
    const { project } = this.#options;
    const relationOf = (side: NonNullable<TestDef["target"]>): string => {
      if (side.kind === "source") {
        const table = resolver.sourceTable(side.key);
        reads.add(table);
        return quote(table);
      }
      const node = this.#node(side.name);
      if (node.config.materialized === "ephemeral") {
        throw new TransformError(
          `${test.name} tests ephemeral model ${side.name}, which has no table`,
          test.path,
          test.line,
        );
      }
      const table = resolver.tableOf(side.name);
      reads.add(table);
      return quote(table);
    };
    if (test.kind === "custom")
      return this.#customTestSql(
        test,
        relationOf(test.target as NonNullable<TestDef["target"]>),
        resolver,
        reads,
      );
    if (test.kind === "singular") {
      const compiled = compileTemplate(
        project,
        test.template as NonNullable<TestDef["template"]>,
        test.path,
        resolver,
        null,
      );
      for (const table of compiled.reads) reads.add(table);
      return compiled.sql;
    }
    return genericTestSql(
      test,
      relationOf(test.target as NonNullable<TestDef["target"]>),
      test.to ? relationOf(test.to) : null,
    );
  }

  #failuresFile(test: string): string {
    return join(this.#options.dataDir, "transform", "failures", this.#env, `${test}.json`);
  }

  // --- plumbing ---

  #compileNode(node: ProjectNode, resolver: Resolver): Compiled {
    if (node.kind === "seed") {
      // As in dbt, a type for a column the file does not have is no error (folder-wide settings).
      const header = new Set(csvHeader(node.file));
      const types = Object.entries(node.config.columnTypes)
        .filter(([column]) => header.has(column))
        .map(([column, type]) => `${literal(column)}: ${literal(type)}`);
      const typed = types.length > 0 ? `, types = {${types.join(", ")}}` : "";
      const sql = `SELECT * FROM read_csv(${literal(node.file)}, header = true, auto_detect = true${typed})\n`;
      return { sql, prefixLines: 0, reads: [], config: {} };
    }
    return compileTemplate(
      this.#options.project,
      node.template as NonNullable<ProjectNode["template"]>,
      node.path,
      resolver,
      node.name,
    );
  }

  #resolver(selected: Set<string>, tables: Map<string, TableDef>, fullRefresh: boolean): Resolver {
    const { project } = this.#options;
    const env = this.#env;
    return {
      env,
      tableOf: (name) => {
        const own = this.tableFor(name);
        // Another environment reads production for what it has not built itself.
        if (env === PROD_ENV || selected.has(name) || tables.has(own)) return own;
        return this.tableFor(name, PROD_ENV);
      },
      sourceTable: (key) => project.sources.get(key)?.table ?? key,
      isIncremental: (name) =>
        !fullRefresh &&
        this.#node(name).config.materialized === "incremental" &&
        tables.has(this.tableFor(name)),
      targetOf: (name) => this.tableFor(name),
    };
  }

  /** Defines each table the SQL reads as a view of this connection over the lease's files (or an override's). */
  async #defineViews(
    connection: DuckDBConnection,
    lease: ReadLease,
    tables: Map<string, TableDef>,
    reads: string[],
    overrides: Map<string, { def: TableDef; paths: string[] }>,
    node: ProjectNode | null,
  ): Promise<void> {
    const statements: string[] = [];
    for (const table of new Set(reads)) {
      const override = overrides.get(table);
      const def = override?.def ?? tables.get(table);
      if (!def) {
        const line = node
          ? findLine(
              node.raw,
              new RegExp(`\\b(ref|source)\\([^)]*['"]${table.replace(/^[a-z0-9]+__/, "")}['"]`),
            )
          : undefined;
        throw new TransformError(
          `reads table ${table}, which is not in the lake yet: build or load it first`,
          node?.path,
          line,
        );
      }
      const paths = override?.paths ?? lease.files(table).map((file) => join(this.#lakeRoot, file.path));
      const select =
        paths.length > 0
          ? this.#reader.tableSql(def, `[${paths.map(literal).join(", ")}]`)
          : emptySelect(def);
      statements.push(`CREATE OR REPLACE TEMP VIEW ${quote(table)} AS ${select}`);
    }
    if (statements.length > 0) await connection.run(statements.join(";\n"));
  }

  /** Why `name` may not write `table`: it exists and was not made by this node (loaded, collected, another model). */
  #ownershipProblem(
    name: string,
    table: string,
    tables: Map<string, TableDef>,
    owned: Map<string, { env: string; node: string }>,
  ): string | null {
    if (!tables.has(table)) return null;
    const owner = owned.get(table);
    if (owner?.node === name) return null;
    const node = this.#node(name);
    return `${node.path}: ${name} would replace lake table ${table}, which ${owner ? `model ${owner.node} built` : "was loaded or collected, not built by a model"}: rename the model or set its alias`;
  }

  /** The non-ephemeral nodes `name` must wait for (through ephemeral ones). */
  #buildDeps(name: string): string[] {
    const { project } = this.#options;
    const deps = new Set<string>();
    const visit = (current: string) => {
      for (const parent of project.parents.get(current) ?? []) {
        if (this.#node(parent).config.materialized === "ephemeral") visit(parent);
        else deps.add(parent);
      }
    };
    visit(name);
    return [...deps];
  }

  /**
   * What each node's build waits for: its parents, and the other tables its tests read (a
   * relationships test's other side), unless that table's build waits, however indirectly,
   * for the node itself (two models whose tests read each other must not wait for each other).
   */
  #waitGraph(): Map<string, string[]> {
    const { project } = this.#options;
    const waits = new Map(project.order.map((name) => [name, new Set(this.#buildDeps(name))]));
    const reaches = (from: string, to: string): boolean => {
      const seen = new Set<string>();
      const stack = [from];
      while (stack.length > 0) {
        const current = stack.pop() as string;
        if (current === to) return true;
        if (seen.has(current)) continue;
        seen.add(current);
        stack.push(...(waits.get(current) ?? []));
      }
      return false;
    };
    for (const name of project.order) {
      for (const test of this.#testsAt(name, new Set(project.order))) {
        for (const ref of test.refs) {
          if (ref === name || this.#node(ref).config.materialized === "ephemeral" || reaches(ref, name))
            continue;
          waits.get(name)?.add(ref);
        }
      }
    }
    return new Map([...waits].map(([name, deps]) => [name, [...deps]]));
  }

  /** Whether `name` reads `ephemeral`, directly or through other ephemeral models. */
  #readsThrough(name: string, ephemeral: string): boolean {
    return (this.#options.project.parents.get(name) ?? []).some(
      (parent) =>
        parent === ephemeral ||
        (this.#node(parent).config.materialized === "ephemeral" && this.#readsThrough(parent, ephemeral)),
    );
  }

  /** Sources a node reads, directly or through ephemeral models. */
  #sourcesOf(name: string): string[] {
    const node = this.#node(name);
    const own = [...node.sources];
    for (const parent of this.#options.project.parents.get(name) ?? []) {
      if (this.#node(parent).config.materialized === "ephemeral") own.push(...this.#sourcesOf(parent));
    }
    return own;
  }

  #node(name: string): ProjectNode {
    const node = this.#options.project.nodes.get(name);
    if (!node) throw new TransformError(`no model or seed named ${name}`);
    return node;
  }

  async #tables(): Promise<Map<string, TableDef>> {
    return new Map((await this.#options.catalog.tables()).map((table) => [table.name, table]));
  }

  /**
   * Deletes files a crashed build wrote into these tables' folders but never committed. Only old
   * ones: a build running alongside (another process) may be about to commit its new files.
   */
  async #sweepOrphans(tables: string[]): Promise<void> {
    const cutoff = Date.now() - ORPHAN_AGE_MS;
    for (const table of tables) {
      const dir = join(this.#lakeRoot, table);
      let names: string[];
      try {
        names = await readdir(dir);
      } catch {
        continue;
      }
      const listed = new Set(await this.#options.catalog.listedPaths(table));
      for (const name of names) {
        if (!/^(model|seed|promoted)-.*\.parquet$/.test(name) || listed.has(`${table}/${name}`)) continue;
        const path = join(dir, name);
        if ((await stat(path)).mtimeMs < cutoff) await rm(path, { force: true });
      }
    }
  }

  /**
   * Starts `onTableBuilt` (profiling) without holding up the models downstream; build() and
   * promote() wait for every hook before they return.
   */
  #afterPublish(table: string, snapshot: number, audited: boolean): void {
    const hook = this.#options.onTableBuilt;
    if (!hook) return;
    // A hook failing does not undo a published table.
    this.#hooks.push(
      Promise.resolve()
        .then(() => hook(table, snapshot, { audited }))
        .catch(() => {}),
    );
  }

  async #hooksDone(): Promise<void> {
    while (this.#hooks.length > 0) await Promise.all(this.#hooks.splice(0));
  }

  async #record(
    invocation: string,
    name: string,
    started: Date,
    outcome: Partial<NewModelRun> & { status: RunStatus },
  ): Promise<ModelRun> {
    const node = this.#node(name);
    const finished = new Date();
    const run = await this.#options.store.recordRun({
      invocation,
      env: this.#env,
      node: name,
      kind: node.kind,
      table: this.tableFor(name),
      rows: 0,
      durationMs: finished.getTime() - started.getTime(),
      startedAt: started.toISOString(),
      finishedAt: finished.toISOString(),
      snapshot: null,
      message: null,
      tests: [],
      trigger: this.#options.trigger ?? "cli",
      ...outcome,
    });
    this.#options.onResult?.(run);
    return run;
  }
}

/** An error-severity test or check that failed or could not run: the table must not be published. */
const isBlocking = (outcome: TestOutcome): boolean =>
  outcome.severity === "error" && (outcome.status === "fail" || outcome.status === "error");

const plural = (count: number, noun: string): string => `${count} ${noun}${count === 1 ? "" : "s"}`;

/** Unlisted files older than this in a model's folder are left over from a crashed build. */
const ORPHAN_AGE_MS = 3_600_000;

function emptySelect(def: TableDef): string {
  const columns = def.columns.map((column) => `CAST(NULL AS ${column.type}) AS ${quote(column.name)}`);
  if (def.partitionBy) columns.push(`CAST(NULL AS DATE) AS ${quote(def.partitionBy.column)}`);
  return `SELECT ${columns.join(", ")} WHERE false`;
}

/** The column names on a CSV file's first line (a seed's header). */
function csvHeader(file: string): string[] {
  // The header is on the first line: read the start of the file, not all of it.
  const start = Buffer.alloc(65_536);
  const descriptor = openSync(file, "r");
  let length: number;
  try {
    length = readSync(descriptor, start, 0, start.length, 0);
  } finally {
    closeSync(descriptor);
  }
  const text = start.subarray(0, length).toString("utf8");
  const first = text.replace(/^\uFEFF/, "").split(/\r?\n/, 1)[0] ?? "";
  return first.split(",").map((name) => name.trim().replace(/^"(.*)"$/, "$1"));
}

/** At most `size` tasks at once. */
function semaphore(size: number): <T>(task: () => Promise<T>) => Promise<T> {
  let active = 0;
  const waiting: (() => void)[] = [];
  return async (task) => {
    // A finishing task hands its slot straight to the next waiting one.
    if (active >= size) await new Promise<void>((resolve) => waiting.push(resolve));
    else active++;
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else active--;
    }
  };
}
