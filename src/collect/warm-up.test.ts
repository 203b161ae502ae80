import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Collector } from "./index.js";
import type { CanonicalEvent } from "./model.js";
import { MemoryTopic } from "./test-support/memory-topic.js";

const WRITE_KEY = "wk_web";

function collector(workers: number) {
  const events = new MemoryTopic("events");
  const rejected = new MemoryTopic("rejected");
  const collect = new Collector({ events, rejected, writeKeys: new Map([[WRITE_KEY, "web"]]), workers });
  return { collect, events, rejected };
}

describe("collector warm-up", () => {
  it("runs the accepted path on this thread and the workers, and stores and counts nothing", async () => {
    const { collect, events, rejected } = collector(1);
    try {
      const { requests, accepted } = await collect.warmUp();
      assert.ok(requests > 1000, `only ${requests} warm-up requests`);
      assert.equal(accepted, requests, "every synthetic request takes the accepted (hot) path");
      assert.deepEqual(events.records, []);
      assert.deepEqual(rejected.records, []);
      assert.deepEqual(collect.stats(), { requests: 0, accepted: 0, rejected: 0, deduplicated: 0 });
      // The deduper was not fed: a real event with a warm-up's messageId is stored.
      const answer = await collect.handle({
        path: "/v1/track",
        headers: { authorization: `Basic ${Buffer.from(`${WRITE_KEY}:`).toString("base64")}` },
        body: Buffer.from(JSON.stringify({ messageId: "sluice-warm-up-0", anonymousId: "a", event: "Real" })),
      });
      assert.equal(answer.status, 200);
      assert.deepEqual(
        events.records.map((line) => (JSON.parse(line) as CanonicalEvent).event_id),
        ["sluice-warm-up-0"],
      );
    } finally {
      await collect.close();
    }
  });

  it("does nothing without a write key", async () => {
    const collect = new Collector({
      events: new MemoryTopic("events"),
      rejected: new MemoryTopic("rejected"),
      writeKeys: new Map(),
    });
    assert.deepEqual(await collect.warmUp(), { requests: 0, accepted: 0 });
  });
});
