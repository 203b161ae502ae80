/**
 * Dashboards: a 12-column grid of saved charts. Filters (date range and the dashboard's own, such
 * as country) apply to every panel and live in the URL (`?country=NL&from=2026-11-01`), so a
 * link reproduces the view. Editors drag panels by their title to move them and by the corner to
 * resize them, then save the layout.
 */
import type { ChartSpec } from "../charts/spec.js";
import { api, can, latestOnly, type QueryResult } from "./api.js";
import { h } from "./dom.js";
import type { Cleanup, ViewContext } from "./main.js";
import { drawChart } from "./render.js";

interface Panel {
  chartId: number;
  x: number;
  y: number;
  w: number;
  h: number;
}

interface Dashboard {
  id: number;
  name: string;
  description: string;
  panels: Panel[];
  filters: { name: string; label?: string; default?: string }[];
  refreshSeconds: number;
}

interface PanelData extends Partial<QueryResult> {
  chartId: number;
  error?: string;
}

const COLUMNS = 12;
const ROW_PX = 80;
const RANGES = ["", "24h", "7d", "30d", "90d"];
const REFRESH = [0, 10, 30, 60, 300];

export async function dashboardsList({ main, me, navigate }: ViewContext): Promise<Cleanup> {
  const { dashboards } = await api<{ dashboards: Dashboard[] }>("GET", "/v1/dashboards");
  const name = h("input#new-dashboard-name", { placeholder: "New dashboard name" });
  const message = h("div.message");
  const create = async (event: Event) => {
    event.preventDefault();
    try {
      const { dashboard } = await api<{ dashboard: Dashboard }>("POST", "/v1/dashboards", {
        name: name.value,
      });
      navigate(`/dashboards/${dashboard.id}?edit=1`);
    } catch (error) {
      message.replaceChildren(h("div.error", { role: "alert" }, (error as Error).message));
    }
  };
  main.append(
    h("h1", null, "Dashboards"),
    h(
      "div.cards",
      null,
      dashboards.map((dashboard) =>
        h(
          "a.card",
          { href: `/dashboards/${dashboard.id}` },
          h("h3", null, dashboard.name),
          h("p", null, dashboard.description || `${dashboard.panels.length} charts`),
        ),
      ),
    ),
    can(me, "editor")
      ? h(
          "form.inline",
          { onsubmit: create },
          name,
          h("button.primary#create-dashboard", null, "Create"),
          message,
        )
      : "",
  );
  return undefined;
}

export async function dashboardView({ main, me, params, query, navigate }: ViewContext): Promise<Cleanup> {
  const { dashboard, charts } = await api<{
    dashboard: Dashboard;
    charts: { id: number; name: string; spec: ChartSpec }[];
  }>("GET", `/v1/dashboards/${params.id}`);
  const chartsById = new Map(charts.map((chart) => [chart.id, chart]));
  let panels = dashboard.panels.map((panel) => ({ ...panel }));
  let editing = query.get("edit") === "1" && can(me, "editor");
  const disposers = new Map<number, () => void>();
  let lastData = new Map<number, PanelData>();

  // ---- filters, mirrored in the URL
  const filterValues = new URLSearchParams(location.search);
  filterValues.delete("edit");
  const from = h("input#filter-from", { type: "date", value: filterValues.get("from") ?? "" });
  const to = h("input#filter-to", { type: "date", value: filterValues.get("to") ?? "" });
  const last = h(
    "select#filter-last",
    null,
    RANGES.map((range) =>
      h(
        "option",
        { value: range, selected: range === (filterValues.get("last") ?? "") },
        range ? `last ${range}` : "all time",
      ),
    ),
  );
  const refreshSelect = h(
    "select#refresh",
    null,
    REFRESH.map((seconds) =>
      h(
        "option",
        {
          value: String(seconds),
          selected: seconds === Number(filterValues.get("refresh") ?? dashboard.refreshSeconds),
        },
        seconds ? `every ${seconds < 60 ? `${seconds}s` : `${seconds / 60} min`}` : "no auto-refresh",
      ),
    ),
  );
  const propertyInputs = dashboard.filters.map((filter) => {
    const list = h("datalist", { id: `values-${filter.name}` });
    const input = h("input", {
      id: `filter-${filter.name}`,
      name: filter.name,
      value: filterValues.get(filter.name) ?? filter.default ?? "",
      placeholder: "any",
      list: `values-${filter.name}`,
      autocomplete: "off",
    });
    input.setAttribute("list", list.id);
    input.addEventListener("focus", async () => {
      if (list.childElementCount > 0) return;
      const { values } = await api<{ values: { value: string; count: number }[] }>(
        "GET",
        `/v1/properties/${encodeURIComponent(filter.name)}/values`,
      );
      list.replaceChildren(...values.map((one) => h("option", { value: one.value }, `${one.count}`)));
    });
    return { filter, input, list };
  });
  // URL filters the dashboard does not offer still apply (a shared link reproduces the view): shown as chips.
  const offered = new Set([
    "from",
    "to",
    "last",
    "refresh",
    ...dashboard.filters.map((filter) => filter.name),
  ]);
  const extra = new Map([...filterValues].filter(([name]) => !offered.has(name)));
  const chips = h("span.chips");
  const drawChips = () =>
    chips.replaceChildren(
      ...[...extra].map(([name, value]) =>
        h(
          "span.chip",
          null,
          `${name} = ${value} `,
          h(
            "button",
            {
              type: "button",
              title: "remove filter",
              onclick: () => {
                extra.delete(name);
                drawChips();
                void load();
              },
            },
            "×",
          ),
        ),
      ),
    );
  drawChips();
  const currentFilters = (): URLSearchParams => {
    const values = new URLSearchParams();
    for (const [name, value] of extra) values.set(name, value);
    if (from.value) values.set("from", from.value);
    if (to.value) values.set("to", to.value);
    if (last.value) values.set("last", last.value);
    for (const { filter, input } of propertyInputs)
      if (input.value.trim()) values.set(filter.name, input.value.trim());
    if (Number(refreshSelect.value) !== dashboard.refreshSeconds) values.set("refresh", refreshSelect.value);
    return values;
  };
  const status = h("span.status#dashboard-status");

  // ---- the grid
  const grid = h("div.dash-grid#dashboard-grid");
  const layout = () => {
    for (const element of grid.querySelectorAll<HTMLElement>(".panel")) {
      const panel = panels.find((one) => String(one.chartId) === element.dataset.chart);
      if (!panel) continue;
      element.style.gridColumn = `${panel.x + 1} / span ${panel.w}`;
      element.style.gridRow = `${panel.y + 1} / span ${panel.h}`;
    }
  };
  const cellAt = (event: PointerEvent) => {
    const box = grid.getBoundingClientRect();
    return {
      column: Math.floor(((event.clientX - box.left) / box.width) * COLUMNS),
      row: Math.floor((event.clientY - box.top) / ROW_PX),
    };
  };
  const drag = (panel: Panel, mode: "move" | "resize") => (down: PointerEvent) => {
    if (!editing) return;
    down.preventDefault();
    const start = cellAt(down);
    const origin = { ...panel };
    const move = (event: PointerEvent) => {
      const cell = cellAt(event);
      if (mode === "move") {
        panel.x = clamp(origin.x + cell.column - start.column, 0, COLUMNS - panel.w);
        panel.y = Math.max(0, origin.y + cell.row - start.row);
      } else {
        panel.w = clamp(origin.w + cell.column - start.column, 1, COLUMNS - panel.x);
        panel.h = clamp(origin.h + cell.row - start.row, 1, 20);
      }
      layout();
    };
    const up = () => {
      window.removeEventListener("pointermove", move);
      window.removeEventListener("pointerup", up);
      panels = settle(panels, panel);
      layout();
    };
    window.addEventListener("pointermove", move);
    window.addEventListener("pointerup", up);
  };
  const drawPanels = () => {
    for (const dispose of disposers.values()) dispose();
    disposers.clear();
    grid.replaceChildren();
    grid.classList.toggle("editing", editing);
    for (const panel of panels) {
      const chart = chartsById.get(panel.chartId);
      const body = h("div.panel-body");
      const element = h(
        "div.panel",
        { "data-chart": String(panel.chartId) },
        h(
          "div.panel-head",
          { onpointerdown: drag(panel, "move") },
          // While editing, the title is the drag handle, not a link.
          editing
            ? h("span", null, chart?.name ?? `chart ${panel.chartId}`)
            : h("a", { href: `/charts/${panel.chartId}` }, chart?.name ?? `chart ${panel.chartId}`),
          editing
            ? h(
                "button.remove",
                {
                  title: "remove from dashboard",
                  onpointerdown: (event: Event) => event.stopPropagation(),
                  onclick: () => {
                    panels = panels.filter((one) => one !== panel);
                    drawPanels();
                  },
                },
                "×",
              )
            : null,
        ),
        body,
        editing ? h("div.resize", { onpointerdown: drag(panel, "resize"), title: "drag to resize" }) : null,
      );
      grid.append(element);
      const data = lastData.get(panel.chartId);
      if (chart && data) showPanel(panel.chartId, body, chart.spec, chart.name, data);
    }
    layout();
  };
  const showPanel = (chartId: number, body: HTMLElement, spec: ChartSpec, name: string, data: PanelData) => {
    disposers.get(chartId)?.();
    if (data.error) {
      body.replaceChildren(h("div.error", null, data.error));
      return;
    }
    disposers.set(chartId, drawChart(body, { ...spec, title: undefined }, data as QueryResult));
    body.title = `${name}: ${data.cached ? "cached" : `${data.ms} ms`}`;
  };

  // Filters changed while a load was computed: the newer load's answer is the one to show,
  // even when the older one arrives after it.
  const latest = latestOnly();
  const load = async () => {
    const filters = currentFilters();
    const search = filters.toString();
    history.replaceState(
      null,
      "",
      `${location.pathname}${search ? `?${search}` : ""}${editing ? `${search ? "&" : "?"}edit=1` : ""}`,
    );
    status.textContent = "Loading…";
    try {
      const result = await latest(
        api<{ panels: PanelData[]; ms: number }>(
          "GET",
          `/v1/dashboards/${dashboard.id}/data${search ? `?${search}` : ""}`,
        ),
      );
      lastData = new Map(result.panels.map((panel) => [panel.chartId, panel]));
      const cached = result.panels.filter((panel) => panel.cached).length;
      status.textContent = `Updated ${new Date().toLocaleTimeString()} · ${result.ms} ms · ${cached}/${result.panels.length} from cache`;
      drawPanels();
    } catch (error) {
      status.textContent = (error as Error).message;
    }
  };

  // ---- editing
  const editBar = h("div.toolbar.edit-bar");
  const drawEditBar = async () => {
    editBar.replaceChildren();
    if (!can(me, "editor")) return;
    if (!editing) {
      editBar.append(
        h(
          "button#edit-layout",
          {
            onclick: () => {
              editing = true;
              void drawEditBar();
              drawPanels();
            },
          },
          "Edit",
        ),
      );
      return;
    }
    const { charts: all } = await api<{ charts: { id: number; name: string; spec: ChartSpec }[] }>(
      "GET",
      "/v1/charts",
    );
    const add = h(
      "select#add-chart",
      null,
      h("option", { value: "" }, "Add a chart…"),
      all.map((chart) => h("option", { value: String(chart.id) }, chart.name)),
    );
    add.addEventListener("change", () => {
      const chart = all.find((one) => String(one.id) === add.value);
      if (!chart || panels.some((panel) => panel.chartId === chart.id)) return;
      chartsById.set(chart.id, chart);
      panels.push({
        chartId: chart.id,
        x: 0,
        y: Math.max(0, ...panels.map((panel) => panel.y + panel.h)),
        w: 6,
        h: 4,
      });
      void load();
    });
    const message = h("span.message");
    const known = await api<{ columns: string[]; properties: string[] }>("GET", "/v1/properties");
    const names = h(
      "datalist#filter-names",
      null,
      [...known.columns, ...known.properties].map((name) => h("option", { value: name })),
    );
    const newFilter = h("input#new-filter", {
      placeholder: "offer a filter, e.g. country",
      autocomplete: "off",
    });
    newFilter.setAttribute("list", names.id);
    const save = async (extra: Record<string, unknown> = {}) => {
      await api("PUT", `/v1/dashboards/${dashboard.id}`, {
        panels,
        refreshSeconds: Number(refreshSelect.value),
        ...extra,
      });
      dashboard.refreshSeconds = Number(refreshSelect.value);
    };
    editBar.append(
      add,
      newFilter,
      names,
      h(
        "button#add-filter",
        {
          onclick: async () => {
            if (!newFilter.value.trim()) return;
            try {
              await save({ filters: [...dashboard.filters, { name: newFilter.value.trim() }] });
              navigate(`${location.pathname}?edit=1`);
            } catch (error) {
              message.textContent = (error as Error).message;
            }
          },
        },
        "Add filter",
      ),
      h(
        "button#delete-dashboard",
        {
          onclick: async () => {
            if (!confirm(`Delete the dashboard "${dashboard.name}"? Its charts stay.`)) return;
            await api("DELETE", `/v1/dashboards/${dashboard.id}`);
            navigate("/dashboards");
          },
        },
        "Delete",
      ),
      h(
        "button.primary#save-layout",
        {
          onclick: async () => {
            try {
              await save();
              editing = false;
              message.textContent = "";
              void drawEditBar();
              void load();
            } catch (error) {
              message.textContent = (error as Error).message;
            }
          },
        },
        "Save layout",
      ),
      message,
    );
  };

  main.append(
    h("div.page-head", null, h("h1", null, dashboard.name), editBar),
    dashboard.description ? h("p.description", null, dashboard.description) : "",
    h(
      "form.filters#filters",
      {
        onsubmit: (event: Event) => {
          event.preventDefault();
          void load();
        },
      },
      h("label", null, "From", from),
      h("label", null, "To", to),
      h("label", null, "Range", last),
      propertyInputs.map(({ filter, input, list }) =>
        h("label", null, filter.label ?? filter.name, input, list),
      ),
      chips,
      h("button.primary#apply-filters", { type: "submit" }, "Apply"),
      refreshSelect,
      status,
    ),
    grid,
  );
  void drawEditBar();
  await load();
  let timer: ReturnType<typeof setInterval> | undefined;
  const schedule = () => {
    clearInterval(timer);
    const seconds = Number(refreshSelect.value);
    if (seconds > 0) timer = setInterval(() => void load(), seconds * 1000);
  };
  refreshSelect.addEventListener("change", () => {
    schedule();
    void load();
  });
  for (const control of [from, to, last]) control.addEventListener("change", () => void load());
  schedule();
  return () => {
    clearInterval(timer);
    for (const dispose of disposers.values()) dispose();
  };
}

const clamp = (value: number, min: number, max: number): number => Math.max(min, Math.min(max, value));

const overlaps = (a: Panel, b: Panel): boolean =>
  a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;

/** After `moved` changed, pushes the panels it overlaps down until none overlap. */
export function settle(panels: Panel[], moved: Panel): Panel[] {
  const placed: Panel[] = [moved];
  const rest = panels.filter((panel) => panel !== moved).sort((a, b) => a.y - b.y || a.x - b.x);
  for (const panel of rest) {
    while (placed.some((other) => overlaps(panel, other))) panel.y += 1;
    placed.push(panel);
  }
  return panels;
}
