import { randomUUID } from "node:crypto";
import { createWriteStream } from "node:fs";
import { mkdir, rm } from "node:fs/promises";
import { basename, join } from "node:path";
import { pipeline } from "node:stream/promises";
import multipart from "@fastify/multipart";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { FileLoader, LOAD_MODES, type LoadMode, landingPath, tableNameProblem } from "../sources/index.js";
import type { Sluice } from "./runtime.js";

export interface TablesRoutesOptions {
  sluice: Pick<Sluice, "config" | "catalog" | "loadEngine" | "quality">;
  /** The admin token check the query API uses. */
  authorized(request: FastifyRequest): boolean;
  unauthorized(reply: FastifyReply): FastifyReply;
}

/**
 * Batch sources over HTTP (admin token): `POST /v1/tables/<table>/upload` loads a file
 * sent as multipart/form-data, `GET /v1/loads` is the run history, `GET /v1/tables`
 * lists the tables with their columns and descriptions.
 */
export async function tablesRoutes(app: FastifyInstance, options: TablesRoutesOptions): Promise<void> {
  const { sluice, authorized, unauthorized } = options;
  const { config, catalog } = sluice;
  // Registered inside this plugin, multipart parsing applies to these routes only.
  await app.register(multipart, { limits: { fileSize: config.max_upload_bytes, files: 1, fields: 10 } });
  // The load engine: loading reads the staged upload, which the sandboxed query engine may not.
  const loader = new FileLoader({
    dataDir: config.data_dir,
    catalog,
    engine: sluice.loadEngine,
    config,
    quality: sluice.quality,
  });

  app.post<{ Params: { table: string }; Querystring: { mode?: string; sheet?: string } }>(
    "/v1/tables/:table/upload",
    async (request, reply) => {
      if (!authorized(request)) return unauthorized(reply);
      const { table } = request.params;
      const problem = tableNameProblem(table);
      if (problem) return reply.code(400).send({ error: problem });
      const mode = request.query.mode ?? "append";
      if (!LOAD_MODES.includes(mode as LoadMode)) {
        return reply.code(400).send({ error: `mode must be append or replace, not "${mode}"` });
      }
      if (!request.isMultipart()) {
        return reply
          .code(415)
          .send({ error: "send the file as multipart/form-data, e.g. curl -F file=@orders.csv" });
      }
      const part = await request.file();
      if (!part)
        return reply.code(400).send({ error: "the form has no file: send one, e.g. -F file=@orders.csv" });
      const name = basename(part.filename || "upload");
      const stagingDir = join(landingPath(config.data_dir), ".staging");
      await mkdir(stagingDir, { recursive: true });
      const staged = join(stagingDir, `upload-${randomUUID()}`);
      try {
        // A file over the limit is cut short (`truncated`), not failed.
        await pipeline(part.file, createWriteStream(staged));
        if (part.file.truncated) {
          return reply
            .code(413)
            .send({ error: `${name} is larger than max_upload_bytes (${config.max_upload_bytes} bytes)` });
        }
        const outcome = await loader.load(staged, {
          table,
          mode: mode as LoadMode,
          sheet: request.query.sheet,
          origin: "upload",
          name,
        });
        if (outcome.run.status === "failed") {
          return reply.code(400).send({ error: outcome.message, load: outcome.run });
        }
        return reply.send({ status: outcome.run.status, message: outcome.message, load: outcome.run });
      } finally {
        await rm(staged, { force: true });
      }
    },
  );

  app.get<{ Querystring: { table?: string; limit?: string } }>("/v1/loads", async (request, reply) => {
    if (!authorized(request)) return unauthorized(reply);
    const limit = request.query.limit === undefined ? 100 : Number(request.query.limit);
    if (!Number.isInteger(limit) || limit < 1) {
      return reply.code(400).send({ error: "limit must be a positive whole number" });
    }
    return reply.send({ loads: await catalog.loads({ table: request.query.table, limit }) });
  });

  app.get("/v1/tables", async (request, reply) => {
    if (!authorized(request)) return unauthorized(reply);
    const tables = await catalog.tables();
    return reply.send({
      tables: tables.map((table) => ({
        name: table.name,
        columns: table.columns.map((column) => ({
          name: column.name,
          type: column.type,
          description: column.description ?? null,
        })),
        partitionedBy: table.partitionBy?.column ?? null,
      })),
    });
  });
}
