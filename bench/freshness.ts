/**
 * `npm run bench -- freshness`: how long after its acknowledgement an event
 * can be seen in a query. Single events go to `POST /v1/track` at a steady
 * rate, each with a unique messageId; a poller asks `/v1/query` for the ones
 * not seen yet every few tens of ms. An event's freshness is the time from its
 * 2xx to the answer of the first query that returned it (an upper bound: it
 * includes the poll interval and the query itself, as a user would see it).
 *
 * `--background-rate N` adds N events per second in 100-event batches, paced, for the same time:
 * freshness while the server takes in a steady stream, which the loader must keep up with.
 */
import { performance } from "node:perf_hooks";
import { basicAuth, query, sqlString } from "./lib/client.js";
import { type LoadResult, pacedLoad } from "./lib/http-load.js";
import type { ParamSpecs, ParamValues } from "./lib/params.js";
import {
  type Figure,
  figuresTable,
  formatInt,
  formatMs,
  median,
  percentile,
  printHeader,
} from "./lib/report.js";
import { type BodyTemplate, batchTemplates, SegmentEventFactory } from "./lib/segment-events.js";
import { parseServerConfig, type SluiceServer, sleep, startServer } from "./lib/server.js";

export const freshnessParams = {
  "fresh-rate": { default: 50, help: "events per second sent" },
  "fresh-seconds": { default: 20, help: "how long events are sent" },
  "poll-ms": { default: 50, help: "interval between visibility queries" },
  "visible-timeout-seconds": {
    default: 10,
    help: "an event not visible this long after the last send counts as lost",
  },
  "background-rate": {
    default: 0,
    help: "events per second sent meanwhile in 100-event batches, paced (0 = none)",
  },
  "server-config": { default: "", help: "Sluice config overrides, e.g. flush_interval_ms=100" },
} satisfies ParamSpecs;

const BACKGROUND_BATCH = 100;
const BACKGROUND_CONNECTIONS = 16;

type FreshnessParams = ParamValues<typeof freshnessParams>;

const GOAL_P99_MS = 1_000;

interface Sent {
  id: string;
  sentAt: number;
  ackedAt: number | null;
  visibleAt: number | null;
}

export async function runFreshness(params: FreshnessParams): Promise<void> {
  printHeader(
    "freshness",
    "Acknowledgement to visible in `POST /v1/query`, with the server's default flush interval.",
    params,
  );
  const server = await startServer({ config: parseServerConfig(params["server-config"]) });
  const figures: Figure[] = [];
  let failure: string | null = null;
  try {
    const events: Sent[] = [];
    const runTag = Date.now().toString(36);
    let sending = true;
    const pollTimes: number[] = [];
    const background = sendBackground(server, params, runTag);
    const sender = sendSteadily(server, params, runTag, events).finally(() => {
      sending = false;
    });
    const poller = (async () => {
      let lastSendEnd = Number.POSITIVE_INFINITY;
      for (;;) {
        if (!sending && lastSendEnd === Number.POSITIVE_INFINITY) lastSendEnd = performance.now();
        const waiting = events.filter((event) => event.ackedAt !== null && event.visibleAt === null);
        // Once sending is over every answer is in: nothing left to wait for means done.
        if (!sending && waiting.length === 0) return;
        if (performance.now() - lastSendEnd > params["visible-timeout-seconds"] * 1000) return;
        const started = performance.now();
        if (waiting.length > 0) {
          const byId = new Map(waiting.map((event) => [event.id, event]));
          const result = await query(
            server,
            `SELECT event_id FROM events WHERE event_id IN (${[...byId.keys()].map(sqlString).join(", ")})`,
          );
          const answeredAt = performance.now();
          pollTimes.push(answeredAt - started);
          for (const [id] of result.rows as [string][]) {
            const event = byId.get(id);
            if (event) event.visibleAt = answeredAt;
          }
        }
        await sleep(Math.max(0, params["poll-ms"] - (performance.now() - started)));
      }
    })();
    const [backgroundResult] = await Promise.all([background, sender, poller]);

    const acked = events.filter((event) => event.ackedAt !== null);
    const freshness = acked.flatMap((event) =>
      event.visibleAt !== null && event.ackedAt !== null ? [event.visibleAt - event.ackedAt] : [],
    );
    const ackLatency = acked.map((event) => (event.ackedAt ?? 0) - event.sentAt);
    const p99 = percentile(freshness, 99);
    const lost = acked.length - freshness.length;
    figures.push(
      {
        measure: "acknowledged → visible p99",
        value: formatMs(p99),
        goal: `≤ ${formatInt(GOAL_P99_MS)} ms`,
        pass: lost === 0 && p99 <= GOAL_P99_MS,
      },
      { measure: "acknowledged → visible p50", value: formatMs(percentile(freshness, 50)) },
      { measure: "acknowledged → visible max", value: formatMs(Math.max(...freshness)) },
      {
        measure: "events acknowledged / seen in a query",
        value: `${formatInt(acked.length)} / ${formatInt(freshness.length)} (of ${formatInt(events.length)} sent)`,
        goal: "all seen",
        pass: lost === 0 && acked.length === events.length,
      },
      {
        measure: "ack latency p50 / p99 (send → 2xx)",
        value: `${formatMs(percentile(ackLatency, 50))} / ${formatMs(percentile(ackLatency, 99))}`,
      },
      {
        measure: "visibility query round trip, median (bounds the resolution, with the poll interval)",
        value: formatMs(median(pollTimes)),
      },
    );
    if (backgroundResult !== null) {
      const { result, seconds } = backgroundResult;
      figures.push(
        {
          measure: `background: ${BACKGROUND_BATCH}-event batches, events/s acknowledged (of ${formatInt(params["background-rate"])} sent)`,
          value: formatInt(((result.completed - result.non2xx) * BACKGROUND_BATCH) / seconds),
        },
        { measure: "background: non-2xx / unanswered", value: `${result.non2xx} / ${result.unanswered}` },
      );
    }
    if (lost > 0) {
      failure = `${lost} acknowledged events were not visible within ${params["visible-timeout-seconds"]} s`;
    }
  } finally {
    await server.stop();
  }
  console.log(figuresTable(figures));
  if (failure) throw new Error(failure);
}

/** Sends one event every 1/rate s (on schedule, not waiting for answers); records ack times. */
async function sendSteadily(
  server: SluiceServer,
  params: FreshnessParams,
  runTag: string,
  events: Sent[],
): Promise<void> {
  const factory = new SegmentEventFactory(11);
  const total = Math.floor(params["fresh-rate"] * params["fresh-seconds"]);
  const interval = 1000 / params["fresh-rate"];
  const headers = { authorization: basicAuth(server.writeKey), "content-type": "application/json" };
  const inFlight: Promise<void>[] = [];
  console.error(`bench: ${formatInt(total)} events to /v1/track at ${params["fresh-rate"]}/s...`);
  const start = performance.now();
  for (let i = 0; i < total; i++) {
    await sleep(Math.max(0, start + i * interval - performance.now()));
    const event: Sent = { id: `${runTag}-f${i}`, sentAt: performance.now(), ackedAt: null, visibleAt: null };
    events.push(event);
    const body = JSON.stringify(factory.next(event.id, { trackOnly: true }));
    inFlight.push(
      fetch(`${server.url}/v1/track`, { method: "POST", headers, body }).then(async (response) => {
        const answer = await response.text();
        if (response.ok) event.ackedAt = performance.now();
        else console.error(`bench: /v1/track answered ${response.status} for ${event.id}: ${answer}`);
      }),
    );
  }
  await Promise.all(inFlight);
}

/** The `--background-rate` load: batches paced over the same seconds as the single events. */
async function sendBackground(
  server: SluiceServer,
  params: FreshnessParams,
  runTag: string,
): Promise<{ result: LoadResult; seconds: number } | null> {
  const rate = params["background-rate"] / BACKGROUND_BATCH;
  if (rate <= 0) return null;
  const templates = batchTemplates(`${runTag}-g`, BACKGROUND_BATCH, 64);
  console.error(`bench: meanwhile ${formatInt(params["background-rate"])} events/s in batches...`);
  const result = await pacedLoad({
    url: server.url,
    path: "/v1/batch",
    headers: { authorization: basicAuth(server.writeKey), "content-type": "application/json" },
    rate,
    seconds: params["fresh-seconds"],
    connections: BACKGROUND_CONNECTIONS,
    body: (n) => (templates[n % templates.length] as BodyTemplate).stamp(n),
    onResponse: () => {},
  });
  return { result, seconds: result.seconds };
}
