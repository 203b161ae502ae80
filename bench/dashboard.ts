/**
 * `npm run bench -- dashboard`: how long the demo's "Shop overview" dashboard takes to load, all
 * panels (`GET /v1/dashboards/<id>/data`, one request as the browser makes it), on a lake of N
 * realistic events (default 10M). The dashboard is created through the HTTP API as a script would.
 * Cold: results not cached (every run asks for another date range, so every panel is computed, as
 * after new data lands); cached: the same view again. Warm in both: the OS page cache, DuckDB's
 * Parquet metadata cache and the server's pooled connections (a first, untimed load fills them).
 * The server's CPU time per cold load is reported too: on a machine shared with other work, wall
 * times measure the neighbours as well, and CPU time / cores is the load time on an idle machine.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SHOP_OVERVIEW_FIELDS, SHOP_OVERVIEW_PANELS } from "../src/web/index.js";
import { onCleanup } from "./lib/cleanup.js";
import type { ParamSpecs, ParamValues } from "./lib/params.js";
import { type Figure, figuresTable, formatMs, loadAverage, percentile, printHeader } from "./lib/report.js";
import { type SluiceServer, startServer } from "./lib/server.js";
import { ensureLake } from "./query.js";

export const dashboardParams = {
  events: { default: 10_000_000, help: "events in the lake" },
  days: { default: 30, help: "days the events span" },
  users: { default: 100_000, help: "distinct people" },
  chunks: { default: 4, help: "loads the lake is written in" },
  runs: { default: 20, help: "timed dashboard loads, cold and cached each" },
  threads: { default: 2, help: "DuckDB threads" },
  "lake-dir": {
    default: "",
    help: "keep the data dir here and reuse it when it already holds --events events",
  },
} satisfies ParamSpecs;

type DashboardParams = ParamValues<typeof dashboardParams>;

const GOAL_CACHED_MS = 1000;
const GOAL_COLD_MS = 3000;

interface DashboardData {
  panels: { chartId: number; error?: string; cached?: boolean; rows?: unknown[][] }[];
}

export async function runDashboard(params: DashboardParams): Promise<void> {
  printHeader(
    "dashboard",
    "Load time of the Shop overview dashboard (7 panels: big numbers, explorer, SQL, funnel, table) " +
      "through `GET /v1/dashboards/<id>/data`, cold (results computed) and cached.",
    params,
  );
  const dataDir = params["lake-dir"] || (await mkdtemp(join(tmpdir(), "sluice-bench-dashboard-")));
  if (!params["lake-dir"]) onCleanup(() => rm(dataDir, { recursive: true, force: true }));
  const build = await ensureLake(dataDir, params);
  const server = await startServer({ dataDir, config: { DUCKDB_THREADS: String(params.threads) } });
  try {
    const id = await createDashboard(server);
    const load = async (search: string) => {
      const started = performance.now();
      const data = (await call(server, "GET", `/v1/dashboards/${id}/data${search}`)) as DashboardData;
      const ms = performance.now() - started;
      const failed = data.panels.find((panel) => panel.error);
      if (failed) throw new Error(`panel ${failed.chartId} failed: ${failed.error}`);
      return { ms, data };
    };
    // Every cold run asks for a range no earlier run asked for: nothing can come from the cache.
    const start = Date.now() - (params.days + 2) * 86_400_000;
    const range = (run: number) => {
      const from = new Date(start + run * 3_600_000).toISOString().slice(0, 19);
      return `?from=${encodeURIComponent(`${from}Z`)}`;
    };
    await load(range(0));
    const cold: number[] = [];
    const cpuBefore = await server.cpuSeconds();
    for (let run = 1; run <= params.runs; run++) {
      const { ms, data } = await load(range(run));
      if (data.panels.some((panel) => panel.cached)) throw new Error("a cold load was served from the cache");
      cold.push(ms);
    }
    const cpuAfter = await server.cpuSeconds();
    const cached: number[] = [];
    for (let run = 0; run < params.runs; run++) {
      const { ms, data } = await load(range(params.runs));
      if (!data.panels.every((panel) => panel.cached))
        throw new Error("a repeated load was not served from the cache");
      cached.push(ms);
    }
    const figures: Figure[] = [
      { measure: "cold load, p50", value: formatMs(percentile(cold, 50)) },
      {
        measure: "cold load, p95",
        value: formatMs(percentile(cold, 95)),
        goal: `< ${formatMs(GOAL_COLD_MS)}`,
        pass: percentile(cold, 95) < GOAL_COLD_MS,
      },
      ...(cpuBefore === null || cpuAfter === null
        ? []
        : [
            {
              measure: "cold load, server CPU time (mean)",
              value: formatMs(((cpuAfter - cpuBefore) * 1000) / params.runs),
            },
          ]),
      { measure: "cached load, p50", value: formatMs(percentile(cached, 50)) },
      {
        measure: "cached load, p95",
        value: formatMs(percentile(cached, 95)),
        goal: `< ${formatMs(GOAL_CACHED_MS)}`,
        pass: percentile(cached, 95) < GOAL_CACHED_MS,
      },
      { measure: "panels", value: String(SHOP_OVERVIEW_PANELS.length) },
      { measure: "lake", value: build.summary },
      {
        measure: "load average at end (1/5 min)",
        value: loadAverage(),
      },
    ];
    console.log(figuresTable(figures));
  } finally {
    await server.stop();
  }
}

/**
 * The Shop overview's charts and dashboard, created through the HTTP API (unless a reused lake
 * already has it); returns the dashboard's id.
 */
async function createDashboard(server: SluiceServer): Promise<number> {
  const { dashboards } = (await call(server, "GET", "/v1/dashboards")) as {
    dashboards: { id: number; name: string }[];
  };
  const existing = dashboards.find((dashboard) => dashboard.name === SHOP_OVERVIEW_FIELDS.name);
  if (existing) return existing.id;
  const panels = [];
  for (const { name, spec, x, y, w, h } of SHOP_OVERVIEW_PANELS) {
    const { chart } = (await call(server, "POST", "/v1/charts", { name, spec })) as { chart: { id: number } };
    panels.push({ chartId: chart.id, x, y, w, h });
  }
  const { dashboard } = (await call(server, "POST", "/v1/dashboards", {
    ...SHOP_OVERVIEW_FIELDS,
    panels,
  })) as { dashboard: { id: number } };
  return dashboard.id;
}

async function call(server: SluiceServer, method: string, path: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${server.url}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${server.adminToken}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`${method} ${path} failed with HTTP ${response.status}: ${text}`);
  return JSON.parse(text);
}
