/**
 * `db_sources` in the configuration, checked and turned into what a sync runs: which
 * tables, how (full or incremental), into which lake table, and when.
 *
 * ```yaml
 * db_sources:
 *   shop:
 *     url_env: SHOP_DATABASE_URL      # the URL, with its password, stays in the environment
 *     every: 5m                       # or cron: "0 * * * *"
 *     tables:
 *       customers:                    # full copy
 *       public.orders: { watermark: updated_at, primary_key: id, lookback: 10m }
 * ```
 */
import { Cron } from "croner";
import { ConfigError, type DbSourceConfig, type DbTableConfig } from "../config/index.js";
import { snakeCase, tableNameProblem } from "./names.js";

export type SyncMode = "full" | "incremental";

/** How far before the bookmark an incremental read starts: a duration, or a distance between ids. */
export type Lookback = { micros: number } | { amount: number };

export interface DbTableSpec {
  source: string;
  /** The table as configured: `orders` or `schema.orders`. */
  table: string;
  /** The lake table it is copied into. */
  into: string;
  mode: SyncMode;
  /** Incremental only: the column whose values only grow as rows change. */
  watermark: string | null;
  /** Columns identifying a row; null: the source table's primary key. */
  primaryKey: string[] | null;
  lookback: Lookback | null;
}

export type Schedule = { everyMs: number } | { cron: string };

export interface DbSourceSpec {
  name: string;
  /** The environment variable holding the connection URL. */
  urlEnv: string;
  schedule: Schedule | null;
  tables: DbTableSpec[];
}

const SOURCE_NAME = /^[a-z][a-z0-9_]*$/;
const SOURCE_KEYS = new Set(["url_env", "every", "cron", "tables"]);
const TABLE_KEYS = new Set(["mode", "watermark", "primary_key", "lookback", "into"]);
const UNITS: Record<string, number> = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `5m`, `30s`, `1h`, `2d`, `500ms` into milliseconds; null when it is not one. */
export function parseDuration(text: string): number | null {
  const match = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$/.exec(text);
  if (!match) return null;
  const ms = Number(match[1]) * (UNITS[match[2] as string] ?? 0);
  return ms > 0 ? ms : null;
}

/** Every configured source, checked: a mistake is a ConfigError naming the key. */
export function parseDbSources(raw: Record<string, DbSourceConfig>): DbSourceSpec[] {
  const sources: DbSourceSpec[] = [];
  const intoSeen = new Map<string, string>();
  for (const [name, value] of Object.entries(raw)) {
    const where = `db_sources.${name}`;
    if (!SOURCE_NAME.test(name)) {
      throw new ConfigError(
        `${where}: a source name is lower case letters, digits and _, starting with a letter`,
      );
    }
    const source = mapping(value, where) as Partial<DbSourceConfig>;
    for (const key of Object.keys(source)) {
      if (!SOURCE_KEYS.has(key))
        throw new ConfigError(`${where}: unknown key "${key}" (use ${[...SOURCE_KEYS].join(", ")})`);
    }
    if (typeof source.url_env !== "string" || !/^[A-Za-z_][A-Za-z0-9_]*$/.test(source.url_env)) {
      throw new ConfigError(
        `${where}.url_env must name the environment variable holding the connection URL (e.g. SHOP_DATABASE_URL)`,
      );
    }
    const tables = mapping(source.tables, `${where}.tables`);
    if (Object.keys(tables).length === 0) throw new ConfigError(`${where}.tables lists no table`);
    const specs = Object.entries(tables).map(([table, settings]) =>
      parseTable(name, table, settings as DbTableConfig | null, `${where}.tables.${table}`),
    );
    for (const spec of specs) {
      const previous = intoSeen.get(spec.into);
      if (previous) {
        throw new ConfigError(
          `db_sources: ${name}.${spec.table} and ${previous} both go into table ${spec.into}: give one of them another "into"`,
        );
      }
      intoSeen.set(spec.into, `${name}.${spec.table}`);
    }
    sources.push({ name, urlEnv: source.url_env, schedule: parseSchedule(source, where), tables: specs });
  }
  return sources;
}

function parseTable(source: string, table: string, raw: DbTableConfig | null, where: string): DbTableSpec {
  const settings = (raw === null ? {} : mapping(raw, where)) as DbTableConfig;
  for (const key of Object.keys(settings)) {
    if (!TABLE_KEYS.has(key))
      throw new ConfigError(`${where}: unknown key "${key}" (use ${[...TABLE_KEYS].join(", ")})`);
  }
  if (!/^[^.\s]+(\.[^.\s]+)?$/.test(table)) {
    throw new ConfigError(`${where}: a table is named "table" or "schema.table"`);
  }
  const mode = settings.mode ?? (settings.watermark ? "incremental" : "full");
  if (mode !== "full" && mode !== "incremental") {
    throw new ConfigError(`${where}.mode must be full or incremental, not "${String(mode)}"`);
  }
  const watermark = optionalName(settings.watermark, `${where}.watermark`);
  if (mode === "incremental" && !watermark) {
    throw new ConfigError(
      `${where}: an incremental table needs a watermark column (updated_at, or an increasing id)`,
    );
  }
  const key = settings.primary_key;
  const primaryKey =
    key === undefined
      ? null
      : (Array.isArray(key) ? key : [key]).map(
          (column) => optionalName(column, `${where}.primary_key`) ?? "",
        );
  if (primaryKey?.some((column) => column === "") || primaryKey?.length === 0) {
    throw new ConfigError(`${where}.primary_key must be a column name or a list of them`);
  }
  const into = settings.into ?? `${source}_${snakeCase(table.split(".").at(-1) ?? table)}`;
  const problem = tableNameProblem(into);
  if (problem) throw new ConfigError(`${where}.into: ${problem}`);
  return {
    source,
    table,
    into,
    mode,
    watermark: mode === "incremental" ? watermark : null,
    primaryKey,
    lookback: parseLookback(settings.lookback, `${where}.lookback`),
  };
}

function parseLookback(value: unknown, where: string): Lookback | null {
  if (value === undefined || value === null) return null;
  if (typeof value === "number" && Number.isFinite(value) && value >= 0) return { amount: value };
  const ms = typeof value === "string" ? parseDuration(value) : null;
  if (ms === null)
    throw new ConfigError(`${where} must be a duration (10m, 1h, 2d) or, for an id watermark, a number`);
  return { micros: ms * 1_000 };
}

function parseSchedule(source: Partial<DbSourceConfig>, where: string): Schedule | null {
  if (source.every !== undefined && source.cron !== undefined) {
    throw new ConfigError(`${where}: set every or cron, not both`);
  }
  if (source.every !== undefined) {
    const everyMs = parseDuration(String(source.every));
    if (everyMs === null)
      throw new ConfigError(`${where}.every must be a duration such as 30s, 5m, 1h or 1d`);
    return { everyMs };
  }
  if (source.cron !== undefined) {
    const cron = String(source.cron);
    try {
      new Cron(cron, { paused: true }).stop();
    } catch (error) {
      throw new ConfigError(`${where}.cron "${cron}" is not a cron expression: ${(error as Error).message}`);
    }
    return { cron };
  }
  return null;
}

function mapping(value: unknown, where: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new ConfigError(`${where} must be a mapping`);
  }
  return value as Record<string, unknown>;
}

function optionalName(value: unknown, where: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "string" || value.trim() === "")
    throw new ConfigError(`${where} must be a column name`);
  return value.trim();
}

/**
 * The tables `target` names: every table (no target), a source's (`shop`), or one
 * (`shop.orders`, `shop.public.orders`, or its lake table's name).
 */
export function selectTables(sources: DbSourceSpec[], target?: string): DbTableSpec[] {
  const all = sources.flatMap((source) => source.tables);
  if (!target) return all;
  const dot = target.indexOf(".");
  const sourceName = dot < 0 ? target : target.slice(0, dot);
  const source = sources.find((candidate) => candidate.name === sourceName);
  if (!source) {
    const byLakeTable = all.find((table) => table.into === target);
    if (byLakeTable) return [byLakeTable];
    const known = sources.map((candidate) => candidate.name).join(", ") || "none configured";
    throw new ConfigError(`no source "${sourceName}" in db_sources (sources: ${known})`);
  }
  if (dot < 0) return source.tables;
  const name = target.slice(dot + 1);
  const table =
    source.tables.find((candidate) => candidate.table === name) ??
    source.tables.find((candidate) => candidate.table.split(".").at(-1) === name);
  if (!table) {
    throw new ConfigError(
      `source ${source.name} has no table "${name}" in db_sources (tables: ${source.tables.map((t) => t.table).join(", ")})`,
    );
  }
  return [table];
}
