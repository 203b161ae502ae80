/** Accounts: users with roles, sessions, one-time links, API tokens and query history (`app.db`). */
export {
  Authenticator,
  CSRF_HEADER,
  clearedSessionCookie,
  type Decision,
  parseCookies,
  SESSION_COOKIE,
  sessionCookie,
} from "./auth.js";
export { MIN_PASSWORD_LENGTH, scramKeys } from "./passwords.js";
export { atLeast, isRole, ROLE_MEANING, ROLES, type Role } from "./roles.js";
export {
  AccountError,
  AccountStore,
  type ApiToken,
  appDbPath,
  type HistoryEntry,
  INVITE_LINK_MS,
  LOGIN_LINK_MS,
  type Principal,
  type ScramCredential,
  type User,
} from "./store.js";
