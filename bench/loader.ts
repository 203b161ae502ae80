/**
 * `npm run bench -- loader`: what loading costs, the work that bounds how many events per second
 * Sluice can take in for good (a burst is acknowledged faster, then loaded). Realistic shop events
 * are prepared by the collector's own code into bus lines (not timed) and appended to a real bus.
 * Then the real `Loader` moves them into the lake on one DuckDB thread (`loader_duckdb_threads`),
 * as the lake process does: JSON parsing, sessions, zstd Parquet, fsyncs and catalog commits.
 *
 * 1. A burst: all the events at once, in micro-batches of up to `--batch-mb`.
 * 2. Baseline, before and after the burst: DuckDB alone on the same lines, `read_json` straight
 *    into one zstd Parquet file (no sessions, no catalog, no fsync): the least any loader does.
 * 3. Steady trickle: `--ticks` flushes of `--tick-events` events each, with the burst's visitors
 *    in the session state, as a server sees between bursts. Its CPU per flush is what the loader
 *    costs at the default flush interval however little comes in.
 * 4. Compaction of all those files, as when their day has gone cold: what rewriting an event once
 *    costs (a hot day's events are rewritten about twice while it fills).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { openEmbeddedBus, type Topic } from "../src/bus/index.js";
import { openSqliteCatalog, type TableDef } from "../src/catalog/index.js";
import { Deduper } from "../src/collect/dedupe.js";
import { DEFAULT_ENRICHMENT } from "../src/collect/enrich.js";
import { DEFAULT_LIMITS, prepare } from "../src/collect/prepare.js";
import { DEFAULTS } from "../src/config/index.js";
import { Compactor, Loader } from "../src/lake/index.js";
import { LAKE_TABLES } from "../src/server/runtime.js";
import { createEngine, sqlString } from "../src/warehouse/index.js";
import { onCleanup } from "./lib/cleanup.js";
import { basicAuth } from "./lib/client.js";
import type { ParamSpecs, ParamValues } from "./lib/params.js";
import { type Figure, figuresTable, formatInt, percentile, printHeader } from "./lib/report.js";
import { SegmentEventFactory } from "./lib/segment-events.js";

export const loaderParams = {
  events: { default: 400_000, help: "events in the burst" },
  "batch-mb": { default: 64, help: "largest micro-batch in MB (the loader's own limit: 64)" },
  ticks: { default: 40, help: "flushes in the steady trickle" },
  "tick-events": { default: 20, help: "events per flush in the steady trickle" },
} satisfies ParamSpecs;

type LoaderParams = ParamValues<typeof loaderParams>;

const EVENTS = LAKE_TABLES.find((table) => table.name === "events") as TableDef;
const WRITE_KEY = "bench";
const LINES_PER_APPEND = 100;

export async function runLoader(params: LoaderParams): Promise<void> {
  printHeader(
    "loader",
    "Bus → lake on one DuckDB thread (the lake process's default), with the real loader, bus and catalog; " +
      "DuckDB alone on the same lines as the baseline.",
    params,
  );
  const dir = await mkdtemp(join(tmpdir(), "sluice-bench-loader-"));
  const removeDir = onCleanup(() => rm(dir, { recursive: true, force: true }));
  const threads = DEFAULTS.loader_duckdb_threads;
  const bus = await openEmbeddedBus({ dir: join(dir, "bus") });
  const catalog = openSqliteCatalog(join(dir, "catalog.db"));
  const engine = await createEngine({ threads, tempDir: join(dir, "tmp") });
  const baselineEngine = await createEngine({ threads, tempDir: join(dir, "tmp") });
  try {
    console.error("bench: preparing the events with the collector's code...");
    const trickleEvents = params.ticks * params["tick-events"];
    const lines = busLines(params.events + trickleEvents);
    const burst = lines.slice(0, params.events);
    const stagedBurst = join(dir, "burst.ndjson");
    await writeFile(stagedBurst, burst.join(""));
    const bytesPerEvent = Buffer.byteLength(burst.join("")) / burst.length;

    const topic = await bus.topic("events");
    await appendAll(topic, burst);
    const loader = new Loader({
      topic,
      catalog,
      engine,
      lakeRoot: join(dir, "lake"),
      table: EVENTS,
      maxBatchBytes: params["batch-mb"] * 1024 * 1024,
      sessionTimeoutMs: DEFAULTS.session_timeout_minutes * 60_000,
    });
    await loader.init();

    console.error(`bench: baseline, then the burst of ${formatInt(burst.length)} events, then baseline...`);
    const before = await baseline(baselineEngine, stagedBurst, join(dir, "baseline.parquet"));
    const load = await measure(() => loader.loadAvailable());
    const after = await baseline(baselineEngine, stagedBurst, join(dir, "baseline.parquet"));
    if (load.result !== burst.length)
      throw new Error(`the loader loaded ${load.result} of ${burst.length} events`);
    const perEvent = (load.cpuMs * 1000) / burst.length;
    const baselinePerEvent = (((before.cpuMs + after.cpuMs) / 2) * 1000) / burst.length;
    const visitors = loader.sessionVisitors();

    console.error(`bench: ${params.ticks} flushes of ${params["tick-events"]} events...`);
    const tickCpuMs: number[] = [];
    for (let tick = 0; tick < params.ticks; tick++) {
      const from = params.events + tick * params["tick-events"];
      await appendAll(topic, lines.slice(from, from + params["tick-events"]));
      const flush = await measure(() => loader.loadAvailable());
      tickCpuMs.push(flush.cpuMs);
    }
    console.error("bench: compacting the day's files into one...");
    const filesBefore = (await catalog.liveFiles("events")).length;
    const compactor = new Compactor({ catalog, engine, lakeRoot: join(dir, "lake"), tables: [EVENTS] });
    const compaction = await measure(() => compactor.runOnce({ force: true }));
    const liveFiles = await catalog.liveFiles("events");
    const lakeRows = liveFiles.reduce((sum, file) => sum + file.rows, 0);
    const expected = burst.length + trickleEvents;

    const tickMedian = percentile(tickCpuMs, 50);
    const figures: Figure[] = [
      {
        measure: "events in the burst; bus line size",
        value: `${formatInt(burst.length)}; ${bytesPerEvent.toFixed(0)} B`,
      },
      { measure: "burst: loader CPU per event", value: `${perEvent.toFixed(1)} µs` },
      {
        measure: `burst: events loaded per second (${threads} DuckDB thread${threads === 1 ? "" : "s"})`,
        value: formatInt(burst.length / (load.wallMs / 1000)),
      },
      {
        measure: "baseline: DuckDB alone, read_json → zstd Parquet, CPU per event",
        value: `${baselinePerEvent.toFixed(1)} µs (the loader: ${(perEvent / baselinePerEvent).toFixed(2)}×)`,
      },
      {
        measure: `trickle: CPU per flush of ${params["tick-events"]} events, ${formatInt(visitors)} visitors in the session state (p50 / p95)`,
        value: `${tickMedian.toFixed(1)} / ${percentile(tickCpuMs, 95).toFixed(1)} ms`,
      },
      {
        measure: `trickle: share of a core at the default flush interval (${DEFAULTS.flush_interval_ms} ms)`,
        value: `${((100 * tickMedian) / DEFAULTS.flush_interval_ms).toFixed(0)}%`,
      },
      {
        measure: `compaction: CPU per event rewritten (${formatInt(filesBefore)} files merged into ${formatInt(liveFiles.length)}, sorted)`,
        value: `${((compaction.cpuMs * 1000) / expected).toFixed(1)} µs`,
      },
      {
        measure: "rows in the lake",
        value: `${formatInt(lakeRows)} of ${formatInt(expected)}`,
        goal: "all",
        pass: lakeRows === expected,
      },
    ];
    console.log(figuresTable(figures));
    if (lakeRows !== expected) process.exitCode = 1;
  } finally {
    engine.closeSync();
    baselineEngine.closeSync();
    await catalog.close();
    await bus.close();
    await removeDir();
  }
}

/** Bus lines of `count` realistic events, as the collector encodes them (enrichment on, as by default). */
function busLines(count: number): string[] {
  const factory = new SegmentEventFactory(7);
  const settings = {
    writeKeys: new Map([[WRITE_KEY, "default"]]),
    limits: DEFAULT_LIMITS,
    enrichment: DEFAULT_ENRICHMENT,
    dedupeSeeds: new Deduper().seeds,
  };
  const lines: string[] = [];
  const now = Date.now();
  for (let request = 0; lines.length < count; request++) {
    const batch = Array.from({ length: Math.min(100, count - lines.length) }, (_, index) =>
      factory.next(`load-${request}-${index}`, { now }),
    );
    const prepared = prepare(
      {
        method: "POST",
        path: "/v1/batch",
        query: "",
        authorization: basicAuth(WRITE_KEY),
        contentEncoding: undefined,
        contentType: "application/json",
        userAgent: undefined,
        cookie: undefined,
        anonymous: false,
        body: Buffer.from(JSON.stringify({ batch })),
        remoteAddress: "203.0.113.7",
        receivedAtMs: now,
      },
      settings,
    );
    const text = prepared.eventLines.toString();
    lines.push(
      ...text
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => `${line}\n`),
    );
  }
  return lines;
}

async function appendAll(topic: Topic, lines: readonly string[]): Promise<void> {
  for (let at = 0; at < lines.length; at += LINES_PER_APPEND) {
    await topic.appendLines(Buffer.from(lines.slice(at, at + LINES_PER_APPEND).join("")));
  }
}

/** CPU of this process (DuckDB's threads included) and wall time of `work`. */
async function measure<T>(work: () => Promise<T>): Promise<{ result: T; cpuMs: number; wallMs: number }> {
  const cpu = process.cpuUsage();
  const started = performance.now();
  const result = await work();
  const used = process.cpuUsage(cpu);
  return { result, cpuMs: (used.user + used.system) / 1000, wallMs: performance.now() - started };
}

async function baseline(
  engine: Awaited<ReturnType<typeof createEngine>>,
  staged: string,
  target: string,
): Promise<{ cpuMs: number }> {
  const columns = EVENTS.columns.map((column) => `${sqlString(column.name)}: ${sqlString(column.type)}`);
  const connection = await engine.connect();
  try {
    return await measure(() =>
      connection.run(
        `COPY (SELECT * FROM read_json(${sqlString(staged)}, format = 'newline_delimited', columns = {${columns.join(", ")}}))
         TO ${sqlString(target)} (FORMAT parquet, COMPRESSION zstd)`,
      ),
    );
  } finally {
    connection.closeSync();
  }
}
