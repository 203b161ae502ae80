/**
 * Who a request comes from, and whether they may do what they ask. A request proves itself with
 * `Authorization: Bearer <token>` (an API token, or the configured admin token) or with the
 * browser's session cookie. Cookie requests that change something must also carry the
 * `X-Sluice-Csrf: 1` header, which another site's form or script cannot add without asking first
 * (a CORS preflight Sluice's API never grants), so a page elsewhere cannot act with the cookie.
 */
import { timingSafeEqual } from "node:crypto";
import type { IncomingHttpHeaders } from "node:http";
import { atLeast, ROLE_MEANING, type Role } from "./roles.js";
import type { AccountStore, Principal } from "./store.js";

export const SESSION_COOKIE = "sluice_session";
export const CSRF_HEADER = "x-sluice-csrf";
const SESSION_MAX_AGE_S = 14 * 24 * 3600;

export type Decision = { principal: Principal } | { status: 401 | 403; error: string };

/** The cookies of a request (`Cookie: a=1; b=2`). */
export function parseCookies(header: string | undefined): Map<string, string> {
  const cookies = new Map<string, string>();
  for (const part of (header ?? "").split(";")) {
    const at = part.indexOf("=");
    if (at < 0) continue;
    const name = part.slice(0, at).trim();
    const raw = part.slice(at + 1).trim();
    try {
      if (name && !cookies.has(name)) cookies.set(name, decodeURIComponent(raw));
    } catch {
      // a malformed value is ignored, as browsers send what sites set
    }
  }
  return cookies;
}

/** `Set-Cookie` for a session (HttpOnly, SameSite=Lax; Secure when the request came over HTTPS). */
export function sessionCookie(secret: string, secure: boolean): string {
  const attributes = [`Max-Age=${SESSION_MAX_AGE_S}`, "Path=/", "HttpOnly", "SameSite=Lax"];
  if (secure) attributes.push("Secure");
  return `${SESSION_COOKIE}=${encodeURIComponent(secret)}; ${attributes.join("; ")}`;
}

export const clearedSessionCookie = (): string =>
  `${SESSION_COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax`;

const SAFE_METHODS = new Set(["GET", "HEAD", "OPTIONS"]);

export class Authenticator {
  constructor(
    private readonly store: AccountStore,
    /** The configured admin token (SLUICE_ADMIN_TOKEN); "" for none. */
    private readonly adminToken: string,
  ) {}

  /** Who sent the request, or why it is refused (401). */
  identify(method: string, headers: IncomingHttpHeaders): Decision {
    const authorization = headers.authorization;
    if (authorization !== undefined) {
      const match = /^Bearer\s+(\S+)\s*$/i.exec(authorization);
      if (!match?.[1]) {
        return { status: 401, error: "the Authorization header must be Bearer <API token>" };
      }
      const token = match[1];
      if (this.adminToken && sameSecret(token, this.adminToken)) {
        return { principal: { role: "admin", user: null, via: "admin-token" } };
      }
      const principal = this.store.tokenPrincipal(token);
      if (!principal) return { status: 401, error: "unknown or revoked API token" };
      return { principal };
    }
    const secret = parseCookies(headers.cookie).get(SESSION_COOKIE);
    if (secret === undefined) {
      return {
        status: 401,
        error: "not signed in: sign in at / or send Authorization: Bearer <API token>",
      };
    }
    const user = this.store.sessionUser(secret);
    if (!user) return { status: 401, error: "your session has expired or was ended: sign in again" };
    if (!SAFE_METHODS.has(method.toUpperCase()) && headers[CSRF_HEADER] !== "1") {
      return {
        status: 403,
        error: `requests that change something need the ${CSRF_HEADER}: 1 header when signed in by cookie`,
      };
    }
    return { principal: { role: user.role, user, via: "session" } };
  }

  /** `identify`, then a 403 unless the principal has at least `needed`. */
  require(method: string, headers: IncomingHttpHeaders, needed: Role): Decision {
    const decision = this.identify(method, headers);
    if (!("principal" in decision)) return decision;
    if (!atLeast(decision.principal.role, needed)) {
      return {
        status: 403,
        error: `this needs the ${needed} role (${ROLE_MEANING[needed]}); you are ${article(decision.principal.role)} ${decision.principal.role}`,
      };
    }
    return decision;
  }
}

const article = (word: string): string => (/^[aeiou]/.test(word) ? "an" : "a");

function sameSecret(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}
