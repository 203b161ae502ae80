import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { SchemaError, type SchemaRegistry } from "../collect/index.js";

export interface SchemasRoutesOptions {
  schemas: SchemaRegistry;
  /** Reading needs a viewer; registering and removing an admin (they decide what is stored). */
  authorized(request: FastifyRequest): boolean;
  unauthorized(reply: FastifyReply): FastifyReply;
}

/**
 * Event schemas over HTTP: `GET /v1/schemas` lists them, `PUT /v1/schemas` registers one
 * (`{"schema": {…}, "event": "Order Completed"}`; `event` may be left out for a Snowplow schema
 * with `self`), `DELETE /v1/schemas/<key>` removes one. Changes apply to events received from then on.
 */
export async function schemasRoutes(app: FastifyInstance, options: SchemasRoutesOptions): Promise<void> {
  const { schemas, authorized, unauthorized } = options;

  app.get("/v1/schemas", async (request, reply) => {
    if (!authorized(request)) return unauthorized(reply);
    return reply.send({ schemas: schemas.list() });
  });

  app.put("/v1/schemas", async (request, reply) => {
    if (!authorized(request)) return unauthorized(reply);
    let body: { schema?: unknown; event?: unknown };
    try {
      body = JSON.parse(Buffer.isBuffer(request.body) ? request.body.toString("utf8") : "") as typeof body;
    } catch {
      return reply
        .code(400)
        .send({ error: 'the body must be JSON like {"event": "Order Completed", "schema": {…}}' });
    }
    if (body.event !== undefined && typeof body.event !== "string") {
      return reply.code(400).send({ error: 'field "event" must be a string' });
    }
    try {
      const { schema, replaced } = schemas.add(body.schema, body.event);
      return reply.code(replaced ? 200 : 201).send({
        schema,
        replaced,
        note: "applies to events received from now on; stored events are not checked again",
      });
    } catch (error) {
      if (error instanceof SchemaError) return reply.code(400).send({ error: error.message });
      throw error;
    }
  });

  app.delete<{ Params: { key: string } }>("/v1/schemas/:key", async (request, reply) => {
    if (!authorized(request)) return unauthorized(reply);
    if (!schemas.remove(request.params.key)) {
      return reply.code(404).send({ error: `no schema is registered for "${request.params.key}"` });
    }
    return reply.code(204).send();
  });
}
