/** Test helpers: a data dir with a catalog and engine, the shop fixture copied to a folder, events written as the collector does. */
import { cpSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { DuckDBInstance } from "@duckdb/node-api";
import { type Catalog, openSqliteCatalog, type TableDef } from "../catalog/index.js";
import { EVENT_COLUMNS } from "../collect/model.js";
import { writeParquet } from "../lake/index.js";
import { createEngine, Warehouse } from "../warehouse/index.js";
import { Builder, type BuilderOptions } from "./builder.js";
import { loadProject } from "./project.js";
import { openSqliteTransformStore, type TransformStore } from "./store.js";

export const SHOP_FIXTURE = join(dirname(fileURLToPath(import.meta.url)), "test-fixtures", "shop");

export const EVENTS_TABLE: TableDef = {
  name: "events",
  columns: [...EVENT_COLUMNS],
  partitionBy: { column: "dt", fromTimestamp: "ts" },
};

export interface Lab {
  dir: string;
  dataDir: string;
  catalog: Catalog;
  engine: DuckDBInstance;
  store: TransformStore;
  warehouse: Warehouse;
  /** A builder over the project in `projectDir` (read now). */
  builder(projectDir: string, options?: Partial<BuilderOptions>): Builder;
  /** Rows of a query through the warehouse, as `sluice query` sees them. */
  rows(sql: string): Promise<unknown[][]>;
  close(): Promise<void>;
}

export async function openLab(): Promise<Lab> {
  const dir = mkdtempSync(join(tmpdir(), "sluice-transform-"));
  const dataDir = join(dir, "data");
  mkdirSync(join(dataDir, "lake"), { recursive: true });
  const catalog = openSqliteCatalog(join(dataDir, "catalog.db"));
  const store = openSqliteTransformStore(join(dataDir, "catalog.db"));
  const engine = await createEngine({ threads: 2 });
  const warehouse = new Warehouse({ catalog, engine, lakeRoot: join(dataDir, "lake") });
  return {
    dir,
    dataDir,
    catalog,
    engine,
    store,
    warehouse,
    builder: (projectDir, options = {}) =>
      new Builder({ project: loadProject(projectDir), dataDir, catalog, engine, store, ...options }),
    rows: async (sql) => (await warehouse.query(sql)).rows,
    async close() {
      await store.close();
      await catalog.close();
      engine.closeSync();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A copy of the shop fixture under the lab's folder, to edit. */
export function copyShop(lab: Lab, name = "shop"): string {
  const target = join(lab.dir, name);
  cpSync(SHOP_FIXTURE, target, { recursive: true });
  return target;
}

/** Writes files of a project: path → content. */
export function writeProject(lab: Lab, name: string, files: Record<string, string>): string {
  const root = join(lab.dir, name);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), content);
  }
  return root;
}

/** Appends events (id, event name, user, UTC time) to `events` in one commit, as the loader writes them. */
export async function appendEvents(lab: Lab, events: [string, string, string, string][]): Promise<void> {
  await lab.catalog.ensureTable(EVENTS_TABLE);
  const text = (value: string) => `'${value.replaceAll("'", "''")}'`;
  const values = events
    .map(([id, event, user, ts]) => `(${text(id)}, ${text(event)}, ${text(user)}, ${text(ts)})`)
    .join(", ");
  const given = new Set(["event_id", "event", "user_id", "ts"]);
  const columns = EVENT_COLUMNS.map((column) =>
    given.has(column.name)
      ? `CAST(v.${column.name} AS ${column.type}) AS ${column.name}`
      : `CAST(NULL AS ${column.type}) AS ${column.name}`,
  );
  const connection = await lab.engine.connect();
  try {
    const files = await writeParquet(connection, {
      lakeRoot: join(lab.dataDir, "lake"),
      table: EVENTS_TABLE,
      prefix: "load",
      selectSql: `SELECT ${columns.join(", ")} FROM (VALUES ${values}) AS v(event_id, event, user_id, ts)`,
    });
    await lab.catalog.commit({ table: "events", operation: "load", add: files });
  } finally {
    connection.closeSync();
  }
}
