/**
 * `npm run bench -- <name> [flags]`: runs one benchmark (or `all`) and prints
 * its figures as Markdown for BENCHMARKS.md. Exit code 1 on bad usage or when
 * a benchmark finds wrong results (lost events, differing answers); a goal
 * that is merely missed is reported as MISS with exit code 0.
 */
import { dashboardParams, runDashboard } from "./dashboard.js";
import { freshnessParams, runFreshness } from "./freshness.js";
import { ingestParams, runIngest } from "./ingest.js";
import { runCleanups } from "./lib/cleanup.js";
import { describeParams, type ParamSpecs, parseParams, UsageError } from "./lib/params.js";
import { loaderParams, runLoader } from "./loader.js";
import { qualityParams, runQuality } from "./quality.js";
import { queryParams, runQuery } from "./query.js";
import { runSources, sourcesParams } from "./sources.js";
import { runSqlPaths, sqlPathsParams } from "./sql-paths.js";
import { runTrackers, trackersParams } from "./trackers.js";
import { runTransform, transformParams } from "./transform.js";

interface Benchmark {
  summary: string;
  params: ParamSpecs;
  // biome-ignore lint/suspicious/noExplicitAny: each benchmark takes its own typed parameters.
  run(params: any): Promise<void>;
}

const BENCHMARKS: Record<string, Benchmark> = {
  ingest: {
    summary:
      "durable ingest: 100-event batches and 1-event requests; every acknowledged event checked in the lake",
    params: ingestParams,
    run: runIngest,
  },
  loader: {
    summary:
      "bus → lake: the loader's CPU per event in a burst and per flush in a trickle, beside DuckDB alone",
    params: loaderParams,
    run: runLoader,
  },
  freshness: {
    summary: "time from acknowledgement to visible in a query",
    params: freshnessParams,
    run: runFreshness,
  },
  query: {
    summary: "eleven analytic queries through /v1/query vs. DuckDB directly on the same Parquet",
    params: queryParams,
    run: runQuery,
  },
  dashboard: {
    summary: "the Shop overview dashboard's load (all panels), p50/p95 cold and cached",
    params: dashboardParams,
    run: runDashboard,
  },
  transform: {
    summary:
      "sluice build of a 30-model project vs. the same SQL in DuckDB directly; compile of 1,000 models",
    params: transformParams,
    run: runTransform,
  },
  sources: {
    summary: "sluice load of a CSV file and sluice sync of a PostgreSQL table, beside DuckDB's readers",
    params: sourcesParams,
    run: runSources,
  },
  "sql-paths": {
    summary:
      "small-query latency and large-result rows/s over the Postgres protocol, HTTP and in-process DuckDB",
    params: sqlPathsParams,
    run: runSqlPaths,
  },
  trackers: {
    summary: "Snowplow tp2 POST and pixel GET requests/s; Segment batches with enrichment on vs off",
    params: trackersParams,
    run: runTrackers,
  },
  quality: {
    summary: "profiling every partition a load touched, as a share of the load's time",
    params: qualityParams,
    run: runQuality,
  },
};

function usage(): string {
  const sections = Object.entries(BENCHMARKS).map(
    ([name, benchmark]) => `  ${name}: ${benchmark.summary}\n${describeParams(benchmark.params)}`,
  );
  return [
    "usage: npm run bench -- <name> [flags]",
    "",
    "benchmarks:",
    ...sections,
    "  all: every benchmark above, in turn (flags of each apply)",
    "",
  ].join("\n");
}

async function main(argv: string[]): Promise<number> {
  const [name, ...flags] = argv;
  if (name === "--help" || name === "-h" || name === "help") {
    console.log(usage());
    return 0;
  }
  const selected =
    name === "all" ? Object.keys(BENCHMARKS) : name !== undefined && name in BENCHMARKS ? [name] : null;
  if (!selected) {
    console.error(name === undefined ? "bench: which benchmark?" : `bench: unknown benchmark "${name}"`);
    console.error(usage());
    return 1;
  }
  // Parse every selected benchmark's flags first, so a typo fails before minutes of work.
  const allSpecs = Object.assign({}, ...selected.map((key) => BENCHMARKS[key]?.params)) as ParamSpecs;
  const values = parseParams(allSpecs, flags);
  for (const key of selected) {
    const benchmark = BENCHMARKS[key] as Benchmark;
    const own = Object.fromEntries(Object.keys(benchmark.params).map((param) => [param, values[param]]));
    await benchmark.run(own);
  }
  return 0;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (error) {
  if (error instanceof UsageError) {
    console.error(`bench: ${error.message}\n\n${usage()}`);
  } else {
    console.error(
      `\nbench: FAILED: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
    );
  }
  process.exitCode = 1;
} finally {
  await runCleanups();
}
