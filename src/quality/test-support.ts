import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { DuckDBInstance } from "@duckdb/node-api";
import { type Catalog, openSqliteCatalog } from "../catalog/index.js";
import { type Config, loadConfig } from "../config/index.js";
import { FileLoader, type LoadOutcome, type LoadRequest } from "../sources/index.js";
import { createEngine } from "../warehouse/index.js";
import { openQuality, type Quality } from "./quality.js";

/**
 * A throwaway data dir and project folder: a catalog, a file loader (the real load path) and
 * Quality over them. `project` files are written under the project folder (`quality.yml`, …).
 */
export async function tempQuality(
  options: { project?: Record<string, string>; config?: Partial<Config> } = {},
): Promise<{
  dataDir: string;
  projectDir: string;
  config: Config;
  catalog: Catalog;
  engine: DuckDBInstance;
  quality: Quality;
  /** Writes a file (CSV, JSON, …) and loads it into `table`; throws when the load failed. */
  load(table: string, name: string, content: string, request?: Partial<LoadRequest>): Promise<LoadOutcome>;
  /** Writes a project file (relative to the project folder). */
  write(path: string, content: string): Promise<void>;
  close(): Promise<void>;
}> {
  const root = await mkdtemp(join(tmpdir(), "sluice-quality-"));
  const dataDir = join(root, "data");
  const projectDir = join(root, "project");
  await mkdir(dataDir, { recursive: true });
  await mkdir(projectDir, { recursive: true });
  const write = async (path: string, content: string) => {
    await mkdir(dirname(join(projectDir, path)), { recursive: true });
    await writeFile(join(projectDir, path), content);
  };
  for (const [path, content] of Object.entries(options.project ?? {})) await write(path, content);
  const config = loadConfig({
    env: {},
    overrides: { data_dir: dataDir, quality_project: projectDir, ...options.config },
  });
  const catalog = openSqliteCatalog(join(dataDir, "catalog.db"));
  const engine = await createEngine({ threads: 2 });
  const loader = new FileLoader({ dataDir, catalog, engine, config });
  const quality = await openQuality({ config, catalog, threads: 2 });
  return {
    dataDir,
    projectDir,
    config,
    catalog,
    engine,
    quality,
    write,
    async load(table, name, content, request = {}) {
      const path = join(root, name);
      await writeFile(path, content);
      const outcome = await loader.load(path, { table, origin: "cli", ...request });
      if (outcome.run.status === "failed") throw new Error(outcome.message);
      return outcome;
    },
    async close() {
      await quality.close();
      await catalog.close();
      engine.closeSync();
      await rm(root, { recursive: true, force: true });
    },
  };
}
