import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { DuckDBInstance } from "@duckdb/node-api";
import { type Catalog, type DataFile, openSqliteCatalog, type TableDef } from "../catalog/index.js";
import { EVENT_COLUMNS } from "../collect/model.js";
import { createEngine, Warehouse } from "../warehouse/index.js";
import { writeParquet } from "./writer.js";

export const EVENTS: TableDef = {
  name: "events",
  columns: [...EVENT_COLUMNS],
  partitionBy: { column: "dt", fromTimestamp: "ts" },
};

/** A throwaway lake: temp dir, catalog, engine and warehouse over them; `sandboxed` as the server's query engine is. */
export async function tempLake(options: { sandboxed?: boolean } = {}): Promise<{
  dir: string;
  lakeRoot: string;
  catalog: Catalog;
  engine: DuckDBInstance;
  warehouse: Warehouse;
  close(): Promise<void>;
}> {
  const dir = await mkdtemp(join(tmpdir(), "sluice-lake-"));
  const lakeRoot = join(dir, "lake");
  const catalog = openSqliteCatalog(join(dir, "catalog.db"));
  await catalog.ensureTable(EVENTS);
  const engine = await createEngine({
    threads: 2,
    tempDir: join(dir, "tmp"),
    sandbox: options.sandboxed ? { readableDirs: [lakeRoot] } : undefined,
  });
  const warehouse = new Warehouse({ catalog, engine, lakeRoot });
  return {
    dir,
    lakeRoot,
    catalog,
    engine,
    warehouse,
    async close() {
      await catalog.close();
      engine.closeSync();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** Writes synthetic events (see `syntheticEventsSql`) as one load and commits them; returns the files. */
export async function loadSynthetic(
  lake: { lakeRoot: string; catalog: Catalog; engine: DuckDBInstance },
  options: { count: number; prefix: string; perDay?: number; filePrefix?: string },
): Promise<DataFile[]> {
  const connection = await lake.engine.connect();
  try {
    const files = await writeParquet(connection, {
      lakeRoot: lake.lakeRoot,
      table: EVENTS,
      prefix: options.filePrefix ?? "part",
      selectSql: syntheticEventsSql(options.count, options.prefix, options.perDay),
    });
    await lake.catalog.commit({ table: "events", operation: "load", add: files });
    return files;
  } finally {
    connection.closeSync();
  }
}

/** SQL yielding `count` synthetic canonical events, `perDay` per UTC day from 2026-11-01, ids prefixed. */
export function syntheticEventsSql(count: number, prefix: string, perDay = count): string {
  return `SELECT '${prefix}' || i AS event_id, 'track' AS event_type, 'e' || (i % 5) AS event,
      'u' || (i % 97) AS user_id, NULL AS anonymous_id, NULL AS session_id,
      TIMESTAMPTZ '2026-11-01 00:00:00Z' + to_seconds((i // ${perDay}) * 86400 + (i % ${perDay}) % 86000) AS ts,
      TIMESTAMPTZ '2026-11-25 00:00:00Z' AS received_at, 'default' AS source,
      NULL AS page_url, NULL AS page_path, NULL AS referrer, NULL AS user_agent, NULL AS browser, NULL AS os,
      NULL AS device_type, NULL AS ip, NULL AS country,
      json_object('price', i % 100) AS properties, NULL::JSON AS context, NULL::JSON AS traits
    FROM range(${count}) t(i)`;
}
