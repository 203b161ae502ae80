/**
 * The HTTP side of accounts: every API route asks `guard` for the role it needs, which answers
 * 401 (who are you?) or 403 (not allowed, and why) itself, naming the reason.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import {
  AccountError,
  type AccountStore,
  Authenticator,
  type Decision,
  type Principal,
  type Role,
} from "../accounts/index.js";

export class WebAccess {
  readonly auth: Authenticator;
  /** The decision `allows` made for a request, for `refuse` to explain. */
  readonly #decisions = new WeakMap<FastifyRequest, Decision>();

  constructor(
    readonly accounts: AccountStore,
    adminToken: string,
  ) {
    this.auth = new Authenticator(accounts, adminToken);
  }

  /** The principal when it has at least `role`; otherwise answers 401/403 and returns null. */
  guard(request: FastifyRequest, reply: FastifyReply, role: Role): Principal | null {
    const decision = this.auth.require(request.method, request.headers, role);
    if ("principal" in decision) return decision.principal;
    send(reply, decision);
    return null;
  }

  /** For routes that take a yes/no check: remembers why for `refuse`. */
  allows(request: FastifyRequest, role: Role): boolean {
    const decision = this.auth.require(request.method, request.headers, role);
    this.#decisions.set(request, decision);
    return "principal" in decision;
  }

  refuse(reply: FastifyReply): FastifyReply {
    const decision = this.#decisionFor(reply.request);
    return send(reply, "principal" in decision ? { status: 403, error: "not allowed" } : decision);
  }

  /** Who made a request `allows` checked, without identifying them again; null for nobody known. */
  principal(request: FastifyRequest): Principal | null {
    const decision = this.#decisionFor(request);
    return "principal" in decision ? decision.principal : null;
  }

  #decisionFor(request: FastifyRequest): Decision {
    return this.#decisions.get(request) ?? this.auth.identify(request.method, request.headers);
  }

  /** Keeps a signed-in user's query in their history (tokens and scripts have none). */
  recordQuery(
    principal: Principal,
    sql: string,
    outcome: { ms: number; rows?: number; error?: string },
  ): void {
    if (principal.via !== "session" || !principal.user) return;
    this.accounts.recordQuery(principal.user.id, {
      sql,
      ok: outcome.error === undefined,
      ms: Math.round(outcome.ms),
      rows: outcome.rows ?? null,
      error: outcome.error ?? null,
    });
  }
}

function send(reply: FastifyReply, decision: { status: number; error: string }): FastifyReply {
  if (decision.status === 401) reply.header("www-authenticate", "Bearer");
  return reply.code(decision.status).send({ error: decision.error });
}

/** Answers an AccountError (or SavedError, AnalysisError: anything with a status) as JSON. */
export function sendError(reply: FastifyReply, error: unknown): FastifyReply {
  if (error instanceof AccountError || (error instanceof Error && "status" in error)) {
    return reply.code((error as { status: number }).status).send({ error: error.message });
  }
  throw error;
}
