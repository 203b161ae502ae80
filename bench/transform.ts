/**
 * `npm run bench -- transform`: what Sluice's build adds on top of DuckDB. Builds a lake of
 * N realistic events (default 10M), generates a 30-model project over it (staging, sessions,
 * people, daily and weekly rollups, KPIs; all tables, with tests), then times
 *  - `sluice build` of the project (Builder: compile, write Parquet, audit tests, commit), and
 *  - the same SQL statements (Sluice's own compiled SQL, `CREATE TABLE … AS`, then the
 *    same test queries) run directly in a DuckDB database file over the same Parquet files, as
 *    `dbt build` with dbt-duckdb would run them,
 * alternately, with the same thread count; both sides must produce the same row counts.
 * Then compiles a generated 1,000-model project (parse + render every model).
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { performance } from "node:perf_hooks";
import { DuckDBInstance } from "@duckdb/node-api";
import { openSqliteCatalog } from "../src/catalog/index.js";
import { Builder, loadProject, openSqliteTransformStore } from "../src/transform/index.js";
import { createEngine } from "../src/warehouse/index.js";
import { onCleanup } from "./lib/cleanup.js";
import { sqlString } from "./lib/client.js";
import type { ParamSpecs, ParamValues } from "./lib/params.js";
import { type Figure, figuresTable, formatInt, formatMs, printHeader, table } from "./lib/report.js";
import { buildShopLake } from "./lib/synthetic-lake.js";

export const transformParams = {
  events: { default: 10_000_000, help: "events in the lake the models read" },
  days: { default: 30, help: "days the events span" },
  users: { default: 100_000, help: "distinct people" },
  threads: { default: 2, help: "DuckDB threads, the same on both sides" },
  runs: { default: 2, help: "timed builds per side, alternating; the fastest counts" },
  "compile-models": { default: 1000, help: "models in the generated project whose compile is timed" },
} satisfies ParamSpecs;

type TransformParams = ParamValues<typeof transformParams>;

const GOAL_RATIO = 1.2;
const GOAL_COMPILE_MS = 2000;

const DIMENSIONS = ["event", "event_type", "country", "device_type", "browser", "os", "page_path", "source"];

/** The 30 models: name → SQL (dbt style). */
function shopModels(): Record<string, string> {
  const models: Record<string, string> = {
    stg_events: `select event_id, event_type, event, coalesce(user_id, anonymous_id) as person, session_id, ts, dt,
  country, device_type, browser, os, page_path, source,
  try_cast(json_extract_string(properties, '$.revenue') as double) as revenue
from {{ source('sluice', 'events') }}`,
    sessions: `select session_id, any_value(person) as person, min(ts) as started_at, max(ts) as ended_at,
  count(*) as events, sum(coalesce(revenue, 0)) as revenue, min(dt) as day
from {{ ref('stg_events') }} where session_id is not null group by session_id`,
    people: `select person, min(ts) as first_seen, max(ts) as last_seen, count(*) as events,
  count(distinct session_id) as sessions, sum(coalesce(revenue, 0)) as revenue
from {{ ref('stg_events') }} where person is not null group by person`,
    sessions_daily: `select day, count(*) as sessions, avg(epoch(ended_at - started_at)) as avg_seconds, sum(revenue) as revenue
from {{ ref('sessions') }} group by day`,
    people_daily: `select cast(first_seen as date) as day, count(*) as new_people, sum(revenue) as revenue
from {{ ref('people') }} group by 1`,
    funnel_daily: `select dt as day,
  count(distinct case when event = 'Product Viewed' then person end) as viewed,
  count(distinct case when event = 'Product Added' then person end) as added,
  count(distinct case when event = 'Order Completed' then person end) as ordered
from {{ ref('stg_events') }} group by dt`,
    kpi_daily: `select s.day, s.sessions, s.revenue, p.new_people, f.viewed, f.added, f.ordered
from {{ ref('sessions_daily') }} s
left join {{ ref('people_daily') }} p using (day)
left join {{ ref('funnel_daily') }} f using (day)`,
  };
  for (const dimension of DIMENSIONS) {
    models[`daily_by_${dimension}`] =
      `select dt as day, ${dimension}, count(*) as events, count(distinct person) as people
from {{ ref('stg_events') }} group by all`;
    models[`top_${dimension}`] =
      `select ${dimension}, sum(events) as events from {{ ref('daily_by_${dimension}') }}
group by all order by events desc limit 100`;
  }
  for (const dimension of DIMENSIONS.slice(0, 7)) {
    models[`weekly_by_${dimension}`] =
      `select date_trunc('week', day) as week, ${dimension}, sum(events) as events
from {{ ref('daily_by_${dimension}') }} group by all`;
  }
  return models;
}

async function writeFiles(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), content);
  }
}

export async function runTransform(params: TransformParams): Promise<void> {
  printHeader(
    "transform",
    "`sluice build` of a 30-model project (tables, write-audit-publish with tests) vs. the same compiled SQL as " +
      "`CREATE TABLE … AS` in a DuckDB database file over the same Parquet files; compile time of a 1,000-model project.",
    params,
  );
  const dir = await mkdtemp(join(tmpdir(), "sluice-bench-transform-"));
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  const dataDir = join(dir, "data");
  const lakeRoot = join(dataDir, "lake");
  await mkdir(lakeRoot, { recursive: true });
  const catalog = openSqliteCatalog(join(dataDir, "catalog.db"));
  onCleanup(() => catalog.close());
  const store = openSqliteTransformStore(join(dataDir, "catalog.db"));
  onCleanup(() => store.close());
  const engine = await createEngine({ threads: params.threads });
  onCleanup(() => engine.closeSync());
  await buildShopLake({
    engine,
    catalog,
    lakeRoot,
    shape: { events: params.events, days: params.days, users: params.users, firstDay: "2026-10-01" },
    chunks: 1,
    log: (message) => console.error(`bench: ${message}`),
  });

  const models = shopModels();
  const projectDir = join(dir, "project");
  const schema = [
    "version: 2",
    "sources:",
    "  - name: sluice",
    "    tables:",
    "      - name: events",
    "models:",
    "  - name: sessions",
    "    columns:",
    "      - name: session_id",
    "        tests: [unique, not_null]",
    "  - name: people",
    "    columns:",
    "      - name: person",
    "        tests: [unique]",
    "  - name: kpi_daily",
    "    columns:",
    "      - name: day",
    "        tests: [unique, not_null]",
    "",
  ].join("\n");
  await writeFiles(projectDir, {
    "dbt_project.yml": "name: bench\nmodels:\n  bench:\n    +materialized: table\n",
    "models/schema.yml": schema,
    ...Object.fromEntries(Object.entries(models).map(([name, sql]) => [`models/${name}.sql`, `${sql}\n`])),
  });
  const project = loadProject(projectDir);
  const builder = new Builder({ project, dataDir, catalog, engine, store, threads: 4 });
  const order = project.order;

  // The direct side: the same compiled statements in a DuckDB file, events a view over the lake.
  const directFile = join(dir, "direct.duckdb");
  const direct = await DuckDBInstance.create(directFile, { threads: String(params.threads) });
  onCleanup(() => direct.closeSync());
  const connection = await direct.connect();
  await connection.run("SET TimeZone = 'UTC'");
  const eventsFiles = (await catalog.liveFiles("events")).map((file) => sqlString(join(lakeRoot, file.path)));
  await connection.run(
    `CREATE OR REPLACE VIEW events AS SELECT * FROM read_parquet([${eventsFiles.join(", ")}], hive_partitioning = true)`,
  );
  const statements = await Promise.all(
    order.map(async (name) => ({ name, sql: await builder.compile(name) })),
  );
  // The tests too, as `dbt build` runs them after each model: Sluice runs them before publishing.
  const testStatements = await Promise.all(project.tests.map((test) => builder.compile(test.name)));

  const sluiceMs: number[] = [];
  const directMs: number[] = [];
  let sluiceCounts = new Map<string, number>();
  const directCounts = new Map<string, number>();
  for (let run = 0; run < params.runs; run++) {
    console.error(`bench: run ${run + 1}/${params.runs}: sluice build...`);
    const started = performance.now();
    const result = await builder.build();
    sluiceMs.push(performance.now() - started);
    if (!result.ok) {
      throw new Error(
        `sluice build failed: ${result.runs
          .filter((entry) => entry.status !== "success")
          .map((entry) => `${entry.node}: ${entry.message}`)
          .join("; ")}`,
      );
    }
    sluiceCounts = new Map(
      await Promise.all(
        order.map(
          async (name) =>
            [name, (await catalog.liveFiles(name)).reduce((sum, file) => sum + file.rows, 0)] as const,
        ),
      ),
    );
    console.error(`bench: run ${run + 1}/${params.runs}: DuckDB directly...`);
    const directStarted = performance.now();
    for (const { name, sql } of statements) {
      await connection.run(`CREATE OR REPLACE TABLE "${name}" AS ${sql}`);
    }
    for (const sql of testStatements) {
      const failing = await connection.runAndReadAll(`SELECT count(*) FROM (${sql})`);
      if (Number(failing.getRowsJson()[0]?.[0]) !== 0) throw new Error(`a test failed in DuckDB: ${sql}`);
    }
    await connection.run("CHECKPOINT");
    directMs.push(performance.now() - directStarted);
    for (const { name } of statements) {
      const reader = await connection.runAndReadAll(`SELECT count(*) FROM "${name}"`);
      directCounts.set(name, Number(reader.getRowsJson()[0]?.[0]));
    }
  }
  connection.closeSync();
  for (const name of order) {
    if (sluiceCounts.get(name) !== directCounts.get(name)) {
      throw new Error(
        `${name}: Sluice built ${sluiceCounts.get(name)} rows, DuckDB ${directCounts.get(name)}`,
      );
    }
  }

  // Compile time of a generated 1,000-model project: each model reads the source or up to
  // three earlier models, with config() calls, is_incremental blocks and a schema.yml.
  const bigDir = join(dir, "big");
  const files: Record<string, string> = {
    "models/sources.yml": "version: 2\nsources:\n  - name: sluice\n    tables:\n      - name: events\n",
  };
  const yml = ["version: 2", "models:"];
  for (let index = 0; index < params["compile-models"]; index++) {
    const parents = index < 10 ? [] : [index - 1, Math.floor(index / 2), Math.floor(index / 3)];
    const from =
      parents.length === 0
        ? "{{ source('sluice', 'events') }}"
        : [...new Set(parents)].map((parent) => `{{ ref('m${parent}') }}`).join(" union all select * from ");
    const incremental = index % 5 === 0;
    files[`models/group_${index % 20}/m${index}.sql`] = [
      incremental
        ? "{{ config(materialized='incremental', unique_key='event_id', watermark='ts', tags=['inc']) }}"
        : "{{ config(materialized='table', tags=['daily']) }}",
      parents.length === 0 ? "select event_id, event, ts from" : "select * from",
      from,
      incremental ? "{% if is_incremental() %}where ts > (select max(ts) from {{ this }}){% endif %}" : "",
      "",
    ].join("\n");
    yml.push(
      `  - name: m${index}`,
      `    description: Model ${index}`,
      "    columns:",
      "      - name: event_id",
      "        tests: [not_null]",
    );
  }
  files["models/schema.yml"] = `${yml.join("\n")}\n`;
  await writeFiles(bigDir, files);
  const compileStarted = performance.now();
  const compileCpu = process.cpuUsage();
  const big = loadProject(bigDir);
  const parsedMs = performance.now() - compileStarted;
  const bigBuilder = new Builder({ project: big, dataDir, catalog, engine, store });
  let bytes = 0;
  for (const name of big.order) bytes += (await bigBuilder.compile(name)).length;
  const compileMs = performance.now() - compileStarted;
  const cpu = process.cpuUsage(compileCpu);
  const compileCpuMs = (cpu.user + cpu.system) / 1000;

  const sluiceBest = Math.min(...sluiceMs);
  const directBest = Math.min(...directMs);
  const ratio = sluiceBest / directBest;
  const totalRows = [...sluiceCounts.values()].reduce((sum, rows) => sum + rows, 0);
  console.log(
    table(
      ["side", "runs (ms)", "fastest"],
      [
        [
          "sluice build (30 models, tests, commits)",
          sluiceMs.map((ms) => Math.round(ms)).join(", "),
          formatMs(sluiceBest),
        ],
        [
          "DuckDB directly (CREATE TABLE AS + tests, file)",
          directMs.map((ms) => Math.round(ms)).join(", "),
          formatMs(directBest),
        ],
      ],
    ),
  );
  console.log("");
  const figures: Figure[] = [
    {
      measure: `sluice build of ${order.length} models over ${formatInt(params.events)} events`,
      value: formatMs(sluiceBest),
    },
    {
      measure: "Sluice / DuckDB directly",
      value: `${ratio.toFixed(2)}×`,
      goal: `≤ ${GOAL_RATIO}×`,
      pass: ratio <= GOAL_RATIO,
    },
    { measure: "rows built (all models), identical on both sides", value: formatInt(totalRows) },
    {
      measure: `compile of a ${formatInt(big.nodes.size)}-model project (parse ${formatMs(parsedMs)}, CPU ${formatMs(compileCpuMs)}, ${formatInt(bytes / 1024)} KiB of SQL)`,
      value: formatMs(compileMs),
      goal: `< ${GOAL_COMPILE_MS} ms`,
      pass: compileMs < GOAL_COMPILE_MS,
    },
  ];
  console.log(figuresTable(figures));
}
