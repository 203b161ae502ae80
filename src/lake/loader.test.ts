import assert from "node:assert/strict";
import { mkdir, readdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, test } from "node:test";
import { openEmbeddedBus, type Topic } from "../bus/index.js";
import type { Catalog } from "../catalog/index.js";
import { Loader, type LoaderOptions, stagingFor } from "./loader.js";
import { EVENTS, tempLake } from "./test-support.js";

const event = (id: string, day = "2026-11-20") =>
  JSON.stringify({
    event_id: id,
    event_type: "track",
    event: "Tick",
    user_id: "u1",
    anonymous_id: null,
    session_id: null,
    ts: `${day}T10:00:00.000Z`,
    received_at: "2026-11-25T10:00:00.000Z",
    source: "default",
    page_url: null,
    page_path: null,
    referrer: null,
    user_agent: null,
    browser: null,
    os: null,
    device_type: null,
    ip: null,
    country: null,
    properties: { n: 1 },
    context: {},
    traits: null,
  });

/** A loader of `events` from `topic` into `lake`; `options` override the rest. */
function eventsLoader(
  lake: Awaited<ReturnType<typeof tempLake>>,
  topic: Topic,
  options: Partial<LoaderOptions> = {},
): Loader {
  return new Loader({
    topic,
    catalog: lake.catalog,
    engine: lake.engine,
    lakeRoot: lake.lakeRoot,
    table: EVENTS,
    ...options,
  });
}

async function countRows(lake: Awaited<ReturnType<typeof tempLake>>) {
  const result = await lake.warehouse.query("SELECT count(*), count(DISTINCT event_id) FROM events");
  return result.rows[0];
}

describe("loader", () => {
  test("loads every record exactly once across segment rotation and restarts", async () => {
    const lake = await tempLake();
    const bus = await openEmbeddedBus({ dir: join(lake.dir, "bus"), segmentBytes: 4096 });
    try {
      const topic = await bus.topic("events");
      const ids = Array.from({ length: 500 }, (_, i) => `r${i}`);
      for (let i = 0; i < ids.length; i += 50) {
        await topic.append(
          ids.slice(i, i + 50).map((id, n) => event(id, n % 2 ? "2026-11-20" : "2026-11-21")),
        );
      }
      const options = {
        topic,
        catalog: lake.catalog,
        engine: lake.engine,
        lakeRoot: lake.lakeRoot,
        table: EVENTS,
      };
      const loader = new Loader({ ...options, maxBatchBytes: 20_000 });
      await loader.init();
      assert.equal(await loader.loadAvailable(), 500);
      assert.deepEqual(await countRows(lake), [500, 500]);
      assert.ok(topic.start() > 0, "loaded segments are released");

      const restarted = new Loader(options);
      await restarted.init();
      assert.equal(
        await restarted.loadAvailable(),
        0,
        "a restarted loader resumes after the committed position",
      );
      await topic.append([event("late")]);
      assert.equal(await restarted.loadAvailable(), 1);
      assert.deepEqual(await countRows(lake), [501, 501]);
    } finally {
      await bus.close();
      await lake.close();
    }
  });

  test("a batch of several megabytes is staged in pieces and loaded whole, in one file", async () => {
    const lake = await tempLake();
    const bus = await openEmbeddedBus({ dir: join(lake.dir, "bus") });
    try {
      const topic = await bus.topic("events");
      // About 3.5 MB: more than three of the pieces the loader copies from the bus at a time.
      const padding = "x".repeat(1_000);
      const lines = Array.from({ length: 3_000 }, (_, i) =>
        JSON.stringify({ ...JSON.parse(event(`big${i}`)), properties: { padding } }),
      );
      for (let i = 0; i < lines.length; i += 500) await topic.append(lines.slice(i, i + 500));
      const loader = eventsLoader(lake, topic);
      await loader.init();
      assert.equal(await loader.loadAvailable(), 3_000);
      assert.deepEqual(await countRows(lake), [3_000, 3_000]);
      assert.equal((await lake.catalog.liveFiles("events")).length, 1, "one batch, one file");
      const padded = await lake.warehouse.query(
        "SELECT count(*) FROM events WHERE length(properties->>'padding') = 1000",
      );
      assert.deepEqual(padded.rows, [[3_000]]);
    } finally {
      await bus.close();
      await lake.close();
    }
  });

  test("a failed commit leaves no files and no position change; the retry loads the batch once", async () => {
    const lake = await tempLake();
    const bus = await openEmbeddedBus({ dir: join(lake.dir, "bus") });
    try {
      const topic = await bus.topic("events");
      await topic.append(["a", "b", "c"].map((id) => event(id)));
      let failNext = true;
      const flaky: Catalog = {
        ...lake.catalog,
        commit: async (change) => {
          if (failNext) {
            failNext = false;
            throw new Error("disk I/O error");
          }
          return lake.catalog.commit(change);
        },
      };
      const loader = eventsLoader(lake, topic, { catalog: flaky });
      await loader.init();
      await assert.rejects(loader.loadAvailable(), /disk I\/O error/);
      assert.equal(await lake.catalog.offset("loader:events"), null);
      const partition = join(lake.lakeRoot, "events", "dt=2026-11-20");
      assert.deepEqual(await readdir(partition), [], "the failed attempt's files are gone");
      assert.equal(await loader.loadAvailable(), 3);
      assert.deepEqual(await countRows(lake), [3, 3]);
      assert.equal((await readdir(partition)).length, 1);
    } finally {
      await bus.close();
      await lake.close();
    }
  });

  test("the background loop picks up new records and reports no lag", async () => {
    const lake = await tempLake();
    const bus = await openEmbeddedBus({ dir: join(lake.dir, "bus") });
    try {
      const topic = await bus.topic("events");
      const loader = eventsLoader(lake, topic, { flushIntervalMs: 20 });
      await loader.init();
      loader.start();
      await topic.append([event("x1"), event("x2")]);
      const deadline = Date.now() + 10_000;
      while (loader.status().loadedRecords < 2 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await loader.stop();
      assert.equal(loader.status().loadedRecords, 2);
      assert.equal(loader.status().healthy, true);
      assert.equal(loader.status().lagBytes, 0);
    } finally {
      await bus.close();
      await lake.close();
    }
  });

  test("staging files left by a crashed loader are removed at start; other tables' and lakes' are not", async () => {
    const lake = await tempLake();
    const other = await tempLake();
    const bus = await openEmbeddedBus({ dir: join(lake.dir, "bus") });
    try {
      const mine = stagingFor(lake.lakeRoot, "events");
      const otherTable = stagingFor(lake.lakeRoot, "events_rejected");
      const otherLake = stagingFor(other.lakeRoot, "events");
      const leftovers = [mine, otherTable, otherLake].map(({ dir, prefix }) =>
        join(dir, `${prefix}0.ndjson`),
      );
      for (const path of leftovers) {
        await mkdir(join(path, ".."), { recursive: true });
        await writeFile(path, "{}\n");
      }
      const loader = eventsLoader(lake, await bus.topic("events"));
      await loader.init();
      const exists = async (path: string) =>
        (await readdir(join(path, ".."))).includes(path.split("/").at(-1) as string);
      assert.deepEqual(await Promise.all(leftovers.map(exists)), [false, true, true]);
      for (const path of leftovers) await rm(path, { force: true });
    } finally {
      await bus.close();
      await lake.close();
      await other.close();
    }
  });
});
