/**
 * The demo's "Shop overview" dashboard: created (with its charts) on demo start when missing,
 * through the same store the HTTP API writes, so it is an ordinary dashboard users can change.
 */
import type { ChartSpec } from "./charts/spec.js";
import type { Dashboard, SavedStore } from "./saved.js";

export const SHOP_OVERVIEW = "Shop overview";

const STEPS = ["Product Viewed", "Product Added", "Checkout Started", "Order Completed"];

/** The dashboard's charts and where they sit (12 columns). */
export const SHOP_OVERVIEW_PANELS: {
  name: string;
  spec: ChartSpec;
  x: number;
  y: number;
  w: number;
  h: number;
}[] = [
  {
    name: "Orders, last 7 days",
    spec: {
      type: "number",
      query: {
        sql: `SELECT count(*) FILTER (WHERE ts >= now() - INTERVAL 7 DAY) AS orders,
  count(*) FILTER (WHERE ts < now() - INTERVAL 7 DAY) AS previous_7_days
FROM events WHERE event = 'Order Completed' AND ts >= now() - INTERVAL 14 DAY`,
      },
    },
    x: 0,
    y: 0,
    w: 3,
    h: 3,
  },
  {
    name: "Visitors, last 7 days",
    spec: {
      type: "number",
      query: {
        sql: `SELECT count(DISTINCT coalesce(user_id, anonymous_id)) FILTER (WHERE ts >= now() - INTERVAL 7 DAY) AS visitors,
  count(DISTINCT coalesce(user_id, anonymous_id)) FILTER (WHERE ts < now() - INTERVAL 7 DAY) AS previous_7_days
FROM events WHERE ts >= now() - INTERVAL 14 DAY`,
      },
    },
    x: 3,
    y: 0,
    w: 3,
    h: 3,
  },
  {
    name: "Visitors per day",
    spec: {
      type: "area",
      query: { explore: { measure: "users", granularity: "day", range: { last: 30 } } },
    },
    x: 6,
    y: 0,
    w: 6,
    h: 3,
  },
  {
    name: "Revenue per day by currency",
    spec: {
      type: "bar",
      query: {
        sql: `SELECT date_trunc('day', ts) AS day, properties->>'currency' AS currency,
  round(sum(TRY_CAST(properties->>'revenue' AS DOUBLE)), 2) AS revenue
FROM events WHERE event = 'Order Completed' AND ts >= now() - INTERVAL 30 DAY
GROUP BY ALL ORDER BY ALL`,
      },
      encoding: { x: "day", series: "currency", y: ["revenue"] },
      options: { stacked: true },
    },
    x: 0,
    y: 3,
    w: 8,
    h: 4,
  },
  {
    name: "Visitors by device",
    spec: {
      type: "pie",
      query: {
        sql: `SELECT coalesce(device_type, 'unknown') AS device, count(DISTINCT coalesce(user_id, anonymous_id)) AS visitors
FROM events WHERE ts >= now() - INTERVAL 30 DAY GROUP BY 1 ORDER BY 2 DESC`,
      },
      options: { donut: true },
    },
    x: 8,
    y: 3,
    w: 4,
    h: 4,
  },
  {
    name: "Checkout funnel",
    spec: {
      type: "funnel",
      query: { funnel: { steps: STEPS, windowHours: 24, range: { last: 30 } } },
      encoding: { x: "step_name", y: ["users"] },
    },
    x: 0,
    y: 7,
    w: 6,
    h: 4,
  },
  {
    name: "Most viewed products",
    spec: {
      type: "table",
      query: {
        sql: `SELECT properties->>'name' AS product, properties->>'category' AS category, count(*) AS views
FROM events WHERE event = 'Product Viewed' AND ts >= now() - INTERVAL 30 DAY
GROUP BY ALL ORDER BY views DESC LIMIT 10`,
      },
    },
    x: 6,
    y: 7,
    w: 6,
    h: 4,
  },
];

/** Creates the Shop overview dashboard and its charts unless a dashboard of that name exists. */
export function ensureShopOverview(saved: SavedStore): Dashboard {
  const existing = saved.dashboardByName(SHOP_OVERVIEW);
  if (existing) return existing;
  const panels = SHOP_OVERVIEW_PANELS.map(({ name, spec, x, y, w, h }) => ({
    chartId: saved.createChart({ name, spec }, "demo").id,
    x,
    y,
    w,
    h,
  }));
  return saved.createDashboard({ ...SHOP_OVERVIEW_FIELDS, panels }, "demo");
}

/** The dashboard's fields but its panels, as `POST /v1/dashboards` takes them. */
export const SHOP_OVERVIEW_FIELDS = {
  name: SHOP_OVERVIEW,
  description: "The demo shop at a glance: orders, visitors, revenue, the checkout funnel and top products.",
  filters: [
    { name: "device_type", label: "Device" },
    { name: "currency", label: "Currency" },
    { name: "country", label: "Country" },
  ],
  refreshSeconds: 60,
};
