/** Who visits the demo shop: countries, devices, traffic sources and visitor identities. */
import type { Currency } from "./catalog.js";
import type { Random } from "./random.js";

interface Country {
  code: string;
  weight: number;
  locale: string;
  timezones: string[];
  currency: Currency;
  /** First octets of address blocks allocated to ISPs in that country. */
  ipBlocks: number[];
}

const COUNTRIES: readonly Country[] = [
  {
    code: "US",
    weight: 30,
    locale: "en-US",
    timezones: ["America/New_York", "America/Chicago", "America/Denver", "America/Los_Angeles"],
    currency: "USD",
    ipBlocks: [24, 71, 73, 98, 174],
  },
  {
    code: "GB",
    weight: 12,
    locale: "en-GB",
    timezones: ["Europe/London"],
    currency: "GBP",
    ipBlocks: [81, 86, 92, 109],
  },
  {
    code: "DE",
    weight: 12,
    locale: "de-DE",
    timezones: ["Europe/Berlin"],
    currency: "EUR",
    ipBlocks: [79, 84, 91, 93],
  },
  {
    code: "FR",
    weight: 9,
    locale: "fr-FR",
    timezones: ["Europe/Paris"],
    currency: "EUR",
    ipBlocks: [78, 82, 90, 176],
  },
  {
    code: "ES",
    weight: 5,
    locale: "es-ES",
    timezones: ["Europe/Madrid"],
    currency: "EUR",
    ipBlocks: [83, 88, 95],
  },
  {
    code: "IT",
    weight: 5,
    locale: "it-IT",
    timezones: ["Europe/Rome"],
    currency: "EUR",
    ipBlocks: [87, 151],
  },
  {
    code: "NL",
    weight: 5,
    locale: "nl-NL",
    timezones: ["Europe/Amsterdam"],
    currency: "EUR",
    ipBlocks: [77, 94, 145],
  },
  {
    code: "CA",
    weight: 6,
    locale: "en-CA",
    timezones: ["America/Toronto", "America/Vancouver"],
    currency: "USD",
    ipBlocks: [70, 99, 142],
  },
  {
    code: "AU",
    weight: 4,
    locale: "en-AU",
    timezones: ["Australia/Sydney", "Australia/Melbourne"],
    currency: "USD",
    ipBlocks: [49, 101, 110, 121],
  },
  {
    code: "BR",
    weight: 4,
    locale: "pt-BR",
    timezones: ["America/Sao_Paulo"],
    currency: "USD",
    ipBlocks: [177, 179, 189, 200],
  },
  {
    code: "IN",
    weight: 4,
    locale: "en-IN",
    timezones: ["Asia/Kolkata"],
    currency: "USD",
    ipBlocks: [106, 117, 223],
  },
  {
    code: "JP",
    weight: 4,
    locale: "ja-JP",
    timezones: ["Asia/Tokyo"],
    currency: "USD",
    ipBlocks: [126, 133, 219],
  },
];

/** Current browser user agents, weighted roughly like a consumer shop's traffic (about half mobile). */
const USER_AGENTS: ReadonlyArray<[userAgent: string, weight: number]> = [
  [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1",
    24,
  ],
  [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    22,
  ],
  [
    "Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36",
    17,
  ],
  [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36",
    8,
  ],
  [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 Edg/131.0.0.0",
    6,
  ],
  [
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15",
    6,
  ],
  ["Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:133.0) Gecko/20100101 Firefox/133.0", 4],
  [
    "Mozilla/5.0 (Linux; Android 14; SAMSUNG SM-S911B) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/26.0 Chrome/122.0.0.0 Mobile Safari/537.36",
    4,
  ],
  [
    "Mozilla/5.0 (iPad; CPU OS 17_7 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.7 Mobile/15E148 Safari/604.1",
    3,
  ],
  [
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/131.0.6778.73 Mobile/15E148 Safari/604.1",
    2,
  ],
  ["Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", 1],
];

export interface Campaign {
  name: string;
  source: string;
  medium: string;
}

interface TrafficSource {
  weight: number;
  referrers: string[];
  /** Paid and email traffic arrives with UTM parameters. */
  campaign?: { source: string; medium: string; names: string[] };
}

const TRAFFIC_SOURCES: readonly TrafficSource[] = [
  { weight: 28, referrers: [""] },
  { weight: 30, referrers: ["https://www.google.com/"] },
  { weight: 3, referrers: ["https://www.bing.com/", "https://duckduckgo.com/"] },
  { weight: 4, referrers: ["https://www.tiktok.com/", "https://www.reddit.com/"] },
  {
    weight: 14,
    referrers: ["https://www.google.com/"],
    campaign: {
      source: "google",
      medium: "cpc",
      names: ["brand_search", "shopping_feed", "generic_outdoor"],
    },
  },
  {
    weight: 8,
    referrers: ["https://l.facebook.com/", "https://m.facebook.com/"],
    campaign: { source: "facebook", medium: "paid_social", names: ["retargeting", "lookalike_buyers"] },
  },
  {
    weight: 6,
    referrers: ["https://l.instagram.com/"],
    campaign: { source: "instagram", medium: "paid_social", names: ["new_collection", "creator_collab"] },
  },
  {
    weight: 7,
    referrers: [""],
    campaign: { source: "newsletter", medium: "email", names: ["weekly_digest", "back_in_stock"] },
  },
];

export interface Arrival {
  referrer: string;
  campaign?: Campaign;
}

/** How a session reached the shop: the external referrer, and UTM parameters for paid and email traffic. */
export function pickArrival(random: Random): Arrival {
  const source = random.weighted(TRAFFIC_SOURCES, (s) => s.weight);
  const referrer = random.pick(source.referrers);
  if (!source.campaign) return { referrer };
  const { names, ...utm } = source.campaign;
  return { referrer, campaign: { name: random.pick(names), ...utm } };
}

const FIRST_NAMES = [
  "Emma",
  "Liam",
  "Olivia",
  "Noah",
  "Sophie",
  "Lucas",
  "Mia",
  "Leon",
  "Chloé",
  "Hugo",
  "Lucía",
  "Mateo",
  "Giulia",
  "Marco",
  "Sanne",
  "Daan",
  "Aarav",
  "Priya",
  "Yuki",
  "Haruto",
  "Ana",
  "Gabriel",
  "Charlotte",
  "Oliver",
];
const LAST_NAMES = [
  "Smith",
  "Johnson",
  "Brown",
  "Müller",
  "Schmidt",
  "Martin",
  "Bernard",
  "García",
  "Rossi",
  "de Vries",
  "Patel",
  "Sharma",
  "Tanaka",
  "Sato",
  "Silva",
  "Santos",
  "Wilson",
  "Taylor",
  "Tremblay",
  "Nguyen",
];
const EMAIL_DOMAINS = ["example.com", "example.net", "example.org"];
const PLANS: ReadonlyArray<[plan: string, weight: number]> = [
  ["basic", 70],
  ["plus", 25],
  ["premium", 5],
];

/** Share of visitors with an account they log in to; with guest checkouts, about a quarter of visitors identify. */
const IDENTIFYING_SHARE = 0.22;

/** One browser on one device: what stays the same across that visitor's sessions. */
export interface Visitor {
  anonymousId: string;
  country: string;
  userAgent: string;
  locale: string;
  timezone: string;
  ip: string;
  currency: Currency;
  /** The account this visitor logs in to (or signs up for) during a session. */
  account?: { userId: string; traits: Record<string, string> };
  /** Set once the visitor has identified: later events carry the userId. */
  userId?: string;
}

export function createVisitor(random: Random): Visitor {
  const country = random.weighted(COUNTRIES, (c) => c.weight);
  const visitor: Visitor = {
    anonymousId: random.uuid(),
    country: country.code,
    userAgent: random.weighted(USER_AGENTS, ([, weight]) => weight)[0],
    locale: country.locale,
    timezone: random.pick(country.timezones),
    ip: `${random.pick(country.ipBlocks)}.${random.int(0, 255)}.${random.int(0, 255)}.${random.int(1, 254)}`,
    currency: country.currency,
  };
  if (random.chance(IDENTIFYING_SHARE)) visitor.account = createAccount(random, country.code);
  return visitor;
}

/** An account for a visitor who checks out without having logged in (guest checkout asks for an email). */
export function createAccount(random: Random, country: string): NonNullable<Visitor["account"]> {
  const first = random.pick(FIRST_NAMES);
  const last = random.pick(LAST_NAMES);
  const local = `${first}.${last}`
    .normalize("NFD")
    .replace(/[^A-Za-z.]/g, "")
    .toLowerCase();
  const suffix = random.chance(0.4) ? String(random.int(1, 99)) : "";
  return {
    userId: `usr_${random.hex(12)}`,
    traits: {
      email: `${local}${suffix}@${random.pick(EMAIL_DOMAINS)}`,
      name: `${first} ${last}`,
      plan: random.weighted(PLANS, ([, weight]) => weight)[0],
      country,
    },
  };
}
