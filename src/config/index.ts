/**
 * Configuration: defaults, then `sluice.yaml` in the data dir (or `--config FILE`),
 * then environment variables `SLUICE_<KEY>` (upper-cased key), then CLI flags.
 * Keys are flat snake_case names so that every one maps to exactly one variable.
 */
import { existsSync, readFileSync } from "node:fs";
import { availableParallelism, totalmem } from "node:os";
import { join, resolve } from "node:path";
import { parse as parseYaml } from "yaml";

export interface Config {
  data_dir: string;
  host: string;
  port: number;
  /** PostgreSQL wire protocol port, on `host` (0 = any free port). */
  pg_port: number;
  /** Rows per result on the Postgres port before it is cut (with a warning). */
  pg_max_rows: number;
  /** The PostgreSQL port's interface ("" = `host`). */
  pg_host: string;
  /** PEM certificate chain and private key files for TLS on the PostgreSQL port ("" = tls_cert/tls_key). */
  pg_tls_cert: string;
  pg_tls_key: string;
  /** PEM certificate chain and private key files: HTTPS instead of HTTP ("" = HTTP, e.g. behind a proxy). */
  tls_cert: string;
  tls_key: string;
  /** Refuse PostgreSQL logins that did not start TLS (needs pg_tls_cert and pg_tls_key). */
  pg_tls_required: boolean;
  /** A write key for source `default` (SLUICE_WRITE_KEY). */
  write_key: string;
  /** More write keys: key → source name. */
  write_keys: Record<string, string>;
  /** Bearer token for the query API (SLUICE_ADMIN_TOKEN). */
  admin_token: string;
  max_event_bytes: number;
  max_request_bytes: number;
  /** Worker threads that parse and encode large request bodies (0 = all on the main thread). */
  collect_workers: number;
  dedupe_window_hours: number;
  /** Inactivity after which a visitor's next event starts a new session (0 = only client-set session ids). */
  session_timeout_minutes: number;
  /** Sources (comma-separated) that accept only events with a registered schema (`sluice schemas`). */
  strict_sources: string;
  /** Most disk a query's spilling may take, e.g. "20GB" ("" = DuckDB's default: 90% of free space). */
  duckdb_spill_limit: string;
  /** How often the loader moves new events from the bus to the lake. */
  flush_interval_ms: number;
  /** Bus segment size before rotation. */
  segment_bytes: number;
  /** fsync before acknowledging (turn off only for throwaway data). */
  fsync: boolean;
  compaction_target_bytes: number;
  compaction_min_files: number;
  compaction_interval_ms: number;
  /** Replaced lake files are deleted this long after replacement, once no query uses them. */
  delete_grace_ms: number;
  query_timeout_ms: number;
  query_max_rows: number;
  /** DuckDB worker threads (0 = all cores). */
  duckdb_threads: number;
  /** DuckDB worker threads for loading and compaction (0 = all cores); few, so collecting keeps the CPU. */
  loader_duckdb_threads: number;
  /** Load and compact in a child process at a lower CPU priority (false: in the server process). */
  lake_process: boolean;
  /** How much lower that priority is (nice increment, 0-19). */
  lake_process_nice: number;
  /** DuckDB memory limit of each engine, e.g. "4GB" ("" = a share of the RAM: `engineResources`). */
  duckdb_memory_limit: string;
  /** Serve /v1/stats without a token (the demo's live page). */
  public_stats: boolean;
  /** Parse each event's user agent into browser, os, device_type and context.is_bot. */
  enrich_user_agents: boolean;
  /** A MaxMind-format (.mmdb) country or city database for IP → country ("" = no country). */
  geoip_database: string;
  /** Reverse proxies whose X-Forwarded-For names the client: addresses and CIDR ranges, comma-separated ("" = none). */
  trusted_proxies: string;
  /** Each file load (loaded, skipped or failed) is POSTed here as JSON ("" = none). */
  load_webhook_url: string;
  /** Column types for loaded files that inference should not decide: `table.column` → type. */
  load_column_types: Record<string, string>;
  /** How often the server looks for new files in `landing/<table>/`. */
  landing_poll_interval_ms: number;
  /** Largest file `POST /v1/tables/<table>/upload` accepts. */
  max_upload_bytes: number;
  /** Databases whose tables are copied into lake tables (`sluice sync`, and on a schedule by the server). */
  db_sources: Record<string, DbSourceConfig>;
  /** The transformations project folder (models/, seeds/, schema.yml) the server builds ("" = none). */
  transform_project: string;
  /** Scheduled builds: cron expression → selection (e.g. `"0 * * * *": "tag:hourly"`). */
  transform_schedules: Record<string, string>;
  /** How often the server rebuilds models downstream of source tables that got new data (0 = never). */
  transform_interval_ms: number;
  /** The project folder holding check files (`quality.yml`, `checks/*.yml`) ("" = the current folder). */
  quality_project: string;
  /** Profile tables after every load (and `events` partitions at most once per `profile_interval_ms`). */
  profiling: boolean;
  /** A partition of a streaming table (`events`) is profiled, and its checks run, at most this often. */
  profile_interval_ms: number;
  /** A table or partition with more rows is profiled on an evenly spread sample of about this many (0 = all). */
  profile_sample_rows: number;
  /** Profiles and check results older than this many days are forgotten (the latest of each is kept). */
  quality_history_days: number;
  /** Failing and recovered checks are POSTed here as Slack-compatible JSON `{"text": …}` ("" = none). */
  alert_webhook_url: string;
  /** SMTP server for alert emails, e.g. smtp://user:pass@mail.example.com:587 ("" = no email). */
  alert_smtp_url: string;
  /** Who gets alert emails (comma-separated addresses). */
  alert_email_to: string;
  /** The sender of alert emails. */
  alert_email_from: string;
  /** PII rules per source (`"*"` = every source) and field path: hash, mask, truncate_ip, drop, keep (src/privacy). */
  pii_policy: Record<string, Record<string, string>>;
  /** The HMAC key of `hash` ("" = one generated once into <data-dir>/privacy/secret). */
  pii_secret: string;
  /** Also keep each event unobfuscated in the admin-only table `events_raw`. */
  raw_zone: boolean;
  /** Days `events_raw` keeps its partitions. */
  raw_zone_retention_days: number;
  /** Retention rules per lake table: `drop_after_days`, `scrub`, `time_column` (src/privacy/retention.ts). */
  retention: Record<string, unknown>;
  /** How often the server applies the retention rules (0 = only `sluice retention run` and the HTTP API). */
  retention_interval_minutes: number;
  /** Lake tables whose user ids are in a column not named user_id: table → column (`sluice forget`). */
  forget_user_columns: Record<string, string>;
}

/** A database source as written in `db_sources` (validated where it is used: `sources/db-config.ts`). */
export interface DbSourceConfig {
  /** The environment variable holding the connection URL (postgres://, mysql:// or mariadb://). */
  url_env: string;
  /** Sync interval, e.g. `5m`; or `cron`. Neither: only `sluice sync` runs it. */
  every?: string;
  cron?: string;
  /** Source table (`orders`, `public.orders`) → how to copy it; empty means a full copy. */
  tables: Record<string, DbTableConfig | null>;
}

export interface DbTableConfig {
  /** full: replace the lake table each run; incremental: merge rows past the bookmark. */
  mode?: "full" | "incremental";
  /** The incremental column: a timestamp updated on every change, or an increasing id. */
  watermark?: string;
  /** Column(s) identifying a row; default: the source table's primary key. */
  primary_key?: string | string[];
  /** Re-read this far behind the bookmark for rows committed late: `10m`, or a number for ids. */
  lookback?: string | number;
  /** The lake table (default `<source>_<table>`). */
  into?: string;
}

export const DEFAULTS: Config = {
  data_dir: "./sluice-data",
  host: "127.0.0.1",
  port: 8080,
  pg_port: 5433,
  pg_max_rows: 1_000_000,
  pg_host: "",
  pg_tls_cert: "",
  pg_tls_key: "",
  pg_tls_required: false,
  tls_cert: "",
  tls_key: "",
  write_key: "",
  write_keys: {},
  admin_token: "",
  max_event_bytes: 32 * 1024,
  max_request_bytes: 500 * 1024,
  // The main thread keeps a core for HTTP, dedupe and the bus.
  // At least two: on two cores, requests queued for a single worker (~35 ms) while it ran at
  // two thirds of a core; two workers took batch ingest from 75k to 110k events/s (measured).
  collect_workers: Math.max(2, availableParallelism() - 1),
  dedupe_window_hours: 24,
  session_timeout_minutes: 30,
  strict_sources: "",
  duckdb_spill_limit: "",
  flush_interval_ms: 250,
  segment_bytes: 64 * 1024 * 1024,
  fsync: true,
  compaction_target_bytes: 64 * 1024 * 1024,
  compaction_min_files: 8,
  compaction_interval_ms: 5_000,
  delete_grace_ms: 60_000,
  query_timeout_ms: 300_000,
  query_max_rows: 100_000,
  duckdb_threads: 0,
  loader_duckdb_threads: 1,
  lake_process: true,
  lake_process_nice: 10,
  duckdb_memory_limit: "",
  public_stats: false,
  enrich_user_agents: true,
  geoip_database: "",
  trusted_proxies: "127.0.0.0/8,::1",
  load_webhook_url: "",
  load_column_types: {},
  landing_poll_interval_ms: 2_000,
  max_upload_bytes: 1024 * 1024 * 1024,
  db_sources: {},
  transform_project: "",
  transform_schedules: {},
  transform_interval_ms: 30_000,
  quality_project: "",
  profiling: true,
  profile_interval_ms: 60_000,
  profile_sample_rows: 100_000,
  quality_history_days: 90,
  alert_webhook_url: "",
  alert_smtp_url: "",
  alert_email_to: "",
  alert_email_from: "sluice@localhost",
  pii_policy: {},
  pii_secret: "",
  raw_zone: false,
  raw_zone_retention_days: 7,
  retention: {},
  retention_interval_minutes: 60,
  forget_user_columns: {},
};

export class ConfigError extends Error {}

/**
 * Resolves the configuration. `overrides` are CLI flags (they win);
 * `env` defaults to process.env.
 */
export function loadConfig(
  options: { configFile?: string; overrides?: Partial<Config>; env?: NodeJS.ProcessEnv } = {},
): Config {
  const env = options.env ?? process.env;
  const dataDir = options.overrides?.data_dir ?? env.SLUICE_DATA_DIR ?? DEFAULTS.data_dir;
  const file = options.configFile ?? join(dataDir, "sluice.yaml");
  let fromFile: Record<string, unknown> = {};
  if (options.configFile && !existsSync(file)) throw new ConfigError(`config file ${file} does not exist`);
  if (existsSync(file)) {
    let parsed: unknown;
    try {
      parsed = parseYaml(readFileSync(file, "utf8"));
    } catch (error) {
      throw new ConfigError(`config file ${file} is not valid YAML: ${(error as Error).message}`);
    }
    if (parsed !== null && parsed !== undefined && (typeof parsed !== "object" || Array.isArray(parsed))) {
      throw new ConfigError(`config file ${file} must be a mapping of keys to values`);
    }
    fromFile = (parsed ?? {}) as Record<string, unknown>;
  }

  const config: Config = { ...DEFAULTS };
  const target = config as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(fromFile)) {
    if (!(key in DEFAULTS)) throw new ConfigError(`unknown key "${key}" in ${file}`);
    target[key] = coerce(key, value, `${file}: ${key}`);
  }
  for (const key of Object.keys(DEFAULTS)) {
    const value = env[`SLUICE_${key.toUpperCase()}`];
    if (value !== undefined && value !== "") target[key] = coerce(key, value, `SLUICE_${key.toUpperCase()}`);
  }
  for (const [key, value] of Object.entries(options.overrides ?? {})) {
    if (value !== undefined) target[key] = value;
  }
  config.data_dir = resolve(config.data_dir);
  return config;
}

/**
 * Shares of the machine's memory for Sluice's DuckDB engines when `duckdb_memory_limit` is not set.
 * Each engine would otherwise take DuckDB's default, 80% of the RAM, and a server has up to five
 * (queries, loads, profiles, builds, the lake process): two big jobs at once could take the
 * machine's memory and get the server killed. What a user waits for (their queries, a CLI job) gets
 * half; each engine of background work a smaller share, past which it spills to disk.
 */
const ENGINE_MEMORY_SHARE = { foreground: 0.5, background: 0.15 } as const;

/**
 * What a DuckDB engine of `role` may use: its memory (the configured limit, else its share of the
 * RAM) and where it spills (`<data-dir>/tmp`, not DuckDB's default `.tmp` in the current folder).
 */
export function engineResources(
  config: Pick<Config, "data_dir" | "duckdb_memory_limit">,
  role: keyof typeof ENGINE_MEMORY_SHARE,
): { memoryLimit: string; tempDir: string } {
  const share = Math.floor((totalmem() * ENGINE_MEMORY_SHARE[role]) / 2 ** 20);
  return {
    memoryLimit: config.duckdb_memory_limit || `${share}MiB`,
    tempDir: join(config.data_dir, "tmp"),
  };
}

/** All write keys, key → source, including SLUICE_WRITE_KEY for source `default`. */
export function writeKeys(config: Config): Map<string, string> {
  const keys = new Map(Object.entries(config.write_keys));
  if (config.write_key) keys.set(config.write_key, "default");
  return keys;
}

function coerce(key: string, value: unknown, where: string): unknown {
  const expected = DEFAULTS[key as keyof Config];
  if (typeof expected === "number") {
    const number = typeof value === "number" ? value : Number(String(value).trim());
    if (!Number.isFinite(number) || number < 0)
      throw new ConfigError(`${where} must be a non-negative number`);
    return number;
  }
  if (typeof expected === "boolean") {
    if (typeof value === "boolean") return value;
    const text = String(value).trim().toLowerCase();
    if (["true", "1", "yes", "on"].includes(text)) return true;
    if (["false", "0", "no", "off"].includes(text)) return false;
    throw new ConfigError(`${where} must be true or false`);
  }
  if (typeof expected === "object") {
    const parsed = typeof value === "string" ? parseYaml(value) : value;
    if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
      throw new ConfigError(`${where} must be a mapping`);
    }
    // Sources are mappings of settings, checked in full by the code that runs them.
    if (key === "db_sources" || key === "pii_policy" || key === "retention") return parsed;
    for (const entry of Object.values(parsed)) {
      if (typeof entry !== "string") throw new ConfigError(`${where} must map strings to strings`);
    }
    return parsed;
  }
  return String(value);
}
