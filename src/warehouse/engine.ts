import { DuckDBInstance } from "@duckdb/node-api";

export interface EngineOptions {
  /** DuckDB worker threads; defaults to the number of cores. */
  threads?: number;
  /** e.g. "4GB"; defaults to DuckDB's own (80% of RAM). */
  memoryLimit?: string;
  /** Where spills go; defaults to DuckDB's own (`.tmp` in the current folder). The sandbox sets its own. */
  tempDir?: string;
  /**
   * Lock the engine down for users' SQL: files are reachable only under `readableDirs` (the
   * lake), spills go to `tempDir`, and no setting can be changed afterwards (so neither can
   * these). No other file, no ATTACH, no extension loading: DuckDB refuses them itself.
   */
  sandbox?: {
    readableDirs: string[];
    tempDir: string;
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
  if (options.tempDir) config.temp_directory = options.tempDir;
  const instance = await DuckDBInstance.create(":memory:", config);
  // Settings owned by bundled extensions (icu, parquet) can only be set once the instance is up.
  const connection = await instance.connect();
  await connection.run("SET GLOBAL TimeZone = 'UTC'; SET GLOBAL parquet_metadata_cache = true");
  if (options.sandbox) {
    const dirs = options.sandbox.readableDirs.map((dir) => sqlString(dir.endsWith("/") ? dir : `${dir}/`));
    await connection.run(
      [
        `SET GLOBAL temp_directory = ${sqlString(options.sandbox.tempDir)}`,
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
