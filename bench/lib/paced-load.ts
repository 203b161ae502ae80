/**
 * An open-loop load generator at a fixed request rate, for latency at a given
 * load. Requests are due at evenly spaced times and latency is measured from
 * when a request was due, not when a free connection sent it, so a slow server
 * cannot hide its queueing (no "coordinated omission").
 *
 * Why not autocannon's `overallRate`: it lets each connection send its quota
 * for the second as fast as it can at the start of every second (a burst of
 * the whole second's load), and its coordinated-omission correction assumes a
 * 1 ms interval whatever the rate. Both distort p99 at a fixed rate.
 */
import { connect, type Socket } from "node:net";
import { performance } from "node:perf_hooks";

export interface PacedLoadOptions {
  url: string;
  path: string;
  headers: Record<string, string>;
  rate: number;
  seconds: number;
  connections: number;
  /** The body of request number `n` (numbers count up from `firstNumber`). */
  body(n: number): Buffer;
  firstNumber?: number;
  onResponse(n: number, status: number, body: string): void;
}

export interface PacedLoadResult {
  sent: number;
  completed: number;
  non2xx: number;
  /** Requests still unanswered when the run ended (connection errors included). */
  unanswered: number;
  /** Latency of each answered request, from when it was due, in ms. */
  latenciesMs: Float64Array;
  seconds: number;
}

interface Pending {
  n: number;
  due: number;
}

interface Connection {
  socket: Socket;
  inFlight: Pending | null;
  received: Buffer;
}

/** How long answers to the last requests are awaited after the run. */
const DRAIN_MS = 5_000;

export async function pacedLoad(options: PacedLoadOptions): Promise<PacedLoadResult> {
  const { hostname, port } = new URL(options.url);
  const total = Math.floor(options.rate * options.seconds);
  const interval = 1000 / options.rate;
  const headerLines = Object.entries({
    host: `${hostname}:${port}`,
    connection: "keep-alive",
    ...options.headers,
  })
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join("");
  const firstNumber = options.firstNumber ?? 0;
  const latencies = new Float64Array(total);
  const queue: Pending[] = [];
  let scheduled = 0;
  let completed = 0;
  let non2xx = 0;
  let start = 0;

  const send = (connection: Connection, pending: Pending) => {
    connection.inFlight = pending;
    const body = options.body(pending.n);
    const head = `POST ${options.path} HTTP/1.1\r\n${headerLines}content-length: ${body.length}\r\n\r\n`;
    connection.socket.write(Buffer.concat([Buffer.from(head, "latin1"), body]));
  };

  const connections: Connection[] = await Promise.all(
    Array.from({ length: options.connections }, () => openConnection(hostname, Number(port))),
  );
  const idle: Connection[] = [...connections];
  for (const connection of connections) {
    connection.socket.on("data", (chunk: Buffer) => {
      connection.received =
        connection.received.length === 0 ? chunk : Buffer.concat([connection.received, chunk]);
      for (;;) {
        const response = takeResponse(connection);
        if (!response || !connection.inFlight) break;
        const { n, due } = connection.inFlight;
        latencies[completed++] = performance.now() - due;
        if (response.status < 200 || response.status >= 300) non2xx++;
        options.onResponse(n, response.status, response.body);
        connection.inFlight = null;
        const next = queue.shift();
        if (next) send(connection, next);
        else idle.push(connection);
      }
    });
    // A broken connection loses its request (it stays unanswered) and leaves the pool.
    connection.socket.on("error", () => {});
    connection.socket.on("close", () => {
      const index = idle.indexOf(connection);
      if (index !== -1) idle.splice(index, 1);
    });
  }

  start = performance.now();
  await new Promise<void>((resolve) => {
    const tick = () => {
      const now = performance.now();
      while (scheduled < total && start + scheduled * interval <= now) {
        const pending = { n: firstNumber + scheduled, due: start + scheduled * interval };
        scheduled++;
        const connection = idle.pop();
        if (connection) send(connection, pending);
        else queue.push(pending);
      }
      if (scheduled < total) setTimeout(tick, 1);
      else resolve();
    };
    tick();
  });
  const elapsed = (performance.now() - start) / 1000;
  const drainUntil = performance.now() + DRAIN_MS;
  while ((queue.length > 0 || connections.some((c) => c.inFlight)) && performance.now() < drainUntil) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  for (const connection of connections) connection.socket.destroy();
  return {
    sent: scheduled,
    completed,
    non2xx,
    unanswered: scheduled - completed,
    latenciesMs: latencies.subarray(0, completed),
    seconds: elapsed,
  };
}

function openConnection(host: string, port: number): Promise<Connection> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port, noDelay: true });
    socket.once("connect", () => resolve({ socket, inFlight: null, received: Buffer.alloc(0) }));
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
