/**
 * Realistic Segment calls for load generation: a shop's event mix (page views,
 * product views, searches, cart, checkout, orders, sign-ups, identifies) with
 * varied users, products and devices; 300-500 bytes of JSON each, like a real
 * analytics.js payload. Seeded, so runs send the same shapes.
 */

export interface SegmentCall {
  type: "track" | "page" | "identify";
  messageId: string;
  timestamp: string;
  anonymousId: string;
  userId?: string;
  event?: string;
  name?: string;
  properties?: Record<string, unknown>;
  traits?: Record<string, unknown>;
  context: Record<string, unknown>;
}

/** The shop's product categories, shared with the synthetic lake so both benchmarks sell the same things. */
export const CATEGORIES = [
  "Footwear",
  "Jackets",
  "Backpacks",
  "Tents",
  "Accessories",
  "Base Layers",
  "Climbing",
  "Kids",
];
const COUNTRIES = ["US", "US", "US", "DE", "GB", "FR", "CA", "NL", "ES", "IN", "BR", "JP", "AU", "SE"];
const CURRENCY: Record<string, string> = { GB: "GBP", DE: "EUR", FR: "EUR", NL: "EUR", ES: "EUR" };
const LOCALES: Record<string, string> = {
  DE: "de-DE",
  FR: "fr-FR",
  NL: "nl-NL",
  ES: "es-ES",
  JP: "ja-JP",
  BR: "pt-BR",
};
const USER_AGENTS = [
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36",
  "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15",
  "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1",
  "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Mobile Safari/537.36",
  "Mozilla/5.0 (X11; Linux x86_64; rv:127.0) Gecko/20100101 Firefox/127.0",
];
/** [what happens, weight]: roughly a shop's mix, most traffic browsing, few orders. */
const MIX: [kind: string, weight: number][] = [
  ["page", 38],
  ["Product Viewed", 24],
  ["Product List Viewed", 10],
  ["Products Searched", 7],
  ["Product Added", 8],
  ["Cart Viewed", 4],
  ["Checkout Started", 3],
  ["Order Completed", 2],
  ["Signed Up", 1],
  ["identify", 3],
];
const MIX_TOTAL = MIX.reduce((sum, [, weight]) => sum + weight, 0);
const SEARCHES = [
  "rain jacket",
  "hiking boots",
  "tent 2 person",
  "merino",
  "headlamp",
  "kids fleece",
  "chalk bag",
];
const PAGES: [name: string, path: string][] = [
  ["Home", "/"],
  ["Category", "/collections/footwear"],
  ["Category", "/collections/jackets"],
  ["Category", "/collections/tents"],
  ["Cart", "/cart"],
  ["Blog", "/blog/how-to-layer-for-winter"],
  ["Help", "/help/shipping"],
];

/** mulberry32: a tiny, fast seeded PRNG. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class SegmentEventFactory {
  readonly #random: () => number;

  constructor(seed: number) {
    this.#random = seededRandom(seed);
  }

  /**
   * One call with the given messageId, timestamped within the minute before `now`;
   * only `track` calls when `trackOnly` (what `POST /v1/track` takes).
   */
  next(messageId: string, options: { trackOnly?: boolean; now?: number } = {}): SegmentCall {
    const now = options.now ?? Date.now();
    const user = this.#int(100_000);
    const country = this.#pick(COUNTRIES);
    const currency = CURRENCY[country] ?? "USD";
    const identified = user % 10 < 4;
    const productId = Math.floor(500 * this.#random() ** 2);
    const product = {
      product_id: `prod_${String(productId).padStart(4, "0")}`,
      sku: `SKU-${productId}-${this.#pick(["S", "M", "L", "XL"])}`,
      category: CATEGORIES[productId % CATEGORIES.length],
      price: Math.round(500 + ((productId * 7919) % 19_500)) / 100,
      currency,
    };
    const base = {
      messageId,
      timestamp: new Date(now - this.#int(60_000)).toISOString(),
      anonymousId: `anon-${(user * 2654435761).toString(36)}`,
      ...(identified ? { userId: `usr_${String(user).padStart(6, "0")}` } : {}),
      context: {
        library: { name: "analytics.js", version: "5.2.0" },
        locale: LOCALES[country] ?? "en-US",
        userAgent: this.#pick(USER_AGENTS),
        ip: `203.0.${user % 250}.${1 + (user % 200)}`,
      },
    };
    let kind = this.#weighted();
    while (options.trackOnly && (kind === "page" || kind === "identify")) kind = this.#weighted();
    switch (kind) {
      case "page": {
        const [name, path] = this.#pick(PAGES);
        return { ...base, type: "page", name, properties: { path, url: `https://shop.example.com${path}` } };
      }
      case "identify":
        return {
          ...base,
          type: "identify",
          userId: `usr_${String(user).padStart(6, "0")}`,
          traits: {
            plan: this.#pick(["free", "member", "vip"]),
            country,
            email_opt_in: this.#random() < 0.6,
          },
        };
      case "Products Searched":
        return { ...base, type: "track", event: kind, properties: { query: this.#pick(SEARCHES) } };
      case "Product List Viewed":
        return {
          ...base,
          type: "track",
          event: kind,
          properties: { list_id: "search-results", category: product.category },
        };
      case "Product Added":
        return {
          ...base,
          type: "track",
          event: kind,
          properties: { ...product, quantity: 1 + this.#int(3) },
        };
      case "Checkout Started":
      case "Order Completed": {
        const revenue = Math.round(product.price * (1 + this.#int(3)) * 100) / 100;
        const id = `${kind === "Order Completed" ? "ord" : "chk"}_${this.#int(1e9).toString(36)}`;
        return {
          ...base,
          type: "track",
          event: kind,
          properties: { order_id: id, revenue, currency, products: 1 },
        };
      }
      case "Signed Up":
        return {
          ...base,
          type: "track",
          event: kind,
          properties: { method: this.#pick(["email", "google", "apple"]) },
        };
      default:
        return { ...base, type: "track", event: kind, properties: product };
    }
  }

  #int(below: number): number {
    return Math.floor(this.#random() * below);
  }

  #pick<T>(items: readonly T[]): T {
    return items[this.#int(items.length)] as T;
  }

  #weighted(): string {
    let draw = this.#random() * MIX_TOTAL;
    for (const [kind, weight] of MIX) {
      draw -= weight;
      if (draw < 0) return kind;
    }
    return "page";
  }
}

/**
 * A request body whose messageIds contain a fixed-width placeholder. `stamp`
 * copies it and writes a request number into every placeholder, so each
 * request carries unique messageIds (dedupe would otherwise drop resends)
 * without building JSON on the load generator's hot path.
 */
export class BodyTemplate {
  static readonly DIGITS = 10;
  static readonly PLACEHOLDER = "#".repeat(BodyTemplate.DIGITS);
  readonly #bytes: Buffer;
  readonly #offsets: number[] = [];

  constructor(json: string) {
    this.#bytes = Buffer.from(json);
    for (let at = this.#bytes.indexOf(BodyTemplate.PLACEHOLDER); at !== -1; ) {
      this.#offsets.push(at);
      at = this.#bytes.indexOf(BodyTemplate.PLACEHOLDER, at + BodyTemplate.DIGITS);
    }
    if (this.#offsets.length === 0) throw new Error("body template has no messageId placeholder");
  }

  get size(): number {
    return this.#bytes.length;
  }

  stamp(requestNumber: number): Buffer {
    const body = Buffer.from(this.#bytes);
    const digits = String(requestNumber).padStart(BodyTemplate.DIGITS, "0");
    for (const offset of this.#offsets) body.write(digits, offset, "latin1");
    return body;
  }
}

/** Formats a request number the way `stamp` writes it, to name a request's events in SQL. */
export const stampedNumber = (requestNumber: number): string =>
  String(requestNumber).padStart(BodyTemplate.DIGITS, "0");

/** `count` bodies of `size`-event batches whose messageIds are `<tag><request number>-<i>`. */
export function batchTemplates(tag: string, size: number, count: number): BodyTemplate[] {
  const factory = new SegmentEventFactory(42);
  return Array.from({ length: count }, () => {
    const batch = Array.from({ length: size }, (_, i) =>
      factory.next(`${tag}${BodyTemplate.PLACEHOLDER}-${i}`),
    );
    return new BodyTemplate(JSON.stringify({ batch }));
  });
}
