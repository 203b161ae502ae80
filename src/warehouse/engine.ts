import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { DuckDBInstance } from "@duckdb/node-api";

export interface EngineOptions {
  /** DuckDB worker threads; defaults to the number of cores. */
  threads?: number;
  /** e.g. "4GB"; defaults to DuckDB's own (80% of RAM). */
  memoryLimit?: string;
  /** Where spills go (a folder of this engine's own is made in it); defaults to DuckDB's `.tmp` in the current folder. */
  tempDir?: string;
  /**
   * Lock the engine down for users' SQL: files are reachable only under `readableDirs` (the
   * lake), spills go to `tempDir`, and no setting can be changed afterwards (so neither can
   * these). No other file, no ATTACH, no extension loading: DuckDB refuses them itself.
   */
  sandbox?: {
    readableDirs: string[];
    /** Most disk that spilling (to `tempDir`) may take, e.g. "20GB"; default DuckDB's (90% of free space). */
    spillLimit?: string;
  };
}

/**
 * One in-memory DuckDB per process: stateless compute over the lake's Parquet
 * files. UTC everywhere so `dt` (the UTC date of `ts`) means the same to every reader;
 * extensions come only from what the package bundles (no downloads at run time).
 */
export async function createEngine(options: EngineOptions = {}): Promise<DuckDBInstance> {
  const config: Record<string, string> = {
    autoinstall_known_extensions: "false",
  };
  if (options.threads) config.threads = String(options.threads);
  if (options.memoryLimit) config.memory_limit = options.memoryLimit;
  if (options.tempDir) config.temp_directory = ownTempDir(options.tempDir);
  const instance = await DuckDBInstance.create(":memory:", config);
  // Settings owned by bundled extensions (icu, parquet) can only be set once the instance is up.
  const connection = await instance.connect();
  await connection.run("SET GLOBAL TimeZone = 'UTC'; SET GLOBAL parquet_metadata_cache = true");
  if (options.sandbox) {
    const dirs = options.sandbox.readableDirs.map((dir) => sqlString(dir.endsWith("/") ? dir : `${dir}/`));
    await connection.run(
      [
        ...(options.sandbox.spillLimit
          ? [`SET GLOBAL max_temp_directory_size = ${sqlString(options.sandbox.spillLimit)}`]
          : []),
        `SET GLOBAL allowed_directories = [${dirs.join(", ")}]`,
        "SET GLOBAL enable_external_access = false",
        "SET GLOBAL lock_configuration = true",
      ].join("; "),
    );
  }
  connection.closeSync();
  return instance;
}

let enginesStarted = 0;

/**
 * A spill folder of the engine's own, `<pid>-<n>` under `parent`: DuckDB names its spill files the
 * same in every instance, so two engines spilling into one folder read each other's blocks (an IO
 * error, seen with two engines of one server). The folders of processes that are gone are removed
 * first; DuckDB leaves its folder behind when it closes.
 */
function ownTempDir(parent: string): string {
  mkdirSync(parent, { recursive: true });
  for (const name of readdirSync(parent)) {
    const pid = Number(/^(\d+)-\d+$/.exec(name)?.[1]);
    if (pid > 0 && pid !== process.pid && !isRunning(pid)) {
      rmSync(join(parent, name), { recursive: true, force: true });
    }
  }
  enginesStarted++;
  return join(parent, `${process.pid}-${enginesStarted}`);
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    // EPERM: it runs, as another user.
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** Quotes a string as an SQL literal. */
export const sqlString = (value: string): string => `'${value.replaceAll("'", "''")}'`;

/** Quotes an identifier. */
export const sqlIdent = (name: string): string => `"${name.replaceAll('"', '""')}"`;

/**
 * `date_trunc(unit, column)` of a TIMESTAMPTZ, computed on the plain timestamp with the same
 * instant: equal values, since the engine's time zone is UTC and locked (`createEngine`), but
 * without ICU's calendar per row, which cost twice as much as the rest of a visitors-per-day chart.
 */
export function truncateUtc(unit: "hour" | "day" | "week" | "month", column: string): string {
  return `make_timestamptz(epoch_us(date_trunc('${unit}', make_timestamp(epoch_us(${column})))))`;
}
