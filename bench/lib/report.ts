/**
 * What every benchmark prints: the machine, the parameters, then its figures
 * as Markdown tables (goal and PASS/MISS beside each) ready for BENCHMARKS.md.
 */
import { readFileSync } from "node:fs";
import { availableParallelism, cpus, loadavg, release, tmpdir, totalmem, type } from "node:os";
import { version as duckdbVersion } from "@duckdb/node-api";
import { formatParams } from "./params.js";

export interface Figure {
  measure: string;
  value: string;
  /** e.g. "≥ 150,000 events/s"; empty for context figures without a goal. */
  goal?: string;
  /** undefined for context figures. */
  pass?: boolean;
}

export function printHeader(
  title: string,
  summary: string,
  params: Record<string, number | string | boolean>,
): void {
  console.log(`\n## ${title} — ${new Date().toISOString().slice(0, 16).replace("T", " ")} UTC\n`);
  console.log(`${summary}\n`);
  console.log(machineTable());
  console.log(`\nParameters: \`${formatParams(params) || "(defaults)"}\`\n`);
}

export function machineTable(): string {
  const cpu = cpus()[0]?.model.trim() ?? "unknown";
  const rows: [string, string][] = [
    ["CPU", `${cpu}, ${availableParallelism()} cores`],
    ["RAM", `${(totalmem() / 2 ** 30).toFixed(1)} GiB`],
    ["OS", `${osName()} (${type()} ${release()})`],
    ["Disk (temp dir)", `${tmpdir()} on ${filesystemOf(tmpdir())}`],
    ["Node", process.version],
    ["DuckDB", duckdbVersion()],
    // Other work on the machine skews every figure: show how busy it was when this run started.
    ["Load average at start (1/5 min)", loadAverage()],
  ];
  return table(
    ["machine", ""],
    rows.map(([key, value]) => [key, value]),
  );
}

/** Figures as a table: measure | result | goal | verdict. */
export function figuresTable(figures: Figure[]): string {
  return table(
    ["measure", "result", "goal", ""],
    figures.map((figure) => [
      figure.measure,
      figure.value,
      figure.goal ?? "",
      figure.pass === undefined ? "" : figure.pass ? "PASS" : "**MISS**",
    ]),
  );
}

export function table(header: string[], rows: string[][]): string {
  const line = (cells: string[]) => `| ${cells.map((cell) => cell.replaceAll("|", "\\|")).join(" | ")} |`;
  return [line(header), line(header.map(() => "---")), ...rows.map(line)].join("\n");
}

export const formatInt = (value: number): string => Math.round(value).toLocaleString("en-US");
export const formatMs = (value: number): string =>
  value >= 100
    ? `${Math.round(value)} ms`
    : value >= 10
      ? `${value.toFixed(1)} ms`
      : `${value.toFixed(2)} ms`;
export const formatMiB = (bytes: number | null): string =>
  bytes === null ? "n/a" : `${formatInt(bytes / 2 ** 20)} MiB`;

/** Distribution helpers over unsorted samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) return Number.NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  // Nearest-rank: the smallest sample with at least p% of samples at or below it.
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1] ?? Number.NaN;
}

export const median = (samples: readonly number[]): number => {
  const sorted = [...samples].sort((a, b) => a - b);
  const middle = sorted.length / 2;
  return sorted.length % 2 === 1
    ? (sorted[Math.floor(middle)] ?? Number.NaN)
    : ((sorted[middle - 1] ?? Number.NaN) + (sorted[middle] ?? Number.NaN)) / 2;
};

export const geometricMean = (values: readonly number[]): number =>
  Math.exp(values.reduce((sum, value) => sum + Math.log(value), 0) / values.length);

function osName(): string {
  try {
    const text = readFileSync("/etc/os-release", "utf8");
    return /^PRETTY_NAME="?([^"\n]*)"?/m.exec(text)?.[1] ?? type();
  } catch {
    return type();
  }
}

/** The filesystem type holding `path` (fsync cost depends on it), from /proc/mounts. */
function filesystemOf(path: string): string {
  try {
    let best = { mount: "", fs: "unknown", device: "" };
    for (const line of readFileSync("/proc/mounts", "utf8").split("\n")) {
      const [device, mount, fs] = line.split(" ");
      if (!device || !mount || !fs) continue;
      const covers = path === mount || path.startsWith(mount.endsWith("/") ? mount : `${mount}/`);
      if (covers && mount.length >= best.mount.length) best = { mount, fs, device };
    }
    return `${best.fs} (${best.device})`;
  } catch {
    return "unknown";
  }
}

/** The 1- and 5-minute load averages, "0.52 / 1.54". */
export function loadAverage(): string {
  return loadavg()
    .slice(0, 2)
    .map((load) => load.toFixed(2))
    .join(" / ");
}
