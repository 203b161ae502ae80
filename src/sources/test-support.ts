import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DuckDBInstance } from "@duckdb/node-api";
import mysql from "mysql2/promise";
import pg from "pg";
import { type Catalog, openSqliteCatalog } from "../catalog/index.js";
import { type Config, type DbSourceConfig, DEFAULTS } from "../config/index.js";
import { createEngine, Warehouse } from "../warehouse/index.js";
import { DbSync, type SyncOutcome, type SyncRequest } from "./db.js";
import { FileLoader, type LoadOutcome, type LoadRequest } from "./index.js";

export type SourcesConfig = Pick<
  Config,
  "load_webhook_url" | "load_column_types" | "landing_poll_interval_ms"
>;

/** A throwaway data dir with a catalog, a DuckDB, a warehouse and a file loader over them. */
export async function tempSources(config: Partial<SourcesConfig> = {}): Promise<{
  dataDir: string;
  catalog: Catalog;
  engine: DuckDBInstance;
  config: SourcesConfig;
  loader: FileLoader;
  /** Writes a file into a scratch folder of the data dir; returns its path. */
  file(name: string, content: string | Buffer): Promise<string>;
  /** Writes and loads a file. */
  load(name: string, content: string | Buffer, request?: Partial<LoadRequest>): Promise<LoadOutcome>;
  /** Rows as arrays (DuckDB's JSON forms: big integers and decimals as strings). */
  rows(sql: string): Promise<unknown[][]>;
  /** Column name → type, as the catalog declares them (the warehouse casts every column to it). */
  types(table: string): Promise<Record<string, string>>;
  close(): Promise<void>;
}> {
  const dataDir = await mkdtemp(join(tmpdir(), "sluice-sources-"));
  const catalog = openSqliteCatalog(join(dataDir, "catalog.db"));
  const engine = await createEngine({ threads: 2 });
  const warehouse = new Warehouse({ catalog, engine, lakeRoot: join(dataDir, "lake") });
  const fullConfig: SourcesConfig = {
    load_webhook_url: DEFAULTS.load_webhook_url,
    load_column_types: DEFAULTS.load_column_types,
    landing_poll_interval_ms: 50,
    ...config,
  };
  const loader = new FileLoader({ dataDir, catalog, engine, config: fullConfig });
  const file = async (name: string, content: string | Buffer) => {
    const path = join(dataDir, name);
    await writeFile(path, content);
    return path;
  };
  return {
    dataDir,
    catalog,
    engine,
    config: fullConfig,
    loader,
    file,
    async load(name, content, request = {}) {
      return loader.load(await file(name, content), { table: "orders", origin: "cli", ...request });
    },
    async rows(sql) {
      return (await warehouse.query(sql)).rows;
    },
    async types(table) {
      const def = (await catalog.tables()).find((candidate) => candidate.name === table);
      return Object.fromEntries((def?.columns ?? []).map((column) => [column.name, column.type]));
    },
    async close() {
      await catalog.close();
      engine.closeSync();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

/** The test servers (see .library machine notes): PostgreSQL and MariaDB on loopback, database `test`. */
export const PG_URL = process.env.SLUICE_TEST_PG_URL ?? "postgres://postgres@127.0.0.1:5432/test";
export const MYSQL_URL = process.env.SLUICE_TEST_MYSQL_URL ?? "mysql://root@127.0.0.1:3306/test";

/** A table name no other test run uses: `<prefix>_<pid>_<random>`. */
export const uniqueName = (prefix: string): string =>
  `${prefix}_${process.pid}_${Math.random().toString(36).slice(2, 8)}`;

/** A database to set up fixtures in: runs statements, drops what it created at the end. */
export interface TestDatabase {
  kind: "postgres" | "mysql";
  url: string;
  exec(sql: string, params?: unknown[]): Promise<unknown[]>;
  close(): Promise<void>;
}

export async function testDatabase(kind: "postgres" | "mysql"): Promise<TestDatabase> {
  if (kind === "postgres") {
    const client = new pg.Client({ connectionString: PG_URL });
    await client.connect();
    return {
      kind,
      url: PG_URL,
      async exec(sql, params = []) {
        return (await client.query(sql, params)).rows;
      },
      close: () => client.end(),
    };
  }
  const connection = await mysql.createConnection({ uri: MYSQL_URL, multipleStatements: true });
  return {
    kind,
    url: MYSQL_URL,
    async exec(sql, params = []) {
      const [rows] = await connection.query(sql, params);
      return Array.isArray(rows) ? rows : [];
    },
    close: () => connection.end(),
  };
}

/** tempSources plus a DbSync over the same data dir, with `db_sources` and their URL variables. */
export async function tempDbSync(
  dbSources: Record<string, DbSourceConfig>,
  env: NodeJS.ProcessEnv,
  options: { batchRows?: number; partBytes?: number; webhookUrl?: string } = {},
): Promise<
  Awaited<ReturnType<typeof tempSources>> & {
    sync: DbSync;
    /** Syncs every table `target` names (see DbSync.tables), one after the other. */
    run(target?: string, request?: Partial<SyncRequest>): Promise<SyncOutcome[]>;
  }
> {
  const sources = await tempSources();
  const sync = new DbSync({
    dataDir: sources.dataDir,
    catalog: sources.catalog,
    engine: sources.engine,
    config: {
      db_sources: dbSources,
      load_webhook_url: options.webhookUrl ?? "",
      compaction_target_bytes: DEFAULTS.compaction_target_bytes,
    },
    env,
    batchRows: options.batchRows,
    partBytes: options.partBytes,
  });
  return {
    ...sources,
    sync,
    async run(target, request = {}) {
      const outcomes: SyncOutcome[] = [];
      for (const table of sync.tables(target))
        outcomes.push(await sync.sync(table, { origin: "sync", ...request }));
      return outcomes;
    },
  };
}
