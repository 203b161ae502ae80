/**
 * `sluice build | test | compile | docs | promote | runs`: transformations from the command
 * line. Each reads the project (`--project`, default the current folder) and the data dir,
 * works with or without a running server (catalog commits are safe alongside it), and
 * exits non-zero on failure.
 */
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { type Command, InvalidArgumentError, Option } from "commander";
import { parse as parseYaml } from "yaml";
import { BusLockedError, busOwnerPid } from "../bus/index.js";
import { type Catalog, openSqliteCatalog } from "../catalog/index.js";
import { type Config, ConfigError, engineResources, loadConfig } from "../config/index.js";
import {
  AUDIT_PREFIX,
  auditBuild,
  loadProject as loadChecks,
  openQuality,
  ProjectError,
  type Quality,
} from "../quality/index.js";
import { busPath, catalogPath, openStorage } from "../server/index.js";
import {
  Builder,
  type BuilderOptions,
  loadProject,
  type ModelRun,
  openSqliteTransformStore,
  PROD_ENV,
  type TestResult,
  TransformError,
} from "../transform/index.js";
import { createEngine } from "../warehouse/index.js";
import { formatResult } from "./format.js";

interface TransformOptions {
  project?: string;
  dataDir?: string;
  config?: string;
  env: string;
  vars?: string;
  threads?: number;
  fullRefresh?: boolean;
  exclude?: string[];
  stateEnv: string;
  format: "table" | "json";
  select?: string[];
}

const positive = (value: string): number => {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1)
    throw new InvalidArgumentError("must be a positive whole number");
  return number;
};

/** Adds the transformation commands to the program. */
export function registerTransformCommands(program: Command): void {
  const common = (command: Command, options: { format?: boolean } = {}) => {
    command
      .option(
        "--project <dir>",
        "the project folder (models/, seeds/, schema.yml; default: the current folder)",
      )
      .option("--data-dir <dir>", "where data lives (default ./sluice-data, or SLUICE_DATA_DIR)")
      .option("--config <file>", "configuration file (default <data-dir>/sluice.yaml)")
      .option(
        "--env <name>",
        "build environment: tables <env>__<model>, reading production sources",
        PROD_ENV,
      )
      .option("--vars <yaml>", `values for var(), as YAML: '{"start_date": "2026-01-01"}'`)
      .option("-s, --select <selection...>", "the same as the selection arguments (dbt's spelling)");
    if (options.format !== false) {
      command.addOption(
        new Option("--format <format>", "output format").choices(["table", "json"]).default("table"),
      );
    }
    return command;
  };

  common(
    program
      .command("build")
      .description(
        "build models and seeds (write, test, publish only when the tests pass), in dependency order",
      )
      .argument(
        "[selection...]",
        "what to build: orders, orders+, +orders, tag:daily, path:models/marts, state:modified",
      ),
  )
    .option("--exclude <selection...>", "leave these out")
    .option("--full-refresh", "rebuild incremental models from scratch")
    .option("--threads <n>", "models built at once", positive, 4)
    .option("--state-env <env>", "the environment state:modified compares with", PROD_ENV)
    .action((words: string[], options: TransformOptions) =>
      run(
        options,
        async ({ builder }) => {
          const result = await builder.build({
            select: selectionOf(words, options),
            exclude: options.exclude,
            fullRefresh: options.fullRefresh,
            stateEnv: options.stateEnv,
          });
          if (options.format === "json") console.log(JSON.stringify(result));
          else {
            for (const test of result.sourceTests) printTest(test);
            printSummary(result.runs);
          }
          return result.ok;
        },
        {
          onResult: options.format === "table" ? printRun : undefined,
          threads: options.threads,
          publishes: true,
        },
      ),
    );

  common(
    program
      .command("test")
      .description(
        "run the tests of the selected models (all, and the sources', by default) on their tables as they are",
      )
      .argument("[selection...]", "whose tests to run (same syntax as build)"),
  ).action((words: string[], options: TransformOptions) =>
    run(
      options,
      async ({ builder }) => {
        const result = await builder.test({ select: selectionOf(words, options) });
        if (options.format === "json") console.log(JSON.stringify(result));
        else {
          for (const test of result.tests) printTest(test);
          const failed = result.tests.filter(
            (test) => test.status === "fail" || test.status === "error",
          ).length;
          const warned = result.tests.filter((test) => test.status === "warn").length;
          console.log(
            `${result.tests.length} tests: ${result.tests.length - failed - warned} passed, ${warned} warned, ${failed} failed`,
          );
        }
        return result.ok;
      },
      { needsData: true },
    ),
  );

  common(
    program
      .command("compile")
      .description("print the SQL each selected model (or a test, by name) runs, rendered")
      .argument("[selection...]", "models (same syntax as build) or a test's name"),
    { format: false },
  )
    .option("--full-refresh", "show incremental models as a full rebuild runs them")
    .action((words: string[], options: TransformOptions) =>
      run(
        options,
        async ({ builder, project }) => {
          const selection = selectionOf(words, options);
          const tests = selection.filter((word) => project.tests.some((test) => test.name === word));
          const models = selection.filter((word) => !tests.includes(word));
          const names =
            models.length > 0 || tests.length === 0 ? await builder.select({ select: models }) : [];
          for (const name of names) {
            const node = project.nodes.get(name);
            if (node?.kind !== "model" || node.config.materialized === "ephemeral") continue;
            console.log(
              `-- ${node.path} (${node.config.materialized}) → ${builder.tableFor(name)}\n${(await builder.compile(name, options.fullRefresh)).trimEnd()};\n`,
            );
          }
          for (const name of tests)
            console.log(`-- test ${name}\n${(await builder.compile(name)).trimEnd()};\n`);
          return true;
        },
        { readOnly: true },
      ),
    );

  common(
    program
      .command("docs")
      .description("print the project's lineage, descriptions, columns and last runs as JSON"),
    { format: false },
  ).action((options: TransformOptions) =>
    run(
      options,
      async ({ builder }) => {
        console.log(JSON.stringify(await builder.docs(), null, 2));
        return true;
      },
      { readOnly: true },
    ),
  );

  common(
    program
      .command("promote")
      .description("publish the tested --env build of the selected models to production (no data copied)")
      .argument("[selection...]", "which models (default: every model built in the environment)"),
  ).action((words: string[], options: TransformOptions) =>
    run(
      options,
      async ({ builder }) => {
        const runs = await builder.promote({ select: selectionOf(words, options) });
        if (options.format === "json") console.log(JSON.stringify({ runs }));
        else if (runs.length === 0) console.log(`nothing to promote: no model has a ${options.env} build`);
        else printSummary(runs, true);
        return runs.every((entry) => entry.status === "success" || entry.status === "skipped");
      },
      { publishes: true, needsData: true },
    ),
  );

  program
    .command("runs")
    .description("show the run history of models and seeds: status, rows, duration, tests")
    .option("--model <name>", "only this model")
    .option("--env <name>", "only this environment")
    .option("--limit <n>", "how many, newest first", positive, 20)
    .option("--data-dir <dir>", "where data lives (default ./sluice-data, or SLUICE_DATA_DIR)")
    .option("--config <file>", "configuration file (default <data-dir>/sluice.yaml)")
    .addOption(new Option("--format <format>", "output format").choices(["table", "json"]).default("table"))
    .action(
      async (options: {
        model?: string;
        env?: string;
        limit: number;
        dataDir?: string;
        config?: string;
        format: string;
      }) => {
        const config = configOf(options);
        if (!existsSync(config.data_dir)) fail(`no Sluice data directory at ${config.data_dir}`);
        const store = openSqliteTransformStore(catalogPath(config.data_dir));
        try {
          const runs = await store.runs({ node: options.model, env: options.env, limit: options.limit });
          if (options.format === "json") {
            console.log(JSON.stringify({ runs }));
            return;
          }
          const columns = [
            "id",
            "finished_at",
            "env",
            "node",
            "status",
            "rows",
            "seconds",
            "tests",
            "message",
          ];
          const rows = runs.map((entry) => [
            entry.id,
            entry.finishedAt,
            entry.env,
            entry.node,
            entry.status,
            entry.rows,
            Number((entry.durationMs / 1000).toFixed(2)),
            `${entry.tests.filter((test) => test.status === "pass").length}/${entry.tests.length}`,
            entry.message ?? "",
          ]);
          console.log(formatResult({ columns: columns.map((name) => ({ name, type: "" })), rows }, "table"));
        } finally {
          await store.close();
        }
      },
    );
}

/** Selection arguments and `--select` words together. */
const selectionOf = (words: string[], options: TransformOptions): string[] => [
  ...words,
  ...(options.select ?? []),
];

function configOf(options: { dataDir?: string; config?: string }): Config {
  return loadConfig({ configFile: options.config, overrides: { data_dir: options.dataDir } });
}

function fail(message: string): never {
  throw new TransformError(message);
}

/**
 * Opens what a command needs, runs it, closes everything; a TransformError (or a bad
 * configuration) is one line and exit code 1, as is a command that reports failure.
 */
async function run(
  options: TransformOptions,
  work: (context: { builder: Builder; project: ReturnType<typeof loadProject> }) => Promise<boolean>,
  extra: {
    onResult?: (run: ModelRun) => void;
    threads?: number;
    readOnly?: boolean;
    /** Builds or promotes tables: quality checks audit them and profiles follow. */
    publishes?: boolean;
    /** Works on tables already built: refuses a data dir that does not exist. */
    needsData?: boolean;
  } = {},
): Promise<void> {
  let ok = false;
  try {
    const config = configOf(options);
    const vars = options.vars ? parseVars(options.vars) : {};
    const project = loadProject(options.project || config.transform_project || ".", { vars });
    for (const warning of project.warnings) console.error(`sluice: warning: ${warning}`);
    if (project.nodes.size === 0) {
      fail(
        `no models or seeds in ${project.dir} (models/*.sql, seeds/*.csv): point --project at the project folder`,
      );
    }
    // Testing or promoting needs built tables: a mistyped --data-dir must not pass as an empty lake.
    if (extra.needsData && !existsSync(catalogPath(config.data_dir)))
      fail(`no Sluice data directory at ${config.data_dir}: build first, or point --data-dir at one`);
    await mkdir(config.data_dir, { recursive: true });
    if (!extra.readOnly) await loadPendingEvents(config);
    const catalog = openSqliteCatalog(catalogPath(config.data_dir));
    const store = openSqliteTransformStore(catalogPath(config.data_dir));
    const engine = await createEngine({
      threads: config.duckdb_threads || undefined,
      ...engineResources(config, "foreground"),
    });
    let quality: Quality | null = null;
    try {
      quality = extra.publishes ? await qualityFor(config, catalog, project.dir) : null;
      const builder = new Builder({
        project,
        dataDir: config.data_dir,
        catalog,
        engine,
        store,
        env: options.env,
        threads: extra.threads,
        trigger: "cli",
        onResult: extra.onResult,
        ...(quality ? qualityHooks(quality, config) : {}),
      });
      ok = await work({ builder, project });
    } finally {
      await quality?.close();
      await store.close();
      await catalog.close();
      engine.closeSync();
    }
  } catch (error) {
    if (
      !(
        error instanceof TransformError ||
        error instanceof ConfigError ||
        error instanceof BusLockedError ||
        error instanceof ProjectError
      )
    )
      throw error;
    console.error(`sluice: ${error.message}`);
  }
  if (!ok) process.exitCode = 1;
}

/**
 * Quality for a command that publishes tables, when it has work: the check files of
 * `quality_project`, else of the transform project (a malformed one stops the command before
 * anything is built), and profiling.
 */
async function qualityFor(config: Config, catalog: Catalog, projectDir: string): Promise<Quality | null> {
  const checksDir = config.quality_project || projectDir;
  const checks = loadChecks(checksDir);
  if (checks.tables.size === 0 && !config.profiling) return null;
  return openQuality({ config, catalog, projectDir: checksDir, threads: config.duckdb_threads || undefined });
}

/** What the server's quality watcher does for builds, in this process: audit before publishing, profile after. */
function qualityHooks(quality: Quality, config: Config): Pick<BuilderOptions, "onAudit" | "onTableBuilt"> {
  return {
    onAudit: (candidate) => auditBuild(quality, candidate),
    onTableBuilt: async (table, _snapshot, { audited }) => {
      if (config.profiling) await quality.profileTable(table);
      // A promoted table was audited in its environment; its production checks run (and alert) now.
      if (!audited) await quality.runChecks(table, { trigger: "build" });
    },
  };
}

/** With no server running, loads what the bus still holds first, so acknowledged events are built on (as `sluice query` does). */
async function loadPendingEvents(config: Config): Promise<void> {
  if (!existsSync(busPath(config.data_dir)) || busOwnerPid(busPath(config.data_dir)) !== null) return;
  try {
    const storage = await openStorage(config);
    await storage.close();
  } catch (error) {
    if (!(error instanceof BusLockedError)) throw error;
  }
}

function parseVars(text: string): Record<string, unknown> {
  let parsed: unknown;
  try {
    parsed = parseYaml(text);
  } catch (error) {
    throw new TransformError(`--vars is not valid YAML: ${(error as Error).message.split("\n")[0]}`);
  }
  if (!parsed || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new TransformError(`--vars must be a mapping, e.g. '{"start_date": "2026-01-01"}'`);
  }
  return parsed as Record<string, unknown>;
}

const LABELS: Record<ModelRun["status"], string> = {
  success: "OK",
  up_to_date: "OK",
  error: "ERROR",
  failed_tests: "FAIL",
  skipped: "SKIP",
};

function printRun(entry: ModelRun): void {
  const label = LABELS[entry.status].padEnd(5);
  const seconds = `${(entry.durationMs / 1000).toFixed(2)}s`;
  const line = `${label} ${entry.kind.padEnd(5)} ${entry.node} → ${entry.table}`;
  const detail = entry.message ?? "";
  console.log(`${line.padEnd(60, " ")} ${seconds.padStart(7)}  ${detail}`);
  for (const test of entry.tests)
    if (test.status !== "pass") printTest({ ...test, target: entry.node, path: "", line: null });
}

function printTest(test: TestResult): void {
  const label = { pass: "PASS", warn: "WARN", fail: "FAIL", error: "ERROR", skipped: "SKIP" }[test.status];
  const where = test.path ? ` (${test.path}${test.line ? `:${test.line}` : ""})` : "";
  const what = test.name.startsWith(AUDIT_PREFIX)
    ? `check ${test.name.slice(AUDIT_PREFIX.length)}`
    : `test ${test.name}`;
  console.log(`  ${label.padEnd(5)} ${what}${where}${test.message ? `: ${test.message}` : ""}`);
}

function printSummary(runs: ModelRun[], promoted = false): void {
  if (promoted) for (const entry of runs) printRun(entry);
  const counts = new Map<string, number>();
  for (const entry of runs) counts.set(LABELS[entry.status], (counts.get(LABELS[entry.status]) ?? 0) + 1);
  const seconds = runs.reduce((sum, entry) => sum + entry.durationMs, 0) / 1000;
  console.log(
    `Done: ${[...counts].map(([label, n]) => `${n} ${label}`).join(", ") || "nothing selected"} (${seconds.toFixed(2)}s of model time)`,
  );
}
