/**
 * SCRAM-SHA-256 (RFC 5802, RFC 7677), the server side, as PostgreSQL runs it inside
 * SASL authentication. Any name logs in with an API token; an account's name also with its own
 * password (keys stored by accounts/). The user name is taken from the startup message, as
 * PostgreSQL does.
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes, timingSafeEqual } from "node:crypto";

export const MECHANISM = "SCRAM-SHA-256";
const ITERATIONS = 4096;

/** A secret's keys, derived once (PBKDF2 is deliberately slow). */
export interface Verifier {
  /** What the secret authenticates as. */
  identity: string;
  /** What it may do (an account role); the server decides what that allows (`PgServerOptions.accessFor`). */
  role: string;
  salt: Buffer;
  storedKey: Buffer;
  serverKey: Buffer;
}

const hmac = (key: Buffer, text: string): Buffer => createHmac("sha256", key).update(text).digest();
const sha256 = (data: Buffer): Buffer => createHash("sha256").update(data).digest();

/**
 * Logins kept elsewhere (accounts), looked up per connection: a user's own password, and API
 * tokens. SCRAM sends the client one salt before it proves anything, and a token is not tied to a
 * user, so all tokens' keys use one salt and the proof is checked against each until one matches.
 */
export interface ScramLogins {
  tokenSalt: Buffer;
  /** The keys of a user's password; null when `user` is no account with a password. */
  password(user: string): Verifier | null;
  tokens(): Verifier[];
}

export class ScramVerifiers {
  readonly #verifiers: Verifier[];
  readonly salt: Buffer;

  constructor(
    secrets: { secret: string; identity: string; role: string }[],
    private readonly logins?: ScramLogins,
  ) {
    this.salt = logins?.tokenSalt ?? randomBytes(16);
    this.#verifiers = secrets
      .filter(({ secret }) => secret !== "")
      .map(({ secret, identity, role }) => {
        const salted = pbkdf2Sync(secret.normalize("NFKC"), this.salt, ITERATIONS, 32, "sha256");
        return {
          identity,
          role,
          salt: this.salt,
          storedKey: sha256(hmac(salted, "Client Key")),
          serverKey: hmac(salted, "Server Key"),
        };
      });
  }

  get empty(): boolean {
    return this.#verifiers.length === 0 && this.logins === undefined;
  }

  /**
   * Starts one exchange for a login name: an API token logs in under any name, an account's name
   * also with its password. SCRAM sends the client one salt, so a password whose keys use another
   * salt than the tokens' is checked alone.
   */
  exchange(user = ""): ScramExchange {
    const own = this.logins?.password(user);
    const shared = [...this.#verifiers, ...(this.logins?.tokens() ?? [])];
    if (!own) return new ScramExchange(shared, this.salt);
    if (own.salt.equals(this.salt)) return new ScramExchange([own, ...shared], this.salt);
    return new ScramExchange([own], own.salt);
  }
}

export class ScramExchange {
  #clientFirstBare = "";
  #serverFirst = "";
  #nonce = "";

  constructor(
    private readonly verifiers: Verifier[],
    private readonly salt: Buffer,
  ) {}

  /** Takes the client-first-message; returns the server-first-message. */
  start(clientFirst: string): string {
    // gs2-header: "n,," or "y,," (no channel binding); "p=" would ask for binding we do not offer.
    const match = /^[ny],(?:a=[^,]*)?,(.*)$/.exec(clientFirst);
    if (!match?.[1]) throw new ScramError("malformed SCRAM client-first-message");
    this.#clientFirstBare = match[1];
    const clientNonce = /(?:^|,)r=([^,]+)/.exec(this.#clientFirstBare)?.[1];
    if (!clientNonce) throw new ScramError("the SCRAM client-first-message has no nonce");
    this.#nonce = clientNonce + randomBytes(18).toString("base64");
    this.#serverFirst = `r=${this.#nonce},s=${this.salt.toString("base64")},i=${ITERATIONS}`;
    return this.#serverFirst;
  }

  /**
   * Takes the client-final-message; returns the identity of the secret it proves and the
   * server-final-message, or null when the proof matches no secret.
   */
  finish(clientFinal: string): { identity: string; role: string; serverFinal: string } | null {
    const proofAt = clientFinal.lastIndexOf(",p=");
    if (proofAt === -1) throw new ScramError("the SCRAM client-final-message has no proof");
    const withoutProof = clientFinal.slice(0, proofAt);
    if (/(?:^|,)r=([^,]+)/.exec(withoutProof)?.[1] !== this.#nonce) {
      throw new ScramError("the SCRAM nonce does not match");
    }
    const proof = Buffer.from(clientFinal.slice(proofAt + 3), "base64");
    const authMessage = `${this.#clientFirstBare},${this.#serverFirst},${withoutProof}`;
    for (const verifier of this.verifiers) {
      const signature = hmac(verifier.storedKey, authMessage);
      if (proof.length !== signature.length) continue;
      const clientKey = Buffer.from(proof.map((byte, index) => byte ^ (signature[index] as number)));
      if (timingSafeEqual(sha256(clientKey), verifier.storedKey)) {
        const serverSignature = hmac(verifier.serverKey, authMessage).toString("base64");
        return { identity: verifier.identity, role: verifier.role, serverFinal: `v=${serverSignature}` };
      }
    }
    return null;
  }
}

export class ScramError extends Error {}
