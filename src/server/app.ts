import { once } from "node:events";
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { PassThrough } from "node:stream";
import type { DuckDBValue } from "@duckdb/node-api";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import {
  COLLECTOR_ROUTES,
  type CollectResponse,
  corsHeaders,
  PREFLIGHT_HEADERS,
  TRACKER_SCRIPT,
} from "../collect/index.js";
import { privacyRoutes, queryAccess } from "../privacy/index.js";
import { qualityRoutes } from "../quality/index.js";
import { transformRoutes } from "../transform/index.js";
import {
  AccessError,
  type AccessOptions,
  ARROW_STREAM_TYPE,
  ArrowStreamEncoder,
  csvLine,
  QueryError,
  type ResultColumn,
  valueText,
} from "../warehouse/index.js";
import { WebAccess, webRoutes } from "../web/index.js";
import type { Sluice } from "./runtime.js";
import { schemasRoutes } from "./schemas-routes.js";
import { tablesRoutes } from "./tables-routes.js";

/** "METHOD /path" of every collector endpoint. */
const COLLECTOR_ROUTE_KEYS = new Set(COLLECTOR_ROUTES.map((route) => `${route.method} ${route.path}`));
/** Content types Fastify's catch-all parser takes for sure; others go through Fastify. */
const PLAIN_CONTENT_TYPE = /^(?:application\/json|text\/plain)\s*(?:;\s*charset="?[\w-]+"?\s*)?$/i;
/** Fastify's defaults, which it applies only to servers it creates itself. */
const KEEP_ALIVE_TIMEOUT_MS = 72_000;

/**
 * The HTTP surface on one port: collector endpoints, the query API, health,
 * live stats and the home page. Every body arrives as raw bytes; the collector
 * decodes and validates its own (gzip, JSON, limits) so it can name each problem.
 * With `tls` (PEM certificate chain and key) it serves HTTPS.
 */
export function buildApp(sluice: Sluice, tls?: { cert: Buffer; key: Buffer }): FastifyInstance {
  const { config } = sluice;
  // Who may call the API: the admin token, API tokens and signed-in users, each with a role.
  const access = new WebAccess(sluice.accounts, config.admin_token);
  // The collector enforces max_request_bytes itself (after gzip decoding) and
  // quarantines what is moderately over; only far larger bodies stop here.
  const bodyLimit = Math.max(config.max_request_bytes * 4, 1024 * 1024);
  let closing = false;
  const app = Fastify({
    bodyLimit,
    logger: false,
    return503OnClosing: true,
    serverFactory: (fastifyHandler) => {
      const handler = (request: IncomingMessage, response: ServerResponse) => {
        const path = closing ? undefined : plainCollectorPath(request, bodyLimit);
        if (path === undefined) fastifyHandler(request, response);
        else collectDirectly(sluice, path, request, response);
      };
      const server = tls
        ? createHttpsServer({ cert: tls.cert, key: tls.key }, handler)
        : createServer(handler);
      server.keepAliveTimeout = KEEP_ALIVE_TIMEOUT_MS;
      server.requestTimeout = 0;
      return server;
    },
  });
  // Once closing, Fastify answers every request (503).
  app.addHook("preClose", (done) => {
    closing = true;
    done();
  });
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "buffer" }, (_request, body, done) => done(null, body));

  app.setErrorHandler((error: { statusCode?: number; message: string }, _request, reply) => {
    const status =
      error.statusCode && error.statusCode >= 400 && error.statusCode < 600 ? error.statusCode : 500;
    reply.code(status).send({ error: status === 500 ? "internal error" : error.message });
  });
  app.setNotFoundHandler((request, reply) => {
    reply.code(404).send({ error: `no route for ${request.method} ${request.url.split("?")[0]}` });
  });

  app.get("/healthz", async (_request, reply) => {
    const health = sluice.health();
    reply.code(health.ok ? 200 : 503).send(health);
  });

  for (const { method, path } of COLLECTOR_ROUTES) {
    app.route({
      method,
      url: path,
      exposeHeadRoute: false,
      handler: async (request, reply) => {
        const result = await sluice.collector.handle({
          method,
          path,
          query: queryOf(request.url),
          headers: request.headers,
          body: bodyOf(request),
          remoteAddress: request.socket.remoteAddress,
        });
        const body = Buffer.isBuffer(result.body) ? result.body : JSON.stringify(result.body);
        reply
          .code(result.status)
          .headers({ ...collectedHeaders(result), ...corsHeaders(request.headers.origin) })
          .send(body);
      },
    });
  }
  // Browsers ask before a cross-origin POST with a JSON body or custom headers (Snowplow's, PostHog's).
  for (const path of new Set(COLLECTOR_ROUTES.map((route) => route.path))) {
    app.options(path, async (request, reply) => {
      reply
        .code(204)
        .headers({ ...corsHeaders(request.headers.origin), ...PREFLIGHT_HEADERS })
        .send();
    });
  }
  app.get("/sluice.js", async (request, reply) => {
    const gzip = /\bgzip\b/.test(String(request.headers["accept-encoding"] ?? ""));
    reply
      .headers({
        "content-type": "text/javascript; charset=utf-8",
        "cache-control": "public, max-age=3600",
        vary: "Accept-Encoding",
        ...(gzip ? { "content-encoding": "gzip" } : {}),
      })
      .send(gzip ? TRACKER_SCRIPT.gzip : TRACKER_SCRIPT.plain);
  });

  app.post("/v1/query", async (request, reply) => {
    const principal = access.guard(request, reply, "viewer");
    if (!principal) return reply;
    let body: { sql?: unknown; format?: unknown };
    try {
      body = JSON.parse(bodyOf(request).toString("utf8")) as { sql?: unknown; format?: unknown };
    } catch {
      return reply.code(400).send({ error: 'request body must be JSON like {"sql": "select ..."}' });
    }
    const { sql } = body;
    if (typeof sql !== "string" || sql.trim() === "") {
      return reply.code(400).send({ error: 'field "sql" must be a non-empty string' });
    }
    const readable = queryAccess(principal.role);
    const format = body.format ?? formatAccepted(request.headers.accept);
    if (format !== "json" && format !== "csv" && format !== "arrow") {
      return reply.code(400).send({ error: 'field "format" must be "json", "csv" or "arrow"' });
    }
    const started = performance.now();
    try {
      if (format !== "json")
        return await streamResult(sluice, sql, readable, request, reply, ENCODINGS[format]);
      const result = await sluice.warehouse.query(sql, readable);
      access.recordQuery(principal, sql, { ms: performance.now() - started, rows: result.rows.length });
      return reply.send(result);
    } catch (error) {
      if (error instanceof QueryError) {
        access.recordQuery(principal, sql, { ms: performance.now() - started, error: error.message });
        return reply.code(error instanceof AccessError ? 403 : 400).send({ error: error.message });
      }
      throw error;
    }
  });

  let cachedStats: { at: number; body: unknown } | null = null;
  app.get("/v1/stats", async (request, reply) => {
    if (!config.public_stats && !access.guard(request, reply, "viewer")) return reply;
    if (!cachedStats || Date.now() - cachedStats.at > 1000) {
      cachedStats = { at: Date.now(), body: await liveStats(sluice) };
    }
    return reply.send(cachedStats.body);
  });

  app.register(tablesRoutes, {
    sluice,
    // Reading the tables and loads is a viewer's; loading a file an editor's.
    authorized: (request) => access.allows(request, request.method === "GET" ? "viewer" : "editor"),
    unauthorized: (reply) => access.refuse(reply),
  });
  app.register(qualityRoutes, {
    quality: sluice.quality,
    // Reading profiles and results is a viewer's; running profiles and checks an editor's.
    authorized: (request) => access.allows(request, request.method === "GET" ? "viewer" : "editor"),
    unauthorized: (reply) => access.refuse(reply),
  });
  app.register(schemasRoutes, {
    schemas: sluice.schemas,
    authorized: (request) => access.allows(request, request.method === "GET" ? "viewer" : "admin"),
    unauthorized: (reply) => access.refuse(reply),
  });
  app.register(privacyRoutes, {
    privacy: sluice.privacy,
    authorized: (request) => access.allows(request, "admin"),
    unauthorized: (reply) => access.refuse(reply),
    requester: (request) => {
      const principal = access.principal(request);
      return principal === null ? "api" : (principal.user?.username ?? "admin token");
    },
  });

  app.register(transformRoutes, {
    sluice,
    authorized: (request) => access.allows(request, request.method === "GET" ? "viewer" : "editor"),
    unauthorized: (reply) => access.refuse(reply),
  });

  app.register(webRoutes, { sluice, access });

  return app;
}

/**
 * The collector path of a plain collector request, which skips Fastify: at 10-20k single-event
 * requests/s, Fastify's routing, hooks and reply handling cost as much as collecting. Plain means
 * a GET to a literal collector GET path (the Snowplow pixel), or a POST to a literal collector path
 * with a Content-Length within the body limit and a JSON or text content type. Everything else
 * (chunked or oversized bodies, odd content types, encoded paths) goes through Fastify's routes,
 * which answer it as before.
 */
function plainCollectorPath(request: IncomingMessage, bodyLimit: number): string | undefined {
  const { method } = request;
  if (method !== "POST" && method !== "GET") return undefined;
  const url = request.url ?? "";
  const query = url.indexOf("?");
  const path = query < 0 ? url : url.slice(0, query);
  if (!COLLECTOR_ROUTE_KEYS.has(`${method} ${path}`)) return undefined;
  const { headers } = request;
  if (method === "GET") return headers["transfer-encoding"] === undefined ? path : undefined;
  const length = headers["content-length"];
  if (length === undefined || headers["transfer-encoding"] !== undefined || Number(length) > bodyLimit) {
    return undefined;
  }
  const type = headers["content-type"];
  return type === undefined || PLAIN_CONTENT_TYPE.test(type) ? path : undefined;
}

/** Reads the body and answers as the Fastify route would; a client that goes away gets no answer. */
function collectDirectly(sluice: Sluice, path: string, request: IncomingMessage, response: ServerResponse) {
  const chunks: Buffer[] = [];
  request.on("data", (chunk: Buffer) => chunks.push(chunk));
  request.on("error", () => {});
  request.on("end", async () => {
    const result = await sluice.collector.handle({
      method: request.method,
      path,
      query: queryOf(request.url ?? ""),
      headers: request.headers,
      body: chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks),
      remoteAddress: request.socket.remoteAddress,
    });
    sendCollected(response, result, request.headers.origin);
  });
}

function sendCollected(response: ServerResponse, result: CollectResponse, origin: string | undefined): void {
  const payload = Buffer.isBuffer(result.body) ? result.body : JSON.stringify(result.body);
  response.writeHead(result.status, {
    ...collectedHeaders(result),
    ...corsHeaders(origin),
    "content-length": Buffer.byteLength(payload),
  });
  response.end(payload);
}

/** A collector answer's headers: JSON unless the protocol says otherwise (the pixel's GIF). */
function collectedHeaders(result: CollectResponse): Record<string, string> {
  return { "content-type": "application/json; charset=utf-8", ...result.headers };
}

/** The query string of a request URL, without "?". */
function queryOf(url: string): string {
  const query = url.indexOf("?");
  return query < 0 ? "" : url.slice(query + 1);
}

/** The result format an `Accept` header asks for; JSON unless CSV or Arrow is named. */
function formatAccepted(accept: string | undefined): "json" | "csv" | "arrow" {
  if (accept?.includes(ARROW_STREAM_TYPE)) return "arrow";
  return /\btext\/csv\b/.test(accept ?? "") ? "csv" : "json";
}

/** How a streamed result is written: its content type, then the header, each chunk of rows, the end. */
interface ResultEncoding {
  contentType: string;
  start(columns: ResultColumn[]): {
    rows(rows: DuckDBValue[][]): string | Uint8Array;
    end(): string | Uint8Array;
    header: string | Uint8Array;
  };
}

const ENCODINGS: Record<"csv" | "arrow", ResultEncoding> = {
  csv: {
    contentType: "text/csv; charset=utf-8",
    start: (columns) => ({
      header: csvLine(columns.map((column) => column.name)),
      rows: (rows) => rows.map((row) => csvLine(row.map(valueText))).join(""),
      end: () => "",
    }),
  },
  arrow: {
    contentType: ARROW_STREAM_TYPE,
    start: (columns) => {
      const encoder = new ArrowStreamEncoder(columns);
      return { header: encoder.header(), rows: (rows) => encoder.batch(rows), end: () => encoder.end() };
    },
  },
};

/**
 * Streams a result (CSV or Arrow) as DuckDB produces it, without a row limit: the download path.
 * An error before the first row is a 400; after it, the response is cut short, so a client never
 * mistakes a partial download for a whole one. A client that goes away stops the query.
 */
async function streamResult(
  sluice: Sluice,
  sql: string,
  readable: AccessOptions,
  request: FastifyRequest,
  reply: FastifyReply,
  encoding: ResultEncoding,
) {
  const out = new PassThrough();
  const gone = new AbortController();
  request.raw.socket.once("close", () => gone.abort());
  // Set once the first rows are known; a holder, since the callbacks below assign it.
  const stream: { writer: ReturnType<ResultEncoding["start"]> | null } = { writer: null };
  try {
    await sluice.warehouse.stream(
      sql,
      {
        start(columns) {
          const writer = encoding.start(columns);
          stream.writer = writer;
          reply.type(encoding.contentType).send(out);
          out.write(writer.header);
        },
        async rows(rows) {
          if (!out.write(stream.writer?.rows(rows) ?? "")) {
            await once(out, "drain", { signal: gone.signal });
          }
        },
      },
      { ...readable, signal: gone.signal },
    );
    out.end(stream.writer?.end() ?? "");
  } catch (error) {
    if (!stream.writer) throw error;
    out.destroy(error as Error);
  }
  return reply;
}

function bodyOf(request: FastifyRequest): Buffer {
  return Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
}

async function liveStats(sluice: Sluice): Promise<unknown> {
  const { warehouse } = sluice;
  const [totals, perMinute, topEvents] = await Promise.all([
    warehouse.query(`
      SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM events_rejected),
        (SELECT count(*) FROM events WHERE dt >= current_date - 1 AND ts >= now() - INTERVAL 1 MINUTE)`),
    warehouse.query(`
      SELECT strftime(date_trunc('minute', ts), '%Y-%m-%dT%H:%M:00.000Z') AS minute, count(*) AS events
      FROM events
      WHERE dt >= current_date - 1 AND ts >= now() - INTERVAL 60 MINUTE AND ts <= now() + INTERVAL 1 MINUTE
      GROUP BY 1 ORDER BY 1`),
    warehouse.query(
      "SELECT event, count(*) AS count FROM events WHERE event IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
    ),
  ]);
  const [total, rejected, lastMinute] = (totals.rows[0] ?? [0, 0, 0]) as [number, number, number];
  return {
    total,
    rejected,
    lastMinute,
    perMinute: perMinute.rows.map(([minute, events]) => ({ minute, events })),
    topEvents: topEvents.rows.map(([event, count]) => ({ event, count })),
    generatedAt: new Date().toISOString(),
  };
}
