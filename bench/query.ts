/**
 * `npm run bench -- query`: what Sluice adds on top of DuckDB for analytic
 * queries. Builds a lake of N realistic events (default 10M) directly with
 * the lake writer and catalog, starts the real server on it, then runs ten
 * analytic queries both through `POST /v1/query` and in a plain in-memory
 * DuckDB in this process over the same Parquet files, interleaved, with the
 * same thread count. Both sides must return the same rows.
 */
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { performance } from "node:perf_hooks";
import { DuckDBInstance } from "@duckdb/node-api";
import { openSqliteCatalog } from "../src/catalog/index.js";
import { createEngine } from "../src/warehouse/index.js";
import { onCleanup } from "./lib/cleanup.js";
import { query, sqlString } from "./lib/client.js";
import type { ParamSpecs, ParamValues } from "./lib/params.js";
import {
  type Figure,
  figuresTable,
  formatInt,
  formatMiB,
  formatMs,
  geometricMean,
  median,
  printHeader,
  table,
} from "./lib/report.js";
import { startServer } from "./lib/server.js";
import { buildShopLake, eventsGlob } from "./lib/synthetic-lake.js";

export const queryParams = {
  events: { default: 10_000_000, help: "events in the lake" },
  days: { default: 30, help: "days the events span" },
  users: { default: 100_000, help: "distinct people" },
  chunks: { default: 4, help: "loads the lake is written in (files per day before compaction)" },
  runs: { default: 5, help: "timed runs per query and side after one warm-up; the median counts" },
  threads: { default: 2, help: "DuckDB threads, the same on both sides" },
  "lake-dir": {
    default: "",
    help: "keep the data dir here and reuse it when it already holds --events events",
  },
} satisfies ParamSpecs;

type QueryParams = ParamValues<typeof queryParams>;

const GOAL_RATIO = 1.1;

/** The questions; each ORDER BY is total so both sides list rows in the same order. */
const QUERIES: { name: string; sql: string }[] = [
  {
    name: "events per day",
    sql: "SELECT dt, count(*) AS events FROM events GROUP BY dt ORDER BY dt",
  },
  {
    name: "top events",
    sql: `SELECT event_type, event, count(*) AS events FROM events
      GROUP BY ALL ORDER BY events DESC, event_type, event LIMIT 20`,
  },
  {
    name: "unique users per day",
    sql: `SELECT dt, count(DISTINCT coalesce(user_id, anonymous_id)) AS users FROM events
      GROUP BY dt ORDER BY dt`,
  },
  {
    name: "3-step funnel (viewed → added → ordered)",
    sql: `WITH viewed AS (
        SELECT coalesce(user_id, anonymous_id) AS person, min(ts) AS at FROM events
        WHERE event = 'Product Viewed' GROUP BY 1
      ), added AS (
        SELECT v.person, min(e.ts) AS at FROM events e
        JOIN viewed v ON coalesce(e.user_id, e.anonymous_id) = v.person AND e.ts > v.at
        WHERE e.event = 'Product Added' GROUP BY 1
      ), ordered AS (
        SELECT a.person FROM events e
        JOIN added a ON coalesce(e.user_id, e.anonymous_id) = a.person AND e.ts > a.at
        WHERE e.event = 'Order Completed' GROUP BY 1
      )
      SELECT (SELECT count(*) FROM viewed) AS viewed, (SELECT count(*) FROM added) AS added,
        (SELECT count(*) FROM ordered) AS ordered`,
  },
  {
    name: "revenue by country",
    sql: `SELECT country, properties->>'currency' AS currency, count(*) AS orders,
        sum((properties->>'revenue')::DECIMAL(18, 2)) AS revenue
      FROM events WHERE event = 'Order Completed'
      GROUP BY ALL ORDER BY revenue DESC, country, currency`,
  },
  {
    name: "sessions per user",
    sql: `SELECT sessions, count(*) AS users FROM (
        SELECT coalesce(user_id, anonymous_id) AS person, count(DISTINCT session_id) AS sessions
        FROM events GROUP BY 1
      ) GROUP BY sessions ORDER BY sessions`,
  },
  {
    name: "p95 price by category",
    sql: `SELECT properties->>'category' AS category,
        quantile_cont((properties->>'price')::DOUBLE, 0.95) AS p95_price, count(*) AS views
      FROM events WHERE event = 'Product Viewed' GROUP BY 1 ORDER BY 1`,
  },
  {
    name: "events by hour of week",
    sql: `SELECT isodow(ts) AS weekday, hour(ts) AS hour, count(*) AS events FROM events
      GROUP BY ALL ORDER BY ALL`,
  },
  {
    // From midnight, not now(): the two sides run seconds apart and must give the same answer.
    name: "events per hour, last 7 days (a dashboard's time filter)",
    sql: `SELECT date_trunc('hour', ts) AS hour, count(*) AS events FROM events
      WHERE ts >= current_date - INTERVAL 7 DAY GROUP BY 1 ORDER BY 1`,
  },
  {
    name: "top pages",
    sql: `SELECT page_path, count(*) AS views, count(DISTINCT session_id) AS sessions FROM events
      WHERE event_type = 'page' GROUP BY 1 ORDER BY views DESC, page_path LIMIT 20`,
  },
  {
    name: "day-1 returning users",
    sql: `WITH active AS (
        SELECT DISTINCT coalesce(user_id, anonymous_id) AS person, dt FROM events
      ), first_seen AS (
        SELECT person, min(dt) AS first_day FROM active GROUP BY person
      )
      SELECT f.first_day, count(*) AS new_users, count(a.person) AS returned_next_day
      FROM first_seen f LEFT JOIN active a ON a.person = f.person AND a.dt = f.first_day + 1
      GROUP BY 1 ORDER BY 1`,
  },
];

export async function runQuery(params: QueryParams): Promise<void> {
  printHeader(
    "query",
    "Eleven analytic queries through `POST /v1/query` (HTTP, catalog snapshot, JSON) vs. the same SQL in a plain " +
      "in-memory DuckDB over the same Parquet files, same machine, same thread count, interleaved runs.",
    params,
  );
  const dataDir = params["lake-dir"] || (await mkdtemp(join(tmpdir(), "sluice-bench-query-")));
  if (!params["lake-dir"]) onCleanup(() => rm(dataDir, { recursive: true, force: true }));
  const lakeRoot = join(dataDir, "lake");
  const build = await ensureLake(dataDir, params);
  await checkDiskMatchesCatalog(dataDir);

  const server = await startServer({ dataDir, config: { DUCKDB_THREADS: String(params.threads) } });
  const raw = await DuckDBInstance.create(":memory:", { threads: String(params.threads) });
  const closeRaw = onCleanup(() => raw.closeSync());
  const rows: string[][] = [];
  const ratios: number[] = [];
  try {
    const connection = await raw.connect();
    // Sluice's engine settings (src/warehouse/engine.ts): UTC, so dates mean the same; Parquet metadata cache.
    await connection.run("SET TimeZone = 'UTC'; SET parquet_metadata_cache = true");
    await connection.run(
      `CREATE VIEW events AS SELECT * FROM read_parquet(${sqlString(eventsGlob(lakeRoot))}, hive_partitioning = true)`,
    );
    const direct = async (sql: string) => (await connection.runAndReadAll(sql)).getRowsJson() as unknown[][];
    const viaSluice = async (sql: string) => (await query(server, sql)).rows;

    for (const { name, sql } of QUERIES) {
      console.error(`bench: ${name}...`);
      // Warm-up on both sides; their answers must agree.
      const sluiceRows = await viaSluice(sql);
      const directRows = await direct(sql);
      const difference = compareRows(sluiceRows, directRows);
      if (difference) throw new Error(`"${name}": Sluice and DuckDB disagree: ${difference}\nSQL: ${sql}`);
      const sluiceMs: number[] = [];
      const directMs: number[] = [];
      for (let run = 0; run < params.runs; run++) {
        sluiceMs.push(await timed(() => viaSluice(sql)));
        directMs.push(await timed(() => direct(sql)));
      }
      const ratio = median(sluiceMs) / median(directMs);
      ratios.push(ratio);
      rows.push([
        name,
        formatMs(median(sluiceMs)),
        formatMs(median(directMs)),
        `${ratio.toFixed(2)}×`,
        formatInt(sluiceRows.length),
      ]);
    }
    connection.closeSync();
  } finally {
    await closeRaw();
    await server.stop();
  }

  const geomean = geometricMean(ratios);
  const figures: Figure[] = [
    {
      measure: "Sluice / DuckDB time, geometric mean of the eleven queries",
      value: `${geomean.toFixed(3)}×`,
      goal: `≤ ${GOAL_RATIO}×`,
      pass: geomean <= GOAL_RATIO,
    },
    {
      measure: "answers identical on both sides",
      value: `yes (all ${QUERIES.length})`,
      goal: "yes",
      pass: true,
    },
    { measure: "lake", value: build.summary },
  ];
  console.log(table(["query", "Sluice (HTTP)", "DuckDB direct", "ratio", "rows"], rows));
  console.log("");
  console.log(figuresTable(figures));
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}

/** Builds the lake, or reuses the one in `--lake-dir` when it holds the requested number of events. */
export async function ensureLake(
  dataDir: string,
  params: Pick<QueryParams, "events" | "days" | "users" | "chunks" | "threads">,
): Promise<{ summary: string }> {
  const catalogFile = join(dataDir, "catalog.db");
  if (existsSync(catalogFile)) {
    const catalog = openSqliteCatalog(catalogFile);
    try {
      const files = await catalog.liveFiles("events");
      const events = files.reduce((sum, file) => sum + file.rows, 0);
      if (events !== params.events) {
        throw new Error(
          `${dataDir} holds ${events} events, not ${params.events}: delete it or choose another --lake-dir`,
        );
      }
      console.error(`bench: reusing the lake in ${dataDir}`);
      return { summary: `${describeFiles(files)}, reused from ${dataDir}` };
    } finally {
      await catalog.close();
    }
  }
  const today = new Date().toISOString().slice(0, 10);
  // The period ends yesterday: the server then finds no event of the last 24 h to remember for dedupe.
  const firstDay = new Date(Date.parse(today) - (params.days + 1) * 86_400_000).toISOString().slice(0, 10);
  const started = performance.now();
  await mkdir(dataDir, { recursive: true });
  const engine = await createEngine({ threads: params.threads });
  const catalog = openSqliteCatalog(catalogFile);
  try {
    const files = await buildShopLake({
      engine,
      catalog,
      lakeRoot: join(dataDir, "lake"),
      shape: { events: params.events, days: params.days, users: params.users, firstDay },
      chunks: params.chunks,
      log: (message) => console.error(`bench: lake: ${message}`),
    });
    const seconds = (performance.now() - started) / 1000;
    const events = files.reduce((sum, file) => sum + file.rows, 0);
    if (events !== params.events) throw new Error(`built ${events} events instead of ${params.events}`);
    return {
      summary: `${describeFiles(files)}, built in ${seconds.toFixed(0)} s (${formatInt(events / seconds)} events/s)`,
    };
  } finally {
    await catalog.close();
    engine.closeSync();
  }
}

function describeFiles(files: { rows: number; bytes: number; partition: string }[]): string {
  const events = files.reduce((sum, file) => sum + file.rows, 0);
  const bytes = files.reduce((sum, file) => sum + file.bytes, 0);
  const days = new Set(files.map((file) => file.partition)).size;
  return `${formatInt(events)} events, ${days} days, ${files.length} Parquet files, ${formatMiB(bytes)}`;
}

/** The direct side reads a glob: it must see exactly the files the catalog lists as live. */
async function checkDiskMatchesCatalog(dataDir: string): Promise<void> {
  const lakeRoot = join(dataDir, "lake");
  const catalog = openSqliteCatalog(join(dataDir, "catalog.db"));
  try {
    const live = new Set((await catalog.liveFiles("events")).map((file) => file.path));
    const onDisk = await listParquet(join(lakeRoot, "events"));
    const relativePaths = new Set(onDisk.map((path) => relative(lakeRoot, path)));
    const extra = [...relativePaths].filter((path) => !live.has(path));
    const missing = [...live].filter((path) => !relativePaths.has(path));
    if (extra.length > 0 || missing.length > 0) {
      throw new Error(
        `lake files differ from the catalog: ${extra.length} unlisted on disk, ${missing.length} listed but missing`,
      );
    }
  } finally {
    await catalog.close();
  }
}

async function listParquet(dir: string): Promise<string[]> {
  const found: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) found.push(...(await listParquet(path)));
    else if (entry.name.endsWith(".parquet") && (await stat(path)).isFile()) found.push(path);
  }
  return found;
}

/**
 * Compares two results cell by cell; returns a description of the first
 * difference, or null. Numbers compare with a tiny relative tolerance (float
 * sums may add up in another order on another thread schedule); Sluice gives
 * 64-bit integers and decimals as numbers where DuckDB's JSON gives strings.
 */
function compareRows(left: unknown[][], right: unknown[][]): string | null {
  if (left.length !== right.length) return `${left.length} rows vs. ${right.length}`;
  for (let i = 0; i < left.length; i++) {
    const a = left[i] ?? [];
    const b = right[i] ?? [];
    if (a.length !== b.length) return `row ${i}: ${a.length} columns vs. ${b.length}`;
    for (let j = 0; j < a.length; j++) {
      if (!sameValue(a[j], b[j]))
        return `row ${i} column ${j}: ${JSON.stringify(a[j])} vs. ${JSON.stringify(b[j])}`;
    }
  }
  return null;
}

function sameValue(a: unknown, b: unknown): boolean {
  const numberA = asNumber(a);
  const numberB = asNumber(b);
  if (numberA !== null && numberB !== null) {
    return Math.abs(numberA - numberB) <= 1e-9 * Math.max(1, Math.abs(numberA), Math.abs(numberB));
  }
  return JSON.stringify(a) === JSON.stringify(b);
}

function asNumber(value: unknown): number | null {
  if (typeof value === "number") return value;
  if (typeof value === "string" && /^-?\d+(\.\d+)?(e[+-]?\d+)?$/i.test(value)) return Number(value);
  return null;
}
