import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { QualityStore } from "./store.js";

test("forgetValues replaces a forgotten user's ids in profiles and check samples, and nothing else", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-quality-store-"));
  const store = new QualityStore(join(dir, "quality.db"));
  try {
    store.addProfile({
      table: "events",
      partition: "2026-12-01",
      snapshot: 1,
      profiledAt: "2026-12-01T10:00:00.000Z",
      rows: 3,
      sampledRows: null,
      durationMs: 1,
      columns: [
        {
          name: "user_id",
          type: "VARCHAR",
          nulls: 0,
          nullPercent: 0,
          distinct: 2,
          topValues: [
            { value: "forget-me", count: 2 },
            { value: "keep-me", count: 1 },
          ],
        },
        {
          name: "anonymous_id",
          type: "VARCHAR",
          nulls: 0,
          nullPercent: 0,
          min: "anon-1",
          max: "forget-me-not",
        },
      ],
    });
    const result = (sample: unknown[][]) =>
      store.addResult({
        table: "events",
        check: "user_id_accepted_values",
        kind: "accepted_values",
        severity: "warn",
        status: "fail",
        observed: sample.length,
        message: `${sample.length} rows`,
        sample: { columns: ["user_id", "rows"], rows: sample },
        trigger: "load",
        ranAt: "2026-12-01T10:00:00.000Z",
        durationMs: 1,
      });
    result([
      ["forget-me", 2],
      ["anon-1", 1],
    ]);
    result([["keep-me", 1]]);

    assert.equal(store.forgetValues(["forget-me", "anon-1"]), 2);
    const [profile] = store.latestProfiles("events");
    assert.deepEqual(profile?.columns[0]?.topValues, [
      { value: "(forgotten)", count: 2 },
      { value: "keep-me", count: 1 },
    ]);
    assert.equal(profile?.columns[1]?.min, "(forgotten)");
    assert.equal(profile?.columns[1]?.max, "forget-me-not", "only whole values are forgotten");
    assert.deepEqual(
      store.results().map((found) => found.sample?.rows),
      [
        [["keep-me", 1]],
        [
          ["(forgotten)", 2],
          ["(forgotten)", 1],
        ],
      ],
    );
    assert.equal(store.forgetValues(["forget-me", "anon-1"]), 0, "forgetting again changes nothing");
  } finally {
    store.close();
    await rm(dir, { recursive: true, force: true });
  }
});
