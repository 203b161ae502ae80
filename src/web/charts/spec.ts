/**
 * The chart specification: one JSON format for every chart, saved by the HTTP API, drawn by
 * ECharts in the browser and by ECharts' server-side renderer into SVG (for e-mailed reports).
 * `chartOption` turns a spec and its query's result into an ECharts option; it is plain code with
 * no imports, so the browser bundle and the server run exactly the same function.
 *
 * ```json
 * {"type": "bar", "title": "Orders by country",
 *  "query": {"sql": "select country, count(*) as orders from events group by 1"},
 *  "encoding": {"x": "country", "y": ["orders"]}, "options": {"stacked": false}}
 * ```
 */

export const CHART_TYPES = ["line", "area", "bar", "pie", "number", "table", "funnel", "heatmap"] as const;
export type ChartType = (typeof CHART_TYPES)[number];

export interface ChartSpec {
  type: ChartType;
  title?: string;
  /** What to show: SQL, or a question of the explorer, funnels or retention (compiled to SQL by the server). */
  query: ChartQuery;
  encoding?: Encoding;
  options?: ChartOptions;
}

export type ChartQuery =
  | { sql: string }
  | { explore: Record<string, unknown> }
  | { funnel: Record<string, unknown> }
  | { retention: Record<string, unknown> };

export interface Encoding {
  /** The category or time column (x axis; pie slices; funnel steps; heatmap columns). Default: the first column. */
  x?: string;
  /** Value columns (one series each). Default: every numeric column but x and series. */
  y?: string[];
  /** A column whose values split the rows into series (long format, e.g. day, country, orders). */
  series?: string;
  /** Heatmap: the row category column. */
  rows?: string;
}

export interface ChartOptions {
  /** Bar and area: stack the series (default for area); bars are grouped otherwise. */
  stacked?: boolean;
  /** Bar: horizontal bars. */
  horizontal?: boolean;
  /** Pie: a donut. */
  donut?: boolean;
  /** Big number: show the change from the previous row. Default true. */
  trend?: boolean;
  /** Big number: a word after the value, e.g. "EUR". */
  unit?: string;
}

export interface ResultLike {
  columns: { name: string; type: string }[];
  rows: unknown[][];
}

/** Why a value is not a valid chart spec, or null. */
export function specProblem(value: unknown): string | null {
  if (typeof value !== "object" || value === null || Array.isArray(value))
    return "a chart spec must be an object";
  const spec = value as Record<string, unknown>;
  if (!CHART_TYPES.includes(spec.type as ChartType)) {
    return `"type" must be one of ${CHART_TYPES.join(", ")}`;
  }
  if (spec.title !== undefined && typeof spec.title !== "string") return '"title" must be a string';
  const query = spec.query as Record<string, unknown> | undefined;
  if (typeof query !== "object" || query === null) {
    return '"query" must be an object: {"sql": "..."}, {"explore": {...}}, {"funnel": {...}} or {"retention": {...}}';
  }
  const kinds = ["sql", "explore", "funnel", "retention"].filter((key) => key in query);
  if (kinds.length !== 1) return '"query" must have exactly one of sql, explore, funnel, retention';
  if ("sql" in query && (typeof query.sql !== "string" || query.sql.trim() === "")) {
    return '"query.sql" must be a non-empty string';
  }
  for (const kind of ["explore", "funnel", "retention"]) {
    if (kind in query && (typeof query[kind] !== "object" || query[kind] === null)) {
      return `"query.${kind}" must be an object`;
    }
  }
  const encoding = spec.encoding as Record<string, unknown> | undefined;
  if (encoding !== undefined) {
    if (typeof encoding !== "object" || encoding === null) return '"encoding" must be an object';
    for (const key of ["x", "series", "rows"]) {
      if (encoding[key] !== undefined && typeof encoding[key] !== "string")
        return `"encoding.${key}" must be a column name`;
    }
    if (
      encoding.y !== undefined &&
      !(Array.isArray(encoding.y) && encoding.y.every((y) => typeof y === "string"))
    ) {
      return '"encoding.y" must be a list of column names';
    }
  }
  if (spec.options !== undefined && (typeof spec.options !== "object" || spec.options === null)) {
    return '"options" must be an object';
  }
  return null;
}

const NUMERIC_TYPE =
  /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|UHUGEINT|FLOAT|DOUBLE|DECIMAL.*)$/i;

export const isNumericType = (type: string): boolean => NUMERIC_TYPE.test(type);

/** The columns a spec draws, with defaults filled from the result. */
export function resolveEncoding(
  spec: ChartSpec,
  result: ResultLike,
): Required<Pick<Encoding, "x" | "y">> & Encoding {
  const names = result.columns.map((column) => column.name);
  const encoding = spec.encoding ?? {};
  // A big number has no x axis: its default leaves every numeric column to y.
  const firstX =
    spec.type === "number" ? result.columns.find((column) => !isNumericType(column.type))?.name : names[0];
  const x = encoding.x && names.includes(encoding.x) ? encoding.x : (firstX ?? "");
  const taken = new Set([x, encoding.series, encoding.rows]);
  const y =
    encoding.y && encoding.y.length > 0
      ? encoding.y.filter((name) => names.includes(name))
      : result.columns
          .filter((column) => !taken.has(column.name) && isNumericType(column.type))
          .map((column) => column.name);
  return { ...encoding, x, y };
}

/** A value as a short label: dates without midnight times, numbers with separators. */
export function label(value: unknown): string {
  if (value === null || value === undefined) return "(none)";
  if (typeof value === "number")
    return Number.isInteger(value)
      ? value.toLocaleString("en-US")
      : value.toLocaleString("en-US", { maximumFractionDigits: 2 });
  const text = String(value);
  const midnight = /^(\d{4}-\d{2}-\d{2})[ T]00:00:00(?:\.0+)?(?:Z|[+-]00(?::?00)?)?$/.exec(text);
  if (midnight) return midnight[1] as string;
  const time = /^(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2})(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}(?::?\d{2})?)?$/.exec(
    text,
  );
  if (time) return `${time[1]} ${time[2]}`;
  return text;
}

const toNumber = (value: unknown): number | null => {
  if (value === null || value === undefined || value === "") return null;
  const number = Number(value);
  return Number.isFinite(number) ? number : null;
};

const PALETTE = [
  "#2563eb",
  "#f59e0b",
  "#10b981",
  "#ef4444",
  "#8b5cf6",
  "#06b6d4",
  "#ec4899",
  "#84cc16",
  "#64748b",
  "#f97316",
];

/** The big number's figures: the latest value and its change from the one before. */
export function bigNumber(
  spec: ChartSpec,
  result: ResultLike,
): { value: number | null; change: number | null; previous: number | null } {
  const { y } = resolveEncoding(spec, result);
  const name = y[0];
  const index = result.columns.findIndex((column) => column.name === name);
  if (index < 0 || result.rows.length === 0) return { value: null, change: null, previous: null };
  const values = result.rows.map((row) => toNumber(row[index]));
  const value = values.at(-1) ?? null;
  let previous: number | null = null;
  if (values.length >= 2) previous = values.at(-2) ?? null;
  else if (y[1] !== undefined) {
    // One row with two measures: the second is the comparison (e.g. this week, last week).
    const second = result.columns.findIndex((column) => column.name === y[1]);
    previous = toNumber(result.rows[0]?.[second]);
  }
  const change =
    value !== null && previous !== null && previous !== 0 ? (value - previous) / Math.abs(previous) : null;
  return { value, change, previous };
}

/**
 * The ECharts option that draws `spec` over `result`, or null for a table (drawn as HTML in
 * the browser, as SVG text on the server).
 */
export function chartOption(spec: ChartSpec, result: ResultLike): Record<string, unknown> | null {
  const options = spec.options ?? {};
  const base = {
    color: PALETTE,
    animation: false,
    textStyle: { fontFamily: "system-ui, sans-serif" },
    title: spec.title
      ? { text: spec.title, left: 8, top: 4, textStyle: { fontSize: 14, fontWeight: 600 } }
      : undefined,
  };
  const top = spec.title ? 40 : 16;
  if (spec.type === "table") return null;
  if (spec.type === "number") {
    const { value, change } = bigNumber(spec, result);
    const text = value === null ? "–" : `${label(value)}${options.unit ? ` ${options.unit}` : ""}`;
    const elements: Record<string, unknown>[] = [
      {
        type: "text",
        left: "center",
        top: "38%",
        style: { text, fontSize: 40, fontWeight: 700, fill: "#111827" },
      },
    ];
    if (options.trend !== false && change !== null) {
      const up = change >= 0;
      elements.push({
        type: "text",
        left: "center",
        top: "64%",
        style: {
          text: `${up ? "▲" : "▼"} ${Math.abs(change * 100).toFixed(1)}% vs previous`,
          fontSize: 14,
          fill: up ? "#059669" : "#dc2626",
        },
      });
    }
    return { ...base, graphic: { elements } };
  }
  const encoding = resolveEncoding(spec, result);
  const column = (name: string | undefined) => result.columns.findIndex((c) => c.name === name);
  const xIndex = column(encoding.x);
  if (spec.type === "pie" || spec.type === "funnel") {
    const valueIndex = column(encoding.y[0]);
    const data = result.rows.map((row) => ({
      name: label(row[xIndex]),
      value: toNumber(row[valueIndex]) ?? 0,
    }));
    if (spec.type === "pie") {
      return {
        ...base,
        tooltip: { trigger: "item" },
        legend: { type: "scroll", bottom: 0 },
        series: [
          {
            type: "pie",
            // Room around it for the labels outside, in panels as small as the legend below.
            radius: options.donut ? ["38%", "60%"] : "60%",
            center: ["50%", "48%"],
            data,
            label: { formatter: "{b}\n{d}%" },
          },
        ],
      };
    }
    const first = data[0]?.value || 0;
    return {
      ...base,
      tooltip: { trigger: "item" },
      series: [
        {
          type: "funnel",
          sort: "none",
          top,
          bottom: 8,
          left: "4%",
          width: "56%",
          data,
          label: {
            position: "right",
            color: "#111827",
            formatter: (params: { name: string; value: number }) =>
              `${params.name}: ${label(params.value)}${first ? ` (${((params.value / first) * 100).toFixed(1)}%)` : ""}`,
          },
        },
      ],
    };
  }
  if (spec.type === "heatmap") {
    const rowsName =
      encoding.rows ?? result.columns.find((c) => c.name !== encoding.x && !isNumericType(c.type))?.name;
    const rowIndex = column(rowsName);
    const valueIndex = column(encoding.y.find((name) => name !== rowsName));
    const xs = unique(result.rows.map((row) => label(row[xIndex])));
    const ys = unique(result.rows.map((row) => label(row[rowIndex])));
    const values = result.rows.map((row) => [
      xs.indexOf(label(row[xIndex])),
      ys.indexOf(label(row[rowIndex])),
      toNumber(row[valueIndex]),
    ]);
    const numbers = values.map((value) => value[2]).filter((value): value is number => value !== null);
    const min = Math.min(0, ...numbers);
    const max = Math.max(1, ...numbers);
    return {
      ...base,
      tooltip: { position: "top" },
      grid: { top, left: 90, right: 16, bottom: 72 },
      xAxis: { type: "category", data: xs, splitArea: { show: true } },
      yAxis: { type: "category", data: ys, inverse: true, splitArea: { show: true } },
      // The scale's ends as texts beside it: a calculable one's handle labels overlap the x axis.
      visualMap: {
        min,
        max,
        text: [compact(max), compact(min)],
        orient: "horizontal",
        left: "center",
        bottom: 0,
        itemHeight: 80,
        inRange: { color: ["#eff6ff", "#1d4ed8"] },
      },
      series: [
        {
          type: "heatmap",
          data: values,
          label: {
            show: xs.length * ys.length <= 200,
            formatter: (p: { value: number[] }) => label(p.value[2]),
          },
        },
      ],
    };
  }
  // line, area, bar: one series per y column, or per value of the series column.
  const categories = unique(result.rows.map((row) => label(row[xIndex])));
  const series: { name: string; data: (number | null)[] }[] = [];
  const seriesIndex = column(encoding.series);
  if (seriesIndex >= 0) {
    const valueIndex = column(encoding.y[0]);
    const byName = new Map<string, (number | null)[]>();
    for (const row of result.rows) {
      const name = label(row[seriesIndex]);
      let data = byName.get(name);
      if (!data) {
        data = categories.map(() => null);
        byName.set(name, data);
      }
      data[categories.indexOf(label(row[xIndex]))] = toNumber(row[valueIndex]);
    }
    for (const [name, data] of byName) series.push({ name, data });
  } else {
    for (const name of encoding.y) {
      const index = column(name);
      const data = categories.map(() => null as number | null);
      for (const row of result.rows) data[categories.indexOf(label(row[xIndex]))] = toNumber(row[index]);
      series.push({ name, data });
    }
  }
  const stacked = options.stacked ?? spec.type === "area";
  const horizontal = spec.type === "bar" && options.horizontal === true;
  const categoryAxis = {
    type: "category",
    data: categories,
    boundaryGap: spec.type === "bar",
    axisLabel: { hideOverlap: true },
  };
  const valueAxis = { type: "value", axisLabel: { formatter: (value: number) => compact(value) } };
  return {
    ...base,
    tooltip: { trigger: "axis" },
    legend: series.length > 1 ? { type: "scroll", bottom: 0 } : undefined,
    // Right: room for half of the last category's label, centred on the axis' end.
    grid: { top, left: 16, right: 40, bottom: series.length > 1 ? 40 : 16, containLabel: true },
    xAxis: horizontal ? valueAxis : categoryAxis,
    yAxis: horizontal ? { ...categoryAxis, inverse: true } : valueAxis,
    series: series.map((one) => ({
      name: one.name,
      type: spec.type === "bar" ? "bar" : "line",
      data: one.data,
      stack: stacked ? "total" : undefined,
      areaStyle: spec.type === "area" ? { opacity: 0.35 } : undefined,
      showSymbol: categories.length <= 31,
      smooth: false,
    })),
  };
}

/** 1234567 → "1.2M". */
export function compact(value: number): string {
  const abs = Math.abs(value);
  for (const [size, suffix] of [
    [1e9, "B"],
    [1e6, "M"],
    [1e3, "k"],
  ] as const) {
    if (abs >= size) return `${Number((value / size).toFixed(1))}${suffix}`;
  }
  return String(Number(value.toFixed(2)));
}

function unique(values: string[]): string[] {
  return [...new Set(values)];
}
