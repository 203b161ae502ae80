import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DuckDBInstance } from "@duckdb/node-api";
import { type Catalog, openSqliteCatalog } from "../catalog/index.js";
import { type Config, DEFAULTS } from "../config/index.js";
import { createEngine, Warehouse } from "../warehouse/index.js";
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
