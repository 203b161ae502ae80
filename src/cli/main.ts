#!/usr/bin/env node
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { Command, InvalidArgumentError, Option } from "commander";
import { BusLockedError, busOwnerPid } from "../bus/index.js";
import { type Config, ConfigError, loadConfig } from "../config/index.js";
import { startDemoShop } from "../demo/index.js";
import { busPath, ServeError, serve } from "../server/index.js";
import { QueryError } from "../warehouse/index.js";
import { FORMATS, type Format, formatResult } from "./format.js";
import { runQuery } from "./query.js";

/** A user-facing failure: printed as one line, exit code 1. */
class CliError extends Error {}

const port = (value: string): number => {
  const number = Number(value);
  if (!Number.isInteger(number) || number < 0 || number > 65535) {
    throw new InvalidArgumentError("must be a port number (0-65535)");
  }
  return number;
};

interface CommonOptions {
  dataDir?: string;
  config?: string;
  port?: number;
  host?: string;
}

function configFrom(options: CommonOptions, extra: Partial<Config> = {}): Config {
  return loadConfig({
    configFile: options.config,
    overrides: { data_dir: options.dataDir, port: options.port, host: options.host, ...extra },
  });
}

const withServerOptions = (command: Command) =>
  command
    .option("--data-dir <dir>", "where data lives (default ./sluice-data, or SLUICE_DATA_DIR)")
    .option("--config <file>", "configuration file (default <data-dir>/sluice.yaml)")
    .option("--port <n>", "HTTP port (default 8080)", port)
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
  onShutdown(() => server.close());
});

withServerOptions(
  program
    .command("demo")
    .description("serve plus a demo shop streaming realistic events (what `npm start` runs)"),
)
  .option("--rate <n>", "demo events per minute at peak", Number, 600)
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
      `  try: curl -s -X POST ${server.url}/v1/query -H 'Authorization: Bearer ${config.admin_token}' -d '{"sql":"select event, count(*) from events group by 1 order by 2 desc"}'`,
    );
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

try {
  await program.parseAsync(process.argv);
} catch (error) {
  const known =
    error instanceof CliError ||
    error instanceof ConfigError ||
    error instanceof BusLockedError ||
    error instanceof ServeError ||
    error instanceof QueryError;
  const message = error instanceof Error ? error.message : String(error);
  console.error(`sluice: ${known ? message : `error: ${message}`}`);
  process.exit(1);
}
