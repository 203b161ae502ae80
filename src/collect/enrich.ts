/**
 * Enrichment, applied to every accepted event of every protocol before it is encoded for the bus
 * (so before it is durable):
 *
 * - The user agent → `browser`, `os`, `device_type` (bowser, MIT) and `context.is_bot` (isbot,
 *   public domain, plus bowser's own bot detection). The canonical columns are fixed, so the bot
 *   flag lives in `context`; the server's verdict replaces any `is_bot` the client sent. Parses are
 *   cached per user agent string in an LRU: real traffic repeats a few hundred user agents, and a
 *   cached answer costs a map lookup instead of a few dozen regular expressions.
 * - The IP address → `country` (ISO 3166 alpha-2), only when `geoip_database` names a MaxMind-format
 *   (.mmdb) country or city database, read with mmdb-lib (MIT). The lookup uses the address in the
 *   event: under a PII policy (always, in a server) the full one, which the policy then truncates or
 *   hashes before anything is stored; without one the normaliser has already truncated it (/24, /48).
 */
import { readFileSync } from "node:fs";
import Bowser from "bowser";
import { isbot } from "isbot";
import { type CountryResponse, Reader } from "mmdb-lib";
import type { CanonicalEvent } from "./model.js";

export interface EnrichmentSettings {
  /** Parse user agents into browser, os, device_type and context.is_bot. */
  userAgent: boolean;
  /** A MaxMind-format database for IP → country; "" for none. */
  geoipDatabase: string;
}

export const DEFAULT_ENRICHMENT: EnrichmentSettings = { userAgent: true, geoipDatabase: "" };

export interface UserAgentFacts {
  browser: string | null;
  os: string | null;
  /** desktop, mobile, tablet, tv or bot (bowser's platform types). */
  deviceType: string | null;
  isBot: boolean;
}

/** Distinct user agents remembered per thread. */
const USER_AGENT_CACHE_SIZE = 2048;
/** Longer user agents are parsed by their first this many characters: no real one is longer. */
const MAX_PARSED_USER_AGENT = 1024;

export class Enricher {
  private readonly userAgents: Lru<string, UserAgentFacts> | null;
  private readonly countries: Reader<CountryResponse> | null;

  /** Throws when the GeoIP database cannot be read, naming the file. */
  constructor(settings: EnrichmentSettings) {
    this.userAgents = settings.userAgent ? new Lru(USER_AGENT_CACHE_SIZE) : null;
    this.countries = settings.geoipDatabase === "" ? null : openCountries(settings.geoipDatabase);
  }

  enrich(event: CanonicalEvent): void {
    const userAgent = event.user_agent;
    if (this.userAgents !== null && userAgent !== null && userAgent !== "") {
      const key =
        userAgent.length > MAX_PARSED_USER_AGENT ? userAgent.slice(0, MAX_PARSED_USER_AGENT) : userAgent;
      let facts = this.userAgents.get(key);
      if (facts === undefined) {
        facts = parseUserAgent(key);
        this.userAgents.set(key, facts);
      }
      event.browser = facts.browser;
      event.os = facts.os;
      event.device_type = facts.deviceType;
      if (event.context === null) event.context = { is_bot: facts.isBot };
      else event.context.is_bot = facts.isBot;
    }
    if (this.countries !== null && event.ip !== null) {
      const found = this.countries.get(event.ip);
      event.country = found?.country?.iso_code ?? found?.registered_country?.iso_code ?? null;
    }
  }
}

export function parseUserAgent(userAgent: string): UserAgentFacts {
  const parser = Bowser.getParser(userAgent);
  const deviceType = parser.getPlatformType() || null;
  return {
    browser: parser.getBrowserName() || null,
    os: parser.getOSName() || null,
    deviceType,
    isBot: deviceType === "bot" || isbot(userAgent),
  };
}

const enrichers = new WeakMap<EnrichmentSettings, Enricher>();

/** The enricher of these settings on this thread, made on first use (so each worker has its own cache). */
export function enricherFor(settings: EnrichmentSettings): Enricher {
  let enricher = enrichers.get(settings);
  if (enricher === undefined) {
    enricher = new Enricher(settings);
    enrichers.set(settings, enricher);
  }
  return enricher;
}

function openCountries(path: string): Reader<CountryResponse> {
  try {
    return new Reader<CountryResponse>(readFileSync(path));
  } catch (error) {
    throw new Error(`geoip_database ${path} is not a readable MaxMind database: ${(error as Error).message}`);
  }
}

/**
 * A least-recently-used cache in two generations: hits in the current generation cost one map
 * lookup (no reordering); a hit in the previous one moves the entry over; when the current one is
 * full it becomes the previous one, dropping what was not used since. Holds at most 2 × capacity.
 */
class Lru<K, V> {
  private current = new Map<K, V>();
  private previous = new Map<K, V>();

  constructor(private readonly capacity: number) {}

  get(key: K): V | undefined {
    const value = this.current.get(key);
    if (value !== undefined) return value;
    const old = this.previous.get(key);
    if (old !== undefined) this.set(key, old);
    return old;
  }

  set(key: K, value: V): void {
    if (this.current.size >= this.capacity) {
      this.previous = this.current;
      this.current = new Map();
    }
    this.current.set(key, value);
  }
}
