/**
 * Data quality: profiles of every load, declarative checks in YAML, anomaly checks, alerts.
 * `openQuality` gives profileTable / runChecks (also for transformations after a build, and
 * to audit a candidate before publishing); `QualityWatcher` runs them in the server after
 * loads and on schedules; `qualityRoutes` is the HTTP API.
 */
export { type Alert, Alerter } from "./alerts.js";
export { AUDIT_PREFIX, auditBuild } from "./audit.js";
export { CHECK_KINDS } from "./checks/registry.js";
export type { CheckResult, CheckStatus, ColumnProfile, Profile, Severity } from "./model.js";
export { type CheckDefinition, loadProject, type Project, ProjectError } from "./project.js";
export {
  type ChecksRun,
  openQuality,
  type ProfileOptions,
  Quality,
  type QualityConfig,
  QualityError,
  type RunChecksOptions,
} from "./quality.js";
export { type QualityRoutesOptions, qualityRoutes } from "./routes.js";
export type { QualityStore, ResultSearch } from "./store.js";
export { QualityWatcher, type QualityWatcherOptions } from "./watcher.js";
