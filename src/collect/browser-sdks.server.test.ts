/**
 * The browser SDKs sites already run, unchanged, in headless Chromium against a real server:
 * Snowplow's JavaScript tracker (POST and GET) and posthog-js, each pointed at Sluice as a site
 * points it at its collector. Skipped, saying so, without /usr/bin/chromium or without the SDKs
 * (the dev dependencies @snowplow/browser-tracker and posthog-js).
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { createServer, type Server as HttpServer } from "node:http";
import { createRequire } from "node:module";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { type Browser, chromium, type Page } from "playwright-core";
import { eventually, query, startTestServer, WRITE_KEY } from "../server/test-support.js";

const CHROMIUM = "/usr/bin/chromium";

/** The SDKs' browser bundles, or why they cannot be had. */
function bundles(): { snowplow: Buffer; posthog: Buffer } | string {
  if (!existsSync(CHROMIUM)) return `needs ${CHROMIUM}: apt-get install chromium`;
  const require = createRequire(import.meta.url);
  try {
    return {
      snowplow: readFileSync(require.resolve("@snowplow/browser-tracker/dist/index.umd.min.js")),
      posthog: readFileSync(require.resolve("posthog-js/dist/array.full.js")),
    };
  } catch {
    return "needs the dev dependencies @snowplow/browser-tracker and posthog-js";
  }
}

const sdks = bundles();

type Sluice = Awaited<ReturnType<typeof startTestServer>>;

/** The site: its pages load an SDK from the site itself, as sites bundle or self-host them. */
function startSite(sluiceUrl: string, scripts: { snowplow: Buffer; posthog: Buffer }): Promise<HttpServer> {
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://site");
    const script =
      url.pathname === "/sp.js" ? scripts.snowplow : url.pathname === "/ph.js" ? scripts.posthog : null;
    if (script !== null) {
      response.writeHead(200, { "content-type": "text/javascript" }).end(script);
      return;
    }
    const method = url.searchParams.get("method") ?? "post";
    const setup = url.pathname.startsWith("/snowplow")
      ? `<script src="/sp.js"></script><script>
  const sp = window.snowplowBrowserTracking;
  sp.newTracker("site", "${sluiceUrl}", { appId: "${WRITE_KEY}", eventMethod: "${method}", contexts: { webPage: true } });
  sp.enableActivityTracking({ minimumVisitLength: 1, heartbeatDelay: 1 });
  sp.setUserId("sp-user-${method}");
  sp.trackPageView();
  sp.trackStructEvent({ category: "cart", action: "add", label: "sku-42", value: 19.5 });
  sp.trackSelfDescribingEvent({ event: { schema: "iglu:com.acme/link_click/jsonschema/1-0-0", data: { target: "/pricing" } } });
</script>`
      : `<script src="/ph.js"></script><script>
  // Headless Chromium's user agent names it a bot, which posthog-js drops unless told otherwise.
  posthog.init("${WRITE_KEY}", { api_host: "${sluiceUrl}", opt_out_useragent_filter: true });
</script>`;
    response
      .writeHead(200, { "content-type": "text/html; charset=utf-8" })
      .end(`<!doctype html><html><head><title>SDK shop</title>${setup}</head><body>Shop</body></html>`);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

describe("browser SDKs in Chromium", { skip: typeof sdks === "string" ? sdks : false }, () => {
  let sluice: Sluice;
  let site: HttpServer;
  let siteUrl: string;
  let browser: Browser;

  before(async () => {
    sluice = await startTestServer();
    site = await startSite(sluice.url, sdks as { snowplow: Buffer; posthog: Buffer });
    siteUrl = `http://127.0.0.1:${(site.address() as AddressInfo).port}`;
    browser = await chromium.launch({ executablePath: CHROMIUM });
  });
  after(async () => {
    await browser?.close();
    site?.close();
    await sluice?.close();
  });

  async function rows(sql: string): Promise<unknown[][]> {
    return (await query(sluice.url, sql)).rows;
  }

  async function visit(path: string, act: (page: Page) => Promise<void>): Promise<void> {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${siteUrl}${path}`);
    await act(page);
    // Leaving the page flushes what the SDK still holds.
    await page.goto("about:blank");
    await context.close();
  }

  for (const method of ["post", "get"]) {
    test(`Snowplow's JavaScript tracker (${method.toUpperCase()}): page view, structured and self-describing events, page pings`, async () => {
      await visit(`/snowplow?method=${method}`, async (page) => {
        // Activity for the page pings.
        for (let step = 0; step < 10; step++) {
          await page.mouse.move(10 + step * 7, 10 + step * 3);
          await page.waitForTimeout(250);
        }
      });
      const user = `sp-user-${method}`;
      await eventually(async () => {
        const kinds = await rows(
          `SELECT DISTINCT coalesce(event, event_type) FROM events WHERE user_id = '${user}' ORDER BY 1`,
        );
        return kinds.map((row) => row[0]).join() === "cart/add,link_click,page,page_ping";
      });
      const result = await rows(
        `SELECT event_type, event, source, page_path, properties->>'value', properties->>'target', browser,
                anonymous_id IS NOT NULL, session_id IS NOT NULL, context->'page'->>'title',
                context->'snowplow'->'contexts'->0->>'schema'
         FROM events WHERE user_id = '${user}' AND coalesce(event, '') <> 'page_ping' ORDER BY event_type, event`,
      );
      const webPage = "iglu:com.snowplowanalytics.snowplow/web_page/jsonschema/1-0-0";
      assert.deepEqual(result, [
        ["page", null, "default", "/snowplow", null, null, "Chrome", true, true, "SDK shop", webPage],
        ["track", "cart/add", "default", "/snowplow", "19.5", null, "Chrome", true, true, null, webPage],
        [
          "track",
          "link_click",
          "default",
          "/snowplow",
          null,
          "/pricing",
          "Chrome",
          true,
          true,
          null,
          webPage,
        ],
      ]);
      // The tracker's own visitor and session ids: one of each for the whole visit.
      const ids = await rows(
        `SELECT count(DISTINCT anonymous_id), count(DISTINCT session_id) FROM events WHERE user_id = '${user}'`,
      );
      assert.deepEqual(ids, [[1, 1]]);
    });
  }

  test("posthog-js: page view, capture and identify", async () => {
    await visit("/posthog", async (page) => {
      await page.waitForFunction(
        () => (window as unknown as { posthog?: { __loaded?: boolean } }).posthog?.__loaded,
      );
      await page.evaluate(() => {
        const { posthog } = window as unknown as {
          posthog: {
            capture(event: string, properties?: object): void;
            identify(id: string, traits?: object): void;
          };
        };
        posthog.capture("Plan Selected", { plan: "team" });
        posthog.identify("ph-browser-user", { plan: "team" });
        posthog.capture("Checkout Started");
      });
      // With the page still open, so posthog-js sends its queue on its own timer: the beacon it
      // sends on leaving a page could be dropped as the test closed the browser context at once.
      // Before identify the distinct id is the device's: the anonymous id of every event of the visit.
      await eventually(async () => {
        const found = await rows(
          `SELECT count(*) FROM events
           WHERE anonymous_id IN (SELECT anonymous_id FROM events WHERE event = 'Checkout Started')
             AND coalesce(event, '') NOT LIKE '$%'`,
        );
        // The page view, both captures and the identify; posthog-js's own $ events come and go.
        return Number(found[0]?.[0]) === 4;
      });
    });
    const result = await rows(
      `SELECT event_type, event, user_id, page_path, properties->>'plan', traits->>'plan', browser,
              context->'library'->>'name', session_id IS NOT NULL
       FROM events
       WHERE anonymous_id IN (SELECT anonymous_id FROM events WHERE event = 'Checkout Started')
         AND coalesce(event, '') NOT LIKE '$%'
       ORDER BY event_type, event`,
    );
    assert.deepEqual(result, [
      ["identify", null, "ph-browser-user", "/posthog", null, "team", "Chrome", "web", true],
      ["page", null, null, "/posthog", null, null, "Chrome", "web", true],
      ["track", "Checkout Started", "ph-browser-user", "/posthog", null, null, "Chrome", "web", true],
      ["track", "Plan Selected", null, "/posthog", "team", null, "Chrome", "web", true],
    ]);
  });
});
