/**
 * Quality of lake tables: profiles (`profileTable`) and checks (`runChecks`), with their
 * history in `<data-dir>/quality.db` and alerts once per failing check until it recovers.
 *
 * Both read the lake on their own sandboxed DuckDB (few threads in the server, so profiling
 * after loads does not take the collector's cores). Loads, syncs and the events loader reach
 * them through `QualityWatcher`; transformations call them after a build, and can audit a
 * candidate's files before publishing (`runChecks(table, { candidate })` → `blocking`).
 */
import { join, resolve } from "node:path";
import type { DuckDBInstance } from "@duckdb/node-api";
import type { Catalog, DataFile, TableDef } from "../catalog/index.js";
import { type Config, engineResources } from "../config/index.js";
import { RAW_TABLE } from "../privacy/index.js";
import { createEngine, sqlIdent, sqlString, Warehouse } from "../warehouse/index.js";
import { Alerter, failureAlert, recoveryAlert } from "./alerts.js";
import type { CheckContext, Outcome } from "./checks/check.js";
import { CHECK_KINDS } from "./checks/registry.js";
import type { CheckResult, ColumnProfile, Profile } from "./model.js";
import { lowCardinalityColumns, profileRows, type SampleBlock, sampleBlocks } from "./profile.js";
import { type CheckDefinition, loadProject, type Project, projectFingerprint } from "./project.js";
import { QualityStore, qualityDbPath } from "./store.js";

export type QualityConfig = Pick<
  Config,
  | "data_dir"
  | "quality_project"
  | "transform_project"
  | "alert_webhook_url"
  | "alert_smtp_url"
  | "alert_email_to"
  | "alert_email_from"
  | "duckdb_memory_limit"
  | "query_timeout_ms"
  | "profile_sample_rows"
>;

export interface OpenQualityOptions {
  config: QualityConfig;
  catalog: Catalog;
  /** DuckDB threads for profiles and checks (default 1: background work keeps to one core). */
  threads?: number;
  /** The project folder with the check files (default: `quality_project`, else `transform_project`, else the current folder). */
  projectDir?: string;
}

/** A problem with the request itself (no such table): the CLI and HTTP API report it as such. */
export class QualityError extends Error {}

export interface ProfileOptions {
  /** Partitions to profile (`2026-11-25`; those without rows are skipped); default: those whose rows changed since their last profile. */
  partitions?: string[];
  /** Profile even when nothing changed since the last profile. */
  force?: boolean;
}

export interface RunChecksOptions {
  /** What ran them, for the history: load, build, schedule, cli, api, audit. */
  trigger: string;
  /** Only the checks with these names. */
  names?: string[];
  /**
   * Run the checks declared for this table instead (default: the table's own), e.g. a dev build's
   * `dev__orders` checked as `orders` is; results are still recorded under the table checked.
   */
  checksOf?: string;
  /**
   * Write-audit-publish: check these Parquet files (under the lake, not committed yet) as if they
   * were the table, instead of the live table. A build or load that gets `blocking` back should
   * not commit them.
   */
  candidate?: { table: TableDef; paths: string[] };
  /** The time the checks count as now (default: now). */
  now?: Date;
  /** Send alerts for failures and recoveries (default true). */
  alert?: boolean;
}

export interface ChecksRun {
  table: string;
  results: CheckResult[];
  /** An error-severity check failed or could not run: what was checked should not be published. */
  blocking: boolean;
  /** Alerts that could not be delivered. */
  alertProblems: string[];
}

export async function openQuality(options: OpenQualityOptions): Promise<Quality> {
  const lakeRoot = join(options.config.data_dir, "lake");
  const engine = await createEngine({
    threads: options.threads ?? 1,
    ...engineResources(options.config, "background"),
    sandbox: { readableDirs: [lakeRoot] },
  });
  // Checks usually live beside the models they check: one project folder for both.
  const projectDir = resolve(
    options.projectDir ?? (options.config.quality_project || options.config.transform_project || "."),
  );
  return new Quality({ ...options, engine, lakeRoot, projectDir });
}

export class Quality {
  readonly store: QualityStore;
  readonly projectDir: string;
  readonly #catalog: Catalog;
  readonly #engine: DuckDBInstance;
  readonly #warehouse: Warehouse;
  readonly #alerter: Alerter;
  readonly #lakeRoot: string;
  readonly #sampleRows: number;
  #project: Project | null = null;

  constructor(options: {
    config: QualityConfig;
    catalog: Catalog;
    engine: DuckDBInstance;
    lakeRoot: string;
    projectDir: string;
  }) {
    this.#catalog = options.catalog;
    this.#engine = options.engine;
    this.projectDir = options.projectDir;
    this.#lakeRoot = options.lakeRoot;
    this.#sampleRows = options.config.profile_sample_rows;
    this.store = new QualityStore(qualityDbPath(options.config.data_dir));
    this.#warehouse = new Warehouse({
      catalog: options.catalog,
      engine: options.engine,
      lakeRoot: options.lakeRoot,
      timeoutMs: options.config.query_timeout_ms,
    });
    this.#alerter = new Alerter(options.config);
  }

  /** The project's checks, read again whenever a check file changed. Throws ProjectError. */
  project(): Project {
    if (!this.#project || this.#project.fingerprint !== projectFingerprint(this.projectDir)) {
      this.#project = loadProject(this.projectDir);
    }
    return this.#project;
  }

  async table(name: string): Promise<TableDef> {
    const table = (await this.#catalog.tables()).find((candidate) => candidate.name === name);
    if (!table) throw new QualityError(`no table ${name} in the lake`);
    return table;
  }

  /** A partitioned table's partitions that hold rows, oldest first. */
  async partitions(name: string): Promise<string[]> {
    const files = await this.#catalog.liveFiles(name);
    return [...new Set(files.filter((file) => file.rows > 0).map((file) => file.partition))].sort();
  }

  /**
   * Profiles a table: an unpartitioned one whole, when it changed since its last profile; a
   * partitioned one per partition, those given or those whose rows changed. Returns the new profiles.
   */
  async profileTable(name: string, options: ProfileOptions = {}): Promise<Profile[]> {
    // Profiles keep columns' top values and every viewer reads them; the raw zone is for admins only.
    if (name === RAW_TABLE) {
      throw new QualityError(`${RAW_TABLE} is the raw zone (personal data as received): it is not profiled`);
    }
    const table = await this.table(name);
    const lease = await this.#catalog.lease(600_000);
    try {
      const files = lease.files(name);
      const latest = new Map(this.store.latestProfiles(name).map((profile) => [profile.partition, profile]));
      // Kept up to date as partitions are profiled: a column first found to have few values
      // costs one follow-up query in the first partition, not in every one.
      const known = new Map<string, { rows: number; columns: ColumnProfile[] }>(latest);
      const targets: { partition: string; files: DataFile[] }[] = [];
      if (table.partitionBy) {
        const byPartition = new Map<string, DataFile[]>();
        for (const file of files) {
          const list = byPartition.get(file.partition);
          if (list) list.push(file);
          else byPartition.set(file.partition, [file]);
        }
        const wanted = options.partitions ?? [...byPartition.keys()].sort();
        for (const partition of wanted) {
          const partitionFiles = byPartition.get(partition) ?? [];
          if (partitionFiles.length === 0) continue;
          const rows = partitionFiles.reduce((sum, file) => sum + file.rows, 0);
          const stale = latest.get(partition)?.rows !== rows;
          if (options.force || options.partitions || stale)
            targets.push({ partition, files: partitionFiles });
        }
      } else {
        const tableSnapshot = await this.#catalog.tableSnapshot(name);
        const previous = latest.get("");
        if (options.force || !previous || previous.snapshot < tableSnapshot)
          targets.push({ partition: "", files });
      }
      const profiles: Profile[] = [];
      for (const target of targets) {
        const started = performance.now();
        const paths = target.files.map((file) => join(this.#lakeRoot, file.path));
        const total = target.files.reduce((sum, file) => sum + file.rows, 0);
        const blocks = sampleBlocks(
          target.files.map((file, index) => ({ path: paths[index] as string, rows: file.rows })),
          this.#sampleRows,
        );
        const relation = blocks ? this.#sampleRelation(table, blocks) : this.#relation(table, paths);
        const { rows, sampledRows, columns } = await profileRows(
          this.#engine,
          relation,
          table.columns,
          lowCardinalityColumns([...known.values()]),
          blocks ? total : undefined,
        );
        known.set(target.partition, { rows, columns });
        profiles.push(
          this.store.addProfile({
            table: name,
            partition: target.partition,
            snapshot: lease.snapshot,
            profiledAt: new Date().toISOString(),
            rows,
            sampledRows,
            durationMs: Math.round((performance.now() - started) * 10) / 10,
            columns,
          }),
        );
      }
      return profiles;
    } finally {
      await lease.release();
    }
  }

  /** Runs the table's checks (declared in the project), records them and alerts. */
  async runChecks(name: string, options: RunChecksOptions): Promise<ChecksRun> {
    const definitions = (this.project().tables.get(options.checksOf ?? name)?.checks ?? []).filter(
      (check) => !options.names || options.names.includes(check.name),
    );
    const now = options.now ?? new Date();
    let table: TableDef | null = options.candidate?.table ?? null;
    let missingTable: string | null = null;
    if (!table) {
      try {
        table = await this.table(name);
      } catch (error) {
        missingTable = (error as Error).message;
      }
    }
    const results: CheckResult[] = [];
    for (const definition of definitions) {
      const started = performance.now();
      let outcome: Outcome | { error: string };
      if (!table) {
        outcome = { error: missingTable ?? `no table ${name}` };
      } else {
        try {
          outcome = await this.#judge(definition, table, now, options.candidate);
        } catch (error) {
          outcome = { error: briefError((error as Error).message) };
        }
      }
      results.push(
        this.store.addResult({
          table: name,
          check: definition.name,
          kind: definition.kind,
          severity: definition.severity,
          status: "error" in outcome ? "error" : outcome.passed ? "pass" : "fail",
          observed: "error" in outcome ? null : outcome.observed,
          message: resultMessage(outcome, definition, options.candidate !== undefined),
          sample: "error" in outcome ? null : (outcome.sample ?? null),
          trigger: options.trigger,
          ranAt: new Date().toISOString(),
          durationMs: Math.round((performance.now() - started) * 10) / 10,
        }),
      );
    }
    const alertProblems = options.alert === false ? [] : await this.#alert(name, results, !options.names);
    return {
      table: name,
      results,
      blocking: results.some((result) => result.severity === "error" && result.status !== "pass"),
      alertProblems,
    };
  }

  /** Runs the checks of every table the project declares checks for (or of `tables`). */
  async runAll(options: RunChecksOptions & { tables?: string[] }): Promise<ChecksRun[]> {
    const runs: ChecksRun[] = [];
    for (const table of options.tables ?? [...this.project().tables.keys()]) {
      runs.push(await this.runChecks(table, options));
    }
    return runs;
  }

  async close(): Promise<void> {
    this.#alerter.close();
    this.store.close();
    this.#engine.closeSync();
  }

  async #judge(
    definition: CheckDefinition,
    table: TableDef,
    now: Date,
    candidate: RunChecksOptions["candidate"],
  ): Promise<Outcome> {
    const kind = CHECK_KINDS.get(definition.kind);
    if (!kind) throw new Error(`unknown check type ${definition.kind}`);
    // A misspelt column is named plainly, rather than by DuckDB's binder error on the check's SQL.
    const known = new Set([...table.columns.map((column) => column.name), table.partitionBy?.column]);
    const { column, columns } = definition.spec as { column?: unknown; columns?: unknown };
    for (const name of [column, ...(Array.isArray(columns) ? columns : [])]) {
      if (typeof name === "string" && !known.has(name)) {
        throw new Error(
          `${table.name} has no column ${name} (its columns: ${table.columns.map((entry) => entry.name).join(", ")})`,
        );
      }
    }
    const source = candidate ? `(${this.#relation(table, candidate.paths)})` : `main.${sqlIdent(table.name)}`;
    const relation = definition.where ? `(SELECT * FROM ${source} WHERE ${definition.where})` : source;
    const context: CheckContext = {
      table,
      relation,
      now,
      query: (sql) => this.#warehouse.query(sql),
      previousColumns: async () => {
        const profile = candidate
          ? (this.store.history(table.name, { limit: 1 })[0] ?? null)
          : this.store.profileBefore(table.name, await this.#catalog.tableSnapshot(table.name));
        return profile ? { columns: profile.columns, profiledAt: profile.profiledAt } : null;
      },
    };
    return kind.run(definition.spec, context);
  }

  /** The SELECT reading a table's rows from these files (a typed empty row set when there are none). */
  #relation(table: TableDef, paths: string[]): string {
    if (paths.length === 0) {
      const columns = table.columns.map(
        (column) => `CAST(NULL AS ${column.type}) AS ${sqlIdent(column.name)}`,
      );
      return `SELECT ${columns.join(", ")} WHERE false`;
    }
    return this.#warehouse.tableSql(table, `[${paths.map(sqlString).join(", ")}]`);
  }

  /**
   * The rows of a sample's blocks (`sampleBlocks`): whole files in one scan, row ranges of the
   * others by `file_row_number` (ranges the Parquet reader uses to skip row groups unread). Read
   * by column name and cast like the table (`Warehouse.tableSql`), so files written before a
   * column was added or widened read as the table does.
   */
  #sampleRelation(table: TableDef, blocks: SampleBlock[]): string {
    const typed = table.columns.map((column) => `CAST(NULL AS ${column.type}) AS ${sqlIdent(column.name)}`);
    const casts = table.columns.map(
      (column) => `CAST(${sqlIdent(column.name)} AS ${column.type}) AS ${sqlIdent(column.name)}`,
    );
    const scans: string[] = [];
    const whole = blocks.filter((block) => block.whole).map((block) => sqlString(block.path));
    if (whole.length > 0)
      scans.push(`SELECT * FROM read_parquet([${whole.join(", ")}], union_by_name = true)`);
    const ranges = new Map<string, string[]>();
    for (const block of blocks.filter((candidate) => !candidate.whole)) {
      const range = `file_row_number BETWEEN ${block.from} AND ${block.to - 1}`;
      const list = ranges.get(block.path);
      if (list) list.push(range);
      else ranges.set(block.path, [range]);
    }
    for (const [path, list] of ranges) {
      scans.push(
        `SELECT * EXCLUDE (file_row_number) FROM read_parquet(${sqlString(path)}, file_row_number = true) WHERE ${list.join(" OR ")}`,
      );
    }
    return `SELECT ${casts.join(", ")} FROM (SELECT ${typed.join(", ")} WHERE false${scans
      .map((scan) => ` UNION ALL BY NAME ${scan}`)
      .join("")})`;
  }

  /**
   * One alert per failing check until it recovers, then one recovery message. A transition is
   * stored only once delivered, so an alert that could not be sent is tried again next run.
   */
  async #alert(table: string, results: CheckResult[], allChecks: boolean): Promise<string[]> {
    const problems: string[] = [];
    for (const result of results) {
      const open = this.store.openAlert(table, result.check);
      const failing = result.status !== "pass";
      if (failing && !open) {
        const sent = this.#alerter.enabled ? await this.#alerter.send(failureAlert(result)) : [];
        problems.push(...sent);
        if (sent.length === 0) this.store.raiseAlert(result);
      } else if (!failing && open) {
        const sent = this.#alerter.enabled ? await this.#alerter.send(recoveryAlert(result, open.since)) : [];
        problems.push(...sent);
        if (sent.length === 0) this.store.clearAlert(table, result.check);
      }
    }
    // A check taken out of the project cannot recover: its alert is closed without a message.
    if (allChecks) {
      const current = new Set(results.map((result) => result.check));
      for (const open of this.store.openAlerts()) {
        if (open.table === table && !current.has(open.check)) this.store.clearAlert(table, open.check);
      }
    }
    return problems;
  }
}

/** DuckDB's message without the SQL excerpt and caret it adds after a blank line, on one line. */
function briefError(message: string): string {
  return (message.split(/\n\s*\n/)[0] ?? message).replace(/\s*\n\s*/g, " ").trim();
}

/**
 * A result's message. A schema change that holds back a build or a load (an audit) says how to let
 * a deliberate one through.
 */
function resultMessage(outcome: Outcome | { error: string }, check: CheckDefinition, audit: boolean): string {
  if ("error" in outcome) return `could not run: ${outcome.error}`;
  if (audit && check.kind === "schema_change" && !outcome.passed && check.severity === "error") {
    return `${outcome.message} (a deliberate change is published once the check lists the new columns under columns:, or has severity: warn)`;
  }
  return outcome.message;
}
