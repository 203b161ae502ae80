/**
 * `npm run bench -- sql-paths`: the same SQL over each way in, side by side: the PostgreSQL
 * wire protocol (node-postgres, simple and extended protocol), the HTTP query API (JSON, CSV and
 * Arrow), and DuckDB in this process on the same Parquet files (the floor: no network, no
 * snapshot, no encoding).
 *
 * (a) Latency of small queries, one at a time: the median and p95 of `runs` runs after a warm-up.
 * (b) Rows/s of one large result (`large-rows` rows of five columns), read whole by the client.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { DuckDBInstance } from "@duckdb/node-api";
import { tableFromIPC } from "apache-arrow";
import pg from "pg";
import { onCleanup } from "./lib/cleanup.js";
import { sqlString } from "./lib/client.js";
import type { ParamSpecs, ParamValues } from "./lib/params.js";
import {
  type Figure,
  figuresTable,
  formatInt,
  formatMs,
  median,
  percentile,
  printHeader,
  table,
} from "./lib/report.js";
import { type SluiceServer, startServer } from "./lib/server.js";
import { eventsGlob } from "./lib/synthetic-lake.js";
import { ensureLake } from "./query.js";

export const sqlPathsParams = {
  events: { default: 2_000_000, help: "events in the lake" },
  days: { default: 30, help: "days the events span" },
  users: { default: 100_000, help: "distinct people" },
  chunks: { default: 2, help: "loads the lake is written in" },
  threads: { default: 2, help: "DuckDB threads, the same on every path" },
  runs: { default: 30, help: "timed runs of each small query per path, after one warm-up" },
  "large-rows": { default: 1_000_000, help: "rows of the large result" },
  "lake-dir": {
    default: "",
    help: "keep the data dir here and reuse it when it already holds --events events",
  },
} satisfies ParamSpecs;

type SqlPathsParams = ParamValues<typeof sqlPathsParams>;

const SMALL_QUERIES = [
  { name: "SELECT 1", sql: "SELECT 1 AS one" },
  {
    name: "orders per country, one day",
    sql: `SELECT country, count(*) AS orders FROM events
          WHERE dt = (SELECT max(dt) FROM events) AND event = 'Order Completed' GROUP BY 1 ORDER BY 2 DESC, 1`,
  },
];

/** Each path runs SQL and returns the number of rows the client received. */
type Path = { name: string; run(sql: string): Promise<number> };

export async function runSqlPaths(params: SqlPathsParams): Promise<void> {
  printHeader(
    "sql-paths",
    "One query at a time, client and server on this machine: the PostgreSQL wire protocol (node-postgres, " +
      "rows as arrays; simple, and extended as drivers send parameters), POST /v1/query (keep-alive; JSON, CSV, Arrow) and DuckDB in this process on the same files.",
    params,
  );
  const dataDir = params["lake-dir"] || (await mkdtemp(join(tmpdir(), "sluice-bench-sql-")));
  if (!params["lake-dir"]) onCleanup(() => rm(dataDir, { recursive: true, force: true }));
  const lake = await ensureLake(dataDir, params);

  const server = await startServer({ dataDir, config: { DUCKDB_THREADS: String(params.threads) } });
  const raw = await DuckDBInstance.create(":memory:", { threads: String(params.threads) });
  const closeRaw = onCleanup(() => raw.closeSync());
  const client = new pg.Client({
    host: "127.0.0.1",
    port: server.pgPort,
    user: "admin",
    password: server.adminToken,
    database: "sluice",
  });
  await client.connect();
  const figures: Figure[] = [];
  try {
    const direct = await raw.connect();
    await direct.run("SET TimeZone = 'UTC'; SET parquet_metadata_cache = true");
    await direct.run(
      `CREATE VIEW events AS SELECT * FROM read_parquet(${sqlString(eventsGlob(join(dataDir, "lake")))}, hive_partitioning = true)`,
    );
    const paths: Path[] = [
      { name: "DuckDB in process", run: async (sql) => (await direct.runAndReadAll(sql)).getRows().length },
      {
        name: "PostgreSQL protocol",
        run: async (sql) => (await client.query({ text: sql, rowMode: "array" })).rows.length,
      },
      {
        // Parse, Bind, Describe, Execute: what drivers send for a query with parameters
        // (`queryMode` is node-postgres's, missing from its type definitions).
        name: "PostgreSQL extended",
        run: async (sql) => {
          const extended = { text: sql, rowMode: "array", queryMode: "extended" } as pg.QueryArrayConfig;
          return (await client.query(extended)).rows.length;
        },
      },
      { name: "HTTP JSON", run: (sql) => viaHttp(server, sql, "json") },
      { name: "HTTP CSV", run: (sql) => viaHttp(server, sql, "csv") },
      { name: "HTTP Arrow", run: (sql) => viaHttp(server, sql, "arrow") },
    ];

    const latencyRows: string[][] = [];
    for (const { name, sql } of SMALL_QUERIES) {
      for (const path of paths) {
        const rows = await path.run(sql);
        const times: number[] = [];
        for (let run = 0; run < params.runs; run++) times.push(await timed(() => path.run(sql)));
        latencyRows.push([
          name,
          path.name,
          formatMs(median(times)),
          formatMs(percentile(times, 95)),
          String(rows),
        ]);
      }
    }

    const largeSql = `SELECT event_id, event, ts, user_id, properties->>'price' AS price FROM events LIMIT ${params["large-rows"]}`;
    const throughputRows: string[][] = [];
    for (const path of paths) {
      if (path.name === "HTTP JSON") continue; // capped at query_max_rows: not a way to fetch a large result
      console.error(`bench: large result over ${path.name}...`);
      let rows = 0;
      const ms = await timed(async () => {
        rows = await path.run(largeSql);
      });
      if (rows !== params["large-rows"])
        throw new Error(`${path.name} returned ${rows} rows, not ${params["large-rows"]}`);
      throughputRows.push([path.name, formatInt((rows / ms) * 1000), formatMs(ms)]);
    }
    direct.closeSync();

    console.log(table(["small query", "path", "median", "p95", "rows"], latencyRows));
    console.log("");
    console.log(
      table(
        [`large result (${formatInt(params["large-rows"])} rows × 5 columns)`, "rows/s", "time"],
        throughputRows,
      ),
    );
    console.log("");
    figures.push({ measure: "lake", value: lake.summary });
    console.log(figuresTable(figures));
  } finally {
    await client.end();
    await closeRaw();
    await server.stop();
  }
}

async function viaHttp(server: SluiceServer, sql: string, format: "json" | "csv" | "arrow"): Promise<number> {
  const response = await fetch(`${server.url}/v1/query`, {
    method: "POST",
    headers: { authorization: `Bearer ${server.adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({ sql, format }),
  });
  if (!response.ok) throw new Error(`HTTP ${response.status}: ${await response.text()}`);
  if (format === "json") return ((await response.json()) as { rows: unknown[] }).rows.length;
  if (format === "arrow") return tableFromIPC(new Uint8Array(await response.arrayBuffer())).numRows;
  const text = await response.text();
  let lines = 0;
  for (let at = text.indexOf("\n"); at !== -1; at = text.indexOf("\n", at + 1)) lines++;
  return lines - 1;
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}
