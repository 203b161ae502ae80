/**
 * `npm run bench -- sources`: batch sources against DuckDB's own readers on the same input.
 *
 * (a) A CSV file of `csv-mb` MB (orders: ids, text, decimals, timestamps, booleans) loaded with
 *     `sluice load` (type inference, snake_case names, Parquet, catalog commit, exactly-once
 *     bookkeeping), beside DuckDB reading the same file with `read_csv` into zstd Parquet.
 * (b) A PostgreSQL table of `pg-rows` rows copied with `sluice sync` (full), beside the fastest
 *     way DuckDB has here to read it: PostgreSQL's own `COPY … TO STDOUT` as CSV (psql), then
 *     `read_csv` into Parquet. (DuckDB's postgres extension would read it directly, but
 *     extensions cannot be downloaded here.)
 *
 * Both sides write zstd Parquet; rows/s count the rows that reached it. Needs the PostgreSQL
 * server of the machine notes (SLUICE_TEST_PG_URL to use another) and `psql`.
 */
import { execFile, spawn } from "node:child_process";
import { mkdir, mkdtemp, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import { promisify } from "node:util";
import { DuckDBInstance } from "@duckdb/node-api";
import pg from "pg";
import { onCleanup } from "./lib/cleanup.js";
import { sqlString } from "./lib/client.js";
import type { ParamSpecs, ParamValues } from "./lib/params.js";
import { type Figure, figuresTable, formatInt, formatMiB, printHeader } from "./lib/report.js";
import { REPO_ROOT } from "./lib/server.js";

export const sourcesParams = {
  "csv-mb": { default: 1024, help: "size of the CSV file in MB (0 = skip)" },
  "pg-rows": { default: 10_000_000, help: "rows of the PostgreSQL table (0 = skip)" },
  threads: {
    default: 2,
    help: "DuckDB threads for the baseline (Sluice's load uses all cores, as `sluice load` does)",
  },
} satisfies ParamSpecs;

type SourcesParams = ParamValues<typeof sourcesParams>;

const run = promisify(execFile);
const PG_URL = process.env.SLUICE_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
/** Bytes of one generated CSV row, roughly: used to size the file. */
const CSV_ROW_BYTES = 110;

export async function runSources(params: SourcesParams): Promise<void> {
  printHeader(
    "sources",
    "`sluice load` of a CSV file and `sluice sync` of a PostgreSQL table, each beside DuckDB reading the same " +
      "input into zstd Parquet in the same run.",
    params,
  );
  const dir = await mkdtemp(join(tmpdir(), "sluice-bench-sources-"));
  onCleanup(() => rm(dir, { recursive: true, force: true }));
  const duck = await DuckDBInstance.create(":memory:", { threads: String(params.threads) });
  const closeDuck = onCleanup(() => duck.closeSync());
  const connection = await duck.connect();
  const figures: Figure[] = [];
  try {
    if (params["csv-mb"] > 0) {
      const csv = join(dir, "orders.csv");
      const rows = Math.round((params["csv-mb"] * 1024 * 1024) / CSV_ROW_BYTES);
      console.error(`bench: writing a CSV file of ${formatInt(rows)} rows...`);
      await connection.run(`COPY (${ordersSql(rows)}) TO ${sqlString(csv)} (FORMAT csv, HEADER)`);
      const bytes = (await stat(csv)).size;
      const baseline = await timed(() =>
        connection.run(
          `COPY (SELECT * FROM read_csv(${sqlString(csv)})) TO ${sqlString(join(dir, "baseline.parquet"))} (FORMAT parquet, COMPRESSION zstd)`,
        ),
      );
      console.error("bench: sluice load...");
      const dataDir = join(dir, "data");
      const sluice = await timed(() => cli(["load", csv, "--table", "orders", "--data-dir", dataDir]));
      figures.push(
        { measure: "(a) CSV file", value: `${formatInt(rows)} rows, ${formatMiB(bytes)}` },
        ...comparison("(a) CSV", rows, sluice, baseline, "DuckDB read_csv → Parquet"),
      );
    }
    if (params["pg-rows"] > 0) {
      const table = `bench_orders_${Date.now().toString(36)}`;
      const client = new pg.Client({ connectionString: PG_URL });
      await client.connect();
      onCleanup(async () => {
        await client.query(`DROP TABLE IF EXISTS ${table}`);
        await client.end();
      });
      console.error(`bench: filling PostgreSQL table ${table} with ${formatInt(params["pg-rows"])} rows...`);
      await client.query(`CREATE UNLOGGED TABLE ${table} (
        id bigint PRIMARY KEY, customer text, amount numeric(12,2), currency text, status text,
        paid boolean, created_at timestamptz, updated_at timestamptz)`);
      await client.query(`INSERT INTO ${table} SELECT i, 'customer-' || (i % 100000), (i % 10000) / 100.0,
        (ARRAY['EUR','USD','GBP'])[1 + i % 3], (ARRAY['new','paid','shipped','returned'])[1 + i % 4], i % 3 <> 0,
        TIMESTAMPTZ '2026-01-01 00:00:00+00' + i * INTERVAL '1 second', TIMESTAMPTZ '2026-06-01 00:00:00+00' + i * INTERVAL '1 second'
        FROM generate_series(1, ${params["pg-rows"]}) AS i`);
      await client.query(`ANALYZE ${table}`);

      const dump = join(dir, "dump.csv");
      const baseline = await timed(async () => {
        await run("psql", [PG_URL, "-c", `\\copy ${table} TO ${sqlString(dump)} CSV HEADER`]);
        await connection.run(
          `COPY (SELECT * FROM read_csv(${sqlString(dump)})) TO ${sqlString(join(dir, "pg-baseline.parquet"))} (FORMAT parquet, COMPRESSION zstd)`,
        );
      });
      const dataDir = join(dir, "pg-data");
      await mkdir(dataDir, { recursive: true });
      await writeFile(
        join(dataDir, "sluice.yaml"),
        `db_sources:\n  bench:\n    url_env: BENCH_PG_URL\n    tables:\n      ${table}: { mode: full }\n`,
      );
      console.error("bench: sluice sync...");
      const sluice = await timed(() =>
        cli(["sync", `bench.${table}`, "--data-dir", dataDir], { BENCH_PG_URL: PG_URL }),
      );
      figures.push(
        ...comparison(
          "(b) PostgreSQL table",
          params["pg-rows"],
          sluice,
          baseline,
          "psql COPY → CSV → DuckDB → Parquet",
        ),
      );
    }
    connection.closeSync();
  } finally {
    await closeDuck();
  }
  console.log(figuresTable(figures));
}

/** Orders as CSV columns: what a shop's export looks like. */
function ordersSql(rows: number): string {
  return `SELECT range + 1 AS "Order ID", 'customer-' || (range % 100000) AS "Customer",
      round((range % 100000) / 100.0, 2) AS "Amount", ['EUR', 'USD', 'GBP'][1 + range % 3] AS "Currency",
      ['new', 'paid', 'shipped', 'returned'][1 + range % 4] AS "Status", range % 3 <> 0 AS "Paid",
      TIMESTAMP '2026-01-01' + to_seconds(range) AS "Created At", 'note ' || md5(range::VARCHAR)[:16] AS "Note"
    FROM range(${rows})`;
}

function comparison(
  what: string,
  rows: number,
  sluiceMs: number,
  baselineMs: number,
  baselineName: string,
): Figure[] {
  return [
    {
      measure: `${what}: Sluice rows/s (time)`,
      value: `${formatInt((rows / sluiceMs) * 1000)} (${(sluiceMs / 1000).toFixed(1)} s)`,
    },
    {
      measure: `${what}: baseline, ${baselineName}: rows/s (time)`,
      value: `${formatInt((rows / baselineMs) * 1000)} (${(baselineMs / 1000).toFixed(1)} s)`,
    },
    { measure: `${what}: Sluice time / baseline time`, value: `${(sluiceMs / baselineMs).toFixed(2)}×` },
  ];
}

/** Runs the CLI as a user would (`node bin/sluice.js` needs a build; the source runs the same code). */
function cli(args: string[], env: Record<string, string> = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "src/cli/main.ts", ...args], {
      cwd: REPO_ROOT,
      env: { ...process.env, ...env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => {
      output += chunk;
    });
    child.stderr.on("data", (chunk) => {
      output += chunk;
    });
    child.on("close", (code) => {
      if (code === 0) {
        console.error(`bench: ${output.trim()}`);
        resolve();
      } else reject(new Error(`sluice ${args[0]} exited with ${code}: ${output}`));
    });
  });
}

async function timed(work: () => Promise<unknown>): Promise<number> {
  const started = performance.now();
  await work();
  return performance.now() - started;
}
