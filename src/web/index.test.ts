import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { Script } from "node:vm";
import { PAGE_HELPERS } from "./home.js";
import { renderHomePage } from "./index.js";

interface Helpers {
  formatNumber(value: unknown, locale?: string): string;
  lastMinutes(
    perMinute: Array<{ minute: string; events: number }>,
    now: number,
    count: number,
  ): Array<{ minute: number; events: number }>;
  niceCeiling(value: number): number;
  barLayout(
    values: number[],
    width: number,
    height: number,
  ): { max: number; bars: Array<{ x: number; y: number; width: number; height: number }> };
}

/** The helpers exactly as the browser runs them. */
const helpers = new Function(
  `${PAGE_HELPERS}; return { formatNumber, lastMinutes, niceCeiling, barLayout };`,
)() as Helpers;

const VOID_ELEMENTS = new Set(["meta", "link", "input", "br", "img", "hr"]);

describe("renderHomePage", () => {
  const html = renderHomePage();
  const script = html.match(/<script>([\s\S]*)<\/script>/)?.[1] ?? "";
  const markup = html.replace(/<script>[\s\S]*<\/script>|<style>[\s\S]*<\/style>/g, "");

  test("is a complete HTML document whose tags are balanced", () => {
    assert.match(html, /^<!doctype html>\s*<html lang="en">/);
    assert.match(html, /<meta charset="utf-8">/);
    const open: string[] = [];
    for (const [, closing, name] of markup.matchAll(/<(\/?)([a-zA-Z][a-zA-Z0-9-]*)[^>]*>/g)) {
      const tag = (name as string).toLowerCase();
      if (VOID_ELEMENTS.has(tag)) continue;
      if (closing) assert.equal(open.pop(), tag, `</${tag}> closes the innermost open element`);
      else open.push(tag);
    }
    assert.deepEqual(open, []);
  });

  test("has every element the script looks up", () => {
    assert.ok(script.length > 0);
    const ids = [...script.matchAll(/element\("([\w-]+)"\)/g)].map((match) => match[1]);
    assert.ok(ids.length >= 10);
    for (const id of new Set(ids)) assert.match(markup, new RegExp(`id="${id}"`), `#${id} exists`);
  });

  test("its script is valid JavaScript that reads /v1/stats with a bearer token", () => {
    assert.doesNotThrow(() => new Script(script));
    assert.match(script, /fetch\("\/v1\/stats"/);
    assert.match(script, /"Bearer " \+/);
    assert.match(script, /response\.status === 401/);
    assert.match(script, /localStorage/);
  });

  test("loads nothing from elsewhere", () => {
    assert.doesNotMatch(html, /<script[^>]+src=/i);
    assert.doesNotMatch(html, /<link[^>]+href=/i);
    assert.doesNotMatch(html, /(src|href)\s*=\s*["']?(https?:)?\/\//i);
    assert.doesNotMatch(html, /@import|url\(/i);
  });

  test("shows the query hint", () => {
    assert.ok(
      html.includes(
        `curl -s -X POST http://HOST/v1/query -H 'Authorization: Bearer TOKEN' -d '{"sql":"select event, count(*) from events group by 1 order by 2 desc"}'`,
      ),
    );
  });
});

describe("page helpers", () => {
  test("formatNumber adds thousands separators and rounds", () => {
    assert.equal(helpers.formatNumber(1234567, "en-US"), "1,234,567");
    assert.equal(helpers.formatNumber(0, "en-US"), "0");
    assert.equal(helpers.formatNumber(999.6, "en-US"), "1,000");
    assert.equal(helpers.formatNumber(undefined, "en-US"), "–");
    assert.equal(helpers.formatNumber(Number.NaN, "en-US"), "–");
  });

  test("lastMinutes fills the minutes the server did not list with zeros", () => {
    const now = Date.parse("2026-11-25T10:31:42.000Z");
    const minutes = helpers.lastMinutes(
      [
        { minute: "2026-11-25T10:31:00.000Z", events: 7 },
        { minute: "2026-11-25T10:29:00.000Z", events: 3 },
        { minute: "2026-11-25T09:00:00.000Z", events: 99 },
      ],
      now,
      60,
    );
    assert.equal(minutes.length, 60);
    assert.equal(minutes[0]?.minute, Date.parse("2026-11-25T09:32:00.000Z"));
    assert.deepEqual(
      minutes.slice(-3).map((point) => point.events),
      [3, 0, 7],
    );
    assert.equal(
      minutes.reduce((sum, point) => sum + point.events, 0),
      10,
      "minutes older than the hour are left out",
    );
  });

  test("niceCeiling rounds up to 1, 2 or 5 times a power of ten", () => {
    assert.deepEqual(
      [0, 0.3, 1, 3, 10, 11, 180, 200, 201, 4_999].map(helpers.niceCeiling),
      [1, 0.5, 1, 5, 10, 20, 200, 200, 500, 5_000],
    );
  });

  test("barLayout scales bars to a round maximum of at least 10 and keeps small values visible", () => {
    const { max, bars } = helpers.barLayout([0, 1, 50, 180], 400, 100);
    assert.equal(max, 200);
    assert.deepEqual(
      bars.map((bar) => bar.height),
      [0, 1, 25, 90],
    );
    assert.deepEqual(
      bars.map((bar) => bar.x),
      [0, 100, 200, 300],
    );
    assert.equal(bars[3]?.y, 10);
    assert.equal(bars[0]?.width, 99, "bars keep a gap between them");
    assert.equal(helpers.barLayout([], 400, 100).max, 10);
    assert.equal(helpers.barLayout([0, 1, 3], 400, 100).max, 10);
  });
});
