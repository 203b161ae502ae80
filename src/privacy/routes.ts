/**
 * Privacy over HTTP, for the admin role only (the admin token, or an admin's session or API token):
 * - `GET /v1/privacy/policy`: the PII policy in force, its defaults and where it comes from.
 * - `PUT /v1/privacy/policy` `{"policy": {"*": {"traits.email": "mask"}, "shop": {...}}}`: replaces
 *   it (stored in the data dir, over sluice.yaml's); it applies to events received from then on.
 * - `DELETE /v1/privacy/policy`: back to sluice.yaml's `pii_policy`.
 * - `POST /v1/privacy/forget` `{"user_id": "...", "requested_by": "..."}`: removes the user's rows
 *   (`requested_by` defaults to the signed-in user or token's owner).
 * - `GET /v1/privacy/deletions?limit=N`: the deletion log, newest first.
 * - `POST /v1/privacy/retention/run`: applies the retention rules now.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { PolicyError } from "./policy.js";
import { LoaderBehindError, type Privacy } from "./service.js";

export interface PrivacyRoutesOptions {
  privacy: Privacy;
  authorized(request: FastifyRequest): boolean;
  unauthorized(reply: FastifyReply): FastifyReply;
  /** Who makes an authorized request (a user name), for the deletion log when the body names no one. */
  requester(request: FastifyRequest): string;
}

export async function privacyRoutes(app: FastifyInstance, options: PrivacyRoutesOptions): Promise<void> {
  const { privacy, authorized, unauthorized, requester } = options;

  app.get("/v1/privacy/policy", async (request, reply) => {
    if (!authorized(request)) return unauthorized(reply);
    return reply.send(privacy.policy());
  });

  app.put("/v1/privacy/policy", async (request, reply) => {
    if (!authorized(request)) return unauthorized(reply);
    const body = jsonBody(request);
    if (body === undefined || !("policy" in body)) {
      return reply.code(400).send({
        error: 'request body must be JSON like {"policy": {"*": {"traits.email": "hash"}}}',
      });
    }
    try {
      return reply.send(await privacy.setPolicy(body.policy));
    } catch (error) {
      if (error instanceof PolicyError) return reply.code(400).send({ error: error.message });
      throw error;
    }
  });

  app.delete("/v1/privacy/policy", async (request, reply) => {
    if (!authorized(request)) return unauthorized(reply);
    return reply.send(await privacy.resetPolicy());
  });

  app.post("/v1/privacy/forget", async (request, reply) => {
    if (!authorized(request)) return unauthorized(reply);
    const body = jsonBody(request);
    const userId = body?.user_id;
    if (typeof userId !== "string" || userId.trim() === "") {
      return reply
        .code(400)
        .send({ error: 'request body must be JSON like {"user_id": "u-123", "requested_by": "dpo"}' });
    }
    const requestedBy = body?.requested_by;
    if (requestedBy !== undefined && typeof requestedBy !== "string") {
      return reply.code(400).send({ error: 'field "requested_by" must be a string' });
    }
    try {
      return reply.send(await privacy.forget(userId, requestedBy || requester(request)));
    } catch (error) {
      if (error instanceof LoaderBehindError) return reply.code(503).send({ error: error.message });
      throw error;
    }
  });

  app.get<{ Querystring: { limit?: string } }>("/v1/privacy/deletions", async (request, reply) => {
    if (!authorized(request)) return unauthorized(reply);
    const limit = request.query.limit === undefined ? 100 : Number(request.query.limit);
    if (!Number.isInteger(limit) || limit < 1) {
      return reply.code(400).send({ error: "limit must be a positive whole number" });
    }
    return reply.send({ deletions: await privacy.deletions(limit) });
  });

  app.post("/v1/privacy/retention/run", async (request, reply) => {
    if (!authorized(request)) return unauthorized(reply);
    return reply.send({ tables: await privacy.runRetention() });
  });
}

/** The body as a JSON object, or undefined when it is not one. */
function jsonBody(request: FastifyRequest): Record<string, unknown> | undefined {
  const raw = request.body;
  if (!Buffer.isBuffer(raw)) return undefined;
  try {
    const value: unknown = JSON.parse(raw.toString("utf8"));
    return typeof value === "object" && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}
