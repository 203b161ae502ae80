/**
 * A quick reading of a V8 `.cpuprofile` (from `node --cpu-prof`): where the
 * server's main thread spent its time, by function and by area of the code.
 */
import { readdir, readFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { table } from "./report.js";

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string };
  hitCount?: number;
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export async function findProfile(dir: string): Promise<string | null> {
  const files = (await readdir(dir)).filter((name) => name.endsWith(".cpuprofile"));
  return files[0] ? join(dir, files[0]) : null;
}

/** Markdown tables of the hottest functions and areas by self time, as shares of busy (non-idle) time. */
export async function summarizeProfile(path: string, repoRoot: string, top = 15): Promise<string> {
  const profile = JSON.parse(await readFile(path, "utf8")) as CpuProfile;
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const selfMicros = new Map<number, number>();
  profile.samples.forEach((id, i) => {
    selfMicros.set(id, (selfMicros.get(id) ?? 0) + (profile.timeDeltas[i] ?? 0));
  });
  const byFunction = new Map<string, number>();
  const byArea = new Map<string, number>();
  let busy = 0;
  for (const [id, micros] of selfMicros) {
    const frame = byId.get(id)?.callFrame;
    if (!frame || frame.functionName === "(idle)" || frame.functionName === "(program)") continue;
    busy += micros;
    const file = displayPath(frame.url, repoRoot);
    // Line numbers of tsx-compiled sources do not map back to the .ts files: name and file only.
    const name = `${frame.functionName || "(anonymous)"} ${file}`.trim();
    byFunction.set(name, (byFunction.get(name) ?? 0) + micros);
    const area = areaOf(frame.functionName, file);
    byArea.set(area, (byArea.get(area) ?? 0) + micros);
  }
  const wall = profile.endTime - profile.startTime;
  const rows = (map: Map<string, number>, limit: number) =>
    [...map.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, limit)
      .map(([name, micros]) => [name, `${((100 * micros) / busy).toFixed(1)}%`]);
  return [
    `Server main thread busy ${(busy / 1e6).toFixed(1)} s of ${(wall / 1e6).toFixed(1)} s profiled` +
      " (DuckDB and libuv worker threads are not in this profile).",
    "",
    table(["area (self time)", "share of busy"], rows(byArea, 12)),
    "",
    table(["function (self time)", "share of busy"], rows(byFunction, top)),
  ].join("\n");
}

function displayPath(url: string, repoRoot: string): string {
  if (!url) return "";
  const path = url.startsWith("file://") ? fileURLToPath(url) : url;
  return path.startsWith(repoRoot) ? relative(repoRoot, path) : path;
}

/** Groups code by who owns it: a src/ folder, a package, Node's internals, or V8 itself. */
function areaOf(functionName: string, file: string): string {
  if (!file) return functionName.startsWith("(") ? functionName : "(native/V8)";
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(file);
  if (pkg?.[1]) return `package ${pkg[1]}`;
  const src = /^src\/([^/]+)/.exec(file);
  if (src?.[1]) return `src/${src[1]}`;
  if (file.startsWith("node:")) return `node:${file.slice(5).split("/")[1] ?? file.slice(5)}`;
  return file;
}
