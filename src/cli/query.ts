import type { DuckDBInstance } from "@duckdb/node-api";
import { BusLockedError } from "../bus/index.js";
import { type Catalog, openSqliteCatalog } from "../catalog/index.js";
import type { Config } from "../config/index.js";
import { catalogPath, createQueryEngine, openStorage, warehouseFor } from "../server/index.js";
import { QueryError, type QueryResult } from "../warehouse/index.js";

/**
 * `sluice query`. With a server running, read the lake through the catalog
 * (the server keeps loading). Without one, first load whatever the bus still
 * holds (events acknowledged just before a crash), so every acknowledged
 * event is queryable either way.
 */
export async function runQuery(
  config: Config,
  sql: string,
  options: { serverRunning: boolean },
): Promise<QueryResult> {
  if (!options.serverRunning) {
    try {
      const storage = await openStorage(config);
      try {
        return await runOn(config, storage.catalog, storage.engine, sql);
      } finally {
        await storage.close();
      }
    } catch (error) {
      // A server started in between: read alongside it instead.
      if (!(error instanceof BusLockedError)) throw error;
    }
  }
  const catalog = openSqliteCatalog(catalogPath(config.data_dir));
  const engine = await createQueryEngine(config);
  try {
    return await runOn(config, catalog, engine, sql);
  } finally {
    await catalog.close();
    engine.closeSync();
  }
}

async function runOn(
  config: Config,
  catalog: Catalog,
  engine: DuckDBInstance,
  sql: string,
): Promise<QueryResult> {
  try {
    return await warehouseFor(config, catalog, engine).query(sql);
  } catch (error) {
    if (error instanceof QueryError) throw new QueryError(`SQL error: ${error.message}`);
    throw error;
  }
}
