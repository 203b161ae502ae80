/**
 * Write-audit-publish for model builds: a model's table-to-be (Parquet files written, not
 * committed) is checked with the checks declared for its table, and each result becomes one
 * of the model's test outcomes, so the builder keeps the table unpublished when an
 * error-severity check fails and the build's output and run history show every check.
 */
import type { AuditCandidate, TestOutcome } from "../transform/index.js";
import type { CheckResult } from "./model.js";
import type { Quality } from "./quality.js";

/** Prefix of a check's name among a model's tests: dbt's test names never hold a colon. */
export const AUDIT_PREFIX = "quality:";

/**
 * Runs the checks declared for the candidate's production table on its files. Only production
 * builds alert: a dev build failing a check is the developer's to see, not the on-call's.
 */
export async function auditBuild(quality: Quality, candidate: AuditCandidate): Promise<TestOutcome[]> {
  if (!quality.project().tables.has(candidate.productionTable)) return [];
  const run = await quality.runChecks(candidate.table, {
    trigger: "build",
    checksOf: candidate.productionTable,
    candidate: { table: candidate.def, paths: candidate.paths },
    alert: candidate.table === candidate.productionTable,
  });
  return run.results.map(auditOutcome);
}

function auditOutcome(result: CheckResult): TestOutcome {
  return {
    name: `${AUDIT_PREFIX}${result.check}`,
    severity: result.severity,
    status: result.status === "fail" ? (result.severity === "warn" ? "warn" : "fail") : result.status,
    // The failing rows' sample is in quality.db (`sluice check`, /v1/quality/checks), not a file.
    failures: 0,
    failuresFile: null,
    message: result.status === "pass" ? null : result.message,
  };
}
