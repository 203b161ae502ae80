/**
 * What file loads and syncs share around a run: every outcome, loaded, skipped or failed,
 * goes to the run history in the catalog and to the configured webhook.
 */
import type { Catalog, LoadRun, NewLoadRun } from "../catalog/index.js";
import { duckDbMessage, Rejection } from "./rejection.js";
import { notifyWebhook } from "./webhook.js";

/** A recorded run and one line for a person about it. */
export interface RunResult {
  run: LoadRun;
  message: string;
}

/**
 * Runs `work`. A throw is recorded as a failed run (`<file> <failedAs>: <why>`); either
 * way the webhook at `webhookUrl` (if set) is told, and the outcome says if it could not be.
 */
export async function recordedRun(
  options: { catalog: Catalog; webhookUrl: string; failedAs: string; signal?: AbortSignal },
  run: NewLoadRun,
  work: () => Promise<RunResult>,
): Promise<RunResult & { webhookError: string | null }> {
  let outcome: RunResult;
  try {
    outcome = await work();
  } catch (error) {
    const message = failureMessage(error, options.signal);
    const failed = await finishRun(options.catalog, run, "failed", message);
    outcome = { run: failed, message: `${run.file} ${options.failedAs}: ${message}` };
  }
  const webhookError = options.webhookUrl ? await notifyWebhook(options.webhookUrl, outcome.run) : null;
  return { ...outcome, webhookError };
}

/** Records `run` as failed or skipped, with `message`. */
export function finishRun(
  catalog: Catalog,
  run: NewLoadRun,
  status: "failed" | "skipped",
  message: string,
): Promise<LoadRun> {
  return catalog.recordLoad({ ...run, status, message, finishedAt: new Date().toISOString() });
}

function failureMessage(error: unknown, signal: AbortSignal | undefined): string {
  if (signal?.aborted) return "stopped before it finished; nothing was committed";
  if (error instanceof Rejection) return error.message;
  return `error: ${duckDbMessage(error) || String(error)}`;
}
