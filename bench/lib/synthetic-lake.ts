/**
 * A realistic `events` lake generated in DuckDB SQL, written the way a live
 * system writes it: a few load chunks through the lake writer, each committed
 * to the catalog, then compacted to one large file per day (what background
 * compaction converges to).
 *
 * The shop: `users` people (40% identified), skewed so a few come back often;
 * sessions spread over `days` days with daily and weekly seasonality; each
 * session browses (pages, product views) and some go down the funnel
 * Product Added → Checkout Started → Order Completed with revenue and currency.
 * Every draw is a hash of the session or event number, so the lake has the
 * same content each time (only event ids, random UUIDs, differ).
 */
import { join } from "node:path";
import type { DuckDBConnection, DuckDBInstance } from "@duckdb/node-api";
import type { Catalog, DataFile, TableDef } from "../../src/catalog/index.js";
import { Compactor, writeParquet } from "../../src/lake/index.js";
import { LAKE_TABLES } from "../../src/server/runtime.js";
import { CATEGORIES } from "./segment-events.js";

/** The `events` lake table exactly as the server defines it. */
const EVENTS_TABLE: TableDef = (() => {
  const table = LAKE_TABLES.find((candidate) => candidate.name === "events");
  if (!table) throw new Error("the server defines no `events` lake table");
  return table;
})();

export interface ShopShape {
  events: number;
  days: number;
  users: number;
  /** First day (UTC) of the period. */
  firstDay: string;
}

/** Builds the lake under `lakeRoot` in `chunks` loads, then compacts each day into one file. */
export async function buildShopLake(options: {
  engine: DuckDBInstance;
  catalog: Catalog;
  lakeRoot: string;
  shape: ShopShape;
  chunks: number;
  log: (message: string) => void;
}): Promise<DataFile[]> {
  const { engine, catalog, lakeRoot, shape } = options;
  await catalog.ensureTable(EVENTS_TABLE);
  for (let chunk = 0; chunk < options.chunks; chunk++) {
    const started = Date.now();
    const connection = await engine.connect();
    try {
      await defineDraws(connection);
      const files = await writeParquet(connection, {
        lakeRoot,
        table: EVENTS_TABLE,
        prefix: `part-${String(chunk).padStart(4, "0")}`,
        selectSql: shopEventsSql(shape, chunk, options.chunks),
      });
      await catalog.commit({ table: "events", operation: "load", add: files });
      const rows = files.reduce((sum, file) => sum + file.rows, 0);
      options.log(
        `chunk ${chunk + 1}/${options.chunks}: ${rows} events in ${files.length} files, ${seconds(started)}`,
      );
    } finally {
      connection.closeSync();
    }
  }
  const started = Date.now();
  const compactor = new Compactor({
    catalog,
    engine,
    lakeRoot,
    tables: [EVENTS_TABLE],
    // Large enough that each day becomes one file; replaced files go at once (no reader yet).
    targetBytes: 4 * 2 ** 30,
    minFiles: 2,
    deleteGraceMs: 0,
  });
  const result = await compactor.runOnce({ force: true });
  options.log(`compacted ${result.merged} files into ${result.written}, ${seconds(started)}`);
  return catalog.liveFiles("events");
}

const seconds = (since: number) => `${((Date.now() - since) / 1000).toFixed(1)} s`;

/** `draw(x, salt)`: a uniform number in [0, 1) from a hash, reproducible unlike random(). */
async function defineDraws(connection: DuckDBConnection): Promise<void> {
  await connection.run("CREATE OR REPLACE TEMP MACRO draw(x, salt) AS (hash(x, salt) % 1000003) / 1000003.0");
}

/** Weighted by repetition: a US-heavy shop selling in Europe too. */
const COUNTRIES = ["US", "US", "US", "US", "US", "GB", "GB", "DE", "DE", "FR", "CA", "NL", "ES", "IT", "SE"];
const EURO_COUNTRIES = ["DE", "FR", "NL", "ES", "IT"];
const REFERRERS = ["https://www.google.com/", "https://www.bing.com/", "https://www.instagram.com/", "", ""];
const BLOG_POSTS = ["how-to-layer-for-winter", "best-trails-2026", "tent-buying-guide", "caring-for-down"];

const quoted = (values: readonly string[]) => values.map((value) => `'${value}'`).join(", ");
const list = (values: readonly string[]) => `[${quoted(values)}]`;
/** One of `values`, picked by a uniform draw `u` in [0, 1). */
const pick = (values: readonly string[], u: string) =>
  `${list(values)}[1 + floor((${u}) * ${values.length})::INT]`;

/** SQL for the events of chunk `chunk` of `chunks` (sessions whose number ≡ chunk mod chunks). */
export function shopEventsSql(shape: ShopShape, chunk: number, chunks: number): string {
  const { events, days, users } = shape;
  // Sessions average ~4 events; generate enough, then keep exactly `events` events.
  const sessionCount = Math.ceil(events / 2.5) + 100;
  return `
WITH session_draws AS (
  SELECT s,
    floor(${users} * pow(draw(s, 'user'), 2))::BIGINT AS user_index,
    draw(s, 'products') < 0.45 AS views_products,
    draw(s, 'add') < 0.25 AS adds_if_viewing,
    draw(s, 'checkout') < 0.45 AS checks_out_if_adding,
    draw(s, 'order') < 0.6 AS orders_if_checking_out,
    1 + least(floor(-ln(1 - draw(s, 'length')) * 3), 20)::INT AS browse_length
  FROM range(${sessionCount}) t(s)
),
funnel AS (
  SELECT *,
    views_products AND adds_if_viewing AS adds,
    views_products AND adds_if_viewing AND checks_out_if_adding AS checks_out,
    views_products AND adds_if_viewing AND checks_out_if_adding AND orders_if_checking_out AS orders,
    CASE WHEN views_products THEN greatest(browse_length, 2) ELSE browse_length END AS browse
  FROM session_draws
),
sized AS (
  SELECT *, browse + adds::INT + checks_out::INT + orders::INT AS event_count FROM funnel
),
numbered AS (
  SELECT *, sum(event_count) OVER (ORDER BY s) - event_count AS first_event FROM sized
),
days AS (
  -- Weekends get 70% of a weekday's traffic.
  SELECT day,
    (sum(weight) OVER (ORDER BY day) - weight) / sum(weight) OVER () AS share_from,
    sum(weight) OVER (ORDER BY day) / sum(weight) OVER () AS share_to
  FROM (
    SELECT DATE '${shape.firstDay}' + d::INT AS day,
      CASE WHEN isodow(DATE '${shape.firstDay}' + d::INT) >= 6 THEN 0.7 ELSE 1.0 END AS weight
    FROM range(${days}) t(d)
  )
),
sessions AS (
  SELECT n.*, 'sess_' || lpad(to_hex(n.s), 8, '0') AS session_id,
    -- Daytime-heavy: 80% of sessions start between 08:00 and 23:00 UTC.
    days.day::TIMESTAMP + to_seconds(
      (CASE WHEN draw(n.s, 'daytime') < 0.8 THEN 8 + floor(draw(n.s, 'hour') * 15) ELSE floor(draw(n.s, 'hour') * 24) END) * 3600
      + floor(draw(n.s, 'second') * 3600)) AS session_start,
    floor(500 * pow(draw(n.s, 'cart product'), 2))::INT AS cart_product,
    1 + (hash(n.s, 'quantity') % 3)::INT AS quantity,
    ${pick(REFERRERS, "draw(n.s, 'referrer')")} AS external_referrer
  FROM numbered n JOIN days ON n.first_event / ${events} >= days.share_from AND n.first_event / ${events} < days.share_to
  WHERE n.first_event < ${events} AND n.s % ${chunks} = ${chunk}
),
users AS (
  SELECT user_index,
    CASE WHEN user_index % 10 < 4 THEN 'usr_' || lpad(user_index::VARCHAR, 6, '0') END AS user_id,
    'anon_' || substr(md5(user_index::VARCHAR), 1, 16) AS anonymous_id,
    ${pick(COUNTRIES, "draw(user_index, 'country')")} AS country,
    CASE WHEN draw(user_index, 'device') < 0.55 THEN 'mobile' WHEN draw(user_index, 'device') < 0.93 THEN 'desktop' ELSE 'tablet' END AS device_type,
    draw(user_index, 'platform') AS platform_draw
  FROM (SELECT DISTINCT user_index FROM sessions)
),
people AS (
  SELECT *,
    CASE country WHEN 'GB' THEN 'GBP' WHEN 'CA' THEN 'CAD' ELSE CASE WHEN country IN (${quoted(EURO_COUNTRIES)}) THEN 'EUR' ELSE 'USD' END END AS currency,
    CASE device_type
      WHEN 'mobile' THEN CASE WHEN platform_draw < 0.55 THEN 'iOS' ELSE 'Android' END
      WHEN 'tablet' THEN CASE WHEN platform_draw < 0.7 THEN 'iPadOS' ELSE 'Android' END
      ELSE CASE WHEN platform_draw < 0.6 THEN 'Windows' WHEN platform_draw < 0.93 THEN 'macOS' ELSE 'Linux' END
    END AS os
  FROM users
),
visitors AS (
  SELECT *,
    CASE WHEN os IN ('iOS', 'iPadOS', 'macOS') AND platform_draw < 0.5 THEN 'Safari'
      WHEN platform_draw > 0.9 THEN 'Firefox' WHEN os = 'Windows' AND platform_draw > 0.75 THEN 'Edge' ELSE 'Chrome' END AS browser
  FROM people
),
session_events AS (
  SELECT s.*, unnest(range(s.event_count)) AS step FROM sessions s
),
shaped AS (
  SELECT e.*, v.user_id, v.anonymous_id, v.country, v.device_type, v.os, v.browser, v.currency,
    e.first_event + e.step AS event_number,
    CASE
      WHEN e.step = e.browse THEN 'Product Added'
      WHEN e.step = e.browse + 1 THEN 'Checkout Started'
      WHEN e.step = e.browse + 2 THEN 'Order Completed'
      WHEN e.views_products AND e.step % 2 = 1 THEN 'Product Viewed'
      ELSE 'page'
    END AS kind,
    CASE WHEN e.step = e.browse THEN e.cart_product
      ELSE floor(500 * pow(draw(e.first_event + e.step, 'product'), 2))::INT END AS product,
    draw(e.first_event + e.step, 'page') AS page_draw
  FROM session_events e JOIN visitors v USING (user_index)
  WHERE e.first_event + e.step < ${events}
),
described AS (
  SELECT *,
    ${list(CATEGORIES)}[1 + product % ${CATEGORIES.length}] AS category,
    round(5 + (hash(product, 'price') % 19500) / 100.0, 2) AS price,
    CASE kind
      WHEN 'page' THEN CASE WHEN page_draw < 0.35 THEN 'Home' WHEN page_draw < 0.8 THEN 'Category' WHEN page_draw < 0.9 THEN 'Search' ELSE 'Blog' END
      ELSE kind
    END AS event_name
  FROM shaped
),
located AS (
  SELECT *,
    CASE
      WHEN event_name = 'Home' THEN '/'
      WHEN event_name = 'Category' THEN '/collections/' || lower(replace(category, ' ', '-'))
      WHEN event_name = 'Search' THEN '/search'
      WHEN event_name = 'Blog' THEN '/blog/' || ${pick(BLOG_POSTS, "page_draw * 10 % 1")}
      WHEN event_name = 'Checkout Started' THEN '/checkout'
      WHEN event_name = 'Order Completed' THEN '/checkout/thank-you'
      ELSE '/products/prod-' || lpad(product::VARCHAR, 4, '0')
    END AS page_path,
    round(price * quantity, 2) AS revenue,
    -- Events of a session follow each other 45-85 s apart, in order.
    session_start + to_seconds(step * 45 + (hash(event_number, 'gap') % 40)::BIGINT) AS event_time
  FROM described
)
SELECT
  gen_random_uuid()::VARCHAR AS event_id,
  CASE WHEN kind = 'page' THEN 'page' ELSE 'track' END AS event_type,
  event_name AS event,
  user_id,
  anonymous_id,
  session_id,
  event_time::TIMESTAMPTZ AS ts,
  (event_time + to_milliseconds(50 + (hash(event_number, 'delay') % 2000)::BIGINT))::TIMESTAMPTZ AS received_at,
  'default' AS source,
  'https://shop.example.com' || page_path AS page_url,
  page_path,
  CASE WHEN step = 0 THEN nullif(external_referrer, '') ELSE 'https://shop.example.com/' END AS referrer,
  'Mozilla/5.0 (' || os || ') AppleWebKit/537.36 (KHTML, like Gecko) ' || browser || '/126.0 Safari/537.36' AS user_agent,
  browser,
  os,
  device_type,
  '198.51.' || (hash(anonymous_id) % 256)::VARCHAR || '.0' AS ip,
  country,
  CASE kind
    WHEN 'page' THEN json_object('path', page_path, 'url', 'https://shop.example.com' || page_path, 'title', event_name || ' – Sluice Outfitters')
    WHEN 'Product Viewed' THEN json_object('product_id', 'prod-' || lpad(product::VARCHAR, 4, '0'), 'category', category, 'price', price, 'currency', currency)
    WHEN 'Product Added' THEN json_object('product_id', 'prod-' || lpad(product::VARCHAR, 4, '0'), 'category', category, 'price', price, 'quantity', quantity, 'currency', currency)
    WHEN 'Checkout Started' THEN json_object('checkout_id', 'chk_' || session_id, 'value', revenue, 'currency', currency)
    ELSE json_object('order_id', 'ord_' || session_id, 'revenue', revenue, 'currency', currency, 'products', quantity)
  END AS properties,
  json_object('library', json_object('name', 'analytics.js', 'version', '5.2.0'), 'locale', CASE country WHEN 'DE' THEN 'de-DE' WHEN 'FR' THEN 'fr-FR' ELSE 'en-US' END) AS context,
  NULL::JSON AS traits
FROM located`;
}

/** Where the lake's Parquet files are: the glob a plain DuckDB user would read. */
export const eventsGlob = (lakeRoot: string) => join(lakeRoot, "events", "**", "*.parquet");
