/**
 * The demo shop: a realistic online store whose visitors stream Segment events
 * into Sluice over HTTP, so `sluice demo` shows live data within a minute.
 */
export { type GenerateOptions, generateSessions, type SegmentContext, type SegmentItem } from "./generate.js";
export { seasonality } from "./seasonality.js";
export { DEFAULT_DEMO_RATE_PER_MINUTE, type DemoShop, type DemoShopOptions, startDemoShop } from "./shop.js";
