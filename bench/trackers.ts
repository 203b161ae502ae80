/**
 * `npm run bench -- trackers`: the Snowplow endpoints and the cost of enrichment.
 *
 * (a) `POST /com.snowplowanalytics.snowplow/tp2` with `tp2-events` events per request, as a
 *     browser tracker batches them: requests/s and events/s acknowledged.
 * (b) `GET /i` pixel requests (one page view each): requests/s.
 * (c) Segment batches with enrichment (user agent → browser/os/device, bot flag) on, then off,
 *     each on a fresh server: events/s and the server's CPU time per event; the difference is
 *     what enrichment costs.
 *
 * Event ids are `<run>-<phase><request number>-<i>`, so each phase's events are counted in the
 * lake afterwards: every acknowledged event must be there. The load comes from the same closed-loop
 * generator as the ingest benchmark's (http-load.ts), so (c) is its batch phase with and without
 * enrichment.
 */
import { basicAuth, query, sqlString } from "./lib/client.js";
import { closedLoad, type LoadResult } from "./lib/http-load.js";
import type { ParamSpecs, ParamValues } from "./lib/params.js";
import {
  type Figure,
  figuresTable,
  formatInt,
  formatMs,
  loadAverage,
  percentile,
  printHeader,
} from "./lib/report.js";
import { BodyTemplate, SegmentEventFactory } from "./lib/segment-events.js";
import { type SluiceServer, sleep, startServer } from "./lib/server.js";

export const trackersParams = {
  seconds: { default: 10, help: "duration of each load phase" },
  connections: { default: 32, help: "concurrent connections" },
  "tp2-events": { default: 10, help: "events per tp2 POST" },
  "batch-size": { default: 100, help: "events per Segment batch in the enrichment phases" },
  "settle-seconds": { default: 60, help: "how long acknowledged events may take to be queryable" },
} satisfies ParamSpecs;

type TrackersParams = ParamValues<typeof trackersParams>;

const TP2_PATH = "/com.snowplowanalytics.snowplow/tp2";
const TEMPLATES = 32;
const USER_AGENTS = [
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
  "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
];

interface Phase {
  result: LoadResult;
  /** Events acknowledged with 2xx. */
  events: number;
  /** Server CPU seconds used during the phase (null off Linux). */
  cpuSeconds: number | null;
  /** The load average (1/5 min) as the phase ended, this benchmark included: was the machine shared? */
  loadAfter: string;
}

export async function runTrackers(params: TrackersParams): Promise<void> {
  printHeader(
    "trackers",
    "Snowplow tp2 and pixel requests, and Segment batches with enrichment on and off, on loopback " +
      "(the load generator shares the machine's cores). fsync is on.",
    params,
  );
  const runTag = Date.now().toString(36);
  const figures: Figure[] = [];
  const loads: string[] = [];
  let lost: string | null = null;

  const server = await startServer();
  try {
    const tp2 = await load(server, {
      path: TP2_PATH,
      method: "POST",
      connections: params.connections,
      seconds: params.seconds,
      eventsPerRequest: params["tp2-events"],
      body: tp2Bodies(server.writeKey, `${runTag}-s`, params["tp2-events"]),
    });
    const pixel = await load(server, {
      path: "/i",
      method: "GET",
      connections: params.connections,
      seconds: params.seconds,
      eventsPerRequest: 1,
      target: pixelTargets(server.writeKey, `${runTag}-p`),
    });
    loads.push(`(a) ${tp2.loadAfter}`, `(b) ${pixel.loadAfter}`);
    figures.push(
      { measure: `(a) tp2 POST, ${params["tp2-events"]} events each: requests/s`, value: rate(tp2) },
      { measure: "(a) tp2 POST: events/s", value: formatInt(tp2.events / tp2.result.seconds) },
      { measure: "(a) tp2 POST: latency p50 / p99", value: latency(tp2) },
      { measure: "(b) pixel GET /i: requests/s (= events/s)", value: rate(pixel) },
      { measure: "(b) pixel GET /i: latency p50 / p99", value: latency(pixel) },
    );
    lost = await missing(
      server,
      [
        [`${runTag}-s`, tp2.events],
        [`${runTag}-p`, pixel.events],
      ],
      params["settle-seconds"],
    );
  } finally {
    await server.stop();
  }

  const enrichment: Record<"on" | "off", Phase> = {} as Record<"on" | "off", Phase>;
  for (const mode of ["on", "off"] as const) {
    const enrichServer = await startServer({
      config: { ENRICH_USER_AGENTS: mode === "on" ? "true" : "false" },
    });
    try {
      enrichment[mode] = await load(enrichServer, {
        path: "/v1/batch",
        method: "POST",
        connections: params.connections,
        seconds: params.seconds,
        eventsPerRequest: params["batch-size"],
        body: segmentBatches(`${runTag}-${mode}`, params["batch-size"]),
      });
    } finally {
      await enrichServer.stop();
    }
  }
  const perEvent = (phase: Phase) =>
    phase.cpuSeconds === null ? null : (phase.cpuSeconds * 1e6) / Math.max(1, phase.events);
  const [on, off] = [perEvent(enrichment.on), perEvent(enrichment.off)];
  figures.push(
    {
      measure: `(c) Segment batches of ${params["batch-size"]}: events/s, enrichment on / off`,
      value: `${formatInt(enrichment.on.events / enrichment.on.result.seconds)} / ${formatInt(
        enrichment.off.events / enrichment.off.result.seconds,
      )}`,
    },
    {
      measure: "(c) server CPU per event, enrichment on / off (µs)",
      value: on === null || off === null ? "n/a" : `${on.toFixed(1)} / ${off.toFixed(1)}`,
    },
    {
      measure: "(c) enrichment's cost per event (µs of CPU)",
      value: on === null || off === null ? "n/a" : (on - off).toFixed(1),
    },
  );
  loads.push(`(c) on ${enrichment.on.loadAfter}`, `(c) off ${enrichment.off.loadAfter}`);
  figures.push({ measure: "load average (1/5 min) as each phase ended", value: loads.join(", ") });
  figures.push({
    measure: "tp2 and pixel events acknowledged / in the lake",
    value: lost ?? "all acknowledged events are queryable",
    goal: "all",
    pass: lost === null,
  });
  console.log(figuresTable(figures));
  if (lost) throw new Error(lost);
}

const rate = (phase: Phase) =>
  formatInt((phase.result.completed - phase.result.non2xx) / phase.result.seconds);
const latency = (phase: Phase) => {
  const latencies = Array.from(phase.result.latenciesMs);
  return `${formatMs(percentile(latencies, 50))} / ${formatMs(percentile(latencies, 99))}`;
};

async function load(
  server: SluiceServer,
  phase: {
    path: string;
    method: "GET" | "POST";
    connections: number;
    seconds: number;
    eventsPerRequest: number;
    /** POST: the body of request `n`. */
    body?: (n: number) => Buffer;
    /** GET: the path with query string of request `n`. */
    target?: (n: number) => string;
  },
): Promise<Phase> {
  console.error(
    `bench: ${phase.method} ${phase.path} with ${phase.connections} connections for ${phase.seconds} s...`,
  );
  let events = 0;
  const cpuBefore = await server.cpuSeconds();
  const result = await closedLoad({
    url: server.url,
    path: phase.path,
    method: phase.method,
    connections: phase.connections,
    seconds: phase.seconds,
    headers:
      phase.method === "POST"
        ? { authorization: basicAuth(server.writeKey), "content-type": "application/json" }
        : {},
    target: phase.target,
    body: phase.body,
    onResponse: (_n, status) => {
      if (status >= 200 && status < 300) events += phase.eventsPerRequest;
    },
  });
  const cpuAfter = await server.cpuSeconds();
  return {
    result,
    events,
    cpuSeconds: cpuBefore === null || cpuAfter === null ? null : cpuAfter - cpuBefore,
    loadAfter: loadAverage(),
  };
}

/** tp2 bodies as the JavaScript tracker sends them: page views, pings and structured events. */
function tp2Bodies(writeKey: string, tag: string, eventsPerRequest: number): (n: number) => Buffer {
  const templates = Array.from({ length: TEMPLATES }, (_, t) => {
    const data = Array.from({ length: eventsPerRequest }, (_, i) => {
      const kind = (t + i) % 3;
      const common = {
        eid: `${tag}${BodyTemplate.PLACEHOLDER}-${i}`,
        aid: writeKey,
        p: "web",
        tv: "js-3.24.0",
        duid: `visitor-${t}`,
        sid: `session-${t}`,
        dtm: String(Date.UTC(2026, 10, 25, 10, t, i)),
        stm: String(Date.UTC(2026, 10, 25, 10, t, i)),
        url: `https://shop.example/products/${t}?utm_source=news`,
        page: `Product ${t}`,
        refr: "https://www.google.com/",
        ua: USER_AGENTS[t % USER_AGENTS.length],
        lang: "en-US",
        res: "1920x1080",
        vp: "1280x720",
      };
      if (kind === 0) return { e: "pv", ...common };
      if (kind === 1) return { e: "pp", pp_mix: "0", pp_max: "120", pp_miy: "0", pp_may: "900", ...common };
      return { e: "se", se_ca: "shop", se_ac: "add-to-cart", se_la: `sku-${t}`, se_va: "49.9", ...common };
    });
    return new BodyTemplate(
      JSON.stringify({ schema: "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4", data }),
    );
  });
  return (n) => (templates[n % templates.length] as BodyTemplate).stamp(n);
}

function pixelTargets(writeKey: string, tag: string): (n: number) => string {
  return (n) => {
    const query = new URLSearchParams({
      e: "pv",
      aid: writeKey,
      eid: `${tag}${String(n).padStart(BodyTemplate.DIGITS, "0")}-0`,
      url: `https://shop.example/landing/${n % 50}`,
      page: "Landing",
      duid: `visitor-${n % 1000}`,
      ua: USER_AGENTS[n % USER_AGENTS.length] as string,
    });
    return `/i?${query}`;
  };
}

function segmentBatches(tag: string, size: number): (n: number) => Buffer {
  const factory = new SegmentEventFactory(42);
  const templates = Array.from({ length: TEMPLATES }, () => {
    const batch = Array.from({ length: size }, (_, i) =>
      factory.next(`${tag}${BodyTemplate.PLACEHOLDER}-${i}`),
    );
    return new BodyTemplate(JSON.stringify({ batch }));
  });
  return (n) => (templates[n % templates.length] as BodyTemplate).stamp(n);
}

/** Null when every phase's acknowledged events are in the lake; else what is missing. */
async function missing(
  server: SluiceServer,
  phases: [tag: string, acknowledged: number][],
  settleSeconds: number,
): Promise<string | null> {
  const started = Date.now();
  for (;;) {
    const counts = await Promise.all(
      phases.map(async ([tag]) => {
        const result = await query(
          server,
          `SELECT count(DISTINCT event_id) FROM events WHERE starts_with(event_id, ${sqlString(tag)})`,
        );
        return Number(result.rows[0]?.[0] ?? 0);
      }),
    );
    const short = phases.filter(([, acknowledged], index) => (counts[index] ?? 0) < acknowledged);
    if (short.length === 0) return null;
    if ((Date.now() - started) / 1000 > settleSeconds) {
      return short
        .map(
          ([tag, acknowledged]) =>
            `${tag}: ${acknowledged} acknowledged, ${counts[phases.findIndex(([t]) => t === tag)]} in the lake`,
        )
        .join("; ");
    }
    await sleep(500);
  }
}
