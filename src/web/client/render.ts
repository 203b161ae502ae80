/** Drawing results: the sortable grid, and charts from a chart spec with ECharts. */
import * as echarts from "echarts";
import { type ChartSpec, chartOption, isNumericType, label } from "../charts/spec.js";
import type { QueryResult } from "./api.js";
import { h } from "./dom.js";

/** A results table whose column headers sort it (click again to reverse). */
export function resultsGrid(result: QueryResult, maxRows = 1000): HTMLElement {
  let sortColumn = -1;
  let descending = false;
  const wrapper = h("div.grid-wrap");
  const draw = () => {
    const rows = [...result.rows];
    if (sortColumn >= 0) {
      const numeric = isNumericType(result.columns[sortColumn]?.type ?? "");
      rows.sort((a, b) => {
        const x = a[sortColumn];
        const y = b[sortColumn];
        if (x === y) return 0;
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        const order = numeric ? Number(x) - Number(y) : String(x).localeCompare(String(y));
        return descending ? -order : order;
      });
    }
    const header = h(
      "tr",
      null,
      result.columns.map((column, index) =>
        h(
          "th",
          {
            title: `${column.type}: click to sort`,
            className: isNumericType(column.type) ? "num" : "",
            onclick: () => {
              descending = sortColumn === index ? !descending : false;
              sortColumn = index;
              draw();
            },
          },
          column.name,
          sortColumn === index ? (descending ? " ▼" : " ▲") : "",
        ),
      ),
    );
    const body = rows.slice(0, maxRows).map((row) =>
      h(
        "tr",
        null,
        row.map((value, index) =>
          h(
            "td",
            { className: isNumericType(result.columns[index]?.type ?? "") ? "num" : "" },
            value === null
              ? h("span.null", null, "null")
              : typeof value === "object"
                ? JSON.stringify(value)
                : String(value),
          ),
        ),
      ),
    );
    wrapper.replaceChildren(h("table.grid", null, h("thead", null, header), h("tbody", null, body)));
  };
  draw();
  return wrapper;
}

/** Draws a spec over its result into `container`; returns a function that disposes of the chart. */
export function drawChart(container: HTMLElement, spec: ChartSpec, result: QueryResult): () => void {
  container.replaceChildren();
  const option = chartOption(spec, result);
  if (option === null) {
    container.append(resultsGrid(result, 200));
    return () => {};
  }
  const chart = echarts.init(container, null, { renderer: "canvas" });
  chart.setOption(option);
  const observer = new ResizeObserver(() => chart.resize());
  observer.observe(container);
  return () => {
    observer.disconnect();
    chart.dispose();
  };
}

export { label };
