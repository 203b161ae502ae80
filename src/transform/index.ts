/**
 * Transformations: SQL models over the lake, the way dbt users write them (ref, source,
 * config, incremental models, schema.yml tests), built with write-audit-publish into
 * lake tables every query path sees.
 */
export {
  type AuditCandidate,
  Builder,
  type BuilderOptions,
  type BuildRequest,
  type BuildResult,
  PROD_ENV,
  type TestResult,
} from "./builder.js";
export { TransformError } from "./errors.js";
export { loadProject, type Project } from "./project.js";
export { transformRoutes } from "./routes.js";
export { type TransformConfig, TransformService } from "./service.js";
export { type ModelRun, openSqliteTransformStore, type TestOutcome, type TransformStore } from "./store.js";
