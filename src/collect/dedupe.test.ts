import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Deduper } from "./dedupe.js";

const HOUR = 3_600_000;
const T0 = Date.parse("2024-05-01T00:00:00Z");

describe("Deduper", () => {
  it("reports an id as seen from its second sighting on", () => {
    const deduper = new Deduper();
    assert.equal(deduper.seen("web", "m1", T0), false);
    assert.equal(deduper.seen("web", "m1", T0 + 1), true);
    assert.equal(deduper.seen("web", "m1", T0 + 23 * HOUR), true);
  });

  it("keeps sources apart", () => {
    const deduper = new Deduper();
    assert.equal(deduper.seen("web", "m1", T0), false);
    assert.equal(deduper.seen("app", "m1", T0), false);
  });

  it("forgets ids once their whole bucket is older than the window", () => {
    const deduper = new Deduper({ windowMs: 24 * HOUR });
    deduper.seen("web", "old", T0 + 10);
    deduper.seen("web", "newer", T0 + HOUR + 10);
    // At T0 + 24h + 59min the first bucket still reaches into the window.
    assert.equal(deduper.seen("web", "old", T0 + 24 * HOUR + 59 * 60_000), true);
    assert.equal(deduper.seen("web", "old", T0 + 25 * HOUR), false);
    assert.equal(deduper.seen("web", "newer", T0 + 25 * HOUR), true);
    assert.equal(deduper.seen("web", "newer", T0 + 26 * HOUR), false);
  });

  it("forget undoes seen", () => {
    const deduper = new Deduper();
    deduper.seen("web", "m1", T0);
    deduper.forget("web", "m1");
    assert.equal(deduper.seen("web", "m1", T0), false);
    assert.equal(deduper.seen("web", "m1", T0), true);
  });

  it("a forgotten id re-added later is kept until its new bucket expires", () => {
    const deduper = new Deduper({ windowMs: 2 * HOUR, bucketMs: HOUR });
    deduper.seen("web", "m1", T0);
    deduper.forget("web", "m1");
    deduper.seen("web", "m1", T0 + 2 * HOUR);
    assert.equal(deduper.seen("web", "m1", T0 + 3 * HOUR + 1), true);
  });

  it("remember rebuilds the window at startup, ignoring ids already outside it", () => {
    const deduper = new Deduper({ windowMs: 24 * HOUR });
    deduper.remember("web", "recent", T0 + 20 * HOUR);
    deduper.remember("web", "ancient", T0 - 10 * HOUR);
    assert.equal(deduper.seen("web", "recent", T0 + 30 * HOUR), true);
    assert.equal(deduper.seen("web", "ancient", T0 + 30 * HOUR), false);
  });

  it("counts remembered ids across sources, forgets and expiry", () => {
    const deduper = new Deduper({ windowMs: HOUR, bucketMs: HOUR });
    deduper.seen("web", "m1", T0);
    deduper.seen("app", "m1", T0);
    deduper.seen("app", "m2", T0 + HOUR);
    deduper.remember("app", "m2", T0 + HOUR);
    assert.equal(deduper.size, 3);
    deduper.forget("web", "m1");
    deduper.forget("web", "never-seen");
    assert.equal(deduper.size, 2);
    deduper.seen("web", "m3", T0 + 2 * HOUR);
    assert.equal(deduper.size, 2);
  });

  it("caps memory by dropping the oldest buckets early", () => {
    const deduper = new Deduper({ windowMs: 10 * HOUR, bucketMs: HOUR, maxIds: 100 });
    for (let i = 0; i < 80; i++) deduper.seen("web", `early-${i}`, T0);
    for (let i = 0; i < 80; i++) deduper.seen("web", `late-${i}`, T0 + HOUR);
    assert.equal(deduper.size, 80);
    assert.equal(deduper.seen("web", "late-0", T0 + HOUR), true);
    assert.equal(deduper.seen("web", "early-0", T0 + HOUR), false);
  });

  it("when the current bucket alone passes the cap, its ids go but deduplication goes on", () => {
    const deduper = new Deduper({ windowMs: 10 * HOUR, bucketMs: HOUR, maxIds: 100 });
    for (let i = 0; i <= 100; i++) deduper.seen("web", `m-${i}`, T0);
    assert.equal(deduper.size, 0);
    assert.equal(deduper.seen("web", "m-0", T0), false);
    assert.equal(deduper.seen("web", "m-0", T0), true);
  });

  it("keeps every id through the table's incremental rebuilds, with forgets along the way", () => {
    const deduper = new Deduper();
    const ids = 200_000;
    for (let i = 0; i < ids; i++) {
      assert.equal(deduper.seen("web", `id-${i}`, T0), false);
      // Forget every tenth id soon after, also while a rebuild is moving the table.
      if (i % 10 === 0) deduper.forget("web", `id-${i}`);
      if (i % 1000 === 999) assert.equal(deduper.seen("web", `id-${i - 500}`, T0), true);
    }
    assert.equal(deduper.size, ids - ids / 10);
    let seen = 0;
    for (let i = 0; i < ids; i++) if (deduper.seen("web", `id-${i}`, T0)) seen++;
    assert.equal(seen, ids - ids / 10);
    assert.equal(deduper.size, ids);
  });
});
