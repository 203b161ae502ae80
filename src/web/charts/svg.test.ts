import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { bigNumber, type ChartSpec, chartOption, specProblem } from "./spec.js";
import { renderChartSvg } from "./svg.js";

const days = {
  columns: [
    { name: "day", type: "TIMESTAMP WITH TIME ZONE" },
    { name: "country", type: "VARCHAR" },
    { name: "orders", type: "BIGINT" },
  ],
  rows: [
    ["2026-11-23 00:00:00+00", "NL", 5],
    ["2026-11-23 00:00:00+00", "DE", 7],
    ["2026-11-24 00:00:00+00", "NL", 9],
  ],
};
const size = { width: 640, height: 320 };
const sql = { sql: "select 1" };

describe("chart specs rendered to SVG on the server", () => {
  test("a stacked bar chart has one series per value of the series column, with the values", async () => {
    const spec: ChartSpec = {
      type: "bar",
      title: "Orders",
      query: sql,
      encoding: { x: "day", series: "country", y: ["orders"] },
      options: { stacked: true },
    };
    const option = chartOption(spec, days) as {
      series: { name: string; data: unknown[]; stack?: string }[];
      xAxis: { data: string[] };
    };
    assert.deepEqual(option.xAxis.data, ["2026-11-23", "2026-11-24"], "midnight timestamps show as days");
    assert.deepEqual(
      option.series.map((one) => [one.name, one.data, one.stack]),
      [
        ["NL", [5, 9], "total"],
        ["DE", [7, null], "total"],
      ],
    );
    const svg = await renderChartSvg(spec, days, size);
    assert.match(svg, /^<svg[^>]+width="640"[^>]+height="320"/);
    assert.match(svg, />Orders</);
    assert.match(svg, />2026-11-24</);
    assert.ok((svg.match(/<path/g) ?? []).length >= 3, "bars are drawn");
  });

  test("every chart type renders without a browser", async () => {
    const specs: ChartSpec[] = [
      { type: "line", query: sql, encoding: { x: "day", y: ["orders"] } },
      { type: "area", query: sql, encoding: { x: "day", series: "country" } },
      { type: "bar", query: sql, encoding: { x: "country" }, options: { horizontal: true } },
      { type: "pie", query: sql, encoding: { x: "country", y: ["orders"] }, options: { donut: true } },
      { type: "funnel", query: sql, encoding: { x: "country", y: ["orders"] } },
      { type: "heatmap", query: sql, encoding: { x: "day", rows: "country", y: ["orders"] } },
      { type: "number", query: sql, encoding: { y: ["orders"] } },
      { type: "table", title: "Raw", query: sql },
    ];
    for (const spec of specs) {
      const svg = await renderChartSvg(spec, days, size);
      assert.match(svg, /^<svg[\s\S]*<\/svg>$/, spec.type);
    }
    const table = await renderChartSvg({ type: "table", title: "Raw <rows>", query: sql }, days, size);
    assert.match(table, />Raw &#60;rows&#62;</, "text is escaped");
    assert.match(table, />NL</);
  });

  test("a big number shows the latest value and its change from the one before", async () => {
    const spec: ChartSpec = { type: "number", query: sql, encoding: { y: ["orders"] } };
    assert.deepEqual(bigNumber(spec, days), { value: 9, previous: 7, change: 2 / 7 });
    const oneRow = {
      columns: [
        { name: "orders", type: "BIGINT" },
        { name: "before", type: "BIGINT" },
      ],
      rows: [[80, 100]],
    };
    assert.equal(bigNumber({ type: "number", query: sql }, oneRow).change, -0.2);
    const svg = await renderChartSvg({ type: "number", query: sql, options: { unit: "EUR" } }, oneRow, size);
    assert.match(svg, />80 EUR</);
    assert.match(svg, /▼ 20\.0% vs previous/);
  });

  test("specProblem names what is wrong", () => {
    assert.equal(specProblem({ type: "bar", query: { sql: "select 1" } }), null);
    assert.match(String(specProblem({ type: "radar", query: sql })), /"type" must be one of line, area/);
    assert.match(String(specProblem({ type: "bar" })), /"query" must be an object/);
    assert.match(String(specProblem({ type: "bar", query: { sql: "x", explore: {} } })), /exactly one of/);
    assert.match(
      String(specProblem({ type: "bar", query: sql, encoding: { y: "orders" } })),
      /"encoding.y" must be a list/,
    );
  });
});
