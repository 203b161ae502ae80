/**
 * Charts as SVG on the server, with ECharts' own server-side renderer and the same option the
 * browser draws (`chartOption`), so an e-mailed report shows what the dashboard shows.
 */
import { type ChartSpec, chartOption, label, type ResultLike } from "./spec.js";

export interface SvgSize {
  width: number;
  height: number;
}

const TABLE_ROWS = 20;
const ROW_HEIGHT = 22;

/** ECharts is loaded on first use: most processes (the CLI) never draw a chart. */
export async function renderChartSvg(spec: ChartSpec, result: ResultLike, size: SvgSize): Promise<string> {
  const option = chartOption(spec, result);
  if (option === null) return tableSvg(spec, result, size);
  const echarts = await import("echarts");
  const chart = echarts.init(null, null, {
    renderer: "svg",
    ssr: true,
    width: size.width,
    height: size.height,
  });
  try {
    chart.setOption(option);
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}

/** A table's first rows as SVG text: columns share the width evenly. */
function tableSvg(spec: ChartSpec, result: ResultLike, { width, height }: SvgSize): string {
  const columns = result.columns.map((column) => column.name);
  const columnWidth = width / Math.max(columns.length, 1);
  const top = spec.title ? 32 : 8;
  const lines: string[] = [];
  if (spec.title) lines.push(text(8, 20, spec.title, 'font-size="14" font-weight="600"'));
  const cells = (values: string[], y: number, attributes: string) =>
    values
      .map((value, index) => text(8 + index * columnWidth, y, clip(value, columnWidth), attributes))
      .join("");
  lines.push(cells(columns, top + 14, 'font-size="12" font-weight="600" fill="#374151"'));
  const fit = Math.max(0, Math.floor((height - top - ROW_HEIGHT) / ROW_HEIGHT));
  result.rows.slice(0, Math.min(TABLE_ROWS, fit)).forEach((row, index) => {
    lines.push(cells(row.map(label), top + 14 + (index + 1) * ROW_HEIGHT, 'font-size="12" fill="#111827"'));
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="system-ui, sans-serif"><rect width="100%" height="100%" fill="#fff"/>${lines.join("")}</svg>`;
}

/** Text cut to what fits a column (about 7 px per character at 12 px). */
const clip = (value: string, width: number): string => {
  const fits = Math.max(3, Math.floor((width - 12) / 7));
  return value.length > fits ? `${value.slice(0, fits - 1)}…` : value;
};

const text = (x: number, y: number, content: string, attributes: string): string =>
  `<text x="${x.toFixed(1)}" y="${y}" ${attributes}>${escapeXml(content)}</text>`;

const escapeXml = (value: string): string => value.replace(/[<>&"']/g, (char) => `&#${char.charCodeAt(0)};`);
