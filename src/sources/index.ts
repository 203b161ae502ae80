/**
 * Batch sources: files (CSV/TSV, JSON, Parquet, Excel) loaded into lake tables, from
 * the CLI (`sluice load`), HTTP uploads, or a landing folder per table.
 */
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
