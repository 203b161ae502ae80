import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Catalog } from "../catalog/index.js";
import { TransformError } from "./errors.js";
import { type TransformConfig, TransformService } from "./service.js";

export interface TransformRoutesOptions {
  sluice: { config: TransformConfig; catalog: Catalog };
  /** The admin token check the query API uses. */
  authorized(request: FastifyRequest): boolean;
  unauthorized(reply: FastifyReply): FastifyReply;
}

/**
 * Transformations over HTTP (admin token): `GET /v1/models` is the project's lineage and
 * descriptions (what `sluice docs` prints), `GET /v1/models/runs` the run history,
 * `POST /v1/models/build` builds a selection now (after any build already running).
 */
export async function transformRoutes(app: FastifyInstance, options: TransformRoutesOptions): Promise<void> {
  const { sluice, authorized, unauthorized } = options;
  const service = () => TransformService.for({ config: sluice.config, catalog: sluice.catalog });
  const notConfigured = (reply: FastifyReply) =>
    reply.code(404).send({
      error: "no transform project: set transform_project in sluice.yaml (or SLUICE_TRANSFORM_PROJECT)",
    });

  app.get<{ Querystring: { env?: string } }>("/v1/models", async (request, reply) => {
    if (!authorized(request)) return unauthorized(reply);
    if (!service().enabled) return notConfigured(reply);
    try {
      const builder = await service().builder({ env: request.query.env });
      return reply.send(await builder.docs());
    } catch (error) {
      if (error instanceof TransformError) return reply.code(400).send({ error: error.message });
      throw error;
    }
  });

  app.get<{ Querystring: { model?: string; env?: string; limit?: string } }>(
    "/v1/models/runs",
    async (request, reply) => {
      if (!authorized(request)) return unauthorized(reply);
      const limit = request.query.limit === undefined ? 100 : Number(request.query.limit);
      if (!Number.isInteger(limit) || limit < 1) {
        return reply.code(400).send({ error: "limit must be a positive whole number" });
      }
      const runs = await service().store().runs({ node: request.query.model, env: request.query.env, limit });
      return reply.send({ runs });
    },
  );

  app.post("/v1/models/build", async (request, reply) => {
    if (!authorized(request)) return unauthorized(reply);
    if (!service().enabled) return notConfigured(reply);
    let body: { select?: unknown; exclude?: unknown; full_refresh?: unknown; env?: unknown } = {};
    const raw = Buffer.isBuffer(request.body) ? request.body.toString("utf8") : "";
    if (raw.trim() !== "") {
      try {
        body = JSON.parse(raw);
      } catch {
        return reply.code(400).send({ error: 'request body must be JSON like {"select": "orders+"}' });
      }
    }
    const words = (value: unknown, field: string): string[] | string => {
      if (value === undefined) return [];
      if (typeof value === "string") return value.split(/\s+/).filter(Boolean);
      if (Array.isArray(value) && value.every((entry) => typeof entry === "string")) return value as string[];
      return `field "${field}" must be a selection string or a list of them`;
    };
    const select = words(body.select, "select");
    const exclude = words(body.exclude, "exclude");
    if (typeof select === "string") return reply.code(400).send({ error: select });
    if (typeof exclude === "string") return reply.code(400).send({ error: exclude });
    if (body.env !== undefined && typeof body.env !== "string") {
      return reply.code(400).send({ error: 'field "env" must be a string' });
    }
    try {
      const result = await service().build(
        { select, exclude, fullRefresh: body.full_refresh === true, env: body.env },
        "api",
      );
      return reply.code(result.ok ? 200 : 422).send(result);
    } catch (error) {
      if (error instanceof TransformError) return reply.code(400).send({ error: error.message });
      throw error;
    }
  });
}
