/**
 * The PostgreSQL wire protocol port: BI tools, psql and Postgres drivers query the lake
 * as if it were a PostgreSQL server. Log in with an account's name and password, or with any
 * user name and an API token as the password (SCRAM-SHA-256).
 */
import { createServer, type Server, type Socket } from "node:net";
import type { SecureContext } from "node:tls";
import type { DuckDBInstance } from "@duckdb/node-api";
import type { AccessOptions, Warehouse } from "../warehouse/index.js";
import { pgCatalogSetupSql } from "./pg-catalog.js";
import { type ScramLogins, ScramVerifiers } from "./scram.js";
import { Session } from "./session.js";

export interface PgServerOptions {
  warehouse: Warehouse;
  /** The warehouse's engine, where the PostgreSQL catalog tools read is created (pg-catalog.ts). */
  engine: DuckDBInstance;
  host: string;
  /** 0 picks a free port. */
  port: number;
  /** Accepted passwords, each with whom it logs in as and the role it has. */
  tokens: { secret: string; identity: string; role: string }[];
  /** Accounts' logins: a user's name with their password, or an API token. */
  logins?: ScramLogins;
  maxRows: number;
  /** What a login's role may read: its statements run with these warehouse options (none: everything). */
  accessFor?: (role: string) => AccessOptions;
  /** TLS for clients that ask for it (sslmode=require and up): `pgTls`. */
  tls?: PgTls;
}

export interface PgServer {
  /** The port it listens on. */
  port: number;
  close(): Promise<void>;
}

const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;

export interface PgTls {
  context: SecureContext;
  /** Logins without TLS are refused. */
  required: boolean;
}

export async function startPgServer(options: PgServerOptions): Promise<PgServer> {
  const setup = await options.engine.connect();
  let engineSettings: Set<string>;
  try {
    await setup.run(pgCatalogSetupSql());
    const settings = await setup.runAndReadAll("SELECT lower(name) FROM duckdb_settings()");
    engineSettings = new Set(settings.getRows().map(([name]) => String(name)));
  } finally {
    setup.closeSync();
  }
  const verifiers = new ScramVerifiers(options.tokens, options.logins);
  const registry = new Map<string, Session>();
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.setNoDelay(true);
    new Session(socket, {
      warehouse: options.warehouse,
      verifiers,
      maxRows: options.maxRows,
      maxMessageBytes: MAX_MESSAGE_BYTES,
      registry,
      accessFor: options.accessFor ?? (() => ({})),
      engineSettings,
      tls: options.tls,
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, options.host, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  return {
    port: typeof address === "object" && address ? address.port : options.port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}
