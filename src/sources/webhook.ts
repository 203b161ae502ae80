import type { LoadRun } from "../catalog/index.js";

/**
 * POSTs a load's outcome as JSON: `{"event": "load.loaded" | "load.skipped" | "load.failed", ...run}`.
 * A webhook that is down must not fail the load, so problems come back as a message.
 */
export async function notifyWebhook(url: string, run: LoadRun): Promise<string | null> {
  try {
    const response = await fetch(url, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ event: `load.${run.status}`, ...run }),
      signal: AbortSignal.timeout(10_000),
    });
    await response.body?.cancel();
    return response.ok ? null : `load webhook ${url} answered ${response.status}`;
  } catch (error) {
    return `load webhook ${url} failed: ${(error as Error).message}`;
  }
}
