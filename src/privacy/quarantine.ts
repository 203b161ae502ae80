/**
 * Obfuscating quarantined input. A rejected payload did not become a canonical event, so its
 * personal data is not at the policy's paths: it is found by key name instead (the last key of each
 * rule's path, and the protocols' own names for the columns: `userId`, `uid`, `distinct_id`, …), at
 * any depth, inside JSON text values and Snowplow's base64 `ue_px`/`cx` too; and by pattern in every
 * string (email, IPv4 and IPv6 addresses). What is not JSON is read as far as it can be: JSON cut at
 * the size limit or invalid (keys escaped inside JSON strings too), a pixel's query string parameter
 * by parameter, a body kept in base64 because the collector could not read it (decoded, gunzipped).
 */
import { isIP } from "node:net";
import { gunzipSync, gzipSync, constants as zlib } from "node:zlib";
import { DROP, isRecord, transformFor } from "./obfuscate.js";
import { type PiiAction, type PiiRules, PROTOCOL_KEYS } from "./policy.js";

/** Snowplow fields holding base64-encoded JSON. */
const BASE64_JSON_KEYS = new Set(["ue_px", "cx"]);

// Each pattern starts only where a run of its characters starts (the lookbehinds), so that text of
// one long run (a refused body of 500 KB) costs linear time, not a backtrack from every position.
const EMAIL = /(?<![\w.+-])[\w.+-]+@[\w-]+(?:\.[\w-]+)+/g;
const IPV4 = /\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b/g;
/** Runs of hex digits and colons that may be an IPv6 address; `isIP` decides. */
const IPV6_CANDIDATE = /(?<![\w:.])(?:[0-9a-f]{0,4}:){2,7}[0-9a-f]{0,4}(?![\w:])/gi;
/** A pixel's query string: `key=value&…`, URL-encoded, so without spaces or JSON punctuation. */
const QUERY_STRING = /^[^\s{}[\]"=&]+=[^\s{}[\]"]*$/;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;
const GZIP_MAGIC = [0x1f, 0x8b];
const MAX_INFLATED = 1024 * 1024;
const UTF8 = new TextDecoder("utf-8", { fatal: true });

type Transform = (value: unknown) => unknown;

/**
 * Scrubs a quarantined payload; `opaque`: it is base64 of bytes the collector could not read, which
 * are withheld when they cannot be read here either (they may hold anything the policy hides).
 */
export type PayloadScrubber = (payload: string, opaque?: boolean) => string;

/** A source's rules as a scrubber of quarantined text; identity when the rules hide nothing. */
export function compileScrubber(rules: PiiRules, secret: string): PayloadScrubber {
  const byKey = new Map<string, Transform>();
  const strength = new Map<string, number>();
  for (const [path, action] of Object.entries(rules)) {
    if (action === "keep") continue;
    const [column, ...rest] = path.split(".") as [string, ...string[]];
    const keys = rest.length > 0 ? [rest.at(-1) as string] : (PROTOCOL_KEYS[column] ?? [column]);
    for (const key of keys) {
      // Two rules with one key name: the one hiding more wins.
      if ((strength.get(key) ?? -1) >= STRENGTH[action]) continue;
      strength.set(key, STRENGTH[action]);
      byKey.set(key, transformFor(action, secret));
    }
  }
  if (byKey.size === 0) return (payload) => payload;
  const email = byKey.get("email");
  const ip = byKey.get("ip");
  const scrubPatterns = (text: string): string => {
    let result = text;
    if (email !== undefined) result = result.replace(EMAIL, (found) => replacement(email(found)));
    if (ip !== undefined) {
      result = result.replace(IPV4, (found) => replacement(ip(found)));
      result = result.replace(IPV6_CANDIDATE, (found) =>
        isIP(found) === 6 ? replacement(ip(found)) : found,
      );
    }
    return result;
  };

  const scrubValue = (value: unknown, depth: number): unknown => {
    if (depth > 32) return null;
    if (typeof value === "string") {
      const nested = parseJsonText(value);
      return nested === undefined ? scrubText(value) : JSON.stringify(scrubValue(nested, depth + 1));
    }
    if (Array.isArray(value)) return value.map((item) => scrubValue(item, depth + 1));
    if (!isRecord(value)) return value;
    const scrubbed: Record<string, unknown> = {};
    for (const [key, item] of Object.entries(value)) {
      const changed = scrubEntry(key, item, (json) => scrubValue(json, depth + 1));
      if (changed !== DROP) scrubbed[key] = changed;
    }
    return scrubbed;
  };

  /** A key's value: its rule's transform, Snowplow's base64 JSON decoded, or scrubbed as any value. */
  const scrubEntry = (key: string, item: unknown, below: (value: unknown) => unknown): unknown => {
    const transform = byKey.get(key);
    if (transform !== undefined && item !== null) return transform(item);
    if (BASE64_JSON_KEYS.has(key) && typeof item === "string") {
      return scrubBase64Json(item, below) ?? scrubText(item);
    }
    return below(item);
  };

  // A key of a rule, with its value: in JSON text that is cut or invalid, also inside JSON strings
  // (`\"phone\":\"…\"`, quotes escaped once per level), or in a query string (`email=…`).
  const keys = [...byKey.keys()].map(escapeRegExp).join("|");
  const keyPattern = new RegExp(
    `(?<!\\\\)((\\\\{0,15})"(${keys})\\2"\\s*:\\s*)(?:\\2"([\\s\\S]*?)(?:(?<!\\\\)\\2"|$)|(-?[\\d.eE+-]+))|` +
      `((?:^|[?&])(${keys})=)([^&]*)`,
    "g",
  );
  /** Text that is not JSON: a JSON text cut at the size limit or invalid, a reason, a note. */
  const scrubText = (text: string): string =>
    scrubPatterns(
      text.replace(
        keyPattern,
        (_match, jsonLead, escapes, jsonKey, quoted, number, queryLead, queryKey, queryValue) => {
          if (jsonLead !== undefined) {
            const levels = Math.log2((escapes as string).length + 1);
            const value = number === undefined ? unescapeJson(quoted as string, levels + 1) : Number(number);
            const changed = (byKey.get(jsonKey as string) as Transform)(value);
            if (changed === DROP || changed === null) return `${jsonLead}null`;
            return `${jsonLead}${escapes}"${escapeJson(String(changed), levels + 1)}${escapes}"`;
          }
          const changed = (byKey.get(queryKey as string) as Transform)(safeDecode(queryValue as string));
          return `${queryLead}${changed === DROP || changed === null ? "" : encodeURIComponent(String(changed))}`;
        },
      ),
    );

  /** A pixel's query string: each parameter decoded (URL-encoded JSON in `ue_pr` included) and scrubbed. */
  const scrubQuery = (text: string): string => {
    const scrubbed = new URLSearchParams();
    let changedAny = false;
    for (const [key, value] of new URLSearchParams(text)) {
      const changed = scrubEntry(key, value, (item) => scrubValue(item, 1));
      if (changed !== value) changedAny = true;
      if (changed !== DROP) scrubbed.append(key, changed === null ? "" : String(changed));
    }
    return changedAny ? scrubbed.toString() : text;
  };

  const scrubPayload = (payload: string): string => {
    const parsed = parseJsonText(payload);
    if (parsed !== undefined) return JSON.stringify(scrubValue(parsed, 0));
    if (QUERY_STRING.test(payload)) return scrubQuery(payload);
    return scrubText(payload);
  };
  return (payload, opaque) =>
    opaque
      ? (scrubBase64Body(payload, scrubPayload, true) ?? withheld(payload))
      : (scrubBase64Body(payload, scrubPayload) ?? scrubPayload(payload));
}

/** What is kept of an unreadable body under a PII policy: its size only. */
function withheld(base64: string): string {
  const bytes = Buffer.byteLength(base64, "base64");
  return `(withheld: ${bytes} bytes the collector could not decode; the source's PII policy cannot check them)`;
}

const STRENGTH: Record<Exclude<PiiAction, "keep">, number> = { mask: 0, truncate_ip: 1, hash: 2, drop: 3 };

function replacement(changed: unknown): string {
  return changed === DROP || changed === null ? "" : String(changed);
}

/** The value of JSON text that is an object or array, else undefined. */
function parseJsonText(text: string): unknown {
  const first = text.trimStart()[0];
  if (first !== "{" && first !== "[") return undefined;
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function scrubBase64Json(text: string, scrub: (json: unknown) => unknown): string | undefined {
  const decoded = parseJsonText(Buffer.from(text, "base64url").toString("utf8"));
  if (decoded === undefined) return undefined;
  return Buffer.from(JSON.stringify(scrub(decoded))).toString("base64url");
}

/** Text JSON-escaped `times` times, as a value at that depth of JSON inside JSON strings. */
function escapeJson(text: string, times: number): string {
  let result = text;
  for (let time = 0; time < times; time++) result = JSON.stringify(result).slice(1, -1);
  return result;
}

/** The value of a JSON string's content escaped `times` times; as far as it can be read when cut. */
function unescapeJson(text: string, times: number): string {
  let result = text;
  for (let time = 0; time < times; time++) {
    try {
      result = JSON.parse(`"${result}"`) as string;
    } catch {
      return result;
    }
  }
  return result;
}

/**
 * A body the collector could not read and so kept in base64 (an unknown Content-Encoding, gzip that
 * is invalid, cut or too large once inflated): when it is text, or gzip of text, that text is
 * scrubbed and encoded again the same way. Undefined when the payload is not such a body, or, with
 * `jsonOnly`, when its text is not JSON (whole or cut), whose keys the rules could find.
 */
function scrubBase64Body(
  payload: string,
  scrub: (text: string) => string,
  jsonOnly = false,
): string | undefined {
  if (payload.length < 16 || !BASE64.test(payload)) return undefined;
  const bytes = Buffer.from(payload, "base64");
  const gzipped = bytes[0] === GZIP_MAGIC[0] && bytes[1] === GZIP_MAGIC[1];
  const plain = gzipped ? gunzipPrefix(bytes) : bytes;
  if (plain === undefined) return undefined;
  let text: string;
  try {
    text = UTF8.decode(plain);
  } catch {
    return undefined;
  }
  if (jsonOnly && !/^\s*[[{]/.test(text)) return undefined;
  const scrubbed = scrub(text);
  if (scrubbed === text) return payload;
  return (gzipped ? gzipSync(scrubbed) : Buffer.from(scrubbed)).toString("base64");
}

/** As much of gzip data as inflates, up to MAX_INFLATED bytes: gzip cut short or too large reads in part. */
function gunzipPrefix(bytes: Buffer): Buffer | undefined {
  for (let length = bytes.length; length >= 16; length = Math.floor(length / 2)) {
    try {
      return gunzipSync(bytes.subarray(0, length), {
        finishFlush: zlib.Z_SYNC_FLUSH,
        maxOutputLength: MAX_INFLATED,
      });
    } catch {
      // Too large, or damaged further on: try a shorter beginning.
    }
  }
  return undefined;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text.replace(/\+/g, " "));
  } catch {
    return text;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
