import assert from "node:assert/strict";
import { once } from "node:events";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { EVENTS, loadSynthetic } from "../lake/test-support.js";
import { tempQuality } from "./test-support.js";

/** The last complete day of the series is Sunday 2026-11-22 when "now" is the Monday after. */
const MONDAY = new Date("2026-11-23T06:00:00Z");
const DAY_MS = 86_400_000;
/** Weekly seasonality, Sunday first: quiet weekends, busy Tuesdays. */
const WEEKDAY_FACTOR = [0.45, 1, 1.15, 1.05, 1, 0.9, 0.55];

/**
 * 12 weeks of rows (one per event, at noon) ending on the Sunday before MONDAY: 200 a day on an
 * ordinary weekday times its weekday factor, ±6% noise; `lastDayFactor` scales the last day.
 */
function series(lastDayFactor: number): string {
  const lines = ["ts"];
  let seed = 7;
  const days = 12 * 7;
  for (let index = 0; index < days; index++) {
    const day = new Date(MONDAY.getTime() - (days - index) * DAY_MS);
    seed = (seed * 16807) % 2147483647;
    const noise = 1 + ((seed / 2147483647) * 2 - 1) * 0.06;
    let count = Math.round(200 * (WEEKDAY_FACTOR[day.getUTCDay()] as number) * noise);
    if (index === days - 1) count = Math.round(count * lastDayFactor);
    const stamp = `${day.toISOString().slice(0, 10)}T12:00:00Z`;
    for (let row = 0; row < count; row++) lines.push(stamp);
  }
  return `${lines.join("\n")}\n`;
}

const checks = (table: string) => `
${table}:
  - { type: anomaly, time_column: ts }
  - { type: anomaly, name: daily count by query, sql: "select cast(ts as date) as day, count(*) as n from ${table} group by 1", direction: drop }
  - { type: change, name: day over day, time_column: ts, max_drop_percent: 30 }
  - { type: change, name: week over week, time_column: ts, period: week, max_drop_percent: 20, max_increase_percent: 20 }
`;

describe("anomaly and change checks on a 12-week daily series", () => {
  let ctx: Awaited<ReturnType<typeof tempQuality>>;
  let receiver: Server;
  const received: string[] = [];

  before(async () => {
    receiver = createServer((request, response) => {
      let body = "";
      request.on("data", (chunk) => {
        body += chunk;
      });
      request.on("end", () => {
        received.push(JSON.parse(body).text);
        response.end("ok");
      });
    });
    receiver.listen(0, "127.0.0.1");
    await once(receiver, "listening");
    const url = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`;
    ctx = await tempQuality({
      project: { "checks/normal.yml": checks("visits"), "checks/dropped.yml": checks("visits_dropped") },
      config: { alert_webhook_url: url },
    });
    await ctx.load("visits", "visits.csv", series(1));
    await ctx.load("visits_dropped", "visits_dropped.csv", series(0.5));
  });
  after(async () => {
    await ctx.close();
    receiver.close();
  });

  test("a normal week of weekly seasonality raises no anomaly and no alert, day after day", async () => {
    for (let daysBack = 6; daysBack >= 0; daysBack--) {
      const now = new Date(MONDAY.getTime() - daysBack * DAY_MS);
      const run = await ctx.quality.runChecks("visits", {
        trigger: "schedule",
        now,
        names: ["anomaly(row_count(ts))", "daily count by query"],
      });
      for (const result of run.results)
        assert.equal(result.status, "pass", `${now.toISOString()} ${result.message}`);
    }
    assert.deepEqual(received, []);
  });

  test("an injected drop on the last day fails with its z-score, alerting once", async () => {
    const run = await ctx.quality.runChecks("visits_dropped", { trigger: "schedule", now: MONDAY });
    const byName = new Map(run.results.map((result) => [result.check, result]));
    const anomaly = byName.get("anomaly(row_count(ts))");
    assert.equal(anomaly?.status, "fail", anomaly?.message);
    assert.ok((anomaly.observed ?? 0) < -2, `z = ${anomaly.observed}`);
    assert.match(
      anomaly.message,
      /^Sunday 2026-11-22: \d+ against \d+(\.\d+)? ± \d+(\.\d+)? on the previous 10 Sundays/,
    );
    assert.equal(byName.get("daily count by query")?.status, "fail");
    assert.ok(received.some((text) => text.includes("visits_dropped anomaly(row_count(ts))")));
  });

  test("the % change check compares with the previous period", async () => {
    const run = await ctx.quality.runChecks("visits", { trigger: "cli", now: MONDAY, alert: false });
    const byName = new Map(run.results.map((result) => [result.check, result]));
    // Saturday to Sunday is a normal weekend dip of ~20%, within 30%; a whole week is stable.
    assert.equal(byName.get("day over day")?.status, "pass", byName.get("day over day")?.message);
    assert.equal(byName.get("week over week")?.status, "pass", byName.get("week over week")?.message);
    const tuesday = await ctx.quality.runChecks("visits", {
      trigger: "cli",
      now: new Date("2026-11-22T06:00:00Z"),
      names: ["day over day"],
      alert: false,
    });
    // Friday (0.9) to Saturday (0.55) drops ~40%: more than 30%.
    const [dayOverDay] = tuesday.results;
    assert.equal(dayOverDay?.status, "fail");
    assert.match(
      dayOverDay?.message ?? "",
      /^2026-11-21 against the day before: \d+ vs \d+, -\d+(\.\d+)?%; expected a drop of at most 30%$/,
    );
  });
});

describe("anomaly and freshness on a partitioned table", () => {
  test("count rows per partition (dt) and read only recent partitions", async () => {
    const ctx = await tempQuality({
      project: {
        "quality.yml": `
events:
  - { type: anomaly }
  - { type: anomaly, name: rises only, direction: rise }
  - { type: freshness, max_age: 2d }
`,
      },
    });
    try {
      await ctx.catalog.ensureTable(EVENTS);
      // 10 events a day from 2026-11-01 for 12 weeks, the last day (2027-01-23) only 5.
      await loadSynthetic(
        { lakeRoot: join(ctx.dataDir, "lake"), catalog: ctx.catalog, engine: ctx.engine },
        { count: 12 * 7 * 10 - 5, prefix: "p", perDay: 10 },
      );
      const run = await ctx.quality.runChecks("events", {
        trigger: "cli",
        now: new Date("2027-01-24T06:00:00Z"),
      });
      const byName = new Map(run.results.map((result) => [result.check, result]));
      const anomaly = byName.get("anomaly(row_count)");
      assert.equal(anomaly?.status, "fail");
      assert.equal(
        anomaly.message,
        "Saturday 2027-01-23: 5 against 10 ± 0 on the previous 10 Saturdays (z = -∞); expected |z| ≤ 2",
      );
      assert.equal(byName.get("rises only")?.status, "pass");
      const fresh = byName.get("freshness");
      assert.equal(fresh?.status, "pass", fresh?.message);
      const stale = await ctx.quality.runChecks("events", {
        trigger: "cli",
        now: new Date("2027-02-10T00:00:00Z"),
        names: ["freshness"],
      });
      assert.equal(stale.results[0]?.message, "no ts in events is within the last 2d");
    } finally {
      await ctx.close();
    }
  });
});
