/**
 * Batch sources: files (CSV/TSV, JSON, Parquet, Excel) loaded into lake tables, from
 * the CLI (`sluice load`), HTTP uploads, or a landing folder per table; and database
 * tables (PostgreSQL, MySQL/MariaDB) copied by `sluice sync` or on a schedule.
 */
export {
  type BookmarkState,
  DbSync,
  type DbSyncOptions,
  type SyncOutcome,
  type SyncRequest,
} from "./db.js";
export type { DbTableSpec } from "./db-config.js";
export {
  FileLoader,
  type FileLoaderOptions,
  LOAD_MODES,
  type LoadMode,
  type LoadOutcome,
  type LoadRequest,
} from "./files.js";
export type { ProgressListener } from "./formats.js";
export { LandingWatcher, type LandingWatcherOptions, landingPath } from "./landing.js";
export { tableNameProblem } from "./names.js";
export { Rejection } from "./rejection.js";
export { DbSyncScheduler } from "./schedule.js";
