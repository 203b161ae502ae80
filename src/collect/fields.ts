/**
 * What every protocol's normaliser shares: the request's arrival, the problem type for one input,
 * reading client times, IP truncation and small value checks.
 */

import { isIP } from "node:net";
import type { DoorPolicy } from "../privacy/door.js";
import type { DedupeSeeds } from "./dedupe.js";
import { parseIsoMillis } from "./iso-time.js";
import type { SchemaCheck } from "./schemas.js";

/** A problem with one input; `field` is its path in the request, e.g. `batch[3].event`. */
export class Invalid {
  constructor(
    readonly field: string,
    readonly reason: string,
  ) {}
}

/** The problem with field `name` of the input at `at`; the path is only built when there is a problem. */
export function invalid(at: string, name: string, problem: string): Invalid {
  return new Invalid(at + name, `${at}${name} ${problem}`);
}

/** What the server knows about the request an event came in. */
export interface Arrival {
  source: string;
  receivedAtMs: number;
  /** `receivedAtMs` as an ISO string, formatted once per request. */
  receivedAt: string;
  remoteAddress: string | undefined;
  /** The PII policy in force for this request (src/privacy), applied in `accepted` and `rejectedRow`. */
  privacy?: DoorPolicy;
  /** The event schemas in force for this request (schemas.ts), checked as each event is normalised. */
  schemas?: SchemaCheck;
  /** Whose fingerprints the accepted events' ids get (`PrepareSettings.dedupeSeeds`). */
  dedupeSeeds: DedupeSeeds;
}

/** The longest accepted client event id (messageId, eid, uuid): ids are kept in memory for deduplication. */
export const MAX_EVENT_ID_LENGTH = 256;

// Years 1 to 9999: what an ISO string with a four-digit year (and a TIMESTAMPTZ column) can hold.
const MIN_TIME_MS = -62135596800000;
const MAX_TIME_MS = 253402300799999;

export function isRepresentableTime(ms: number): boolean {
  return ms >= MIN_TIME_MS && ms <= MAX_TIME_MS;
}

/**
 * Event time corrected for the client's clock: the client's own clocks agree on how long ago the
 * event happened (sent - created), and the server's clock says when "now" is. Without a send
 * time the client's time is taken as it is. Undefined when the result is not a representable time.
 */
export function correctedTime(
  createdMs: number,
  sentMs: number | null,
  receivedAtMs: number,
): number | undefined {
  const ms = sentMs === null ? createdMs : receivedAtMs - (sentMs - createdMs);
  return isRepresentableTime(ms) ? ms : undefined;
}

const ISO_8601 = /^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?)?$/;

/** Milliseconds since the epoch of an ISO 8601 date-time (one without a zone is UTC), or undefined. */
export function parseIsoTime(value: string): number | undefined {
  const canonical = parseIsoMillis(value);
  if (canonical !== undefined) return canonical;
  const match = ISO_8601.exec(value);
  if (match === null) return undefined;
  const hasTimeWithoutZone = match[1] === undefined && value.length > 10;
  const ms = Date.parse(hasTimeWithoutZone ? `${value}Z` : value);
  return Number.isNaN(ms) ? undefined : ms;
}

/** The path of an absolute URL, or null when there is no URL or it does not parse. */
export function pathOf(url: string | null): string | null {
  if (url === null || !URL.canParse(url)) return null;
  return new URL(url).pathname;
}

/**
 * The address an event records. With a PII policy (`arrival.privacy`) it is the address as sent,
 * in canonical form (`canonicalIp`): the policy truncates, hashes or keeps it, and the raw zone
 * keeps it whole. Without one it is truncated. Null when `address` is not an IP address.
 */
export function eventIp(address: string, arrival: Arrival): string | null {
  return arrival.privacy === undefined ? truncateIp(address) : canonicalIp(address);
}

/**
 * The address without an IPv6 zone, IPv6 in lower case, and IPv4-mapped IPv6 addresses
 * (::ffff:a.b.c.d, as dual-stack sockets report IPv4 peers) as IPv4; null when it is not an IP
 * address.
 */
function canonicalIp(address: string): string | null {
  const zone = address.indexOf("%");
  const bare = zone < 0 ? address : address.slice(0, zone);
  const version = isIP(bare);
  if (version === 4) return bare;
  if (version !== 6) return null;
  const lower = bare.toLowerCase();
  return lower.startsWith("::ffff:") && isIP(lower.slice(7)) === 4 ? lower.slice(7) : lower;
}

/**
 * The address (`canonicalIp`) with its host part zeroed: IPv4 keeps 24 bits (a.b.c.0), IPv6 keeps
 * 48 bits (2001:db8:abcd::). Null when `address` is not an IP address.
 */
export function truncateIp(address: string): string | null {
  const ip = canonicalIp(address);
  if (ip === null) return null;
  if (!ip.includes(":")) return `${ip.slice(0, ip.lastIndexOf("."))}.0`;
  const prefix = firstThreeGroups(ip);
  // RFC 5952 form: the trailing zero groups (at least five) are the longest run, so "::" takes them.
  let kept = 3;
  while (kept > 0 && prefix[kept - 1] === 0) kept--;
  return `${prefix
    .slice(0, kept)
    .map((group) => group.toString(16))
    .join(":")}::`;
}

/** The first three 16-bit groups of a valid IPv6 address, expanding "::". */
function firstThreeGroups(address: string): number[] {
  const gap = address.indexOf("::");
  let groups: string[];
  if (gap < 0) {
    groups = address.split(":", 3);
  } else {
    const head = splitGroups(address.slice(0, gap));
    const tail = splitGroups(address.slice(gap + 2));
    // A trailing dotted IPv4 part stands for two groups.
    const tailCount = tail.length + (tail.at(-1)?.includes(".") ? 1 : 0);
    groups = [...head, ...new Array<string>(8 - head.length - tailCount).fill("0"), ...tail];
  }
  return groups.slice(0, 3).map((group) => Number.parseInt(group, 16));
}

function splitGroups(part: string): string[] {
  return part === "" ? [] : part.split(":");
}

export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

export function stringOrNull(value: unknown): string | null {
  return typeof value === "string" ? value : null;
}

export function nonEmptyString(value: unknown): string | undefined {
  return typeof value === "string" && value !== "" ? value : undefined;
}

export function objectOrNull(value: unknown): Record<string, unknown> | null {
  return isObject(value) ? value : null;
}
