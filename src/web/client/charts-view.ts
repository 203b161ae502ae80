/** Saved charts: the list, and the builder (query, type, encodings, options → preview → save). */
import { CHART_TYPES, type ChartSpec, type ChartType } from "../charts/spec.js";
import { api, can, latestOnly, type QueryResult } from "./api.js";
import { h } from "./dom.js";
import { sqlEditor } from "./editor.js";
import type { Cleanup, ViewContext } from "./main.js";
import { drawChart, resultsGrid } from "./render.js";

export interface SavedChart {
  id: number;
  name: string;
  spec: ChartSpec;
  createdBy: string | null;
  updatedAt: string;
}

export async function chartsList({ main, me }: ViewContext): Promise<Cleanup> {
  const { charts } = await api<{ charts: SavedChart[] }>("GET", "/v1/charts");
  main.append(
    h(
      "div.page-head",
      null,
      h("h1", null, "Charts"),
      can(me, "editor") ? h("a.button.primary", { href: "/charts/new" }, "New chart") : null,
    ),
    charts.length === 0
      ? h("p", null, "No charts yet.")
      : h(
          "table.list",
          null,
          h(
            "tr",
            null,
            h("th", null, "Name"),
            h("th", null, "Type"),
            h("th", null, "By"),
            h("th", null, "Changed"),
          ),
          charts.map((chart) =>
            h(
              "tr",
              null,
              h("td", null, h("a", { href: `/charts/${chart.id}` }, chart.name)),
              h("td", null, chart.spec.type),
              h("td", null, chart.createdBy ?? ""),
              h("td", null, chart.updatedAt.slice(0, 16).replace("T", " ")),
            ),
          ),
        ),
  );
  return undefined;
}

/** A chart being built: `/charts/new` (optionally `?sql=` or `?spec=`) or `/charts/<id>`. */
export async function chartView({ main, me, params, query, navigate }: ViewContext): Promise<Cleanup> {
  const existing =
    params.id === "new" ? null : (await api<{ chart: SavedChart }>("GET", `/v1/charts/${params.id}`)).chart;
  const fromUrl = query.get("spec");
  let spec: ChartSpec =
    existing?.spec ??
    (fromUrl
      ? (JSON.parse(fromUrl) as ChartSpec)
      : {
          type: "bar",
          query: {
            sql:
              query.get("sql") ??
              "select event, count(*) as events\nfrom events\ngroup by 1\norder by 2 desc\nlimit 10",
          },
        });
  const editable = can(me, "editor");
  const name = h("input#chart-name", {
    value: existing?.name ?? spec.title ?? "",
    placeholder: "Chart name",
    required: true,
  });
  const type = h(
    "select#chart-type",
    null,
    CHART_TYPES.map((t) => h("option", { value: t, selected: t === spec.type }, t)),
  );
  const x = h("input#enc-x", { value: spec.encoding?.x ?? "", placeholder: "first column" });
  const y = h("input#enc-y", { value: (spec.encoding?.y ?? []).join(", "), placeholder: "numeric columns" });
  const series = h("input#enc-series", { value: spec.encoding?.series ?? "", placeholder: "none" });
  // The encodings complete from the previewed result's columns.
  const columnNames = h("datalist#result-columns");
  for (const input of [x, y, series]) input.setAttribute("list", columnNames.id);
  const checkbox = (id: string, checked: boolean | undefined) =>
    h("input", { type: "checkbox", id, checked: Boolean(checked) });
  const stacked = checkbox("opt-stacked", spec.options?.stacked);
  const horizontal = checkbox("opt-horizontal", spec.options?.horizontal);
  const donut = checkbox("opt-donut", spec.options?.donut);
  const canvas = h("div.chart-canvas#chart-canvas");
  const table = h("div.chart-table");
  const message = h("div.message");
  const editorHost = h("div.editor");
  const isSql = "sql" in spec.query;
  const queryJson = h("textarea#query-json", {
    rows: 8,
    value: isSql ? "" : JSON.stringify(spec.query, null, 2),
  });
  let dispose = () => {};

  const current = (): ChartSpec => {
    const list = y.value
      .split(",")
      .map((one) => one.trim())
      .filter(Boolean);
    return {
      type: type.value as ChartType,
      title: name.value || undefined,
      query: isSql ? { sql: editor?.state.doc.toString() ?? "" } : JSON.parse(queryJson.value),
      encoding: {
        ...(x.value ? { x: x.value } : {}),
        ...(list.length ? { y: list } : {}),
        ...(series.value ? { series: series.value } : {}),
      },
      options: { stacked: stacked.checked, horizontal: horizontal.checked, donut: donut.checked },
    };
  };
  const latest = latestOnly();
  const preview = async () => {
    message.replaceChildren();
    try {
      spec = current();
      const result = await latest(api<QueryResult>("POST", "/v1/charts/preview", { spec }));
      dispose();
      dispose = drawChart(canvas, spec, result);
      // A table chart is its own table; other charts show their data below.
      table.replaceChildren(spec.type === "table" ? "" : resultsGrid(result, 100));
      columnNames.replaceChildren(...result.columns.map((column) => h("option", { value: column.name })));
    } catch (error) {
      message.replaceChildren(h("div.error", { role: "alert" }, (error as Error).message));
    }
  };
  const save = async () => {
    message.replaceChildren();
    try {
      spec = current();
      const body = { name: name.value, spec };
      const { chart } = existing
        ? await api<{ chart: SavedChart }>("PUT", `/v1/charts/${existing.id}`, body)
        : await api<{ chart: SavedChart }>("POST", "/v1/charts", body);
      message.replaceChildren(h("div.ok", null, `Saved "${chart.name}".`));
      if (!existing) navigate(`/charts/${chart.id}`);
    } catch (error) {
      message.replaceChildren(h("div.error", { role: "alert" }, (error as Error).message));
    }
  };
  const addTo = h("select#add-to-dashboard", null, h("option", { value: "" }, "Add to dashboard…"));
  if (existing && editable) {
    const { dashboards } = await api<{
      dashboards: { id: number; name: string; panels: { y: number; h: number }[] }[];
    }>("GET", "/v1/dashboards");
    for (const dashboard of dashboards)
      addTo.append(h("option", { value: String(dashboard.id) }, dashboard.name));
    addTo.addEventListener("change", async () => {
      const dashboard = dashboards.find((one) => String(one.id) === addTo.value);
      if (!dashboard) return;
      const bottom = Math.max(0, ...dashboard.panels.map((panel) => panel.y + panel.h));
      await api("PUT", `/v1/dashboards/${dashboard.id}`, {
        panels: [...dashboard.panels, { chartId: existing.id, x: 0, y: bottom, w: 6, h: 4 }],
      });
      navigate(`/dashboards/${dashboard.id}`);
    });
  }

  main.append(
    h("div.page-head", null, h("h1", null, existing ? existing.name : "New chart")),
    h(
      "div.builder",
      null,
      h(
        "section.form",
        null,
        h("label", null, "Name", name),
        h("label", null, "Type", type),
        isSql ? h("label", null, "SQL", editorHost) : h("label", null, "Query (JSON)", queryJson),
        h(
          "fieldset",
          null,
          h("legend", null, "Encoding"),
          h("label", null, "x", x),
          h("label", null, "y", y),
          h("label", null, "series", series),
          columnNames,
        ),
        h(
          "fieldset.options",
          null,
          h("legend", null, "Options"),
          h("label", null, stacked, " stacked"),
          h("label", null, horizontal, " horizontal"),
          h("label", null, donut, " donut"),
        ),
        h(
          "div.toolbar",
          null,
          h("button#preview", { onclick: () => void preview() }, "Preview"),
          editable ? h("button.primary#save-chart", { onclick: () => void save() }, "Save chart") : null,
          existing && editable ? addTo : null,
          existing ? h("a.button", { href: `/v1/charts/${existing.id}/svg`, target: "_blank" }, "SVG") : null,
          existing && editable
            ? h(
                "button#delete-chart",
                {
                  onclick: async () => {
                    if (!confirm(`Delete the chart "${existing.name}"?`)) return;
                    try {
                      await api("DELETE", `/v1/charts/${existing.id}`);
                      navigate("/charts");
                    } catch (error) {
                      message.replaceChildren(h("div.error", { role: "alert" }, (error as Error).message));
                    }
                  },
                },
                "Delete",
              )
            : null,
        ),
        message,
      ),
      h("section.preview", null, canvas, table),
    ),
  );
  const editor = isSql
    ? sqlEditor(editorHost, (spec.query as { sql: string }).sql, () => void preview())
    : null;
  for (const input of [type, stacked, horizontal, donut])
    input.addEventListener("change", () => void preview());
  void preview();
  return () => {
    dispose();
    editor?.destroy();
  };
}
