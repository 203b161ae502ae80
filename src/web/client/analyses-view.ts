/**
 * Questions without SQL: the event explorer, funnels and retention. Each builds a chart query
 * (`{"explore": …}`, `{"funnel": …}`, `{"retention": …}`), previews it through the API, and an
 * editor can save it as a chart. Event and property names complete from the data.
 */
import type { ChartSpec, ChartType } from "../charts/spec.js";
import { api, can, latestOnly, type QueryResult } from "./api.js";
import { h } from "./dom.js";
import type { Cleanup, ViewContext } from "./main.js";
import { drawChart, resultsGrid } from "./render.js";

type Kind = "explore" | "funnel" | "retention";

interface Properties {
  columns: string[];
  properties: string[];
  events: { event: string; count: number }[];
}

const TITLES: Record<Kind, string> = { explore: "Explore events", funnel: "Funnels", retention: "Retention" };

export async function analysisView({ main, me, navigate }: ViewContext, kind: Kind): Promise<Cleanup> {
  const known = await api<Properties>("GET", "/v1/properties");
  const eventOptions = h(
    "datalist#event-names",
    null,
    known.events.map((one) => h("option", { value: one.event }, `${one.count}`)),
  );
  const propertyOptions = h(
    "datalist#property-names",
    null,
    [...known.columns, ...known.properties].map((name) => h("option", { value: name })),
  );
  const eventInput = (id: string, value = "") =>
    h("input", { id, value, list: "event-names", placeholder: "any event", autocomplete: "off" });
  const propertyInput = (id: string, value = "") =>
    h("input", { id, value, list: "property-names", placeholder: "none", autocomplete: "off" });
  const select = (id: string, options: string[], value: string) =>
    h(
      "select",
      { id },
      options.map((option) => h("option", { value: option, selected: option === value }, option)),
    );
  const number = (id: string, value: number) =>
    h("input", { id, type: "number", value: String(value), min: "1" });

  const canvas = h("div.chart-canvas#analysis-chart");
  const table = h("div.chart-table#analysis-table");
  const message = h("div.message");
  const form = h("form.form.analysis");
  let dispose = () => {};
  let build: () => { spec: ChartSpec; name: string };

  const filterRows = h("div.filter-rows");
  const addFilter = () => {
    const property = propertyInput("", "");
    const op = select("", ["=", "!=", "contains", ">", "<", "is set", "is not set"], "=");
    // Values complete from the data, for the property chosen.
    const values = h("datalist", { id: `filter-values-${filterRows.childElementCount}-${Date.now()}` });
    const value = h("input", { placeholder: "value", autocomplete: "off" });
    value.setAttribute("list", values.id);
    value.addEventListener("focus", async () => {
      if (!property.value) return;
      const { values: found } = await api<{ values: { value: string; count: number }[] }>(
        "GET",
        `/v1/properties/${encodeURIComponent(property.value)}/values`,
      );
      values.replaceChildren(...found.map((one) => h("option", { value: one.value }, `${one.count}`)));
    });
    filterRows.append(
      h(
        "div.filter-row",
        null,
        property,
        op,
        value,
        values,
        h(
          "button",
          { type: "button", onclick: (event: Event) => (event.target as Element).parentElement?.remove() },
          "×",
        ),
      ),
    );
  };
  const filters = () =>
    [...filterRows.querySelectorAll(".filter-row")]
      .map((row) => {
        const [property, op, value] = row.querySelectorAll<HTMLInputElement>("input, select");
        return { property: property?.value ?? "", op: op?.value ?? "=", value: value?.value ?? "" };
      })
      .filter((filter) => filter.property !== "");
  const days = number("range-days", 30);

  if (kind === "explore") {
    const events = eventInput("explore-events");
    const measure = select("explore-measure", ["count", "users", "sessions", "sum", "avg"], "count");
    const property = propertyInput("explore-property");
    const breakdown = propertyInput("explore-breakdown");
    const granularity = select("explore-granularity", ["hour", "day", "week", "month", "total"], "day");
    const type = select("explore-type", ["line", "area", "bar", "table", "pie", "number"], "line");
    form.append(
      h("label", null, "Events (comma-separated)", events),
      h("label", null, "Measure", measure),
      h("label", null, "Of property (sum, avg)", property),
      h("label", null, "Breakdown by", breakdown),
      h("label", null, "Last days", days),
      h("label", null, "Granularity", granularity),
      h("label", null, "Chart", type),
    );
    build = () => {
      const explore = {
        events: events.value
          .split(",")
          .map((one) => one.trim())
          .filter(Boolean),
        measure: measure.value,
        ...(property.value ? { property: property.value } : {}),
        ...(breakdown.value ? { breakdown: breakdown.value } : {}),
        filters: filters(),
        range: { last: Number(days.value) },
        granularity: granularity.value,
      };
      const series = breakdown.value && granularity.value !== "total" ? { series: breakdown.value } : {};
      const x = granularity.value === "total" ? breakdown.value || undefined : "time";
      const name = `${measure.value} of ${explore.events.join(", ") || "all events"}${breakdown.value ? ` by ${breakdown.value}` : ""}`;
      return {
        name,
        spec: {
          type: type.value as ChartType,
          query: { explore },
          encoding: { ...(x ? { x } : {}), ...series },
        },
      };
    };
  } else if (kind === "funnel") {
    const steps = h("div.steps#funnel-steps");
    const addStep = (value = "") =>
      steps.append(
        h(
          "div.step",
          null,
          eventInput("", value),
          h(
            "button",
            { type: "button", onclick: (event: Event) => (event.target as Element).parentElement?.remove() },
            "×",
          ),
        ),
      );
    const defaults = ["Product Viewed", "Product Added", "Checkout Started", "Order Completed"].filter(
      (step) => known.events.some((one) => one.event === step),
    );
    for (const step of defaults.length >= 2 ? defaults : ["", ""]) addStep(step);
    const window = number("funnel-window", 24);
    const breakdown = propertyInput("funnel-breakdown");
    form.append(
      h(
        "fieldset",
        null,
        h("legend", null, "Steps, in order"),
        steps,
        h("button", { type: "button", id: "add-step", onclick: () => addStep() }, "+ step"),
      ),
      h("label", null, "Conversion window (hours)", window),
      h("label", null, "Breakdown by", breakdown),
      h("label", null, "Last days", days),
    );
    build = () => {
      const names = [...steps.querySelectorAll("input")].map((input) => input.value.trim()).filter(Boolean);
      const funnel = {
        steps: names,
        windowHours: Number(window.value),
        range: { last: Number(days.value) },
        filters: filters(),
        ...(breakdown.value ? { breakdown: breakdown.value } : {}),
      };
      const spec: ChartSpec = breakdown.value
        ? {
            type: "bar",
            query: { funnel },
            encoding: { x: "step_name", y: ["users"], series: breakdown.value },
          }
        : { type: "funnel", query: { funnel }, encoding: { x: "step_name", y: ["users"] } };
      return { name: `Funnel: ${names.join(" → ")}`, spec };
    };
  } else {
    const cohort = eventInput("retention-cohort");
    const back = eventInput("retention-return");
    const granularity = select("retention-granularity", ["day", "week"], "week");
    const periods = number("retention-periods", 8);
    form.append(
      h("label", null, "Cohort: first time they did", cohort),
      h("label", null, "Came back when they did", back),
      h("label", null, "Per", granularity),
      h("label", null, "Periods", periods),
    );
    build = () => {
      const retention = {
        ...(cohort.value ? { cohortEvent: cohort.value } : {}),
        ...(back.value ? { returnEvent: back.value } : {}),
        granularity: granularity.value,
        periods: Number(periods.value),
      };
      return {
        name: `Retention by ${granularity.value}`,
        spec: {
          type: "heatmap",
          query: { retention },
          encoding: { x: "period", rows: "cohort", y: ["percent"] },
        },
      };
    };
  }
  if (kind !== "retention") {
    form.append(
      h(
        "fieldset",
        null,
        h("legend", null, "Filters"),
        filterRows,
        h("button", { type: "button", id: "add-filter", onclick: addFilter }, "+ filter"),
      ),
    );
  }

  const latest = latestOnly();
  const run = async () => {
    message.replaceChildren();
    try {
      const { spec } = build();
      const result = await latest(api<QueryResult>("POST", "/v1/charts/preview", { spec }));
      dispose();
      dispose = drawChart(canvas, spec, result);
      table.replaceChildren(kind === "funnel" ? funnelTable(result) : resultsGrid(result, 500));
    } catch (error) {
      message.replaceChildren(h("div.error", { role: "alert" }, (error as Error).message));
    }
  };
  const save = async () => {
    try {
      const { spec, name } = build();
      const { chart } = await api<{ chart: { id: number } }>("POST", "/v1/charts", { name, spec });
      navigate(`/charts/${chart.id}`);
    } catch (error) {
      message.replaceChildren(h("div.error", { role: "alert" }, (error as Error).message));
    }
  };
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void run();
  });
  form.append(
    h(
      "div.toolbar",
      null,
      h("button.primary#run-analysis", { type: "submit" }, "Show"),
      can(me, "editor")
        ? h("button#save-analysis", { type: "button", onclick: () => void save() }, "Save as chart")
        : null,
    ),
    message,
  );
  main.append(
    h("h1", null, TITLES[kind]),
    eventOptions,
    propertyOptions,
    h("div.builder", null, form, h("section.preview", null, canvas, table)),
  );
  await run();
  return () => dispose();
}

/** `count` as a share of the first step's users. */
const share = (count: number, first: number) => (first ? `${((count / first) * 100).toFixed(1)}%` : "–");

/** Conversion from the first step and drop-off from the previous one, per step. */
function funnelTable(result: QueryResult): HTMLElement {
  const names = result.columns.map((column) => column.name);
  if (names.length === 4) return funnelBreakdownTable(result);
  if (names.length !== 3) return resultsGrid(result, 500);
  const step = names.indexOf("step_name");
  const users = names.indexOf("users");
  const counts = result.rows.map((row) => Number(row[users]));
  const first = counts[0] || 0;
  return h(
    "table.grid#funnel-table",
    null,
    h(
      "tr",
      null,
      h("th", null, "Step"),
      h("th.num", null, "Users"),
      h("th.num", null, "Conversion"),
      h("th.num", null, "Drop-off"),
    ),
    result.rows.map((row, index) => {
      const count = counts[index] ?? 0;
      const previous = index === 0 ? count : (counts[index - 1] ?? 0);
      return h(
        "tr",
        null,
        h("td", null, String(row[step])),
        h("td.num", null, count.toLocaleString()),
        h("td.num", null, share(count, first)),
        h(
          "td.num",
          null,
          index === 0 || !previous ? "" : `${(((previous - count) / previous) * 100).toFixed(1)}%`,
        ),
      );
    }),
  );
}

/**
 * A broken-down funnel as one row per value (largest first step first), one column per step with
 * its users and their share of the value's first step, and the value's overall conversion.
 */
function funnelBreakdownTable(result: QueryResult): HTMLElement {
  const names = result.columns.map((column) => column.name);
  const stepAt = names.indexOf("step");
  const nameAt = names.indexOf("step_name");
  const usersAt = names.indexOf("users");
  const valueAt = names.findIndex((name) => !["step", "step_name", "users"].includes(name));
  const steps: string[] = [];
  // Rows come by step, then users descending: the first step's rows put the values in order.
  const counts = new Map<string, number[]>();
  for (const row of result.rows) {
    const index = Number(row[stepAt]) - 1;
    steps[index] = String(row[nameAt]);
    const value = String(row[valueAt]);
    const perStep = counts.get(value) ?? [];
    perStep[index] = Number(row[usersAt]);
    counts.set(value, perStep);
  }
  return h(
    "table.grid#funnel-table",
    null,
    h(
      "tr",
      null,
      h("th", null, names[valueAt] ?? ""),
      steps.map((name) => h("th.num", null, name)),
      h("th.num", null, "Conversion"),
    ),
    [...counts].map(([value, perStep]) => {
      const first = perStep[0] ?? 0;
      return h(
        "tr",
        null,
        h("td", null, value),
        steps.map((_, index) => {
          const count = perStep[index] ?? 0;
          return h(
            "td.num",
            null,
            index === 0 ? count.toLocaleString() : `${count.toLocaleString()} (${share(count, first)})`,
          );
        }),
        h("td.num", null, share(perStep[steps.length - 1] ?? 0, first)),
      );
    }),
  );
}
