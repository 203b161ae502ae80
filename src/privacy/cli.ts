/**
 * `sluice forget --user-id X` and `sluice retention run`. With no server running they open the
 * storage as `sluice query` does (loading what the bus still holds first); with one running they
 * work alongside it through the catalog, forget waiting for the server's loader to catch up.
 */
import { existsSync } from "node:fs";
import { userInfo } from "node:os";
import type { Command } from "commander";
import { BusLockedError, busOwnerPid } from "../bus/index.js";
import { openSqliteCatalog } from "../catalog/index.js";
import { type Config, loadConfig } from "../config/index.js";
import { busPath, catalogPath, createLoadEngine, lakePath, openStorage } from "../server/index.js";
import { busEndsOnDisk, Privacy } from "./service.js";

interface PrivacyCliOptions {
  dataDir?: string;
  config?: string;
}

export function registerPrivacyCommands(program: Command): void {
  program
    .command("forget")
    .description("remove every row of a user from every lake table (right to be forgotten), and log it")
    .requiredOption("--user-id <id>", "the user's id, as sent in user_id / userId / uid / distinct_id")
    .option("--requested-by <name>", "who asked, for the deletion log (default: your user name)")
    .option("--data-dir <dir>", "where data lives (default ./sluice-data, or SLUICE_DATA_DIR)")
    .option("--config <file>", "configuration file (default <data-dir>/sluice.yaml)")
    .action(async (options: PrivacyCliOptions & { userId: string; requestedBy?: string }) => {
      await report(async () => {
        const record = await withPrivacy(configOf(options), (privacy) =>
          privacy.forget(options.userId, options.requestedBy ?? userInfo().username),
        );
        const tables = Object.entries(record.rows).map(([table, rows]) => `${table}: ${rows}`);
        console.log(
          `forgot user ${record.subject} (the HMAC token of the id): ${record.total_rows} rows removed` +
            (tables.length > 0 ? ` (${tables.join(", ")})` : "") +
            `, ${record.linked_anonymous_ids} linked anonymous ids; logged as ${record.id}`,
        );
      });
    });

  program
    .command("retention")
    .description("retention rules (retention in sluice.yaml)")
    .command("run")
    .description("apply the retention rules now: drop old partitions, scrub old values")
    .option("--data-dir <dir>", "where data lives (default ./sluice-data, or SLUICE_DATA_DIR)")
    .option("--config <file>", "configuration file (default <data-dir>/sluice.yaml)")
    .action(async (options: PrivacyCliOptions) => {
      await report(async () => {
        const config = configOf(options);
        const results = await withPrivacy(config, (privacy) => privacy.runRetention());
        if (results.length === 0) console.log("no retention rules apply (see retention in the README)");
        for (const result of results) {
          console.log(
            result.error !== undefined
              ? `${result.table}: failed: ${result.error}`
              : result.missing
                ? `${result.table}: no table of that name in the lake (yet): its rule did nothing`
                : `${result.table}: ${result.rowsDeleted} rows deleted, ${result.rowsChanged} rows scrubbed` +
                  ` (${result.filesRemoved} files replaced by ${result.filesWritten})`,
          );
        }
        if (results.some((result) => result.error !== undefined)) process.exitCode = 1;
      });
    });
}

function configOf(options: PrivacyCliOptions): Config {
  const config = loadConfig({ configFile: options.config, overrides: { data_dir: options.dataDir } });
  if (!existsSync(config.data_dir)) throw new Error(`no Sluice data directory at ${config.data_dir}`);
  return config;
}

/** Prints a failure as one line and sets a non-zero exit code. */
async function report(work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (error) {
    console.error(`sluice: ${(error as Error).message}`);
    process.exitCode = 1;
  }
}

async function withPrivacy<T>(config: Config, work: (privacy: Privacy) => Promise<T>): Promise<T> {
  const lakeRoot = lakePath(config.data_dir);
  if (busOwnerPid(busPath(config.data_dir)) === null) {
    try {
      // Loads whatever the bus still holds first, so nothing waits on a loader.
      const storage = await openStorage(config);
      try {
        const privacy = new Privacy({
          config,
          lake: { catalog: storage.catalog, engine: storage.loadEngine, lakeRoot },
          busEnds: async () => [],
        });
        return await work(privacy);
      } finally {
        await storage.close();
      }
    } catch (error) {
      // A server started in between: work alongside it instead.
      if (!(error instanceof BusLockedError)) throw error;
    }
  }
  const catalog = openSqliteCatalog(catalogPath(config.data_dir));
  const engine = await createLoadEngine(config);
  try {
    const privacy = new Privacy({
      config,
      lake: { catalog, engine, lakeRoot },
      busEnds: busEndsOnDisk(busPath(config.data_dir)),
    });
    return await work(privacy);
  } finally {
    await catalog.close();
    engine.closeSync();
  }
}
