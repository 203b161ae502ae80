#!/usr/bin/env node
import { randomBytes } from "node:crypto";
import { existsSync, statSync } from "node:fs";
import { mkdir, readFile } from "node:fs/promises";
import { basename } from "node:path";
import { Command, InvalidArgumentError, Option } from "commander";
import { printFirstLogin, registerUsersCommands } from "../accounts/cli.js";
import { BusLockedError, busOwnerPid } from "../bus/index.js";
import { openSqliteCatalog } from "../catalog/index.js";
import { SchemaError, SchemaRegistry } from "../collect/index.js";
import { type Config, ConfigError, engineResources, loadConfig } from "../config/index.js";
import { DEFAULT_DEMO_RATE_PER_MINUTE, startDemoShop } from "../demo/index.js";
import { registerPrivacyCommands } from "../privacy/cli.js";
import { busPath, catalogPath, ServeError, serve } from "../server/index.js";
import {
  type BookmarkState,
  DbSync,
  type DbTableSpec,
  FileLoader,
  LOAD_MODES,
  type LoadMode,
  type ProgressListener,
  Rejection,
  tableNameProblem,
} from "../sources/index.js";
import { createEngine, QueryError } from "../warehouse/index.js";
import { ensureShopOverview, SavedStore } from "../web/index.js";
import { FORMATS, type Format, formatResult } from "./format.js";
import { loadAuditor } from "./load-audit.js";
import { registerQualityCommands } from "./quality.js";
import { runQuery } from "./query.js";
import { registerTransformCommands } from "./transform.js";

/** A user-facing failure: printed as one line, exit code 1. */
class CliError extends Error {}

const port = (value: string): number => {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0 || number > 65535) {
    throw new InvalidArgumentError("must be a port number (0-65535)");
  }
  return number;
};

const positive = (value: string): number => {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 1)
    throw new InvalidArgumentError("must be a positive whole number");
  return number;
};

interface CommonOptions {
  dataDir?: string;
  config?: string;
  port?: number;
  pgPort?: number;
  host?: string;
}

function configFrom(options: CommonOptions, extra: Partial<Config> = {}): Config {
  return loadConfig({
    configFile: options.config,
    overrides: {
      data_dir: options.dataDir,
      port: options.port,
      pg_port: options.pgPort,
      host: options.host,
      ...extra,
    },
  });
}

const withServerOptions = (command: Command) =>
  command
    .option("--data-dir <dir>", "where data lives (default ./sluice-data, or SLUICE_DATA_DIR)")
    .option("--config <file>", "configuration file (default <data-dir>/sluice.yaml)")
    .option("--port <n>", "HTTP port (default 8080)", port)
    .option("--pg-port <n>", "PostgreSQL wire protocol port (default 5433)", port)
    .option("--host <host>", "interface to listen on (default 127.0.0.1)");

/** Stops cleanly on Ctrl-C or SIGTERM; a second signal exits at once. */
function onShutdown(stop: () => Promise<void>): void {
  let stopping = false;
  const handler = () => {
    if (stopping) process.exit(1);
    stopping = true;
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`sluice: error while stopping: ${(error as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", handler);
  process.on("SIGTERM", handler);
}

const program = new Command()
  .name("sluice")
  .description("Self-hosted real-time analytics: events in, answers out, in seconds.")
  .showHelpAfterError("(run with --help for usage)");

withServerOptions(
  program.command("serve").description("run the collector, bus, lake loader and query API"),
).action(async (options: CommonOptions) => {
  const config = configFrom(options);
  if (!config.write_key && Object.keys(config.write_keys).length === 0) {
    console.error(
      "sluice: warning: no write key configured (set SLUICE_WRITE_KEY); collectors will answer 401",
    );
  }
  if (!config.admin_token) {
    console.error(
      "sluice: warning: no admin token configured (set SLUICE_ADMIN_TOKEN); the query API will answer 401",
    );
  }
  const server = await serve(config);
  console.log(`sluice: serving ${config.data_dir} on ${server.url}`);
  printFirstLogin(server.sluice.accounts, server.url);
  console.log(
    `sluice: PostgreSQL protocol on ${server.pgAddress} (your user name and password, or an API token)`,
  );
  onShutdown(() => server.close());
});

withServerOptions(
  program
    .command("demo")
    .description("serve plus a demo shop streaming realistic events (what `npm start` runs)"),
)
  .option("--rate <n>", "demo events per minute, averaged over a week", Number, DEFAULT_DEMO_RATE_PER_MINUTE)
  .option("--backfill-days <n>", "days of history to generate on first start", Number, 14)
  .action(async (options: CommonOptions & { rate: number; backfillDays: number }) => {
    const base = configFrom(options);
    const config: Config = {
      ...base,
      write_key: base.write_key || "demo-write-key",
      admin_token: base.admin_token || randomBytes(12).toString("hex"),
      public_stats: true,
    };
    const firstStart = !existsSync(config.data_dir);
    const server = await serve(config);
    const shop = startDemoShop({
      baseUrl: server.url,
      writeKey: config.write_key,
      ratePerMinute: options.rate,
      backfillDays: firstStart ? options.backfillDays : 0,
      log: (message: string) => console.log(`demo: ${message}`),
    });
    console.log(`sluice demo: open ${server.url}  (data in ${config.data_dir})`);
    console.log(`  write key:   ${config.write_key}`);
    console.log(`  admin token: ${config.admin_token}`);
    console.log(
      `  psql:        PGPASSWORD=${config.admin_token} psql -h ${config.host} -p ${server.pgAddress.split(":").at(-1)} -U admin sluice`,
    );
    console.log(
      `  try: curl -s -X POST ${server.url}/v1/query -H 'Authorization: Bearer ${config.admin_token}' -d '{"sql":"select event, count(*) from events group by 1 order by 2 desc"}'`,
    );
    const overview = ensureShopOverview(new SavedStore(server.sluice.accounts.db));
    console.log(`  dashboard:   ${server.url}/dashboards/${overview.id}`);
    printFirstLogin(server.sluice.accounts, server.url);
    onShutdown(async () => {
      await shop.stop();
      await server.close();
    });
  });

program
  .command("query")
  .description("run SQL over the lake and print the result (works with or without a running server)")
  .argument("<sql>", 'the SQL to run, e.g. "select event, count(*) from events group by 1"')
  .option("--data-dir <dir>", "where data lives (default ./sluice-data, or SLUICE_DATA_DIR)")
  .option("--config <file>", "configuration file (default <data-dir>/sluice.yaml)")
  .addOption(new Option("--format <format>", "output format").choices(FORMATS).default("table"))
  .action(async (sql: string, options: CommonOptions & { format: Format }) => {
    const config = configFrom(options);
    if (!existsSync(config.data_dir)) throw new CliError(`no Sluice data directory at ${config.data_dir}`);
    const serverRunning = busOwnerPid(busPath(config.data_dir)) !== null;
    const result = await runQuery(config, sql, { serverRunning });
    console.log(formatResult(result, options.format));
  });

program
  .command("load")
  .description(
    "load a file (CSV, TSV, JSON, NDJSON, Parquet, Excel .xlsx) into a lake table, once per content",
  )
  .argument("<file>", "the file to load")
  .requiredOption("--table <name>", "the table to load into (created if new)")
  .addOption(
    new Option("--mode <mode>", "append the rows, or replace the table's rows with them")
      .choices(LOAD_MODES)
      .default("append"),
  )
  .option("--sheet <name>", "Excel: the sheet to load (default: the first)")
  .option("--data-dir <dir>", "where data lives (default ./sluice-data, or SLUICE_DATA_DIR)")
  .option("--config <file>", "configuration file (default <data-dir>/sluice.yaml)")
  .action(
    async (file: string, options: CommonOptions & { table: string; mode: LoadMode; sheet?: string }) => {
      const config = configFrom(options);
      if (!existsSync(file) || !statSync(file).isFile()) throw new CliError(`no file at ${file}`);
      const problem = tableNameProblem(options.table);
      if (problem) throw new CliError(problem);
      await mkdir(config.data_dir, { recursive: true });
      const catalog = openSqliteCatalog(catalogPath(config.data_dir));
      // A load the user waits for may use every core (the server's load engine keeps to few).
      const engine = await createEngine({
        threads: config.duckdb_threads || undefined,
        ...engineResources(config, "foreground"),
      });
      const quality = await loadAuditor(config, catalog, options.table);
      try {
        const loader = new FileLoader({ dataDir: config.data_dir, catalog, engine, config, quality });
        const progress = terminalProgress(basename(file));
        const outcome = await loader.load(file, {
          table: options.table,
          mode: options.mode,
          sheet: options.sheet,
          origin: "cli",
          onProgress: progress?.update,
        });
        progress?.clear();
        if (outcome.webhookError) console.error(`sluice: warning: ${outcome.webhookError}`);
        if (outcome.run.status === "failed") throw new CliError(outcome.message);
        console.log(outcome.message);
      } finally {
        await quality?.close();
        await catalog.close();
        engine.closeSync();
      }
    },
  );

program
  .command("sync")
  .description("copy database tables (db_sources in the configuration) into lake tables now")
  .argument("[target]", "a source (shop) or one of its tables (shop.orders); default: every configured table")
  .option(
    "--full-refresh",
    "read whole tables and replace the lake tables' rows and columns, incremental ones too",
  )
  .option("--data-dir <dir>", "where data lives (default ./sluice-data, or SLUICE_DATA_DIR)")
  .option("--config <file>", "configuration file (default <data-dir>/sluice.yaml)")
  .action(async (target: string | undefined, options: CommonOptions & { fullRefresh?: boolean }) => {
    await withDbSync(options, async (sync) => {
      let failed = false;
      for (const table of sync.tables(target)) {
        const outcome = await sync.sync(table, { origin: "sync", fullRefresh: options.fullRefresh });
        if (outcome.webhookError) console.error(`sluice: warning: ${outcome.webhookError}`);
        if (outcome.run.status === "failed") {
          failed = true;
          console.error(`sluice: ${outcome.message}`);
        } else {
          console.log(outcome.message);
        }
      }
      if (failed) process.exitCode = 1;
    });
  });

const schemasCommand = program
  .command("schemas")
  .description("JSON Schemas that incoming track events must match (a running server picks changes up)");

const schemaOptions = (command: Command) =>
  command
    .option("--data-dir <dir>", "where data lives (default ./sluice-data, or SLUICE_DATA_DIR)")
    .option("--config <file>", "configuration file (default <data-dir>/sluice.yaml)");

schemaOptions(
  schemasCommand
    .command("add")
    .description("register a schema for an event name, or a Snowplow schema by its own iglu URI")
    .argument("<file>", "the JSON Schema file")
    .option("--event <name>", 'the track event it is for (default: the iglu URI of its "self")'),
).action(async (file: string, options: CommonOptions & { event?: string }) => {
  const config = configFrom(options);
  let schema: unknown;
  try {
    schema = JSON.parse(await readFile(file, "utf8"));
  } catch (error) {
    throw new CliError(`cannot read a JSON schema from ${file}: ${(error as Error).message}`);
  }
  await mkdir(config.data_dir, { recursive: true });
  try {
    const added = new SchemaRegistry(config.data_dir).add(schema, options.event);
    console.log(`${added.replaced ? "replaced" : "registered"} the schema of ${added.schema.key}`);
  } catch (error) {
    if (error instanceof SchemaError) throw new CliError(`${file}: ${error.message}`);
    throw error;
  }
});

schemaOptions(
  schemasCommand
    .command("list", { isDefault: true })
    .description("the registered schemas")
    .addOption(new Option("--format <format>", "output format").choices(FORMATS).default("table")),
).action(async (options: CommonOptions & { format: Format }) => {
  const schemas = new SchemaRegistry(configFrom(options).data_dir).list();
  if (options.format === "json") {
    console.log(JSON.stringify({ schemas }));
    return;
  }
  const columns = ["key", "added_at", "properties"].map((name) => ({ name, type: "" }));
  const rows = schemas.map((entry) => [
    entry.key,
    entry.addedAt,
    Object.keys((entry.schema.properties as Record<string, unknown> | undefined) ?? {}).join(", "),
  ]);
  console.log(formatResult({ columns, rows }, options.format));
});

schemaOptions(
  schemasCommand
    .command("remove")
    .description("stop checking events against a schema")
    .argument("<key>", "the event name or iglu URI it is registered under"),
).action(async (key: string, options: CommonOptions) => {
  if (!new SchemaRegistry(configFrom(options).data_dir).remove(key)) {
    throw new CliError(`no schema is registered for "${key}"`);
  }
  console.log(`removed the schema of ${key}`);
});

const bookmarkCommand = program
  .command("bookmark")
  .description("show, reset or pause the bookmarks of incremental database syncs (like Glue job bookmarks)");

/** Runs `change` on each incremental table `target` names, with the catalog and a DuckDB engine open. */
async function withBookmarks(
  target: string | undefined,
  options: CommonOptions,
  change: (sync: DbSync, table: DbTableSpec) => Promise<BookmarkState>,
): Promise<BookmarkState[]> {
  return withDbSync(options, async (sync) => {
    const tables = sync.tables(target).filter((table) => table.mode === "incremental");
    if (tables.length === 0)
      throw new CliError(`no incremental table in ${target ?? "db_sources"}: full copies have no bookmark`);
    const states: BookmarkState[] = [];
    for (const table of tables) states.push(await change(sync, table));
    return states;
  });
}

/** Runs `work` with the configured database sources, the catalog and a DuckDB engine open. */
async function withDbSync<T>(options: CommonOptions, work: (sync: DbSync) => Promise<T>): Promise<T> {
  const config = configFrom(options);
  if (Object.keys(config.db_sources).length === 0) {
    throw new CliError('no db_sources in the configuration (see "Loading databases" in the README)');
  }
  await mkdir(config.data_dir, { recursive: true });
  const catalog = openSqliteCatalog(catalogPath(config.data_dir));
  const engine = await createEngine({
    threads: config.duckdb_threads || undefined,
    ...engineResources(config, "foreground"),
  });
  try {
    return await work(new DbSync({ dataDir: config.data_dir, catalog, engine, config }));
  } finally {
    await catalog.close();
    engine.closeSync();
  }
}

function printBookmarks(states: BookmarkState[], format: Format): void {
  if (format === "json") {
    console.log(JSON.stringify({ bookmarks: states }));
    return;
  }
  const columns = ["table", "into", "watermark", "value", "paused"].map((name) => ({ name, type: "" }));
  const rows = states.map((state) => [
    state.table,
    state.into,
    state.watermark,
    state.value ?? "(beginning)",
    state.paused,
  ]);
  console.log(formatResult({ columns, rows }, format));
}

const bookmarkOptions = (command: Command) =>
  command
    .option("--data-dir <dir>", "where data lives (default ./sluice-data, or SLUICE_DATA_DIR)")
    .option("--config <file>", "configuration file (default <data-dir>/sluice.yaml)")
    .addOption(new Option("--format <format>", "output format").choices(FORMATS).default("table"));

bookmarkOptions(
  bookmarkCommand
    .command("show", { isDefault: true })
    .description("the bookmark of each incremental table")
    .argument("[target]", "a source (shop) or one of its tables (shop.orders); default: all"),
).action(async (target: string | undefined, options: CommonOptions & { format: Format }) => {
  printBookmarks(await withBookmarks(target, options, (sync, table) => sync.bookmark(table)), options.format);
});

bookmarkOptions(
  bookmarkCommand
    .command("reset")
    .description("move the bookmark to a value, or to the beginning: the next sync reads from there")
    .argument("<target>", "a source (shop) or one of its tables (shop.orders)")
    .option("--to <value>", "the watermark value to read from (default: the beginning, every row)"),
).action(async (target: string, options: CommonOptions & { format: Format; to?: string }) => {
  printBookmarks(
    await withBookmarks(target, options, (sync, table) => sync.resetBookmark(table, options.to ?? null)),
    options.format,
  );
});

for (const [name, paused, description] of [
  ["pause", true, "syncs read from the bookmark and leave it where it is"],
  ["resume", false, "syncs move the bookmark on again"],
] as const) {
  bookmarkOptions(
    bookmarkCommand
      .command(name)
      .description(description)
      .argument("<target>", "a source (shop) or one of its tables (shop.orders)"),
  ).action(async (target: string, options: CommonOptions & { format: Format }) => {
    printBookmarks(
      await withBookmarks(target, options, (sync, table) => sync.pauseBookmark(table, paused)),
      options.format,
    );
  });
}

program
  .command("loads")
  .description("show the history of file loads and database syncs: loaded, skipped (nothing new) and failed")
  .option("--table <name>", "only loads into this table")
  .option("--limit <n>", "how many, newest first", positive, 20)
  .addOption(new Option("--format <format>", "output format").choices(FORMATS).default("table"))
  .option("--data-dir <dir>", "where data lives (default ./sluice-data, or SLUICE_DATA_DIR)")
  .option("--config <file>", "configuration file (default <data-dir>/sluice.yaml)")
  .action(async (options: CommonOptions & { table?: string; limit: number; format: Format }) => {
    const config = configFrom(options);
    if (!existsSync(config.data_dir)) throw new CliError(`no Sluice data directory at ${config.data_dir}`);
    const catalog = openSqliteCatalog(catalogPath(config.data_dir));
    try {
      const loads = await catalog.loads({ table: options.table, limit: options.limit });
      if (options.format === "json") {
        console.log(JSON.stringify({ loads }));
        return;
      }
      const columns = ["id", "finished_at", "table", "file", "origin", "mode", "status", "rows", "message"];
      const rows = loads.map((load) => [
        load.id,
        load.finishedAt,
        load.table,
        load.file,
        load.origin,
        load.mode,
        load.status,
        load.rows,
        load.message ?? load.changes.join("; "),
      ]);
      console.log(
        formatResult({ columns: columns.map((name) => ({ name, type: "" })), rows }, options.format),
      );
    } finally {
      await catalog.close();
    }
  });

/**
 * A one-line progress bar on stderr while a load runs, only on a terminal and only once it
 * has taken half a second (small files finish before it would flicker).
 */
function terminalProgress(name: string): { update: ProgressListener; clear(): void } | null {
  if (!process.stderr.isTTY) return null;
  const started = Date.now();
  let shown = false;
  let last = 0;
  return {
    update(phase, fraction) {
      const now = Date.now();
      if (now - started < 500 || now - last < 100) return;
      last = now;
      shown = true;
      const width = 30;
      const bar =
        fraction === null
          ? ""
          : ` [${"#".repeat(Math.round(fraction * width)).padEnd(width, ".")}] ${Math.floor(fraction * 100)}%`;
      process.stderr.write(`\r\x1b[2K${phase} ${name}${bar}`);
    },
    clear() {
      if (shown) process.stderr.write("\r\x1b[2K");
    },
  };
}

registerPrivacyCommands(program);
registerUsersCommands(program);
registerQualityCommands(program);
registerTransformCommands(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  const known =
    error instanceof CliError ||
    error instanceof ConfigError ||
    error instanceof BusLockedError ||
    error instanceof ServeError ||
    error instanceof QueryError ||
    error instanceof Rejection;
  const message = error instanceof Error ? error.message : String(error);
  console.error(`sluice: ${known ? message : `error: ${message}`}`);
  process.exit(1);
}
