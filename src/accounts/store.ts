/**
 * Accounts in `<data-dir>/app.db` (SQLite): users with roles, browser sessions, one-time login
 * and invite links, API tokens and each user's query history. Secrets (sessions, tokens, links)
 * are stored as their SHA-256 and passwords as scrypt hashes; SCRAM keys are kept beside them so
 * the PostgreSQL port can check a user's password or a token without knowing it.
 */
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import Database from "better-sqlite3";
import {
  hashPassword,
  passwordProblem,
  randomSecret,
  SCRAM_ITERATIONS,
  type ScramKeys,
  scramKeys,
  secretHash,
  verifyPassword,
} from "./passwords.js";
import { isRole, lowerRole, type Role } from "./roles.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  username TEXT NOT NULL UNIQUE COLLATE NOCASE,
  role TEXT NOT NULL,
  password_hash TEXT,
  scram_salt BLOB,
  scram_stored_key BLOB,
  scram_server_key BLOB,
  created_at TEXT NOT NULL,
  last_login_at TEXT,
  disabled INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS login_links (
  hash TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  purpose TEXT NOT NULL,
  expires_at INTEGER NOT NULL,
  used_at INTEGER
);
CREATE TABLE IF NOT EXISTS sessions (
  hash TEXT PRIMARY KEY,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS api_tokens (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  hash TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  scram_stored_key BLOB NOT NULL,
  scram_server_key BLOB NOT NULL,
  created_at TEXT NOT NULL,
  last_used_at TEXT
);
CREATE TABLE IF NOT EXISTS query_history (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
  sql TEXT NOT NULL,
  ok INTEGER NOT NULL,
  ms INTEGER NOT NULL,
  rows INTEGER,
  error TEXT,
  at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS query_history_by_user ON query_history (user_id, id);
`;

export const appDbPath = (dataDir: string): string => join(dataDir, "app.db");

const SESSION_MS = 14 * 24 * 3_600_000;
/** Login links (the first start's, an admin's for a user): long enough to read the console tomorrow morning. */
export const LOGIN_LINK_MS = 24 * 3_600_000;
export const INVITE_LINK_MS = 7 * 24 * 3_600_000;
const HISTORY_KEPT = 200;

export interface User {
  id: number;
  username: string;
  role: Role;
  /** False until the user chose a password (an invited user signs in by link first). */
  hasPassword: boolean;
  createdAt: string;
  lastLoginAt: string | null;
  disabled: boolean;
}

export interface ApiToken {
  id: number;
  name: string;
  role: Role;
  userId: number;
  username: string;
  createdAt: string;
  lastUsedAt: string | null;
}

/** Who is asking: a signed-in user, an API token or the configured admin token. */
export interface Principal {
  role: Role;
  /** The user behind a session or token; null for the configured admin token. */
  user: User | null;
  via: "session" | "token" | "admin-token";
  tokenId?: number;
}

export interface HistoryEntry {
  id: number;
  sql: string;
  ok: boolean;
  ms: number;
  rows: number | null;
  error: string | null;
  at: string;
}

/** A request the store refuses, with a reason for the user; `status` is the HTTP status. */
export class AccountError extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

/** SCRAM credentials of one login over the PostgreSQL port. */
export interface ScramCredential extends ScramKeys {
  identity: string;
  /** The login's role: the user's, or a token's (capped by its owner's). */
  role: Role;
}

interface UserRow {
  id: number;
  username: string;
  role: Role;
  password_hash: string | null;
  created_at: string;
  last_login_at: string | null;
  disabled: number;
}

const toUser = (row: UserRow): User => ({
  id: row.id,
  username: row.username,
  role: row.role,
  hasPassword: row.password_hash !== null,
  createdAt: row.created_at,
  lastLoginAt: row.last_login_at,
  disabled: row.disabled === 1,
});

const USERNAME = /^[A-Za-z0-9][A-Za-z0-9._@+-]{0,99}$/;

export function usernameProblem(username: unknown): string | null {
  if (typeof username !== "string" || !USERNAME.test(username)) {
    return 'field "username" must be 1-100 letters, digits or . _ @ + - (an e-mail address works)';
  }
  return null;
}

export class AccountStore {
  readonly db: Database.Database;
  readonly #now: () => number;
  /** The salt every API token's SCRAM keys use: SCRAM offers one salt per login name. */
  readonly tokenSalt: Buffer;

  constructor(file: string, options: { now?: () => number } = {}) {
    this.#now = options.now ?? Date.now;
    this.db = new Database(file);
    this.db.pragma("busy_timeout = 10000");
    this.db.pragma("journal_mode = WAL");
    this.db.pragma("foreign_keys = ON");
    this.db.exec(SCHEMA);
    const salt = this.db.prepare("SELECT value FROM meta WHERE key = 'token_salt'").get() as
      | { value: Buffer }
      | undefined;
    if (salt) this.tokenSalt = salt.value;
    else {
      this.tokenSalt = randomBytes(16);
      this.db.prepare("INSERT OR IGNORE INTO meta (key, value) VALUES ('token_salt', ?)").run(this.tokenSalt);
    }
  }

  close(): void {
    this.db.close();
  }

  #iso(): string {
    return new Date(this.#now()).toISOString();
  }

  // ---- users

  users(): User[] {
    return (this.db.prepare("SELECT * FROM users ORDER BY id").all() as UserRow[]).map(toUser);
  }

  user(id: number): User | null {
    const row = this.db.prepare("SELECT * FROM users WHERE id = ?").get(id) as UserRow | undefined;
    return row ? toUser(row) : null;
  }

  userByName(username: string): User | null {
    const row = this.db.prepare("SELECT * FROM users WHERE username = ?").get(username) as
      | UserRow
      | undefined;
    return row ? toUser(row) : null;
  }

  /** A new user without a password, and the one-time invite link token that lets them in. */
  createUser(username: unknown, role: unknown): { user: User; linkToken: string } {
    const problem = usernameProblem(username);
    if (problem) throw new AccountError(problem);
    if (!isRole(role)) throw new AccountError('field "role" must be viewer, editor or admin');
    if (this.userByName(username as string)) {
      throw new AccountError(`a user named "${username}" already exists`, 409);
    }
    const { lastInsertRowid } = this.db
      .prepare("INSERT INTO users (username, role, created_at) VALUES (?, ?, ?)")
      .run(username, role, this.#iso());
    const user = this.user(Number(lastInsertRowid)) as User;
    return { user, linkToken: this.issueLink(user.id, "invite", INVITE_LINK_MS) };
  }

  /**
   * On first start (no user yet) creates the admin; while that admin has never signed in, every
   * start issues a fresh one-time login link for it. Null once anyone has an account in use.
   */
  firstStartLink(): { user: User; linkToken: string } | null {
    const users = this.users();
    if (users.length === 0) {
      const { user } = this.createUser("admin", "admin");
      this.db.prepare("DELETE FROM login_links WHERE user_id = ?").run(user.id);
      return { user, linkToken: this.issueLink(user.id, "first-start", LOGIN_LINK_MS) };
    }
    const [first] = users;
    if (users.length === 1 && first && first.lastLoginAt === null && !first.hasPassword) {
      return { user: first, linkToken: this.issueLink(first.id, "first-start", LOGIN_LINK_MS) };
    }
    return null;
  }

  /** A one-time link token for a user: single use, expiring. */
  issueLink(userId: number, purpose: "invite" | "first-start" | "login", ttlMs: number): string {
    const token = randomSecret();
    this.db
      .prepare("INSERT INTO login_links (hash, user_id, purpose, expires_at) VALUES (?, ?, ?, ?)")
      .run(secretHash(token), userId, purpose, this.#now() + ttlMs);
    return token;
  }

  updateUser(id: number, change: { role?: unknown; disabled?: unknown }): User {
    const user = this.user(id);
    if (!user) throw new AccountError(`no user with id ${id}`, 404);
    if (change.role !== undefined && !isRole(change.role)) {
      throw new AccountError('field "role" must be viewer, editor or admin');
    }
    if (change.disabled !== undefined && typeof change.disabled !== "boolean") {
      throw new AccountError('field "disabled" must be true or false');
    }
    const role = (change.role as Role | undefined) ?? user.role;
    const disabled = (change.disabled as boolean | undefined) ?? user.disabled;
    if (user.role === "admin" && !user.disabled && (role !== "admin" || disabled)) this.#keepAnAdmin(id);
    this.db.prepare("UPDATE users SET role = ?, disabled = ? WHERE id = ?").run(role, disabled ? 1 : 0, id);
    if (disabled) this.db.prepare("DELETE FROM sessions WHERE user_id = ?").run(id);
    return this.user(id) as User;
  }

  deleteUser(id: number): void {
    const user = this.user(id);
    if (!user) throw new AccountError(`no user with id ${id}`, 404);
    if (user.role === "admin" && !user.disabled) this.#keepAnAdmin(id);
    this.db.prepare("DELETE FROM users WHERE id = ?").run(id);
  }

  #keepAnAdmin(leaving: number): void {
    const { count } = this.db
      .prepare("SELECT count(*) AS count FROM users WHERE role = 'admin' AND disabled = 0 AND id != ?")
      .get(leaving) as { count: number };
    if (count === 0) throw new AccountError("the last active admin cannot be removed or demoted", 409);
  }

  setPassword(userId: number, password: unknown): void {
    const problem = passwordProblem(password);
    if (problem) throw new AccountError(problem);
    // The tokens' salt: SCRAM offers a login name one salt, and a name must take a token too.
    const keys = scramKeys(password as string, this.tokenSalt);
    this.db
      .prepare(
        "UPDATE users SET password_hash = ?, scram_salt = ?, scram_stored_key = ?, scram_server_key = ? WHERE id = ?",
      )
      .run(hashPassword(password as string), keys.salt, keys.storedKey, keys.serverKey, userId);
  }

  // ---- signing in

  /** The user a name and password prove, or null. */
  checkPassword(username: string, password: string): User | null {
    const row = this.db.prepare("SELECT * FROM users WHERE username = ?").get(username) as
      | UserRow
      | undefined;
    if (!row?.password_hash || row.disabled) return null;
    return verifyPassword(password, row.password_hash) ? toUser(row) : null;
  }

  /** Uses up a one-time link: the user it lets in, or an AccountError saying why not. */
  consumeLink(token: string): User {
    const user = this.checkLink(token);
    const used = this.db
      .prepare("UPDATE login_links SET used_at = ? WHERE hash = ? AND used_at IS NULL")
      .run(this.#now(), secretHash(token));
    if (used.changes !== 1) throw new AccountError("this login link was already used", 401);
    return user;
  }

  /** The user a one-time link would let in, without using it up; an AccountError says why not. */
  checkLink(token: string): User {
    const hash = secretHash(token);
    const link = this.db.prepare("SELECT * FROM login_links WHERE hash = ?").get(hash) as
      | { user_id: number; expires_at: number; used_at: number | null }
      | undefined;
    if (!link) throw new AccountError("this login link is not valid", 401);
    if (link.used_at !== null) {
      throw new AccountError("this login link was already used; ask an admin for a new one", 401);
    }
    if (link.expires_at < this.#now()) {
      throw new AccountError("this login link has expired; ask an admin for a new one", 401);
    }
    const user = this.user(link.user_id);
    if (!user || user.disabled) throw new AccountError("this account is disabled", 403);
    return user;
  }

  /** A new browser session for a user; returns the cookie's secret. */
  createSession(userId: number): string {
    const secret = randomSecret();
    const now = this.#now();
    this.db
      .prepare("INSERT INTO sessions (hash, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)")
      .run(secretHash(secret), userId, now, now + SESSION_MS);
    this.db.prepare("UPDATE users SET last_login_at = ? WHERE id = ?").run(this.#iso(), userId);
    this.db.prepare("DELETE FROM sessions WHERE expires_at < ?").run(now);
    return secret;
  }

  endSession(secret: string): void {
    this.db.prepare("DELETE FROM sessions WHERE hash = ?").run(secretHash(secret));
  }

  sessionUser(secret: string): User | null {
    const row = this.db
      .prepare(
        "SELECT users.* FROM sessions JOIN users ON users.id = sessions.user_id WHERE sessions.hash = ? AND sessions.expires_at > ?",
      )
      .get(secretHash(secret), this.#now()) as UserRow | undefined;
    return row && !row.disabled ? toUser(row) : null;
  }

  // ---- API tokens

  /** A new API token with a role no higher than its owner's; the secret is shown once. */
  createToken(owner: User, name: unknown, role: unknown): { token: ApiToken; secret: string } {
    if (typeof name !== "string" || name.trim() === "" || name.length > 100) {
      throw new AccountError('field "name" must be a non-empty string of at most 100 characters');
    }
    const wanted = role ?? owner.role;
    if (!isRole(wanted)) throw new AccountError('field "role" must be viewer, editor or admin');
    if (lowerRole(wanted, owner.role) !== wanted) {
      throw new AccountError(`a ${owner.role} cannot create a token with role ${wanted}`, 403);
    }
    const secret = `sluice_${randomSecret()}`;
    const keys = scramKeys(secret, this.tokenSalt);
    const { lastInsertRowid } = this.db
      .prepare(
        "INSERT INTO api_tokens (name, hash, role, user_id, scram_stored_key, scram_server_key, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      )
      .run(name.trim(), secretHash(secret), wanted, owner.id, keys.storedKey, keys.serverKey, this.#iso());
    return { token: this.#token(Number(lastInsertRowid)) as ApiToken, secret };
  }

  #token(id: number): ApiToken | null {
    return (this.tokens().find((token) => token.id === id) as ApiToken | undefined) ?? null;
  }

  /** Every token, or one user's. */
  tokens(userId?: number): ApiToken[] {
    const rows = this.db
      .prepare(
        `SELECT api_tokens.*, users.username FROM api_tokens JOIN users ON users.id = api_tokens.user_id
         ${userId === undefined ? "" : "WHERE user_id = ?"} ORDER BY api_tokens.id`,
      )
      .all(...(userId === undefined ? [] : [userId])) as {
      id: number;
      name: string;
      role: Role;
      user_id: number;
      username: string;
      created_at: string;
      last_used_at: string | null;
    }[];
    return rows.map((row) => ({
      id: row.id,
      name: row.name,
      role: row.role,
      userId: row.user_id,
      username: row.username,
      createdAt: row.created_at,
      lastUsedAt: row.last_used_at,
    }));
  }

  revokeToken(id: number): void {
    if (this.db.prepare("DELETE FROM api_tokens WHERE id = ?").run(id).changes === 0) {
      throw new AccountError(`no API token with id ${id}`, 404);
    }
  }

  /** The principal a token secret stands for: its role, capped by its owner's current role. */
  tokenPrincipal(secret: string): Principal | null {
    const row = this.db
      .prepare(
        "SELECT api_tokens.id AS token_id, api_tokens.role AS token_role, api_tokens.last_used_at, users.* FROM api_tokens JOIN users ON users.id = api_tokens.user_id WHERE api_tokens.hash = ?",
      )
      .get(secretHash(secret)) as
      | (UserRow & { token_id: number; token_role: Role; last_used_at: string | null })
      | undefined;
    if (!row || row.disabled) return null;
    const now = this.#iso();
    // Once a minute is precise enough for "last used", and spares a write per query.
    if (!row.last_used_at || Date.parse(now) - Date.parse(row.last_used_at) > 60_000) {
      this.db.prepare("UPDATE api_tokens SET last_used_at = ? WHERE id = ?").run(now, row.token_id);
    }
    const user = toUser(row);
    return { role: lowerRole(row.token_role, user.role), user, via: "token", tokenId: row.token_id };
  }

  /** SCRAM credentials of every API token, for the PostgreSQL port (all under `tokenSalt`). */
  tokenCredentials(): ScramCredential[] {
    const rows = this.db
      .prepare(
        "SELECT api_tokens.scram_stored_key, api_tokens.scram_server_key, api_tokens.role AS token_role, users.username, users.role FROM api_tokens JOIN users ON users.id = api_tokens.user_id WHERE users.disabled = 0",
      )
      .all() as {
      scram_stored_key: Buffer;
      scram_server_key: Buffer;
      token_role: Role;
      username: string;
      role: Role;
    }[];
    return rows.map((row) => ({
      identity: row.username,
      role: lowerRole(row.token_role, row.role),
      salt: this.tokenSalt,
      iterations: SCRAM_ITERATIONS,
      storedKey: row.scram_stored_key,
      serverKey: row.scram_server_key,
    }));
  }

  /** The SCRAM credential of a user's password, for the PostgreSQL port; null without one. */
  passwordCredential(username: string): ScramCredential | null {
    const row = this.db
      .prepare(
        "SELECT username, role, scram_salt, scram_stored_key, scram_server_key FROM users WHERE username = ? AND disabled = 0 AND scram_salt IS NOT NULL",
      )
      .get(username) as
      | {
          username: string;
          role: Role;
          scram_salt: Buffer;
          scram_stored_key: Buffer;
          scram_server_key: Buffer;
        }
      | undefined;
    if (!row) return null;
    return {
      identity: row.username,
      role: row.role,
      salt: row.scram_salt,
      iterations: SCRAM_ITERATIONS,
      storedKey: row.scram_stored_key,
      serverKey: row.scram_server_key,
    };
  }

  // ---- query history

  recordQuery(userId: number, entry: Omit<HistoryEntry, "id" | "at">): void {
    this.db
      .prepare(
        "INSERT INTO query_history (user_id, sql, ok, ms, rows, error, at) VALUES (?, ?, ?, ?, ?, ?, ?)",
      )
      .run(userId, entry.sql, entry.ok ? 1 : 0, entry.ms, entry.rows, entry.error, this.#iso());
    this.db
      .prepare(
        "DELETE FROM query_history WHERE user_id = ? AND id <= (SELECT id FROM query_history WHERE user_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
      )
      .run(userId, userId, HISTORY_KEPT);
  }

  /**
   * Replaces ids of a forgotten user in every query history entry (its SQL and error text) with
   * `(forgotten)`; returns the entries changed. An id of four characters or more is replaced
   * wherever it occurs (inside a LIKE pattern too); a shorter one only as a whole quoted string
   * ('42' or "42"), where it cannot be part of something else.
   */
  forgetValues(values: readonly string[]): number {
    const rows = this.db.prepare("SELECT id, sql, error FROM query_history").all() as {
      id: number;
      sql: string;
      error: string | null;
    }[];
    const update = this.db.prepare("UPDATE query_history SET sql = ?, error = ? WHERE id = ?");
    let changed = 0;
    this.db.transaction(() => {
      for (const row of rows) {
        const sql = withoutValues(row.sql, values);
        const error = row.error === null ? null : withoutValues(row.error, values);
        if (sql === row.sql && error === row.error) continue;
        update.run(sql, error, row.id);
        changed++;
      }
    })();
    return changed;
  }

  history(userId: number, limit = 50): HistoryEntry[] {
    const rows = this.db
      .prepare("SELECT * FROM query_history WHERE user_id = ? ORDER BY id DESC LIMIT ?")
      .all(userId, limit) as {
      id: number;
      sql: string;
      ok: number;
      ms: number;
      rows: number | null;
      error: string | null;
      at: string;
    }[];
    return rows.map((row) => ({ ...row, ok: row.ok === 1 }));
  }
}

const FORGOTTEN = "(forgotten)";
/** Ids shorter than this are replaced only as whole quoted strings (see `forgetValues`). */
const MIN_FREE_ID_LENGTH = 4;

function withoutValues(text: string, values: readonly string[]): string {
  let result = text;
  for (const value of values) {
    if (value === "") continue;
    if (value.length >= MIN_FREE_ID_LENGTH) {
      result = result.replaceAll(value, FORGOTTEN);
      continue;
    }
    result = result
      .replaceAll(`'${value.replaceAll("'", "''")}'`, `'${FORGOTTEN}'`)
      .replaceAll(`"${value}"`, `"${FORGOTTEN}"`);
  }
  return result;
}
