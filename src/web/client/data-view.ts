/** The catalog browser (tables, columns, row counts, freshness) and the live view (latest events, per-minute counts). */
import * as echarts from "echarts";
import { api, type QueryResult } from "./api.js";
import { h } from "./dom.js";
import { type CatalogTable, catalogTables } from "./editor.js";
import type { Cleanup, ViewContext } from "./main.js";
import { resultsGrid } from "./render.js";

const bytes = (value: number): string =>
  value >= 1e9
    ? `${(value / 1e9).toFixed(1)} GB`
    : value >= 1e6
      ? `${(value / 1e6).toFixed(1)} MB`
      : `${Math.ceil(value / 1e3)} KB`;

function ago(iso: string | null): string {
  if (!iso) return "never";
  const seconds = Math.max(0, (Date.now() - Date.parse(iso)) / 1000);
  if (seconds < 90) return `${Math.round(seconds)} s ago`;
  if (seconds < 5400) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 129_600) return `${Math.round(seconds / 3600)} h ago`;
  return `${Math.round(seconds / 86_400)} days ago`;
}

export async function catalogView({ main }: ViewContext): Promise<Cleanup> {
  const tables: CatalogTable[] = await catalogTables();
  main.append(
    h("h1", null, "Catalog"),
    h(
      "div.catalog#catalog",
      null,
      tables.map((table) =>
        h(
          "details.table-card",
          { open: table.name === "events" },
          h(
            "summary",
            null,
            h("strong", null, table.name),
            h(
              "span.meta",
              null,
              `${table.rows.toLocaleString()} rows · ${bytes(table.bytes)} in ${table.files} files · fresh ${ago(table.freshness)}`,
            ),
          ),
          h(
            "table.grid",
            null,
            h("tr", null, h("th", null, "Column"), h("th", null, "Type"), h("th", null, "Description")),
            table.columns.map((column) =>
              h(
                "tr",
                null,
                h("td", null, h("code", null, column.name)),
                h("td", null, column.type),
                h("td", null, column.description ?? ""),
              ),
            ),
          ),
          h(
            "a.button",
            { href: `/sql?sql=${encodeURIComponent(`select * from ${table.name} limit 100`)}` },
            "Query",
          ),
        ),
      ),
    ),
  );
  return undefined;
}

interface Stats {
  total: number;
  lastMinute: number;
  perMinute: { minute: string; events: number }[];
}

/** The last 60 minutes, oldest first; minutes the server did not list had no events. */
export function lastHour(perMinute: Stats["perMinute"], now: number): { label: string; events: number }[] {
  const byMinute = new Map(
    perMinute.map((point) => [Math.floor(Date.parse(point.minute) / 60_000), point.events]),
  );
  const current = Math.floor(now / 60_000);
  return Array.from({ length: 60 }, (_, index) => {
    const minute = current - 59 + index;
    return {
      label: new Date(minute * 60_000).toISOString().slice(11, 16),
      events: byMinute.get(minute) ?? 0,
    };
  });
}

export async function liveView({ main }: ViewContext): Promise<Cleanup> {
  const totals = h("div.totals#live-totals");
  const chartBox = h("div.chart-canvas.small#live-chart");
  const events = h("div#live-events");
  main.append(h("h1", null, "Live"), totals, chartBox, h("h2", null, "Latest events"), events);
  const chart = echarts.init(chartBox);
  const refresh = async () => {
    const [stats, latest] = await Promise.all([
      api<Stats>("GET", "/v1/stats"),
      api<QueryResult>("GET", "/v1/live/events?limit=50"),
    ]);
    totals.replaceChildren(
      h("div", null, h("strong", null, stats.total.toLocaleString()), " events in total"),
      h("div", null, h("strong", null, stats.lastMinute.toLocaleString()), " in the last minute"),
    );
    const minutes = lastHour(stats.perMinute, Date.now());
    chart.setOption({
      animation: false,
      grid: { top: 16, left: 48, right: 16, bottom: 24 },
      tooltip: { trigger: "axis" },
      xAxis: { type: "category", data: minutes.map((minute) => minute.label) },
      yAxis: { type: "value", minInterval: 1 },
      series: [
        {
          type: "bar",
          name: "events per minute",
          data: minutes.map((minute) => minute.events),
          itemStyle: { color: "#2563eb" },
        },
      ],
    });
    events.replaceChildren(resultsGrid(latest, 50));
  };
  await refresh();
  const timer = setInterval(() => void refresh().catch(() => {}), 2000);
  const observer = new ResizeObserver(() => chart.resize());
  observer.observe(chartBox);
  return () => {
    clearInterval(timer);
    observer.disconnect();
    chart.dispose();
  };
}
