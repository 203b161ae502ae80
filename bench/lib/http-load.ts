/**
 * Load generators on raw keep-alive sockets, one request in flight per connection:
 *
 * - `closedLoad`: as fast as the server answers. Each connection sends its next request as soon as
 *   its previous one was answered; latency runs from sending. What "max requests/s" measures.
 * - `pacedLoad`: a fixed request rate (open loop), for latency at a given load. Requests are due at
 *   evenly spaced times and latency runs from when a request was due, not when a free connection
 *   sent it, so a slow server cannot hide its queueing (no "coordinated omission"). An optional
 *   warm-up at the same rate comes first; its requests are sent and answered like the others but
 *   their latencies are not kept, so the figures are the steady state's (as wrk2's calibration
 *   period): a JIT-compiled server and generator both run slower code for their first moments.
 *
 * Why not autocannon: the generator shares the machine's two cores with the server, and
 * autocannon's per-request work (rebuilding each request, its histograms) cost about twice
 * what these sockets do, which came out of the server's share. Its `overallRate` also lets each
 * connection send its quota for the second at the start of the second (a burst of the whole
 * second's load), and its coordinated-omission correction assumes a 1 ms interval whatever the
 * rate; both distort p99 at a fixed rate.
 */
import { connect, type Socket } from "node:net";
import { performance } from "node:perf_hooks";

export interface LoadOptions {
  url: string;
  path: string;
  /** "POST" (the default) with `body`, or "GET" without one. */
  method?: "GET" | "POST";
  /** The path (with query string) of request number `n`, when it is not always `path`. */
  target?(n: number): string;
  headers: Record<string, string>;
  seconds: number;
  connections: number;
  /** The body of request number `n` (POST only); numbers count up from 0. */
  body?(n: number): Buffer;
  onResponse(n: number, status: number, body: string): void;
}

export interface LoadResult {
  sent: number;
  completed: number;
  non2xx: number;
  /** Requests still unanswered when the run ended (connection errors included). */
  unanswered: number;
  /** Connections that broke during the run. */
  errors: number;
  /** Latency of each answered request in ms: from sending (closed loop) or from when it was due (paced). */
  latenciesMs: Float64Array;
  seconds: number;
}

interface Pending {
  n: number;
  /** When the request was due (paced) or sent (closed loop). */
  since: number;
}

interface Connection {
  socket: Socket;
  inFlight: Pending | null;
  received: Buffer;
  broken: boolean;
}

const NO_BODY = Buffer.alloc(0);

/** How long answers to the last requests are awaited after the run. */
const DRAIN_MS = 5_000;

/** As many requests as the server answers, for `seconds`. */
export async function closedLoad(options: LoadOptions): Promise<LoadResult> {
  const run = await startRun(options);
  let stopped = false;
  run.onIdle = (connection) => {
    if (!stopped) run.send(connection, { n: run.next(), since: performance.now() });
  };
  const start = performance.now();
  for (const connection of run.connections) run.onIdle(connection);
  await new Promise((resolve) => setTimeout(resolve, options.seconds * 1000));
  stopped = true;
  return run.finish(start);
}

/**
 * `rate` requests per second, evenly spaced, for `warmupSeconds` (default 0) and then `seconds`.
 * Latencies and `seconds` are the measured part's; the counts cover the warm-up too.
 */
export async function pacedLoad(
  options: LoadOptions & { rate: number; warmupSeconds?: number },
): Promise<LoadResult> {
  const run = await startRun(options);
  const warmupMs = (options.warmupSeconds ?? 0) * 1000;
  const total = Math.floor((options.rate * (warmupMs + options.seconds * 1000)) / 1000);
  const interval = 1000 / options.rate;
  const queue: Pending[] = [];
  const idle: Connection[] = [...run.connections];
  run.onIdle = (connection) => {
    const next = queue.shift();
    if (next) run.send(connection, next);
    else if (!connection.broken) idle.push(connection);
  };
  run.onBroken = (connection) => {
    const index = idle.indexOf(connection);
    if (index !== -1) idle.splice(index, 1);
  };
  const start = performance.now();
  run.measureFrom = start + warmupMs;
  let scheduled = 0;
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (scheduled < total && start + scheduled * interval <= now) {
        const pending = { n: run.next(), since: start + scheduled * interval };
        scheduled++;
        const connection = idle.pop();
        if (connection) run.send(connection, pending);
        else queue.push(pending);
      }
      if (scheduled < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  return run.finish(start + warmupMs, () => queue.length > 0);
}

/** Opens the connections and keeps the counts; the caller decides when each idle connection sends. */
async function startRun(options: LoadOptions) {
  const { hostname, port } = new URL(options.url);
  const headerLines = Object.entries({
    host: `${hostname}:${port}`,
    connection: "keep-alive",
    ...options.headers,
  })
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join("");
  const latencies: number[] = [];
  let numbered = 0;
  let completed = 0;
  let non2xx = 0;
  let errors = 0;

  const connections: Connection[] = await Promise.all(
    Array.from({ length: options.connections }, () => openConnection(hostname, Number(port))),
  );
  const run = {
    connections,
    next: () => numbered++,
    /** Requests due (or sent) before this time are not in the latencies. */
    measureFrom: 0,
    onIdle: (_connection: Connection) => {},
    onBroken: (_connection: Connection) => {},
    send(connection: Connection, pending: Pending) {
      connection.inFlight = pending;
      const get = options.method === "GET";
      const body = get || options.body === undefined ? NO_BODY : options.body(pending.n);
      const path = options.target?.(pending.n) ?? options.path;
      const head = `${get ? "GET" : "POST"} ${path} HTTP/1.1\r\n${headerLines}content-length: ${body.length}\r\n\r\n`;
      connection.socket.write(Buffer.concat([Buffer.from(head, "latin1"), body]));
    },
    async finish(start: number, queued: () => boolean = () => false): Promise<LoadResult> {
      const seconds = (performance.now() - start) / 1000;
      const drainUntil = performance.now() + DRAIN_MS;
      while ((queued() || connections.some((c) => c.inFlight)) && performance.now() < drainUntil) {
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      for (const connection of connections) {
        connection.broken = true;
        connection.socket.destroy();
      }
      return {
        sent: numbered,
        completed,
        non2xx,
        unanswered: numbered - completed,
        errors,
        latenciesMs: Float64Array.from(latencies),
        seconds,
      };
    },
  };
  for (const connection of connections) {
    connection.socket.on("data", (chunk: Buffer) => {
      connection.received =
        connection.received.length === 0 ? chunk : Buffer.concat([connection.received, chunk]);
      for (;;) {
        const response = takeResponse(connection);
        if (!response || !connection.inFlight) break;
        const { n, since } = connection.inFlight;
        if (since >= run.measureFrom) latencies.push(performance.now() - since);
        completed++;
        if (response.status < 200 || response.status >= 300) non2xx++;
        options.onResponse(n, response.status, response.body);
        connection.inFlight = null;
        run.onIdle(connection);
      }
    });
    // A broken connection loses its request (it stays unanswered) and leaves the pool.
    connection.socket.on("error", () => {});
    connection.socket.on("close", () => {
      if (connection.broken) return;
      connection.broken = true;
      errors++;
      run.onBroken(connection);
    });
  }
  return run;
}

function openConnection(host: string, port: number): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, noDelay: true });
    socket.once("connect", () =>
      resolve({ socket, inFlight: null, received: Buffer.alloc(0), broken: false }),
    );
    socket.once("error", reject);
  });
}

/** Takes one complete HTTP/1.1 response (with Content-Length) off the buffer, if there is one. */
function takeResponse(connection: Connection): { status: number; body: string } | null {
  const data = connection.received;
  const headerEnd = data.indexOf("\r\n\r\n");
  if (headerEnd === -1) return null;
  const head = data.toString("latin1", 0, headerEnd);
  const status = Number(head.slice(9, 12));
  const length = Number(/\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
  const end = headerEnd + 4 + length;
  if (data.length < end) return null;
  connection.received = data.subarray(end);
  return { status, body: data.toString("utf8", headerEnd + 4, end) };
}
