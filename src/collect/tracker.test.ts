/**
 * The browser tracker (/sluice.js) in headless Chromium (Debian's `chromium`, driven by
 * playwright-core) on a test page served by this test from another origin than Sluice's, as on a
 * real site. Skipped, saying so, where /usr/bin/chromium is not installed; CI installs it.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { createServer, get, type Server as HttpServer, type IncomingHttpHeaders } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import { gunzipSync } from "node:zlib";
import { type Browser, chromium, type Page } from "playwright-core";
import { piiToken } from "../privacy/index.js";
import { eventually, query, startTestServer, WRITE_KEY } from "../server/test-support.js";

const CHROMIUM = "/usr/bin/chromium";
const noChromium = existsSync(CHROMIUM) ? false : `needs ${CHROMIUM}: apt-get install chromium`;

type Sluice = Awaited<ReturnType<typeof startTestServer>>;

/** The install snippet of the README's "Browser: sluice.js" section, as users copy it. */
const README_SNIPPET = (() => {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const section = readme.slice(readme.indexOf("### Browser: sluice.js"));
  const match = /```html\n([\s\S]*?)```/.exec(section);
  if (match === null) throw new Error("README.md has no html snippet under Browser: sluice.js");
  return match[1] as string;
})();

const PII_SECRET = "tracker-test-secret";

/** The site under test: pages that install the snippet, and a flaky proxy in front of Sluice. */
function startSite(
  sluiceUrl: string,
): Promise<{ url: string; server: HttpServer; flakyAttempts: () => number }> {
  let flakyAttempts = 0;
  const server = createServer((request, response) => {
    const url = new URL(request.url ?? "/", "http://site");
    if (url.pathname === "/flaky/v1/batch") {
      // The first two batches fail as an overloaded collector would; later ones reach Sluice.
      flakyAttempts++;
      const chunks: Buffer[] = [];
      request.on("data", (chunk: Buffer) => chunks.push(chunk));
      request.on("end", async () => {
        if (flakyAttempts <= 2) {
          response.writeHead(503).end();
          return;
        }
        const forwarded = await fetch(`${sluiceUrl}/v1/batch`, {
          method: "POST",
          headers: { "content-type": "text/plain" },
          body: Buffer.concat(chunks).toString("utf8"),
        });
        response
          .writeHead(forwarded.status, { "content-type": "application/json" })
          .end(await forwarded.text());
      });
      return;
    }
    if (url.pathname === "/gone") {
      response.writeHead(200, { "content-type": "text/html" }).end("<title>Gone</title>");
      return;
    }
    // As the README says to install it: its snippet as pasted, or the one script tag; no options.
    const install = {
      "/readme-snippet": README_SNIPPET.replaceAll("https://sluice.example.com", sluiceUrl).replace(
        "YOUR_WRITE_KEY",
        WRITE_KEY,
      ),
      "/script-tag": `<script async src="${sluiceUrl}/sluice.js" data-write-key="${WRITE_KEY}"></script>`,
    }[url.pathname];
    if (install !== undefined) {
      response
        .writeHead(200, { "content-type": "text/html; charset=utf-8" })
        .end(`<!doctype html><html><head><title>Installed</title>${install}</head><body></body></html>`);
      return;
    }
    const options = url.searchParams.get("options") ?? "{}";
    const html = `<!doctype html>
<html><head><title>Test shop</title>
<script>
  !function(w,d){var s=w.sluice=w.sluice||{q:[]};["init","page","track","identify","reset","flush"].forEach(function(m){s[m]=s[m]||function(){s.q.push([m,[].slice.call(arguments)])}});var e=d.createElement("script");e.async=1;e.src="${sluiceUrl}/sluice.js";d.head.appendChild(e)}(window,document);
  sluice.init("${WRITE_KEY}", Object.assign({ host: "${sluiceUrl}" }, ${options}));
</script></head>
<body>
  <button id="signup" data-sluice-event="Signup Clicked" data-sluice-plan="pro"><span>Sign up</span></button>
  <button id="route" onclick="history.pushState({}, '', '/app/settings?tab=billing')">Settings</button>
  <a id="hash-route" href="#/orders/42">Order 42</a>
  <a id="anchor" href="#plain">Details</a>
  <p id="plain">Nothing to see</p>
</body></html>`;
    response.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(html);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      resolve({ url: `http://127.0.0.1:${port}`, server, flakyAttempts: () => flakyAttempts });
    });
  });
}

describe("the browser tracker in Chromium", { skip: noChromium }, () => {
  let sluice: Sluice;
  let site: Awaited<ReturnType<typeof startSite>>;
  let browser: Browser;

  before(async () => {
    sluice = await startTestServer({ pii_secret: PII_SECRET });
    site = await startSite(sluice.url);
    browser = await chromium.launch({ executablePath: CHROMIUM });
  });
  after(async () => {
    await browser?.close();
    site?.server.close();
    await sluice?.close();
  });

  async function open(path: string, options: Record<string, unknown> = {}): Promise<Page> {
    const page = await (await browser.newContext()).newPage();
    const separator = path.includes("?") ? "&" : "?";
    await page.goto(`${site.url}${path}${separator}options=${encodeURIComponent(JSON.stringify(options))}`);
    await page.waitForFunction(() => (window as unknown as { sluice?: { loaded?: boolean } }).sluice?.loaded);
    return page;
  }

  async function rows(sql: string): Promise<unknown[][]> {
    return (await query(sluice.url, sql)).rows;
  }

  async function anonymousId(page: Page): Promise<string> {
    const cookies = await page.context().cookies();
    const cookie = cookies.find((candidate) => candidate.name === "sluice_aid");
    assert.ok(cookie, "the anonymous id is kept in a first-party cookie");
    return cookie.value;
  }

  test("/sluice.js is served gzipped when accepted, under 10 KB, and cacheable", async () => {
    const text = await (
      await fetch(`${sluice.url}/sluice.js`, { headers: { "accept-encoding": "identity" } })
    ).text();
    assert.match(text, /sendBeacon/);
    const { headers, body } = await new Promise<{ headers: IncomingHttpHeaders; body: Buffer }>(
      (resolve, reject) => {
        get(`${sluice.url}/sluice.js`, { headers: { "accept-encoding": "gzip" } }, (response) => {
          const chunks: Buffer[] = [];
          response.on("data", (chunk: Buffer) => chunks.push(chunk));
          response.on("end", () => resolve({ headers: response.headers, body: Buffer.concat(chunks) }));
        }).on("error", reject);
      },
    );
    assert.match(headers["content-type"] ?? "", /javascript/);
    assert.equal(headers["content-encoding"], "gzip");
    assert.match(headers["cache-control"] ?? "", /max-age/);
    assert.ok(body.length < 10 * 1024, `sluice.js is ${body.length} bytes gzipped`);
    assert.equal(gunzipSync(body).toString("utf8"), text);
  });

  test("sends a page view on load, with the anonymous id cookie and the parsed user agent", async () => {
    const page = await open("/shop?visit=load");
    const id = await anonymousId(page);
    await eventually(
      async () => (await rows(`SELECT count(*) FROM events WHERE anonymous_id = '${id}'`))[0]?.[0] === 1,
    );
    const [row] = await rows(
      `SELECT event_type, page_path, page_url LIKE '%visit=load%', properties->>'title', source, browser, os, device_type,
              context->'library'->>'name'
       FROM events WHERE anonymous_id = '${id}'`,
    );
    assert.deepEqual(row, [
      "page",
      "/shop",
      true,
      "Test shop",
      "default",
      "Chrome",
      "Linux",
      "desktop",
      "sluice.js",
    ]);
    await page.context().close();
  });

  for (const install of ["readme-snippet", "script-tag"]) {
    test(`installed as the README says (${install}), without options, it sends to where sluice.js came from`, async () => {
      const page = await open(`/${install}`);
      const id = await anonymousId(page);
      await eventually(
        async () =>
          (
            await rows(
              `SELECT event_type, page_path, properties->>'title' FROM events WHERE anonymous_id = '${id}'`,
            )
          )[0]?.join() === `page,/${install},Installed`,
      );
      await page.context().close();
    });
  }

  test("single-page-app route changes are page views too", async () => {
    const page = await open("/spa");
    const id = await anonymousId(page);
    await page.click("#route");
    await eventually(
      async () =>
        (
          await rows(
            `SELECT page_path FROM events WHERE anonymous_id = '${id}' AND event_type = 'page' ORDER BY ts`,
          )
        )
          .map((row) => row[0])
          .join() === "/spa,/app/settings",
    );
    await page.context().close();
  });

  test("a hash router's route changes are page views; in-page anchors are not", async () => {
    const page = await open("/hash-app");
    const id = await anonymousId(page);
    await page.click("#anchor");
    await page.click("#hash-route");
    await page.goBack();
    await eventually(async () => {
      const views = await rows(
        `SELECT regexp_extract(page_url, '#.*') FROM events WHERE anonymous_id = '${id}' AND event_type = 'page' ORDER BY ts`,
      );
      // Loaded without a fragment; #/orders/42; back to the anchor, whose route is the first page's.
      return views.map((row) => row[0] || "-").join() === "-,#/orders/42,#plain";
    });
    await page.context().close();
  });

  test("clicks on data-sluice-event elements are tracked with their data-sluice-* properties", async () => {
    const page = await open("/clicks");
    const id = await anonymousId(page);
    await page.click("#plain");
    await page.click("#signup span");
    await eventually(async () => {
      const tracked = await rows(
        `SELECT event, properties->>'plan', properties->>'text' FROM events
         WHERE anonymous_id = '${id}' AND event_type = 'track'`,
      );
      return tracked.length === 1 && tracked[0]?.join() === "Signup Clicked,pro,Sign up";
    });
    await page.context().close();
  });

  test("identify sets the user id on later events, and the anonymous id survives a reload", async () => {
    const page = await open("/account");
    const id = await anonymousId(page);
    await page.evaluate(() => {
      const { sluice } = window as unknown as {
        sluice: {
          identify(id: string, traits: object): void;
          track(event: string, properties: object): void;
        };
      };
      sluice.identify("browser-user-1", { email: "b@example.com" });
      sluice.track("Plan Upgraded", { plan: "team" });
    });
    await page.reload();
    await page.waitForFunction(() => (window as unknown as { sluice?: { loaded?: boolean } }).sluice?.loaded);
    assert.equal(await anonymousId(page), id);
    await eventually(async () => {
      // As a set: skew correction can shift unload-time events by the beacon's delay, so their
      // order against the next page's view is not fixed; page pings depend on engagement timing.
      const result = await rows(
        `SELECT event_type, coalesce(event, ''), coalesce(user_id, '-'), coalesce(traits->>'email', '') FROM events
         WHERE anonymous_id = '${id}' AND coalesce(event, '') <> 'page_ping' ORDER BY ALL`,
      );
      return (
        result.map((row) => row.join(":")).join() ===
        // The email is hashed at the door by the default privacy policy.
        `identify::browser-user-1:${piiToken(PII_SECRET, "b@example.com")},page::-:,page::browser-user-1:,track:Plan Upgraded:browser-user-1:`
      );
    });
    await page.context().close();
  });

  test("queued events are sent by beacon when the page is hidden", async () => {
    // Nothing is sent on its own for a minute, so only the beacon can deliver the events.
    const page = await open("/leaving", { flushIntervalMs: 60_000, pagePings: false });
    const id = await anonymousId(page);
    await page.evaluate(() => {
      (window as unknown as { sluice: { track(event: string): void } }).sluice.track("About To Leave");
    });
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal((await rows(`SELECT count(*) FROM events WHERE anonymous_id = '${id}'`))[0]?.[0], 0);
    await page.goto(`${site.url}/gone`);
    await eventually(
      async () =>
        (await rows(`SELECT event_type FROM events WHERE anonymous_id = '${id}' ORDER BY event_type`))
          .map((row) => row[0])
          .join() === "page,track",
    );
    await page.context().close();
  });

  test("events a beacon could not take when the page was left are sent by the next page", async () => {
    const page = await open("/refused-1", { flushIntervalMs: 60_000, pagePings: false });
    const id = await anonymousId(page);
    await page.evaluate(() => {
      // As a browser does when the data of beacons in flight is over its quota.
      navigator.sendBeacon = () => false;
      (window as unknown as { sluice: { track(event: string): void } }).sluice.track("Beacon Refused");
    });
    await page.goto(
      `${site.url}/refused-2?options=${encodeURIComponent(JSON.stringify({ pagePings: false }))}`,
    );
    await eventually(async () => {
      const result = await rows(
        `SELECT count(*) FILTER (WHERE event = 'Beacon Refused'), count(*) FILTER (WHERE event_type = 'page')
         FROM events WHERE anonymous_id = '${id}'`,
      );
      return result[0]?.join() === "1,2";
    });
    await page.context().close();
  });

  test("page pings report engaged time while the visitor is active", async () => {
    const page = await open("/article", { pingIntervalSeconds: 1, flushIntervalMs: 100 });
    const id = await anonymousId(page);
    for (let step = 0; step < 12; step++) {
      await page.mouse.move(10 + step * 5, 10 + step * 3);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    await eventually(async () => {
      const pings = await rows(
        `SELECT max(CAST(properties->>'engaged_seconds' AS INTEGER)) FROM events
         WHERE anonymous_id = '${id}' AND event = 'page_ping'`,
      );
      return Number(pings[0]?.[0] ?? 0) >= 2;
    });
    await page.context().close();
  });

  test("a batch the collector cannot take is retried with backoff until it lands", async () => {
    const page = await open("/retry", { host: `${site.url}/flaky`, retryBaseMs: 100, pagePings: false });
    const id = await anonymousId(page);
    await eventually(
      async () => (await rows(`SELECT count(*) FROM events WHERE anonymous_id = '${id}'`))[0]?.[0] === 1,
    );
    assert.ok(site.flakyAttempts() >= 3, `${site.flakyAttempts()} attempts`);
    await page.context().close();
  });

  test("events the collector could not take are kept and sent by the next page", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    // The collector is unreachable while the visitor is on the first page.
    await context.route(`${sluice.url}/v1/batch`, (route) => route.abort("connectionrefused"));
    const options = encodeURIComponent(
      JSON.stringify({ host: sluice.url, retryBaseMs: 50, maxRetries: 1, pagePings: false }),
    );
    await page.goto(`${site.url}/offline-1?options=${options}`);
    await page.waitForFunction(() => (window as unknown as { sluice?: { loaded?: boolean } }).sluice?.loaded);
    await page.evaluate(() =>
      (window as unknown as { sluice: { track(name: string): void } }).sluice.track("Kept Offline"),
    );
    await page.waitForFunction(() => (localStorage.getItem("sluice_outbox") ?? "").includes("Kept Offline"));
    const id = await anonymousId(page);
    // Reachable again: the next page sends what the first one kept, once.
    await context.unroute(`${sluice.url}/v1/batch`);
    await page.goto(`${site.url}/offline-2?options=${options}`);
    await eventually(async () => {
      const result = await rows(
        `SELECT count(*) FILTER (WHERE event = 'Kept Offline'), count(*) FILTER (WHERE event_type = 'page')
         FROM events WHERE anonymous_id = '${id}'`,
      );
      return result[0]?.join() === "1,2";
    });
    assert.equal(await page.evaluate(() => localStorage.getItem("sluice_outbox")), null);
    await context.close();
  });
});
