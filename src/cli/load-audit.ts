import type { Catalog } from "../catalog/index.js";
import type { Config } from "../config/index.js";
import { openQuality, type Quality } from "../quality/index.js";

/**
 * Quality for `sluice load` to audit a load into `table` before committing it: when check files
 * declare checks for the table, or cannot be read (the load then fails, saying why).
 */
export async function loadAuditor(
  config: Config,
  catalog: Catalog,
  table: string,
): Promise<Quality | undefined> {
  // The user is waiting: checks may use every core, as the load does.
  const quality = await openQuality({ config, catalog, threads: config.duckdb_threads || undefined });
  try {
    if (quality.project().tables.has(table)) return quality;
  } catch {
    return quality;
  }
  await quality.close();
  return undefined;
}
