import { readFileSync } from "node:fs";
import { createSecureContext, type SecureContext } from "node:tls";
import type { FastifyInstance } from "fastify";
import type { Config } from "../config/index.js";
import { type PgServer, type PgTls, startPgServer } from "../pgwire/index.js";
import { queryAccess } from "../privacy/index.js";
import { buildApp } from "./app.js";
import { type Sluice, startSluice } from "./runtime.js";

export { buildApp } from "./app.js";
export {
  busPath,
  catalogPath,
  createLoadEngine,
  createQueryEngine,
  type Health,
  LAKE_TABLES,
  lakePath,
  openStorage,
  type Sluice,
  type Storage,
  startSluice,
  warehouseFor,
} from "./runtime.js";

/** A start-up failure to report as one line. */
export class ServeError extends Error {}

/** A certificate and key as read from their PEM files, and the TLS context made of them. */
interface Certificate {
  cert: Buffer;
  key: Buffer;
  context: SecureContext;
}

/**
 * The PEM files of settings `<prefix>_cert` and `<prefix>_key`, read and checked before anything
 * starts, so that bad settings stop the start-up; undefined when neither is set.
 */
function certificate(prefix: "tls" | "pg_tls", certFile: string, keyFile: string): Certificate | undefined {
  if (certFile === "" && keyFile === "") return undefined;
  if (certFile === "" || keyFile === "") {
    throw new ServeError(`${prefix}_cert and ${prefix}_key go together: set both`);
  }
  const read = (file: string, setting: string) => {
    try {
      return readFileSync(file);
    } catch (error) {
      throw new ServeError(`${setting}: cannot read ${file} (${(error as Error).message})`);
    }
  };
  const pair = { cert: read(certFile, `${prefix}_cert`), key: read(keyFile, `${prefix}_key`) };
  try {
    return { ...pair, context: createSecureContext(pair) };
  } catch (error) {
    throw new ServeError(
      `${prefix}_cert/${prefix}_key: not a usable PEM certificate and key (${(error as Error).message})`,
    );
  }
}

/** The PostgreSQL port's TLS: its own files when set, else HTTPS's certificate. */
function pgTlsOf(config: Config, httpTls: Certificate | undefined): PgTls | undefined {
  const ownFiles = config.pg_tls_cert !== "" || config.pg_tls_key !== "";
  const pair = ownFiles ? certificate("pg_tls", config.pg_tls_cert, config.pg_tls_key) : httpTls;
  if (pair === undefined && config.pg_tls_required) {
    throw new ServeError("pg_tls_required needs pg_tls_cert and pg_tls_key");
  }
  return pair && { context: pair.context, required: config.pg_tls_required };
}

export interface RunningServer {
  sluice: Sluice;
  app: FastifyInstance;
  /** The base URL, e.g. http://127.0.0.1:8080 */
  url: string;
  /** Where the PostgreSQL protocol listens, host:port. */
  pgAddress: string;
  close(): Promise<void>;
}

/** `sluice serve`: the whole pipeline, HTTP on one port and the PostgreSQL protocol on another. */
export async function serve(config: Config): Promise<RunningServer> {
  const httpTls = certificate("tls", config.tls_cert, config.tls_key);
  const tls = pgTlsOf(config, httpTls);
  const sluice = await startSluice(config);
  const app = buildApp(sluice, httpTls);
  try {
    await app.listen({ host: config.host, port: config.port });
  } catch (error) {
    await sluice.close();
    if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") {
      throw new ServeError(`${config.host}:${config.port} is already in use; choose another with --port`);
    }
    throw error;
  }
  const address = app.server.address();
  const port = typeof address === "object" && address ? address.port : config.port;
  const pgHost = config.pg_host || config.host;
  let pg: PgServer;
  try {
    pg = await startPgServer({
      warehouse: sluice.warehouse,
      engine: sluice.engine,
      host: pgHost,
      port: config.pg_port,
      tokens: [{ secret: config.admin_token, identity: "admin", role: "admin" }],
      accessFor: queryAccess,
      logins: {
        tokenSalt: sluice.accounts.tokenSalt,
        password: (user) => sluice.accounts.passwordCredential(user),
        tokens: () => sluice.accounts.tokenCredentials(),
      },
      maxRows: config.pg_max_rows,
      tls,
    });
  } catch (error) {
    await app.close();
    await sluice.close();
    if ((error as NodeJS.ErrnoException).code === "EADDRINUSE") {
      throw new ServeError(`${pgHost}:${config.pg_port} is already in use; choose another with --pg-port`);
    }
    throw error;
  }
  const inUrl = (host: string) => (host.includes(":") ? `[${host}]` : host);
  const hostInUrl = inUrl(config.host);
  let closing: Promise<void> | null = null;
  return {
    sluice,
    app,
    url: `${httpTls ? "https" : "http"}://${hostInUrl}:${port}`,
    pgAddress: `${inUrl(pgHost)}:${pg.port}`,
    close() {
      closing ??= (async () => {
        await pg.close();
        await app.close();
        await sluice.close();
      })();
      return closing;
    },
  };
}
