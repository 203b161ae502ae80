/**
 * Simulates shoppers on the demo shop and records what a Segment tracker on
 * its pages would send: page views, e-commerce events and identifies.
 */
import { type Arrival, createAccount, createVisitor, pickArrival, type Visitor } from "./audience.js";
import { CATEGORIES, type Category, type Currency, PRODUCTS, type Product, productsIn } from "./catalog.js";
import { Random } from "./random.js";
import { MAX_SEASONALITY, seasonality } from "./seasonality.js";

/** One call as it appears in the `batch` array of Segment's `POST /v1/batch`. */
export interface SegmentItem {
  type: "track" | "page" | "identify";
  messageId: string;
  /** When the event happened, ISO 8601 UTC. */
  timestamp: string;
  anonymousId: string;
  userId?: string;
  /** The event name, for `track`. */
  event?: string;
  /** The page name, for `page`. */
  name?: string;
  /** For `track` and `page`. */
  properties?: Record<string, unknown>;
  /** For `identify`. */
  traits?: Record<string, unknown>;
  context: SegmentContext;
}

export interface SegmentContext {
  library: { name: string; version: string };
  userAgent: string;
  locale: string;
  timezone: string;
  ip: string;
  page: PageInfo;
  campaign?: Arrival["campaign"];
}

interface PageInfo {
  url: string;
  path: string;
  referrer: string;
  title: string;
  search: string;
}

export interface GenerateOptions {
  from: Date;
  to: Date;
  seed: number | string;
  /** Events per minute averaged over a week; the actual rate follows the daily and weekly curve. */
  baseRatePerMinute: number;
}

/**
 * The shop's activity in [from, to), sorted by timestamp. Pure: the same
 * options always give the same events. Sessions still running at `to` are cut
 * off there, as any time window cuts them.
 */
export function generateSessions(options: GenerateOptions): SegmentItem[] {
  return new ShopSimulator(options.seed, options.from).advance(options.to, options.baseRatePerMinute);
}

export const LIBRARY = { name: "sluice-demo", version: "0.1.0" };

/** Average events per session of `simulateSession`, measured; turns an event rate into a session rate. */
const EVENTS_PER_SESSION = 3.52;
/** Share of sessions from visitors who have been here before (they keep their anonymousId). */
const RETURNING_SHARE = 0.35;
/** Visitors remembered as possible returners; bounds memory when streaming for days. */
const MAX_REMEMBERED_VISITORS = 20_000;

interface TimedItem {
  at: number;
  item: SegmentItem;
}

/**
 * The shop over time. Each `advance` starts the sessions that arrive up to
 * `to` and returns the events due by then; later events of running sessions
 * wait for the next call, and visitors persist, so a long stream of calls
 * reads like one continuous shop.
 */
export class ShopSimulator {
  private readonly random: Random;
  private readonly visitors: Visitor[] = [];
  private pending: TimedItem[] = [];
  private cursor: number;

  /** The start time is part of the seed, so different windows never share message ids. */
  constructor(seed: number | string, start: Date) {
    this.random = new Random(`${seed}@${start.toISOString()}`);
    this.cursor = start.getTime();
  }

  /** The end of the time already simulated. */
  currentTime(): number {
    return this.cursor;
  }

  /** Events from the simulator's current time up to (excluding) `to`, with sessions arriving at `ratePerMinute`. */
  advance(to: Date, ratePerMinute: number): SegmentItem[] {
    const end = to.getTime();
    if (ratePerMinute > 0) this.startSessions(end, ratePerMinute);
    this.cursor = Math.max(this.cursor, end);
    this.pending.sort((a, b) => a.at - b.at);
    const dueCount = this.pending.findIndex((timed) => timed.at >= end);
    const due = this.pending.splice(0, dueCount === -1 ? this.pending.length : dueCount);
    return due.map((timed) => timed.item);
  }

  /** Session arrivals are a Poisson process following the seasonal curve, sampled by thinning. */
  private startSessions(end: number, ratePerMinute: number): void {
    const meanGapMs = (60_000 * EVENTS_PER_SESSION) / (ratePerMinute * MAX_SEASONALITY);
    for (let at = this.cursor + this.random.exponential(meanGapMs); at < end; ) {
      if (this.random.chance(seasonality(new Date(at)) / MAX_SEASONALITY)) {
        this.pending.push(...simulateSession(this.random, this.nextVisitor(), at));
      }
      at += this.random.exponential(meanGapMs);
    }
  }

  private nextVisitor(): Visitor {
    if (this.visitors.length > 0 && this.random.chance(RETURNING_SHARE))
      return this.random.pick(this.visitors);
    const visitor = createVisitor(this.random);
    if (this.visitors.length < MAX_REMEMBERED_VISITORS) this.visitors.push(visitor);
    else this.visitors[this.random.int(0, MAX_REMEMBERED_VISITORS - 1)] = visitor;
    return visitor;
  }
}

/** One visit, following the shop's funnel: about 40% view a product, 10% add to cart, 4% check out, 2.5% order. */
function simulateSession(random: Random, visitor: Visitor, start: number): TimedItem[] {
  const session = new SessionRecorder(random, visitor, start, pickArrival(random));
  const viewsProducts = random.chance(0.4);
  const addsToCart = viewsProducts && random.chance(0.25);
  const checksOut = addsToCart && random.chance(0.4);
  const orders = checksOut && random.chance(0.625);

  // Ads and search results often lead straight to a product page.
  let landedOn: Product | undefined;
  if (viewsProducts && random.chance(0.35)) {
    landedOn = pickProduct(random);
    session.viewProduct(landedOn);
  } else if (random.chance(0.6)) {
    session.viewHome();
  } else {
    session.viewCategory(pickCategory(random));
  }
  if (visitor.account && !visitor.userId) session.identify(visitor.account);

  if (!viewsProducts) {
    while (random.chance(0.45)) {
      if (random.chance(0.3)) session.viewHome();
      else session.viewCategory(pickCategory(random));
    }
    return session.items;
  }

  const productViews = Math.min(1 + Math.floor(random.exponential(1.2)), 8);
  const addAtView = random.int(0, productViews - 1);
  const cart: CartLine[] = [];
  let product = landedOn;
  for (let view = 0; view < productViews; view++) {
    if (view > 0 || !product) {
      const category = random.chance(0.5) ? pickCategory(random) : undefined;
      if (category) session.viewCategory(category);
      product = pickProduct(random, category);
      session.viewProduct(product);
    }
    if (addsToCart && (view === addAtView || (cart.length > 0 && random.chance(0.15)))) {
      session.addToCart(product, cart);
    }
  }

  if (!checksOut) {
    if (addsToCart && random.chance(0.5)) session.viewCart();
    return session.items;
  }
  session.viewCart();
  const checkoutId = `chk_${random.hex(12)}`;
  session.startCheckout(checkoutId, cart);
  // Guest checkout asks for an email: that identifies the visitor too.
  if (!visitor.userId) session.identify(visitor.account ?? createAccount(random, visitor.country));
  if (orders) session.completeOrder(checkoutId, cart);
  return session.items;
}

interface CartLine {
  product: Product;
  quantity: number;
}

const SHOP_URL = "https://shop.example.com";
const SHOP_NAME = "Sluice Outfitters";
/** Orders whose revenue (after discounts) reaches this ship free. */
const FREE_SHIPPING_FROM: Record<Currency, number> = { USD: 75, EUR: 70, GBP: 60 };
const SHIPPING_FEE: Record<Currency, number> = { USD: 6.99, EUR: 5.99, GBP: 4.99 };
/** How many of an item shoppers add at once, with weights. */
const QUANTITIES: ReadonlyArray<[quantity: number, weight: number]> = [
  [1, 80],
  [2, 15],
  [3, 5],
];
/** US prices exclude sales tax; UK and EU prices include VAT, so no tax is added there. */
const ADDED_TAX_RATE: Record<Currency, number> = { USD: 0.08, EUR: 0, GBP: 0 };

/** Records one session's calls with a moving clock, the way the tracker on each page would send them. */
class SessionRecorder {
  readonly items: TimedItem[] = [];
  private clock: number;
  private page: PageInfo | undefined;
  private cartId: string | undefined;

  constructor(
    private readonly random: Random,
    private readonly visitor: Visitor,
    start: number,
    private readonly arrival: Arrival,
  ) {
    this.clock = start;
  }

  viewHome(): void {
    this.viewPage("Home", "/", `${SHOP_NAME} – Shoes, Apparel & Outdoor Gear`);
  }

  viewCategory(category: Category): void {
    this.viewPage("Category", `/collections/${category.slug}`, `${category.name} – ${SHOP_NAME}`);
  }

  viewProduct(product: Product): void {
    this.viewPage("Product", `/products/${product.slug}`, `${product.name} – ${SHOP_NAME}`);
    this.track("Product Viewed", this.productProperties(product), this.random.int(200, 1500));
  }

  viewCart(): void {
    this.viewPage("Cart", "/cart", `Your Cart – ${SHOP_NAME}`);
  }

  addToCart(product: Product, cart: CartLine[]): void {
    const quantity = this.random.weighted(QUANTITIES, ([, weight]) => weight)[0];
    const line = cart.find((existing) => existing.product === product);
    if (line) line.quantity += quantity;
    else cart.push({ product, quantity });
    this.cartId ??= `cart_${this.random.hex(12)}`;
    this.track(
      "Product Added",
      { cart_id: this.cartId, ...this.productProperties(product), quantity },
      this.random.int(3_000, 40_000),
    );
  }

  startCheckout(checkoutId: string, cart: CartLine[]): void {
    this.track(
      "Checkout Started",
      {
        checkout_id: checkoutId,
        value: this.subtotal(cart),
        currency: this.visitor.currency,
        products: this.lines(cart),
      },
      this.random.int(2_000, 15_000),
    );
    this.viewPage("Checkout", "/checkout", `Checkout – ${SHOP_NAME}`);
  }

  completeOrder(checkoutId: string, cart: CartLine[]): void {
    const currency = this.visitor.currency;
    const subtotal = this.subtotal(cart);
    const coupon = this.random.chance(0.12) ? "WELCOME10" : undefined;
    const discount = coupon ? roundCents(subtotal * 0.1) : 0;
    const revenue = roundCents(subtotal - discount);
    const shipping = revenue >= FREE_SHIPPING_FROM[currency] ? 0 : SHIPPING_FEE[currency];
    const tax = roundCents(revenue * ADDED_TAX_RATE[currency]);
    this.wait(this.random.logNormal(60_000, 0.5));
    this.track("Order Completed", {
      checkout_id: checkoutId,
      order_id: `ord_${this.random.hex(12)}`,
      subtotal,
      discount,
      ...(coupon ? { coupon } : {}),
      revenue,
      shipping,
      tax,
      total: roundCents(revenue + shipping + tax),
      currency,
      products: this.lines(cart),
    });
    this.viewPage("Order Confirmation", "/checkout/thank-you", `Thank You for Your Order – ${SHOP_NAME}`);
  }

  identify(account: NonNullable<Visitor["account"]>): void {
    this.clock += this.random.int(5_000, 30_000);
    this.record({ type: "identify", userId: account.userId, traits: account.traits });
    this.visitor.userId = account.userId;
  }

  /** A page view after reading the previous page for a while; the previous page becomes the referrer. */
  private viewPage(name: string, path: string, title: string): void {
    if (this.page) this.wait(this.random.logNormal(18_000, 0.8));
    const landing = !this.page;
    const campaign = this.arrival.campaign;
    const search =
      landing && campaign
        ? `?utm_source=${campaign.source}&utm_medium=${campaign.medium}&utm_campaign=${campaign.name}`
        : "";
    const url = `${SHOP_URL}${path}${search}`;
    const referrer = this.page ? this.page.url : this.arrival.referrer;
    this.page = { url, path, referrer, title, search };
    this.record({ type: "page", name, properties: { ...this.page } });
  }

  private track(event: string, properties: Record<string, unknown>, delayMs = 0): void {
    this.clock += delayMs;
    this.record({ type: "track", event, properties });
  }

  private wait(ms: number): void {
    this.clock += Math.min(Math.max(ms, 3_000), 300_000);
  }

  private record(call: Omit<SegmentItem, "messageId" | "timestamp" | "anonymousId" | "context">): void {
    const { visitor, page } = this;
    if (!page) throw new Error("a session starts with a page view");
    const item: SegmentItem = {
      messageId: this.random.uuid(),
      timestamp: new Date(this.clock).toISOString(),
      anonymousId: visitor.anonymousId,
      ...(visitor.userId ? { userId: visitor.userId } : {}),
      ...call,
      context: {
        library: LIBRARY,
        userAgent: visitor.userAgent,
        locale: visitor.locale,
        timezone: visitor.timezone,
        ip: visitor.ip,
        page,
        ...(this.arrival.campaign ? { campaign: this.arrival.campaign } : {}),
      },
    };
    this.items.push({ at: this.clock, item });
  }

  private productProperties(product: Product): Record<string, unknown> {
    return { ...this.productFields(product), currency: this.visitor.currency };
  }

  /** A product as it appears in an order's `products` array, which states the currency once. */
  private productFields(product: Product): Record<string, unknown> {
    return {
      product_id: product.product_id,
      sku: product.sku,
      name: product.name,
      category: product.category.name,
      price: product.prices[this.visitor.currency],
    };
  }

  private lines(cart: CartLine[]): Record<string, unknown>[] {
    return cart.map(({ product, quantity }) => ({ ...this.productFields(product), quantity }));
  }

  private subtotal(cart: CartLine[]): number {
    return roundCents(
      cart.reduce((sum, line) => sum + line.product.prices[this.visitor.currency] * line.quantity, 0),
    );
  }
}

function pickCategory(random: Random): Category {
  return random.weighted(CATEGORIES, (category) => category.popularity);
}

function pickProduct(random: Random, category?: Category): Product {
  return random.weighted(category ? productsIn(category) : PRODUCTS, (product) => product.popularity);
}

function roundCents(amount: number): number {
  return Math.round(amount * 100) / 100;
}
