/**
 * `sluice profile TABLE` and `sluice check [TABLE]`: the same Quality the server runs, over the
 * data dir's catalog, with or without a server running (quality.db is shared, WAL).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { type Command, InvalidArgumentError, Option } from "commander";
import { openSqliteCatalog } from "../catalog/index.js";
import { type Config, loadConfig } from "../config/index.js";
import {
  type CheckResult,
  type ColumnProfile,
  openQuality,
  type Profile,
  ProjectError,
  type Quality,
  QualityError,
} from "../quality/index.js";
import { formatResult } from "./format.js";

interface Options {
  dataDir?: string;
  config?: string;
  format: "table" | "json";
}

const positive = (value: string): number => {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1)
    throw new InvalidArgumentError("must be a positive whole number");
  return number;
};

export function registerQualityCommands(program: Command): void {
  program
    .command("profile")
    .description("profile a table (per partition when partitioned) and print its latest profile")
    .argument("<table>", "the table to profile")
    .option("--partition <dt>", "a partition of a partitioned table (default: the newest)")
    .option("--history <n>", "also list this many earlier profiles, newest first", positive)
    .addOption(new Option("--format <format>", "output format").choices(["table", "json"]).default("table"))
    .option("--data-dir <dir>", "where data lives (default ./sluice-data, or SLUICE_DATA_DIR)")
    .option("--config <file>", "configuration file (default <data-dir>/sluice.yaml)")
    .action((table: string, options: Options & { partition?: string; history?: number }) =>
      withQuality(options, {}, async (quality) => {
        const def = await quality.table(table);
        if (options.partition && !def.partitionBy)
          throw new QualityError(`table ${table} is not partitioned`);
        // A partitioned table: the partition asked for, else the newest (not every stale one: it may be years).
        const partition = def.partitionBy
          ? (options.partition ?? (await quality.partitions(table)).at(-1))
          : undefined;
        await quality.profileTable(table, partition ? { partitions: [partition] } : {});
        const latest = quality.store.latestProfiles(table);
        const profile = partition
          ? latest.find((candidate) => candidate.partition === partition)
          : latest.at(-1);
        if (!profile) {
          throw new QualityError(
            options.partition
              ? `table ${table} has no partition ${options.partition}`
              : `table ${table} has no rows yet`,
          );
        }
        const history = options.history
          ? quality.store.history(table, {
              partition: def.partitionBy ? profile.partition : undefined,
              limit: options.history,
            })
          : [];
        if (options.format === "json") {
          console.log(JSON.stringify({ profile, ...(options.history ? { history } : {}) }));
          return;
        }
        console.log(describeProfile(profile, def.partitionBy ? latest.length : 0));
        console.log(formatResult(profileTable(profile.columns), "table"));
        if (history.length > 0) {
          console.log(`\nhistory${def.partitionBy ? ` of partition ${profile.partition}` : ""}:`);
          const rows = history.map((entry) => [
            entry.profiledAt,
            entry.snapshot,
            entry.rows,
            entry.durationMs,
          ]);
          const columns = ["profiled_at", "snapshot", "rows", "ms"].map((name) => ({ name, type: "" }));
          console.log(formatResult({ columns, rows }, "table"));
        }
      }),
    );

  program
    .command("check")
    .description("run the data quality checks declared in the project (quality.yml, checks/*.yml)")
    .argument("[table]", "only this table's checks")
    .option(
      "--project <dir>",
      "the project folder with the check files (default: quality_project, else transform_project, else .)",
    )
    .option("--no-alerts", "do not send alerts for failures and recoveries")
    .addOption(new Option("--format <format>", "output format").choices(["table", "json"]).default("table"))
    .option("--data-dir <dir>", "where data lives (default ./sluice-data, or SLUICE_DATA_DIR)")
    .option("--config <file>", "configuration file (default <data-dir>/sluice.yaml)")
    .action((table: string | undefined, options: Options & { project?: string; alerts: boolean }) =>
      withQuality(options, { projectDir: options.project }, async (quality) => {
        const project = quality.project();
        if (table !== undefined && !project.tables.has(table)) {
          throw new QualityError(`no checks for table ${table} in ${quality.projectDir}`);
        }
        const tables = table !== undefined ? [table] : [...project.tables.keys()];
        if (tables.length === 0) {
          throw new QualityError(
            `no checks in ${quality.projectDir}: declare them in quality.yml or checks/*.yml`,
          );
        }
        // Profiles give schema_change its baseline; partitioned tables are left to the server's throttle.
        for (const name of tables) {
          const def = await quality.table(name).catch(() => null);
          if (def && !def.partitionBy) await quality.profileTable(name);
        }
        const runs = await quality.runAll({ trigger: "cli", tables, alert: options.alerts });
        const results = runs.flatMap((run) => run.results);
        if (options.format === "json")
          console.log(JSON.stringify({ results, blocking: runs.some((run) => run.blocking) }));
        else console.log(describeResults(results));
        for (const problem of runs.flatMap((run) => run.alertProblems))
          console.error(`sluice: warning: ${problem}`);
        if (runs.some((run) => run.blocking)) process.exitCode = 1;
      }),
    );
}

/** Opens the catalog and Quality, runs `work`, and reports a user-facing failure as one line. */
async function withQuality(
  options: Options,
  extra: { projectDir?: string },
  work: (quality: Quality) => Promise<void>,
): Promise<void> {
  let config: Config;
  try {
    config = loadConfig({ configFile: options.config, overrides: { data_dir: options.dataDir } });
  } catch (error) {
    return fail((error as Error).message);
  }
  if (!existsSync(join(config.data_dir, "catalog.db")))
    return fail(`no Sluice data directory at ${config.data_dir}`);
  const catalog = openSqliteCatalog(join(config.data_dir, "catalog.db"));
  // The user is waiting: use every core (the server keeps profiling to one).
  const quality = await openQuality({
    config,
    catalog,
    threads: config.duckdb_threads || undefined,
    projectDir: extra.projectDir,
  });
  try {
    await work(quality);
  } catch (error) {
    if (error instanceof QualityError || error instanceof ProjectError) return fail(error.message);
    throw error;
  } finally {
    await quality.close();
    await catalog.close();
  }
}

function fail(message: string): void {
  console.error(`sluice: ${message}`);
  process.exitCode = 1;
}

function describeProfile(profile: Profile, partitions: number): string {
  const where = profile.partition ? ` partition ${profile.partition} (of ${partitions} profiled)` : "";
  return `${profile.table}${where}: ${profile.rows.toLocaleString("en-US")} rows, profiled ${profile.profiledAt} at snapshot ${profile.snapshot} in ${profile.durationMs} ms`;
}

function profileTable(columns: ColumnProfile[]) {
  const names = [
    "column",
    "type",
    "null %",
    "distinct ≈",
    "min",
    "max",
    "mean",
    "stddev",
    "length",
    "top values",
  ];
  const rows = columns.map((column) => [
    column.name,
    column.type,
    short(column.nullPercent),
    column.distinct ?? null,
    typeof column.min === "number" ? short(column.min) : (column.min ?? null),
    typeof column.max === "number" ? short(column.max) : (column.max ?? null),
    short(column.mean),
    short(column.stddev),
    column.minLength === undefined || column.minLength === null
      ? null
      : `${column.minLength}–${column.maxLength} (avg ${short(column.meanLength)})`,
    column.topValues?.map((top) => `${top.value ?? "NULL"} (${top.count})`).join(", ") ?? null,
  ]);
  return { columns: names.map((name) => ({ name, type: "" })), rows };
}

/** Four significant digits are plenty on a terminal (the JSON keeps them all). */
function short(value: number | null | undefined): number | null {
  return value === null || value === undefined ? null : Number(value.toPrecision(4));
}

function describeResults(results: CheckResult[]): string {
  const label = (result: CheckResult) =>
    result.status === "pass"
      ? "PASS "
      : result.status === "fail"
        ? `FAIL [${result.severity}]`
        : `ERROR [${result.severity}]`;
  const width = Math.max(...results.map((result) => label(result).length), 0);
  const lines: string[] = [];
  for (const result of results) {
    lines.push(`${label(result).padEnd(width)}  ${result.table} ${result.check}: ${result.message}`);
    // A few failing rows or values, so the cause is visible without a query.
    for (const row of result.sample?.rows.slice(0, 3) ?? []) {
      const cells = result.sample?.columns.map((name, index) => `${name}=${cellText(row[index])}`);
      lines.push(`${" ".repeat(width)}    e.g. ${cells?.join(", ")}`);
    }
  }
  const count = (status: CheckResult["status"]) =>
    results.filter((result) => result.status === status).length;
  lines.push(
    `${results.length} check${results.length === 1 ? "" : "s"}: ${count("pass")} passed, ${count("fail")} failed, ${count("error")} could not run`,
  );
  return lines.join("\n");
}

const cellText = (value: unknown): string =>
  value === null || value === undefined
    ? "NULL"
    : typeof value === "object"
      ? JSON.stringify(value)
      : String(value);
