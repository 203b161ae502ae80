/**
 * `npm run bench -- quality`: what profiling costs next to loading. N realistic shop events
 * (default 10M, the query benchmark's shop) are staged first (not timed), then loaded into the
 * `events` table in `--loads` loads through the lake writer and catalog, as the loader writes
 * them (sorted, zstd, partitioned by day, one commit each), on one DuckDB thread as the
 * server's loader has. Then every partition the loads touched is profiled once, on one thread
 * as the server's QualityWatcher does: the profiling cost of that whole load. Then once more,
 * as after a next load, when the previous profiles tell which columns' values to count.
 *
 * The loader's own JSON parsing is not part of the timed load here, so the load is faster
 * than a real one and the share is an upper bound.
 */
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { TableDef } from "../src/catalog/index.js";
import { openSqliteCatalog } from "../src/catalog/index.js";
import { DEFAULTS } from "../src/config/index.js";
import { writeParquet } from "../src/lake/index.js";
import { openQuality } from "../src/quality/index.js";
import { LAKE_TABLES } from "../src/server/runtime.js";
import { createEngine, sqlString } from "../src/warehouse/index.js";
import { onCleanup } from "./lib/cleanup.js";
import type { ParamSpecs, ParamValues } from "./lib/params.js";
import { type Figure, figuresTable, formatInt, formatMs, printHeader } from "./lib/report.js";
import { shopEventsSql } from "./lib/synthetic-lake.js";

export const qualityParams = {
  events: { default: 10_000_000, help: "events loaded" },
  days: { default: 30, help: "days the events span (one partition each)" },
  users: { default: 100_000, help: "distinct people" },
  loads: { default: 20, help: "loads the events arrive in" },
  "sample-rows": {
    default: DEFAULTS.profile_sample_rows,
    help: "profile_sample_rows: larger partitions are profiled on a sample of about this many rows",
  },
} satisfies ParamSpecs;

type QualityParams = ParamValues<typeof qualityParams>;

const GOAL_SHARE = 0.1;

const EVENTS = LAKE_TABLES.find((table) => table.name === "events") as TableDef;

export async function runQuality(params: QualityParams): Promise<void> {
  printHeader(
    "quality",
    "Profiling every partition a load touched, against the load itself (both on one DuckDB thread).",
    params,
  );
  const dir = await mkdtemp(join(tmpdir(), "sluice-bench-quality-"));
  const removeDir = onCleanup(() => rm(dir, { recursive: true, force: true }));
  const lakeRoot = join(dir, "lake");
  const stagingDir = join(dir, "staging");
  await mkdir(stagingDir, { recursive: true });
  const catalog = openSqliteCatalog(join(dir, "catalog.db"));
  await catalog.ensureTable(EVENTS);
  const stager = await createEngine();
  const loadEngine = await createEngine({ threads: 1 });
  try {
    const shape = {
      events: params.events,
      days: params.days,
      users: params.users,
      firstDay: new Date(Date.now() - params.days * 86_400_000).toISOString().slice(0, 10),
    };
    const staged: string[] = [];
    const staging = await stager.connect();
    // The shop's SQL draws every value from a hash (see bench/lib/synthetic-lake.ts).
    await staging.run("CREATE OR REPLACE TEMP MACRO draw(x, salt) AS (hash(x, salt) % 1000003) / 1000003.0");
    for (let load = 0; load < params.loads; load++) {
      const file = join(stagingDir, `load-${load}.parquet`);
      await staging.run(
        `COPY (${shopEventsSql(shape, load, params.loads)}) TO ${sqlString(file)} (FORMAT parquet)`,
      );
      staged.push(file);
    }
    staging.closeSync();
    console.log(`staged ${formatInt(params.events)} events in ${params.loads} files`);

    const connection = await loadEngine.connect();
    let loadMs = 0;
    let rows = 0;
    for (const [index, file] of staged.entries()) {
      const started = performance.now();
      const files = await writeParquet(connection, {
        lakeRoot,
        table: EVENTS,
        prefix: `load-${index}`,
        selectSql: `SELECT * FROM read_parquet(${sqlString(file)})`,
      });
      await catalog.commit({ table: "events", operation: "load", add: files });
      loadMs += performance.now() - started;
      rows += files.reduce((sum, written) => sum + written.rows, 0);
    }
    connection.closeSync();
    console.log(`loaded ${formatInt(rows)} events in ${formatMs(loadMs)}`);

    const quality = await openQuality({
      config: { ...DEFAULTS, data_dir: dir, profile_sample_rows: params["sample-rows"] },
      catalog,
      threads: 1,
      projectDir: dir,
    });
    const started = performance.now();
    const profiles = await quality.profileTable("events");
    const profileMs = performance.now() - started;
    // The next load's profiles know the low-cardinality columns from these ones.
    const againStarted = performance.now();
    await quality.profileTable("events", { force: true });
    const againMs = performance.now() - againStarted;
    await quality.close();
    const largest = profiles.reduce(
      (max, profile) => (profile.rows > max.rows ? profile : max),
      profiles[0] ?? {
        rows: 0,
        durationMs: 0,
      },
    );
    const share = profileMs / loadMs;
    const figures: Figure[] = [
      {
        measure: "load (lake writer + commit, 1 thread)",
        value: `${formatMs(loadMs)} (${formatInt((rows / loadMs) * 1000)} events/s)`,
      },
      {
        measure: "partitions profiled (sampled)",
        value: `${profiles.length} (${profiles.filter((profile) => profile.sampledRows !== null).length})`,
      },
      {
        measure: "profiling them (1 thread)",
        value: `${formatMs(profileMs)} (${formatInt((rows / profileMs) * 1000)} rows/s)`,
      },
      {
        measure: "profiling them again (as after the next load: previous profiles known)",
        value: `${formatMs(againMs)} (${((againMs / loadMs) * 100).toFixed(1)}% of the load time)`,
      },
      {
        measure: "profiling as a share of load time",
        value: `${(share * 100).toFixed(1)}%`,
        goal: `≤ ${GOAL_SHARE * 100}%`,
        pass: share <= GOAL_SHARE,
      },
      {
        measure: `steady state: the largest partition (${formatInt(largest.rows)} rows) profiled once a minute`,
        value: `${formatMs(largest.durationMs)} per minute (${((largest.durationMs / 60_000) * 100).toFixed(1)}% of a core)`,
      },
    ];
    console.log(figuresTable(figures));
  } finally {
    await catalog.close();
    stager.closeSync();
    loadEngine.closeSync();
    await removeDir();
  }
}
