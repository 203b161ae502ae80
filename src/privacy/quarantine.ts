/**
 * Obfuscating quarantined input. A rejected payload did not become a canonical event, so its
 * personal data is not at the policy's paths: it is found by key name instead (the last key of each
 * rule's path, and the protocols' own names for the columns: `userId`, `uid`, `distinct_id`, …), at
 * any depth, inside JSON text values and Snowplow's base64 `ue_px`/`cx` too; and by pattern in every
 * string (email addresses, IPv4 addresses). A payload that is not JSON (cut at the size limit, or a
 * pixel's query string) is scrubbed the same way as text.
 */
import { DROP, isRecord, transformFor } from "./obfuscate.js";
import type { PiiAction, PiiRules } from "./policy.js";

/** What each protocol calls the canonical columns a rule may name. */
const PROTOCOL_KEYS: Record<string, string[]> = {
  user_id: ["user_id", "userId", "uid", "distinct_id"],
  anonymous_id: ["anonymous_id", "anonymousId", "duid", "nuid", "tnuid", "$device_id", "$anon_distinct_id"],
  session_id: ["session_id", "sid", "$session_id"],
  ip: ["ip", "$ip"],
  page_url: ["page_url", "url", "$current_url"],
  referrer: ["referrer", "refr", "$referrer"],
  user_agent: ["user_agent", "userAgent", "ua", "$raw_user_agent"],
};

/** Snowplow fields holding base64-encoded JSON. */
const BASE64_JSON_KEYS = new Set(["ue_px", "cx"]);

const EMAIL = /[\w.+-]+@[\w-]+(?:\.[\w-]+)+/g;
const IPV4 = /\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b/g;

type Transform = (value: unknown) => unknown;

export type PayloadScrubber = (payload: string) => string;

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
  const scrubText = (text: string): string => {
    let result = text;
    if (email !== undefined) result = result.replace(EMAIL, (found) => replacement(email(found)));
    if (ip !== undefined) result = result.replace(IPV4, (found) => replacement(ip(found)));
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
      const transform = byKey.get(key);
      if (transform !== undefined && item !== null) {
        const changed = transform(item);
        if (changed !== DROP) scrubbed[key] = changed;
      } else if (BASE64_JSON_KEYS.has(key) && typeof item === "string") {
        scrubbed[key] = scrubBase64Json(item, (json) => scrubValue(json, depth + 1)) ?? scrubText(item);
      } else {
        scrubbed[key] = scrubValue(item, depth + 1);
      }
    }
    return scrubbed;
  };

  const keyPattern = new RegExp(
    `("(${[...byKey.keys()].map(escapeRegExp).join("|")})"\\s*:\\s*)("(?:[^"\\\\]|\\\\.)*"?|-?[\\d.eE+-]+)|` +
      `((?:^|[?&])(${[...byKey.keys()].map(escapeRegExp).join("|")})=)([^&]*)`,
    "g",
  );
  const scrubRawText = (text: string): string =>
    scrubText(
      text.replace(keyPattern, (_match, jsonLead, jsonKey, jsonValue, queryLead, queryKey, queryValue) => {
        if (jsonLead !== undefined) {
          const value = readJsonScalar(jsonValue as string);
          const changed = (byKey.get(jsonKey as string) as Transform)(value);
          return `${jsonLead}${JSON.stringify(changed === DROP ? null : changed)}`;
        }
        const changed = (byKey.get(queryKey as string) as Transform)(safeDecode(queryValue as string));
        return `${queryLead}${changed === DROP || changed === null ? "" : encodeURIComponent(String(changed))}`;
      }),
    );

  return (payload) => {
    const parsed = parseJsonText(payload);
    return parsed === undefined ? scrubRawText(payload) : JSON.stringify(scrubValue(parsed, 0));
  };
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

/** A JSON string or number as found in text; a string cut short (no closing quote) is read as far as it goes. */
function readJsonScalar(text: string): unknown {
  try {
    return JSON.parse(text.startsWith('"') && !text.endsWith('"') ? `${text}"` : text);
  } catch {
    return text;
  }
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
