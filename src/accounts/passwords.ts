/**
 * Secrets at rest: passwords hashed with scrypt (node:crypto), random tokens stored as their
 * SHA-256, and the SCRAM-SHA-256 keys the PostgreSQL port checks a password or token against
 * (PostgreSQL stores the same: salt, iterations, StoredKey, ServerKey).
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, scryptSync, timingSafeEqual } from "node:crypto";

const SCRYPT = { N: 16384, r: 8, p: 1, keyLength: 64 };
export const MIN_PASSWORD_LENGTH = 8;
export const SCRAM_ITERATIONS = 4096;

/** `scrypt$N$r$p$salt$hash` (base64). */
export function hashPassword(password: string): string {
  const salt = randomBytes(16);
  const hash = scryptSync(password.normalize("NFKC"), salt, SCRYPT.keyLength, {
    N: SCRYPT.N,
    r: SCRYPT.r,
    p: SCRYPT.p,
  });
  return ["scrypt", SCRYPT.N, SCRYPT.r, SCRYPT.p, salt.toString("base64"), hash.toString("base64")].join("$");
}

export function verifyPassword(password: string, stored: string): boolean {
  const [scheme, n, r, p, salt, hash] = stored.split("$");
  if (scheme !== "scrypt" || !salt || !hash) return false;
  const expected = Buffer.from(hash, "base64");
  const actual = scryptSync(password.normalize("NFKC"), Buffer.from(salt, "base64"), expected.length, {
    N: Number(n),
    r: Number(r),
    p: Number(p),
  });
  return timingSafeEqual(actual, expected);
}

/** Why a new password is refused, or null when it is fine. */
export function passwordProblem(password: unknown): string | null {
  if (typeof password !== "string") return 'field "password" must be a string';
  if (password.length < MIN_PASSWORD_LENGTH) {
    return `a password needs at least ${MIN_PASSWORD_LENGTH} characters`;
  }
  return null;
}

/** A random secret, URL-safe. */
export const randomSecret = (bytes = 32): string => randomBytes(bytes).toString("base64url");

/** How a random secret (session, token, link) is stored: its SHA-256, so a leaked database grants nothing. */
export const secretHash = (secret: string): string => createHash("sha256").update(secret).digest("hex");

export interface ScramKeys {
  salt: Buffer;
  iterations: number;
  storedKey: Buffer;
  serverKey: Buffer;
}

/** The SCRAM-SHA-256 keys of a secret under a salt (RFC 5802). */
export function scramKeys(secret: string, salt: Buffer, iterations = SCRAM_ITERATIONS): ScramKeys {
  const salted = pbkdf2Sync(secret.normalize("NFKC"), salt, iterations, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  return {
    salt,
    iterations,
    storedKey: createHash("sha256").update(clientKey).digest(),
    serverKey: createHmac("sha256", salted).update("Server Key").digest(),
  };
}
