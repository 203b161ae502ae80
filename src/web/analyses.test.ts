import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import { createEngine, truncateUtc } from "../warehouse/index.js";

describe("analyses' SQL", () => {
  const engine = createEngine({ threads: 1 });
  after(async () => (await engine).closeSync());

  test("truncating in UTC without ICU gives date_trunc's values, around every boundary", async () => {
    const connection = await (await engine).connect();
    try {
      const units = ["hour", "day", "week", "month"] as const;
      const columns = units.map(
        (unit) =>
          `count(*) FILTER (WHERE ${truncateUtc(unit, "ts")} IS DISTINCT FROM date_trunc('${unit}', ts))`,
      );
      // Every 7 minutes for two years (a leap day, year and month ends) and some instants before 1970.
      const reader = await connection.runAndReadAll(`SELECT count(*), ${columns.join(", ")} FROM (
          SELECT ts FROM range(TIMESTAMPTZ '2023-12-25 00:00:00+00', TIMESTAMPTZ '2025-12-25 00:00:00+00', INTERVAL 7 MINUTE) t(ts)
          UNION ALL SELECT * FROM (VALUES (TIMESTAMPTZ '1969-12-31 23:59:59.999999+00'), (TIMESTAMPTZ '1960-02-29 12:00:00+00'), (NULL))
        )`);
      const [count, ...differing] = reader.getRows()[0] as bigint[];
      assert.ok(Number(count) > 150_000);
      assert.deepEqual(differing.map(Number), [0, 0, 0, 0]);
    } finally {
      connection.closeSync();
    }
  });
});
