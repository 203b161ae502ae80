/**
 * `npm run bench -- ingest`: durable ingest throughput and latency of the real
 * server on loopback, then proof that every acknowledged event is in the lake
 * exactly once.
 *
 * (a) 100-event `POST /v1/batch` requests, as fast as they are acknowledged
 *     (closed loop, see http-load.ts): events/s, ack latency, peak server memory.
 * (b) 1-event `POST /v1/track`: the highest request rate (closed loop), then a
 *     steady half of it (paced) for p99 latency.
 *
 * Every request carries unique messageIds (`<run>-<phase><request number>-<i>`),
 * so dedupe drops nothing and each request's events can be found in SQL.
 */
import { mkdtemp } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { startBareServer } from "./lib/bare-http.js";
import { basicAuth, query, sqlString } from "./lib/client.js";
import { closedLoad, type LoadResult, pacedLoad } from "./lib/http-load.js";
import type { ParamSpecs, ParamValues } from "./lib/params.js";
import { findProfile, summarizeProfile } from "./lib/profile.js";
import {
  type Figure,
  figuresTable,
  formatInt,
  formatMiB,
  formatMs,
  percentile,
  printHeader,
} from "./lib/report.js";
import { BodyTemplate, batchTemplates, SegmentEventFactory, stampedNumber } from "./lib/segment-events.js";
import { parseServerConfig, REPO_ROOT, type SluiceServer, sleep, startServer } from "./lib/server.js";

export const ingestParams = {
  "batch-seconds": { default: 20, help: "duration of the 100-event batch load" },
  "batch-size": { default: 100, help: "events per /v1/batch request" },
  "batch-connections": { default: 32, help: "concurrent connections sending batches" },
  "track-seconds": {
    default: 10,
    help: "duration of each 1-event /v1/track phase (max rate, then half rate)",
  },
  "track-connections": { default: 64, help: "concurrent connections sending 1-event requests" },
  "warmup-seconds": {
    default: 2,
    help: "paced half-rate phase: seconds at that rate before latencies count (stored and checked all the same)",
  },
  "settle-seconds": {
    default: 120,
    help: "how long the loader may take to make acknowledged events queryable",
  },
  "baseline-seconds": {
    default: 10,
    help: "duration of each baseline run against a bare node:http server (0 = skip the baseline)",
  },
  "cpu-prof": { default: false, help: "profile the server's main thread and print where its time goes" },
  "server-config": {
    default: "",
    help: "Sluice config overrides, e.g. duckdb_threads=1,flush_interval_ms=500",
  },
} satisfies ParamSpecs;

type IngestParams = ParamValues<typeof ingestParams>;

const GOAL_EVENTS_PER_SECOND = 150_000;
const GOAL_TRACK_REQUESTS_PER_SECOND = 20_000;
const GOAL_TRACK_P99_MS = 20;
/** Distinct bodies to rotate through: varied content; uniqueness comes from the stamped request number. */
const TEMPLATES = 64;

/** What one load phase acknowledged, and which of its requests never were. */
interface PhaseOutcome {
  tag: string;
  ackedEvents: number;
  rejectedEvents: number;
  /** Request numbers sent (or prepared) but not acknowledged with 2xx: in flight at the end, or failed. */
  unacked: Set<number>;
}

export async function runIngest(params: IngestParams): Promise<void> {
  printHeader(
    "ingest",
    "Durable ingest on loopback: the load generator (in this process) and the server share the machine's cores, " +
      "so figures are lower than with the generator on another host. fsync is on (the default).",
    params,
  );
  const profileDir = params["cpu-prof"] ? await mkdtemp(join(tmpdir(), "sluice-bench-profile-")) : undefined;
  const server = await startServer({
    cpuProfileDir: profileDir,
    config: parseServerConfig(params["server-config"]),
  });
  const runTag = Date.now().toString(36);
  const figures: Figure[] = [];
  const phases: PhaseOutcome[] = [];
  let failure: string | null = null;
  try {
    // (a) batches
    const batchTag = `${runTag}-b`;
    const batch = await closedPhase(server, {
      tag: batchTag,
      path: "/v1/batch",
      templates: batchTemplates(batchTag, params["batch-size"], TEMPLATES),
      eventsPerRequest: params["batch-size"],
      connections: params["batch-connections"],
      seconds: params["batch-seconds"],
    });
    phases.push(batch.outcome);
    const eventsPerSecond = batch.outcome.ackedEvents / batch.result.seconds;
    const batchPeakRss = await server.peakRssBytes();
    figures.push(
      {
        measure: `(a) ${params["batch-size"]}-event batches: events/s acknowledged (durable)`,
        value: formatInt(eventsPerSecond),
        goal: `≥ ${formatInt(GOAL_EVENTS_PER_SECOND)}`,
        pass: eventsPerSecond >= GOAL_EVENTS_PER_SECOND,
      },
      { measure: "(a) requests/s", value: formatInt(acknowledgedRate(batch.result)) },
      { measure: "(a) ack latency p50 / p99", value: latencyP50P99(batch.result) },
      {
        measure: "(a) non-2xx / connection errors",
        value: `${batch.result.non2xx} / ${batch.result.errors}`,
        goal: "0",
        pass: batch.result.non2xx === 0 && batch.result.errors === 0,
      },
      { measure: "(a) server peak RSS", value: formatMiB(batchPeakRss) },
      { measure: "(a) CPU cores used: server / load generator", value: batch.cpu },
    );
    const settled = await waitForAcknowledged(server, runTag, phases, params["settle-seconds"]);
    if (params["baseline-seconds"] > 0) {
      const baseline = await bareHttpRate({
        path: "/v1/batch",
        templates: batchTemplates(`${runTag}-x`, params["batch-size"], TEMPLATES),
        connections: params["batch-connections"],
        seconds: params["baseline-seconds"],
      });
      const sluiceRate = acknowledgedRate(batch.result);
      figures.push({
        measure: "(a) baseline: the same requests to a bare node:http server that stores nothing: requests/s",
        value: `${formatInt(baseline)} (Sluice: ${((100 * sluiceRate) / baseline).toFixed(0)}% of it)`,
      });
    }
    figures.push({
      measure: "(a) loader: time after the load until all acknowledged events are queryable",
      value:
        settled.seconds === null
          ? `not within ${params["settle-seconds"]} s`
          : `${settled.seconds.toFixed(1)} s`,
    });

    // (b1) single events, as many as the server acknowledges
    const maxTag = `${runTag}-t`;
    const maxTrack = await closedPhase(server, {
      tag: maxTag,
      path: "/v1/track",
      templates: singleTemplates(maxTag),
      eventsPerRequest: 1,
      connections: params["track-connections"],
      seconds: params["track-seconds"],
    });
    phases.push(maxTrack.outcome);
    const maxRate = acknowledgedRate(maxTrack.result);
    figures.push(
      {
        measure: "(b) 1-event /v1/track: max requests/s acknowledged",
        value: formatInt(maxRate),
        goal: `≥ ${formatInt(GOAL_TRACK_REQUESTS_PER_SECOND)}`,
        pass: maxRate >= GOAL_TRACK_REQUESTS_PER_SECOND,
      },
      { measure: "(b) at max rate: latency p50 / p99", value: latencyP50P99(maxTrack.result) },
      { measure: "(b) at max rate: CPU cores used: server / load generator", value: maxTrack.cpu },
    );
    if (params["baseline-seconds"] > 0) {
      const baseline = await bareHttpRate({
        path: "/v1/track",
        templates: singleTemplates(`${runTag}-y`),
        connections: params["track-connections"],
        seconds: params["baseline-seconds"],
      });
      figures.push({
        measure: "(b) baseline: the same requests to a bare node:http server that stores nothing: requests/s",
        value: `${formatInt(baseline)} (Sluice: ${((100 * maxRate) / baseline).toFixed(0)}% of it)`,
      });
    }

    // (b2) single events at a steady half of that rate
    const halfRate = Math.max(1, Math.floor(maxRate / 2));
    const steadyTag = `${runTag}-h`;
    const steady = await pacedPhase(server, {
      tag: steadyTag,
      templates: singleTemplates(steadyTag),
      rate: halfRate,
      seconds: params["track-seconds"],
      warmupSeconds: params["warmup-seconds"],
      connections: params["track-connections"],
    });
    phases.push(steady.outcome);
    figures.push(
      {
        measure: `(b) at half rate (${formatInt(halfRate)} req/s, paced): latency p99`,
        value: formatMs(steady.p99),
        goal: `≤ ${GOAL_TRACK_P99_MS} ms`,
        pass: steady.p99 <= GOAL_TRACK_P99_MS,
      },
      {
        measure: "(b) at half rate: latency p50 / max",
        value: `${formatMs(steady.p50)} / ${formatMs(steady.max)}`,
      },
      {
        measure: "(b) at half rate: achieved req/s, non-2xx, unanswered",
        value: `${formatInt(steady.achievedRate)}, ${steady.non2xx}, ${steady.unanswered}`,
      },
      { measure: "(b) at half rate: CPU cores used: server / load generator", value: steady.cpu },
    );
    if (params["baseline-seconds"] > 0) {
      const baseline = await bareHttpPaced({
        templates: singleTemplates(`${runTag}-z`),
        rate: halfRate,
        seconds: params["baseline-seconds"],
        warmupSeconds: params["warmup-seconds"],
        connections: params["track-connections"],
      });
      figures.push({
        measure: "(b) baseline: the same paced load to a bare node:http server: latency p50 / p99",
        value: `${formatMs(baseline.p50)} / ${formatMs(baseline.p99)}`,
      });
    }

    // Every acknowledged event must be queryable, exactly once.
    const { count } = await waitForAcknowledged(server, runTag, phases, params["settle-seconds"]);
    const check = judgeLake(count, phases);
    figures.push({
      measure: "events acknowledged / in the lake (every acknowledged one exactly once)",
      value: check.summary,
      goal: "equal, no duplicates",
      pass: check.ok,
    });
    if (!check.ok) failure = `the lake does not hold every acknowledged event exactly once: ${check.summary}`;
    figures.push({ measure: "server peak RSS (whole run)", value: formatMiB(await server.peakRssBytes()) });
  } finally {
    await server.stop();
  }
  console.log(figuresTable(figures));
  if (profileDir) {
    const profile = await findProfile(profileDir);
    if (profile) {
      console.log(`\nServer CPU profile: ${profile}\n`);
      console.log(await summarizeProfile(profile, REPO_ROOT));
    }
  }
  if (failure) throw new Error(failure);
}

const acknowledged = (phases: PhaseOutcome[]) => phases.reduce((sum, phase) => sum + phase.ackedEvents, 0);

interface ClosedPhase {
  tag: string;
  path: string;
  templates: BodyTemplate[];
  eventsPerRequest: number;
  connections: number;
  seconds: number;
}

async function closedPhase(
  server: SluiceServer,
  phase: ClosedPhase,
): Promise<{ result: LoadResult; outcome: PhaseOutcome; cpu: string }> {
  console.error(`bench: ${phase.path} with ${phase.connections} connections for ${phase.seconds} s...`);
  const outcome: PhaseOutcome = { tag: phase.tag, ackedEvents: 0, rejectedEvents: 0, unacked: new Set() };
  const cpu = startCpuMeter(server);
  const result = await closedLoad({
    url: server.url,
    path: phase.path,
    headers: { authorization: basicAuth(server.writeKey), "content-type": "application/json" },
    connections: phase.connections,
    seconds: phase.seconds,
    ...trackedRequests(outcome, phase.templates, phase.eventsPerRequest),
  });
  return { result, outcome, cpu: await cpu.stop() };
}

/** 2xx answers per second of the run. */
function acknowledgedRate(result: LoadResult): number {
  return (result.completed - result.non2xx) / result.seconds;
}

function latencyP50P99(result: LoadResult): string {
  const latencies = Array.from(result.latenciesMs);
  return `${formatMs(percentile(latencies, 50))} / ${formatMs(percentile(latencies, 99))}`;
}

/**
 * Requests/s a bare `node:http` server answers under the same load: what this machine's HTTP
 * stack and load generator allow before any collecting is done.
 */
async function bareHttpRate(phase: {
  path: string;
  templates: BodyTemplate[];
  connections: number;
  seconds: number;
}): Promise<number> {
  console.error(`bench: baseline, ${phase.path} to a bare node:http server for ${phase.seconds} s...`);
  const bare = await startBareServer();
  try {
    const result = await closedLoad({
      url: bare.url,
      path: phase.path,
      headers: { "content-type": "application/json" },
      connections: phase.connections,
      seconds: phase.seconds,
      body: (n) => (phase.templates[n % phase.templates.length] as BodyTemplate).stamp(n),
      onResponse: () => {},
    });
    return acknowledgedRate(result);
  } finally {
    await bare.stop();
  }
}

/**
 * The paced phase's load against a bare node:http server: the latency this machine and this
 * generator add by themselves (timer granularity, the generator's own pauses, loopback).
 */
async function bareHttpPaced(phase: {
  templates: BodyTemplate[];
  rate: number;
  seconds: number;
  warmupSeconds: number;
  connections: number;
}): Promise<{ p50: number; p99: number }> {
  console.error(
    `bench: baseline, /v1/track paced at ${formatInt(phase.rate)} req/s to a bare node:http server...`,
  );
  const bare = await startBareServer();
  try {
    const result = await pacedLoad({
      url: bare.url,
      path: "/v1/track",
      headers: { "content-type": "application/json" },
      rate: phase.rate,
      seconds: phase.seconds,
      warmupSeconds: phase.warmupSeconds,
      connections: phase.connections,
      body: (n) => (phase.templates[n % phase.templates.length] as BodyTemplate).stamp(n),
      onResponse: () => {},
    });
    const latencies = Array.from(result.latenciesMs);
    return { p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
  } finally {
    await bare.stop();
  }
}

async function pacedPhase(
  server: SluiceServer,
  phase: {
    tag: string;
    templates: BodyTemplate[];
    rate: number;
    seconds: number;
    warmupSeconds: number;
    connections: number;
  },
) {
  console.error(
    `bench: /v1/track paced at ${formatInt(phase.rate)} req/s for ${phase.warmupSeconds} s of warm-up, then ${phase.seconds} s...`,
  );
  const outcome: PhaseOutcome = { tag: phase.tag, ackedEvents: 0, rejectedEvents: 0, unacked: new Set() };
  const cpu = startCpuMeter(server);
  const result = await pacedLoad({
    url: server.url,
    path: "/v1/track",
    headers: { authorization: basicAuth(server.writeKey), "content-type": "application/json" },
    rate: phase.rate,
    seconds: phase.seconds,
    warmupSeconds: phase.warmupSeconds,
    connections: phase.connections,
    ...trackedRequests(outcome, phase.templates, 1),
  });
  const latencies = Array.from(result.latenciesMs);
  return {
    outcome,
    cpu: await cpu.stop(),
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.reduce((max, value) => Math.max(max, value), 0),
    // Answers to the requests due after the warm-up, over the time they were due in.
    achievedRate: result.latenciesMs.length / result.seconds,
    non2xx: result.non2xx,
    unanswered: result.unanswered,
  };
}

/**
 * Request bodies from the templates, stamped with their request numbers, and the answers counted
 * into `outcome`: a request stays unacknowledged until its 2xx arrives.
 */
function trackedRequests(outcome: PhaseOutcome, templates: BodyTemplate[], eventsPerRequest: number) {
  return {
    body: (n: number) => {
      outcome.unacked.add(n);
      return (templates[n % templates.length] as BodyTemplate).stamp(n);
    },
    onResponse: (n: number, status: number, body: string) => {
      if (status < 200 || status >= 300) return;
      outcome.unacked.delete(n);
      countAck(outcome, body, eventsPerRequest);
    },
  };
}

const SUCCESS = '{"success":true}';

/** A batch answers with how many events it accepted; a single call with `{success: true}`. */
function countAck(outcome: PhaseOutcome, body: string, eventsPerRequest: number): void {
  // Most answers: no parse on the generator's hot path, which shares the cores with the server.
  if (body === SUCCESS) {
    outcome.ackedEvents += eventsPerRequest;
    return;
  }
  let answer: { accepted?: number; rejected?: number } = {};
  try {
    answer = JSON.parse(body) as typeof answer;
  } catch {
    // Counted as fully accepted; the lake check below catches any difference.
  }
  outcome.ackedEvents += answer.accepted ?? eventsPerRequest;
  outcome.rejectedEvents += answer.rejected ?? 0;
}

/** CPU cores used by the server and by this process (the load generator) between start and stop. */
function startCpuMeter(server: SluiceServer) {
  const started = Date.now();
  const ownStart = process.cpuUsage();
  const serverStart = server.cpuSeconds();
  return {
    async stop(): Promise<string> {
      const seconds = (Date.now() - started) / 1000;
      const own = process.cpuUsage(ownStart);
      const [before, after] = [await serverStart, await server.cpuSeconds()];
      const serverCores = before === null || after === null ? "n/a" : ((after - before) / seconds).toFixed(2);
      const ownCores = ((own.user + own.system) / 1e6 / seconds).toFixed(2);
      return `${serverCores} / ${ownCores}`;
    },
  };
}

/** Batch bodies whose messageIds are `<tag><request number>-<i>`. */
/** Single-call bodies whose messageId is `<tag><request number>`. */
function singleTemplates(tag: string): BodyTemplate[] {
  const factory = new SegmentEventFactory(7);
  return Array.from(
    { length: TEMPLATES * 4 },
    () =>
      new BodyTemplate(
        JSON.stringify(factory.next(`${tag}${BodyTemplate.PLACEHOLDER}`, { trackOnly: true })),
      ),
  );
}

/** What the lake holds of this run's events. */
interface LakeCount {
  total: number;
  distinct: number;
  /** Rows from requests never acknowledged (in flight when a load stopped): stored or not, both are fine. */
  fromUnacked: number;
  /** Rows not sent by this run (there should be none: the data dir is fresh). */
  foreign: number;
  /** Rows of acknowledged requests. */
  ackedInLake: number;
}

/** One query through the public API, like any reader's. */
async function countLake(server: SluiceServer, runTag: string, phases: PhaseOutcome[]): Promise<LakeCount> {
  // Event ids are `<run>-<phase><request number>[-<i>]`: the request is the id up to its second dash.
  const unackedRequests = phases.flatMap((phase) =>
    [...phase.unacked].map((n) => sqlString(`${phase.tag}${stampedNumber(n)}`)),
  );
  const request = "regexp_extract(event_id, '^[^-]+-[^-]+')";
  const unackedFilter =
    unackedRequests.length > 0 ? `${request} IN (${unackedRequests.join(", ")})` : "false";
  const row = (
    await query(
      server,
      `SELECT count(*), count(DISTINCT event_id), count(*) FILTER (WHERE ${unackedFilter}),
         count(*) FILTER (WHERE NOT starts_with(event_id, ${sqlString(`${runTag}-`)}))
       FROM events`,
    )
  ).rows[0];
  const [total = 0, distinct = 0, fromUnacked = 0, foreign = 0] = (row ?? []).map(Number);
  return { total, distinct, fromUnacked, foreign, ackedInLake: total - fromUnacked - foreign };
}

/**
 * Waits until the lake holds as many rows of acknowledged requests as were
 * acknowledged; returns the last count and the seconds it took (null on timeout).
 * It polls with a bare `count(*)` (answered from Parquet metadata) and checks ids only once
 * that many rows are there: `countLake` hashes every id in the lake, and at 2M rows, run four
 * times a second on both cores, it starved the niced loader it was waiting for.
 */
async function waitForAcknowledged(
  server: SluiceServer,
  runTag: string,
  phases: PhaseOutcome[],
  timeoutSeconds: number,
): Promise<{ count: LakeCount; seconds: number | null }> {
  const started = Date.now();
  const expected = acknowledged(phases);
  for (;;) {
    const seconds = (Date.now() - started) / 1000;
    const rows = Number((await query(server, "SELECT count(*) FROM events")).rows[0]?.[0] ?? 0);
    if (rows >= expected || seconds > timeoutSeconds) {
      const count = await countLake(server, runTag, phases);
      if (count.ackedInLake >= expected) return { count, seconds };
      if (seconds > timeoutSeconds) return { count, seconds: null };
    }
    await sleep(250);
  }
}

/** Every acknowledged event exactly once, nothing else, nothing rejected. */
function judgeLake(count: LakeCount, phases: PhaseOutcome[]): { ok: boolean; summary: string } {
  const acked = acknowledged(phases);
  const rejected = phases.reduce((sum, phase) => sum + phase.rejectedEvents, 0);
  const unackedRequests = phases.reduce((sum, phase) => sum + phase.unacked.size, 0);
  const ok =
    count.distinct === count.total && count.ackedInLake === acked && count.foreign === 0 && rejected === 0;
  const summary =
    `${formatInt(acked)} acknowledged; lake: ${formatInt(count.total)} rows, ${formatInt(count.distinct)} distinct ids, ` +
    `${formatInt(count.ackedInLake)} of them acknowledged, ${formatInt(count.fromUnacked)} from ${unackedRequests} ` +
    `requests unanswered when a load stopped${rejected > 0 ? `, ${rejected} rejected by the server` : ""}`;
  return { ok, summary };
}
