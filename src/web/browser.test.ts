/**
 * The web app end to end in headless Chromium (Debian's `chromium`, driven by playwright-core):
 * sign in with the first start's one-time link, run SQL, explore and build a funnel, build a chart
 * and a dashboard, arrange it by dragging, and open it with a URL filter. Screenshots of each step
 * are kept in test-artifacts/web/. Skipped, saying so, where /usr/bin/chromium is not installed.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { type Browser, chromium, type Page } from "playwright-core";
import { startTestServer } from "../server/test-support.js";
import { caller, sendEvents, shopEvents, type TestServer } from "./test-support.js";

const CHROMIUM = "/usr/bin/chromium";
const noChromium = existsSync(CHROMIUM) ? false : `needs ${CHROMIUM}: apt-get install chromium`;
const ARTIFACTS = join(import.meta.dirname, "..", "..", "test-artifacts", "web");

describe("the web app in Chromium", { skip: noChromium }, () => {
  let server: TestServer;
  let browser: Browser;
  let page: Page;
  const consoleErrors: string[] = [];
  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
  /** Replaces the text of the CodeMirror editor on the page. */
  const typeSql = async (sql: string) => {
    await page.click(".cm-content");
    await page.keyboard.press("Control+A");
    await page.keyboard.press("Delete");
    await page.keyboard.insertText(sql);
  };

  before(async () => {
    await mkdir(ARTIFACTS, { recursive: true });
    server = await startTestServer();
    await sendEvents(server, shopEvents());
    browser = await chromium.launch({ executablePath: CHROMIUM });
    page = await (await browser.newContext({ viewport: { width: 1400, height: 900 } })).newPage();
    // A user would see these in the console: script errors, and resources that failed (but the
    // answers to wrong SQL, which the tests send on purpose).
    page.on("pageerror", (error) => consoleErrors.push(error.message));
    page.on("console", (message) => {
      if (message.type() === "error" && !/status of 400/.test(message.text()))
        consoleErrors.push(message.text());
    });
    // Generous: CI runs this beside other test files on two cores.
    page.setDefaultTimeout(45_000);
  });
  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test("the first start's link signs the admin in, who then chooses a password", async () => {
    const first = server.sluice.accounts.firstStartLink();
    assert.ok(first);
    await page.goto(`${server.url}/login/${first.linkToken}`);
    await page.click("#continue");
    await page.waitForURL(/\/settings/);
    assert.equal(new URL(page.url()).pathname, "/settings");
    await page.waitForSelector("text=Welcome! Choose a password");
    await page.fill("#new-password", "a good password");
    await page.click("#save-password");
    await page.waitForSelector("text=Password saved.");
    assert.ok(server.sluice.accounts.checkPassword("admin", "a good password"));
    await shot("1-signed-in");
  });

  test("SQL: Ctrl+Enter runs, the grid sorts, errors point at their spot", async () => {
    await page.goto(`${server.url}/sql`);
    await page.waitForSelector(".cm-content");
    await typeSql(
      "select properties->>'currency' as currency, count(*) as events from events group by 1 order by 1",
    );
    await page.keyboard.press("Control+Enter");
    await page.waitForSelector("table.grid td");
    const cells = () =>
      page.$$eval("table.grid tbody tr", (rows) =>
        rows.map((row) => [...row.children].map((cell) => cell.textContent)),
      );
    assert.deepEqual(await cells(), [
      ["EUR", "7"],
      ["USD", "3"],
    ]);
    await page.click("th:has-text('events')");
    await page.click("th:has-text('events')");
    assert.deepEqual((await cells())[0], ["EUR", "7"], "sorted by events, descending");
    await shot("2-sql");
    await typeSql("select *\nform events");
    await page.keyboard.press("Control+Enter");
    const error = await page.textContent("pre.error");
    assert.match(String(error), /syntax error at or near "events"/);
    const cursor = await page.evaluate(() => {
      const selection = document.getSelection();
      return selection?.anchorNode?.textContent ?? "";
    });
    assert.match(cursor, /form events/, "the cursor is put on the line of the error");
    await page.waitForSelector("ol.history li.failed");
    await shot("3-sql-error");
    await typeSql("select *, * from events");
    await page.keyboard.press("Control+Enter");
    await page.waitForSelector("table.grid td");
    const widths = await page.evaluate(() => ({
      page: document.documentElement.scrollWidth,
      window: window.innerWidth,
      grid: document.querySelector(".grid-wrap")?.scrollWidth ?? 0,
    }));
    assert.ok(widths.grid > widths.window, "the result is wider than the window");
    assert.ok(widths.page <= widths.window, "the result scrolls in its grid; the page keeps its width");
    assert.ok(await page.isVisible("text=History"), "the history stays in view");
  });

  test("explore: users who viewed a product, by currency, saved as a chart", async () => {
    await page.goto(`${server.url}/explore`);
    await page.fill("#explore-events", "Product Viewed");
    await page.selectOption("#explore-measure", "users");
    await page.fill("#explore-breakdown", "currency");
    await page.selectOption("#explore-granularity", "total");
    await page.selectOption("#explore-type", "bar");
    await page.click("#run-analysis");
    await page.waitForFunction(() => document.querySelector("#analysis-table td")?.textContent === "EUR");
    assert.ok(await page.$("#analysis-chart canvas"), "the chart is drawn");
    await shot("4-explore");
    await page.click("#save-analysis");
    await page.waitForURL(/\/charts\/\d+$/);
  });

  test("funnels: conversion and drop-off per step", async () => {
    await page.goto(`${server.url}/funnels`);
    await page.waitForSelector("#funnel-table td");
    const rows = await page.$$eval("#funnel-table tr", (trs) =>
      trs.slice(1).map((tr) => [...tr.children].map((cell) => cell.textContent)),
    );
    assert.deepEqual(rows, [
      ["Product Viewed", "4", "100.0%", ""],
      ["Product Added", "3", "75.0%", "25.0%"],
      ["Checkout Started", "2", "50.0%", "33.3%"],
      ["Order Completed", "1", "25.0%", "50.0%"],
    ]);
    await shot("5-funnel");
    // Broken down: one row per currency, each step's share of that currency's first step.
    await page.fill("#funnel-breakdown", "currency");
    await page.click("#run-analysis");
    await page.waitForSelector("#funnel-table th:has-text('currency')");
    const byCurrency = await page.$$eval("#funnel-table tr", (trs) =>
      trs.map((tr) => [...tr.children].map((cell) => cell.textContent)),
    );
    assert.deepEqual(byCurrency, [
      ["currency", "Product Viewed", "Product Added", "Checkout Started", "Order Completed", "Conversion"],
      ["EUR", "2", "2 (100.0%)", "2 (100.0%)", "1 (50.0%)", "50.0%"],
      ["USD", "2", "1 (50.0%)", "0 (0.0%)", "0 (0.0%)", "0.0%"],
    ]);
  });

  test("a chart built from SQL, then a dashboard arranged by dragging and opened with a URL filter", async () => {
    await page.goto(
      `${server.url}/charts/new?sql=${encodeURIComponent("select properties->>'currency' as currency, count(*) as events from events group by 1 order by 1")}`,
    );
    await page.fill("#chart-name", "Events by currency");
    await page.selectOption("#chart-type", "table");
    await page.waitForSelector("#chart-canvas td");
    await page.click("#save-chart");
    await page.waitForURL(/\/charts\/\d+$/);
    const chartId = Number(page.url().split("/").at(-1));
    await shot("6-chart");

    await page.goto(`${server.url}/dashboards`);
    await page.fill("#new-dashboard-name", "Currencies");
    await page.click("#create-dashboard");
    await page.waitForURL(/\/dashboards\/\d+\?edit=1$/);
    const dashboardId = Number(new URL(page.url()).pathname.split("/").at(-1));
    await page.selectOption("#add-chart", String(chartId));
    await page.waitForSelector(".panel .panel-head");
    // Drag the panel by its title half the grid to the right, then save.
    const head = await page.$(".panel .panel-head");
    const grid = await page.$("#dashboard-grid");
    const headBox = await head?.boundingBox();
    const gridBox = await grid?.boundingBox();
    assert.ok(headBox && gridBox);
    await page.mouse.move(headBox.x + 20, headBox.y + 10);
    await page.mouse.down();
    await page.mouse.move(headBox.x + 20 + gridBox.width / 2, headBox.y + 10, { steps: 8 });
    await page.mouse.up();
    // Then resize it by its corner: two columns narrower, two rows taller.
    const handleBox = await (await page.$(".panel .resize"))?.boundingBox();
    assert.ok(handleBox);
    const handle = { x: handleBox.x + handleBox.width / 2, y: handleBox.y + handleBox.height / 2 };
    await page.mouse.move(handle.x, handle.y);
    await page.mouse.down();
    await page.mouse.move(handle.x - (gridBox.width / 12) * 2, handle.y + 160, { steps: 8 });
    await page.mouse.up();
    await page.click("#save-layout");
    await page.waitForSelector("#edit-layout");
    const saved = await caller(server)("GET", `/v1/dashboards/${dashboardId}`);
    const { x, w, h } = saved.body.dashboard.panels[0];
    assert.deepEqual({ x, w, h }, { x: 6, w: 4, h: 6 }, "moved six columns right, then resized");
    await page.goto(`${server.url}/dashboards/${dashboardId}?currency=EUR`);
    await page.waitForSelector(".panel-body td");
    const filtered = await page.$$eval(".panel-body tbody tr", (trs) =>
      trs.map((tr) => [...tr.children].map((cell) => cell.textContent)),
    );
    assert.deepEqual(filtered, [["EUR", "7"]], "the URL's filter applies to the panel");
    assert.equal(
      await page.textContent(".chip"),
      "currency = EUR ×",
      "a filter the dashboard does not offer shows as a chip",
    );
    await shot("7-dashboard-filtered");
    // The editor offers currency as a filter of the dashboard: the chip becomes a field.
    await page.click("#edit-layout");
    await page.fill("#new-filter", "currency");
    await page.click("#add-filter");
    await page.waitForSelector("#filter-currency");
    const offered = await caller(server)("GET", `/v1/dashboards/${dashboardId}`);
    assert.deepEqual(offered.body.dashboard.filters, [{ name: "currency" }]);
  });

  test("retention, the catalog, live events and inviting a user", async () => {
    await page.goto(`${server.url}/retention`);
    await page.selectOption("#retention-granularity", "day");
    await page.click("#run-analysis");
    await page.waitForSelector("#analysis-chart canvas");
    await page.waitForSelector("#analysis-table td");
    await shot("9-retention");

    await page.goto(`${server.url}/catalog`);
    const summary = await page.textContent("#catalog details[open] summary");
    assert.match(String(summary), /^events\s*10 rows · .* in 1 files · fresh /);
    await shot("10-catalog");

    await page.goto(`${server.url}/live`);
    await page.waitForSelector("#live-events td");
    assert.match(String(await page.textContent("#live-totals")), /10 events in total/);
    await shot("11-live");

    await page.goto(`${server.url}/users`);
    await page.fill("#invite-username", "new.analyst@example.com");
    await page.selectOption("#invite-role", "viewer");
    await page.click("#invite");
    const invite = String(await page.textContent("#invite-url"));
    assert.match(invite, /^http:\/\/127\.0\.0\.1:\d+\/login\/\S+$/);
    await page.waitForSelector("td:has-text('new.analyst@example.com')");
    await shot("12-users");
    // The invited viewer signs in by the link in another browser and may look but not edit.
    const other = await (await browser.newContext()).newPage();
    await other.goto(invite);
    await other.click("#continue");
    await other.waitForSelector("text=Welcome! Choose a password");
    await other.goto(`${server.url}/charts`);
    await other.waitForSelector("h1:has-text('Charts')");
    assert.equal(await other.$("text=New chart"), null, "viewers get no New chart button");
    await other.close();
  });

  test("the Shop overview dashboard draws all its panels", async () => {
    const { ensureShopOverview, SavedStore } = await import("./index.js");
    const overview = ensureShopOverview(new SavedStore(server.sluice.accounts.db));
    await page.goto(`${server.url}/dashboards/${overview.id}?last=7d`);
    await page.waitForFunction(
      (count) => document.querySelectorAll(".panel-body canvas, .panel-body table").length >= count,
      overview.panels.length,
    );
    assert.equal(await page.$$eval(".panel-body .error", (errors) => errors.length), 0);
    assert.equal(await page.inputValue("#filter-last"), "7d");
    await shot("8-shop-overview");

    // The filters change twice and the first answer comes last: the panels keep the second one's.
    let held = false;
    await page.route("**/v1/dashboards/*/data*", async (route) => {
      if (held) return route.continue();
      held = true;
      await new Promise((resolve) => setTimeout(resolve, 1500));
      await route.continue();
    });
    let asked = 0;
    let answered = 0;
    page.on("request", (request) => {
      if (request.url().includes("/data")) asked++;
    });
    const onAnswer = (request: { url(): string }) => {
      if (request.url().includes("/data")) answered++;
    };
    // A failed request is answered too: waiting for it would never end.
    page.on("requestfinished", onAnswer);
    page.on("requestfailed", onAnswer);
    await page.selectOption("#filter-last", "90d");
    await page.fill("#filter-from", "2020-01-01");
    await page.fill("#filter-to", "2020-01-31");
    await page.click("#apply-filters");
    await page.waitForFunction(() => new URLSearchParams(location.search).get("to") === "2020-01-31");
    await page.waitForTimeout(300); // the last change's request starts
    while (answered < asked || asked < 2) await page.waitForTimeout(100);
    await page.waitForTimeout(200); // the last answer drawn
    const products = page.locator(".panel", { hasText: "Most viewed products" });
    assert.equal(await products.locator("tbody tr").count(), 0, "January 2020 had no product views");
    await page.unroute("**/v1/dashboards/*/data*");
  });

  test("no page had a script error or a missing resource", () => {
    assert.deepEqual(consoleErrors, []);
  });
});
