/**
 * Quality over HTTP (admin token, as /v1/query):
 *
 * - `GET  /v1/quality/profiles`                 the latest profile of every table
 * - `GET  /v1/quality/profiles/<table>`         its latest profile per partition, and the history
 *                                               (`?partition=2026-11-25&limit=N`)
 * - `POST /v1/quality/profiles/<table>`         profile it now (`{"partitions": [...]}` optional)
 * - `GET  /v1/quality/checks`                   check results, newest first: `?table=`, `?check=`
 *                                               (part of the name), `?status=pass|fail|error`, `?limit=`
 * - `GET  /v1/quality/checks/latest`            the latest result of every check, and open alerts
 * - `POST /v1/quality/checks/run`               run checks now: `{"table": "orders"}` or all
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { CHECK_STATUSES, type CheckStatus } from "./model.js";
import { ProjectError } from "./project.js";
import { type Quality, QualityError } from "./quality.js";

export interface QualityRoutesOptions {
  quality: Quality;
  /** The admin token check the query API uses. */
  authorized(request: FastifyRequest): boolean;
  unauthorized(reply: FastifyReply): FastifyReply;
}

export async function qualityRoutes(app: FastifyInstance, options: QualityRoutesOptions): Promise<void> {
  const { quality, authorized, unauthorized } = options;

  app.addHook("onRequest", async (request, reply) => {
    if (!authorized(request)) return unauthorized(reply);
  });
  app.setErrorHandler((error, _request, reply) => {
    if (error instanceof QualityError || error instanceof ProjectError) {
      return reply.code(error instanceof QualityError ? 404 : 400).send({ error: error.message });
    }
    throw error;
  });

  app.get("/v1/quality/profiles", async () => ({ profiles: quality.store.latestOfEachTable() }));

  app.get<{ Params: { table: string }; Querystring: { partition?: string; limit?: string } }>(
    "/v1/quality/profiles/:table",
    async (request, reply) => {
      const limit = parseLimit(request.query.limit, 20);
      if (limit === null) return reply.code(400).send({ error: "limit must be a positive whole number" });
      const { table } = request.params;
      await quality.table(table);
      return {
        table,
        latest: quality.store.latestProfiles(table),
        history: quality.store.history(table, { partition: request.query.partition, limit }),
      };
    },
  );

  app.post<{ Params: { table: string } }>("/v1/quality/profiles/:table", async (request, reply) => {
    const body = jsonBody(request);
    const partitions = body?.partitions;
    if (
      partitions !== undefined &&
      (!Array.isArray(partitions) || partitions.some((partition) => typeof partition !== "string"))
    ) {
      return reply
        .code(400)
        .send({ error: 'field "partitions" must be a list of partitions, e.g. ["2026-11-25"]' });
    }
    const profiles = await quality.profileTable(request.params.table, {
      partitions: partitions as string[] | undefined,
      force: true,
    });
    return { profiles };
  });

  app.get<{ Querystring: { table?: string; check?: string; status?: string; limit?: string } }>(
    "/v1/quality/checks",
    async (request, reply) => {
      const { table, check, status } = request.query;
      const limit = parseLimit(request.query.limit, 100);
      if (limit === null) return reply.code(400).send({ error: "limit must be a positive whole number" });
      if (status !== undefined && !CHECK_STATUSES.includes(status as CheckStatus)) {
        return reply.code(400).send({ error: `status must be one of ${CHECK_STATUSES.join(", ")}` });
      }
      return { results: quality.store.results({ table, check, status: status as CheckStatus, limit }) };
    },
  );

  app.get<{ Querystring: { table?: string } }>("/v1/quality/checks/latest", async (request) => ({
    results: quality.store.latestResults(request.query.table),
    openAlerts: quality.store.openAlerts(),
  }));

  app.post("/v1/quality/checks/run", async (request, reply) => {
    const table = jsonBody(request)?.table;
    if (table !== undefined && typeof table !== "string") {
      return reply.code(400).send({ error: 'field "table" must be a table name' });
    }
    const tables = table === undefined ? undefined : [table];
    if (table !== undefined && !quality.project().tables.has(table)) {
      return reply.code(404).send({ error: `no checks for table ${table} in ${quality.projectDir}` });
    }
    const runs = await quality.runAll({ trigger: "api", tables });
    return { runs, blocking: runs.some((run) => run.blocking) };
  });
}

function parseLimit(text: string | undefined, fallback: number): number | null {
  if (text === undefined) return fallback;
  const limit = Number(text);
  return Number.isInteger(limit) && limit >= 1 ? limit : null;
}

/** The JSON object the request carries (bodies arrive as raw bytes), or null without one. */
function jsonBody(request: FastifyRequest): Record<string, unknown> | null {
  const raw = Buffer.isBuffer(request.body) ? request.body.toString("utf8").trim() : "";
  if (raw === "") return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch {
    throw Object.assign(new Error("request body must be JSON"), { statusCode: 400 });
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw Object.assign(new Error("request body must be a JSON object"), { statusCode: 400 });
  }
  return parsed as Record<string, unknown>;
}
