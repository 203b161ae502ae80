/**
 * Runs the demo shop against a Sluice server over its public Segment API,
 * exactly as a real site would: first some history, then a live stream.
 */
import { randomUUID } from "node:crypto";
import { setTimeout as delay } from "node:timers/promises";
import { type SegmentItem, ShopSimulator } from "./generate.js";

export interface DemoShopOptions {
  /** The server's base URL, e.g. `http://127.0.0.1:8080`. */
  baseUrl: string;
  writeKey: string;
  /** Days of history to send before streaming; 0 skips the backfill. */
  backfillDays?: number;
  /** Live events per minute averaged over a week; the actual rate follows the daily and weekly curve. */
  ratePerMinute?: number;
  /**
   * Upper bound (in expectation) of backfilled events. The default keeps 14 days at the default
   * live rate whole, so history and today's live stream draw one continuous line in daily charts;
   * only larger rates or longer histories are thinned.
   */
  maxBackfillEvents?: number;
  /** Makes the generated events reproducible; random by default. */
  seed?: number | string;
  log?: (message: string) => void;
}

export interface DemoShop {
  /** Stops generating and sending; resolves once nothing is left running. */
  stop(): Promise<void>;
  /** Events the server accepted, and events it rejected or that could not be delivered. */
  stats(): { sent: number; failed: number };
}

/**
 * Events per minute averaged over a week (the daily and weekly curve peaks at about 1.7 times that): a small
 * shop's traffic, which 14 days of history can match without thinning.
 */
export const DEFAULT_DEMO_RATE_PER_MINUTE = 60;
/** Enough for 14 days at the default rate (about 1.2M events), so that history is not thinned. */
export const DEFAULT_MAX_BACKFILL_EVENTS = 1_500_000;
/** Segment's limit of calls per batch. */
const BATCH_SIZE = 500;
const LIVE_TICK_MS = 500;
const BACKFILL_CHUNK_MS = 600_000;
const BACKFILL_CONCURRENCY = 4;
/** The last hour is backfilled at the live rate, so the live charts are full from the first second. */
const RECENT_MINUTES = 60;
const WARM_UP_MS = 10 * 60_000;
const MAX_CATCH_UP_MS = 5 * 60_000;
const MAX_ATTEMPTS = 8;
const MAX_BACKOFF_MS = 8_000;
const REQUEST_TIMEOUT_MS = 10_000;

export function startDemoShop(options: DemoShopOptions): DemoShop {
  const {
    backfillDays = 14,
    ratePerMinute = DEFAULT_DEMO_RATE_PER_MINUTE,
    maxBackfillEvents = DEFAULT_MAX_BACKFILL_EVENTS,
    seed = randomUUID(),
    log = () => {},
  } = options;
  const stopping = new AbortController();
  const sender = new BatchSender(options.baseUrl, options.writeKey, stopping.signal, log);
  const now = new Date();
  const segments = planBackfill(now, backfillDays, ratePerMinute, maxBackfillEvents);
  // History and the live stream are simulated apart, so the live stream starts at once instead
  // of after the history (a minute or so for 14 days). The live shop simulates (and drops) a few
  // minutes first: visitors already browsing make its rate start at its level.
  const live = new ShopSimulator(seed, new Date(now.getTime() - WARM_UP_MS));
  live.advance(now, ratePerMinute);
  const first = segments[0];
  const stopOnError = (part: string) => (error: unknown) =>
    log(`${part} stopped after an unexpected error: ${describe(error)}`);
  const running = Promise.all([
    first === undefined
      ? undefined
      : backfill(new ShopSimulator(seed, first.from), segments, sender, stopping.signal, log).catch(
          stopOnError("the backfill"),
        ),
    streamLive(live, ratePerMinute, sender, stopping.signal).catch(stopOnError("the live stream")),
  ]);

  return {
    async stop() {
      stopping.abort();
      await running;
    },
    stats: () => sender.stats(),
  };
}

export interface BackfillSegment {
  from: Date;
  to: Date;
  ratePerMinute: number;
}

/**
 * Spreads the backfill budget over the history: the most recent hour at the
 * live rate (if the budget allows), older days thinned out evenly, which keeps
 * their daily and weekly shape.
 */
export function planBackfill(
  now: Date,
  days: number,
  ratePerMinute: number,
  maxEvents: number,
): BackfillSegment[] {
  const totalMinutes = Math.max(0, days) * 1440;
  const recentMinutes = Math.min(RECENT_MINUTES, totalMinutes);
  const olderMinutes = totalMinutes - recentMinutes;
  const recentRate = Math.min(ratePerMinute, maxEvents / 2 / Math.max(recentMinutes, 1));
  const olderRate = Math.min(
    ratePerMinute,
    (maxEvents - recentRate * recentMinutes) / Math.max(olderMinutes, 1),
  );
  const minutesAgo = (minutes: number) => new Date(now.getTime() - minutes * 60_000);
  const segments: BackfillSegment[] = [
    { from: minutesAgo(totalMinutes), to: minutesAgo(recentMinutes), ratePerMinute: olderRate },
    { from: minutesAgo(recentMinutes), to: now, ratePerMinute: recentRate },
  ];
  return segments.filter((segment) => segment.from < segment.to);
}

async function backfill(
  simulator: ShopSimulator,
  segments: BackfillSegment[],
  sender: BatchSender,
  stopped: AbortSignal,
  log: (message: string) => void,
): Promise<void> {
  const startedAt = Date.now();
  const inFlight = new Set<Promise<void>>();
  const send = async (batch: SegmentItem[]) => {
    while (inFlight.size >= BACKFILL_CONCURRENCY) await Promise.race(inFlight);
    const delivery = sender.send(batch).finally(() => inFlight.delete(delivery));
    inFlight.add(delivery);
  };
  let generated = 0;
  let buffered: SegmentItem[] = [];
  for (const { from, to, ratePerMinute } of segments) {
    // Generate ten minutes at a time: the whole history would not fit comfortably in memory.
    for (let chunkEnd = from.getTime(); chunkEnd < to.getTime() && !stopped.aborted; ) {
      chunkEnd = Math.min(chunkEnd + BACKFILL_CHUNK_MS, to.getTime());
      const items = simulator.advance(new Date(chunkEnd), ratePerMinute);
      generated += items.length;
      buffered = buffered.concat(items);
      while (buffered.length >= BATCH_SIZE) await send(buffered.splice(0, BATCH_SIZE));
    }
  }
  if (buffered.length > 0) await send(buffered);
  await Promise.all(inFlight);
  const seconds = ((Date.now() - startedAt) / 1000).toFixed(1);
  if (!stopped.aborted)
    log(`backfilled ${generated.toLocaleString("en-US")} events of history in ${seconds} s`);
}

async function streamLive(
  simulator: ShopSimulator,
  ratePerMinute: number,
  sender: BatchSender,
  stopped: AbortSignal,
): Promise<void> {
  while (!stopped.aborted) {
    const tickStart = Date.now();
    // After the machine slept, skip the gap instead of sending hours of events at once.
    const catchUpFrom = tickStart - MAX_CATCH_UP_MS;
    if (simulator.currentTime() < catchUpFrom) simulator.advance(new Date(catchUpFrom), 0);
    const items = simulator.advance(new Date(tickStart), ratePerMinute);
    for (let i = 0; i < items.length; i += BATCH_SIZE) await sender.send(items.slice(i, i + BATCH_SIZE));
    await sleep(LIVE_TICK_MS - (Date.now() - tickStart), stopped);
  }
}

type PostResult = { ok: true; accepted: number } | { ok: false; retryable: boolean; problem: string };

/** Posts batches to `/v1/batch`, retrying with backoff; never throws, counts the outcome instead. */
class BatchSender {
  private readonly url: string;
  private readonly authorization: string;
  private sent = 0;
  private failed = 0;
  private failing = false;
  private reportedRejects = false;

  constructor(
    baseUrl: string,
    writeKey: string,
    private readonly stopped: AbortSignal,
    private readonly log: (message: string) => void,
  ) {
    this.url = `${baseUrl.replace(/\/+$/, "")}/v1/batch`;
    this.authorization = `Basic ${Buffer.from(`${writeKey}:`).toString("base64")}`;
  }

  stats(): { sent: number; failed: number } {
    return { sent: this.sent, failed: this.failed };
  }

  /** Delivers one batch. A batch cut short by `stop()` counts as neither sent nor failed. */
  async send(batch: SegmentItem[]): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      const result = await this.post(batch);
      if (this.stopped.aborted) return;
      if (result.ok) {
        if (this.failing) this.log("delivering events again");
        this.failing = false;
        this.sent += result.accepted;
        this.failed += batch.length - result.accepted;
        if (result.accepted < batch.length && !this.reportedRejects) {
          // Demo events should always be valid: a rejection points at a bug on one side.
          this.log(`the server rejected ${batch.length - result.accepted} of ${batch.length} demo events`);
          this.reportedRejects = true;
        }
        return;
      }
      const giveUp = !result.retryable || attempt >= MAX_ATTEMPTS;
      if (!this.failing || giveUp) {
        this.log(
          `sending events to ${this.url} failed (${result.problem}); ${giveUp ? `dropped ${batch.length} events` : "retrying"}`,
        );
      }
      this.failing = true;
      if (giveUp) {
        this.failed += batch.length;
        return;
      }
      await sleep(backoffMs(attempt), this.stopped);
    }
  }

  private async post(batch: SegmentItem[]): Promise<PostResult> {
    try {
      const response = await fetch(this.url, {
        method: "POST",
        headers: { authorization: this.authorization, "content-type": "application/json" },
        body: JSON.stringify({ batch, sentAt: new Date().toISOString() }),
        signal: AbortSignal.any([this.stopped, AbortSignal.timeout(REQUEST_TIMEOUT_MS)]),
      });
      const body = await response.text();
      if (response.ok) return { ok: true, accepted: acceptedCount(body, batch.length) };
      // Other client errors (bad key, bad payload) would fail the same way again.
      const retryable = response.status >= 500 || response.status === 408 || response.status === 429;
      return { ok: false, retryable, problem: `HTTP ${response.status} ${body.slice(0, 200)}`.trim() };
    } catch (error) {
      return { ok: false, retryable: true, problem: describe(error) };
    }
  }
}

/** The server's `accepted` count; a 2xx without one means the whole batch was taken. */
function acceptedCount(body: string, batchSize: number): number {
  try {
    const accepted: unknown = JSON.parse(body)?.accepted;
    if (typeof accepted === "number" && accepted >= 0 && accepted <= batchSize) return accepted;
  } catch {
    // Not JSON: fall through.
  }
  return batchSize;
}

/** Exponential backoff with jitter, so many clients do not retry in lockstep. */
function backoffMs(attempt: number): number {
  return Math.min(MAX_BACKOFF_MS, 250 * 2 ** (attempt - 1)) * (0.5 + Math.random() / 2);
}

/** Waits, but wakes up at once when stopped. */
async function sleep(ms: number, stopped: AbortSignal): Promise<void> {
  if (ms <= 0 || stopped.aborted) return;
  await delay(ms, undefined, { signal: stopped }).catch(() => undefined);
}

/** fetch reports network errors as "fetch failed" with the useful part (ECONNREFUSED…) in `cause`. */
function describe(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const cause = error.cause as { code?: string; message?: string } | undefined;
  return cause?.code ?? cause?.message ?? error.message;
}
