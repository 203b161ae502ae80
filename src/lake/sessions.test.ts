import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import { type Bus, openEmbeddedBus } from "../bus/index.js";
import { Loader } from "./loader.js";
import { Sessionizer } from "./sessions.js";
import { EVENTS, tempLake } from "./test-support.js";

const THIRTY_MINUTES = 30 * 60_000;

interface TestEvent {
  id: string;
  at: string;
  /** 2026-11-20 unless said otherwise. */
  day?: string;
  anonymousId?: string | null;
  userId?: string | null;
  sessionId?: string | null;
}

const line = (event: TestEvent) =>
  JSON.stringify({
    event_id: event.id,
    event_type: "track",
    event: "Tick",
    user_id: event.userId ?? null,
    anonymous_id: event.anonymousId === undefined ? "a1" : event.anonymousId,
    session_id: event.sessionId ?? null,
    ts: `${event.day ?? "2026-11-20"}T${event.at}:00.000Z`,
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
    properties: null,
    context: null,
    traits: null,
  });

async function withLake(run: (lake: Awaited<ReturnType<typeof tempLake>>, bus: Bus) => Promise<void>) {
  const lake = await tempLake();
  const bus = await openEmbeddedBus({ dir: join(lake.dir, "bus") });
  try {
    await run(lake, bus);
  } finally {
    await bus.close();
    await lake.close();
  }
}

async function startLoader(lake: Awaited<ReturnType<typeof tempLake>>, bus: Bus): Promise<Loader> {
  const loader = new Loader({
    topic: await bus.topic("events"),
    catalog: lake.catalog,
    engine: lake.engine,
    lakeRoot: lake.lakeRoot,
    table: EVENTS,
    sessionTimeoutMs: THIRTY_MINUTES,
  });
  await loader.init();
  return loader;
}

/** event_id → session_id of every loaded event. */
async function sessions(lake: Awaited<ReturnType<typeof tempLake>>): Promise<Map<string, string | null>> {
  const result = await lake.warehouse.query("SELECT event_id, session_id FROM events ORDER BY event_id");
  return new Map(result.rows.map(([id, session]) => [String(id), session as string | null]));
}

describe("sessions", () => {
  test("30 minutes of inactivity starts a new session, whatever order a batch arrives in", async () => {
    await withLake(async (lake, bus) => {
      const topic = await bus.topic("events");
      await topic.append([
        line({ id: "e3", at: "10:25" }),
        line({ id: "e1", at: "10:00" }),
        line({ id: "e4", at: "11:10" }),
        line({ id: "e2", at: "10:20" }),
        line({ id: "b1", at: "10:05", anonymousId: "b" }),
      ]);
      const loader = await startLoader(lake, bus);
      await loader.loadAvailable();
      const ids = await sessions(lake);
      assert.ok(ids.get("e1"));
      assert.equal(ids.get("e2"), ids.get("e1"));
      assert.equal(ids.get("e3"), ids.get("e1"));
      assert.notEqual(ids.get("e4"), ids.get("e1"), "45 minutes after e3: a new session");
      assert.ok(ids.get("b1"));
      assert.notEqual(ids.get("b1"), ids.get("e1"), "another visitor, another session");
    });
  });

  test("a session continues across batches and across a restart of the loader", async () => {
    await withLake(async (lake, bus) => {
      const topic = await bus.topic("events");
      await topic.append([line({ id: "e1", at: "10:00" })]);
      const first = await startLoader(lake, bus);
      await first.loadAvailable();
      await topic.append([line({ id: "e2", at: "10:15" })]);
      await first.loadAvailable();

      // A new loader, as after a restart, knows the open sessions from the lake only.
      await topic.append([line({ id: "e3", at: "10:40" }), line({ id: "e4", at: "12:00" })]);
      const second = await startLoader(lake, bus);
      await second.loadAvailable();
      const ids = await sessions(lake);
      assert.equal(ids.get("e2"), ids.get("e1"));
      assert.equal(ids.get("e3"), ids.get("e1"));
      assert.notEqual(ids.get("e4"), ids.get("e1"));
    });
  });

  test("a batch of late events does not take a visitor's open session back in time", async () => {
    await withLake(async (lake, bus) => {
      const topic = await bus.topic("events");
      const loader = await startLoader(lake, bus);
      await topic.append([line({ id: "e1", at: "10:00" }), line({ id: "e2", at: "10:20" })]);
      await loader.loadAvailable();
      // Sent late, from an offline device: an hour before the open session, so a session of its own.
      await topic.append([line({ id: "late", at: "09:00" })]);
      await loader.loadAvailable();
      // 20 minutes after e2: still e2's session, whatever the late batch said.
      await topic.append([line({ id: "e3", at: "10:40" })]);
      await loader.loadAvailable();
      const ids = await sessions(lake);
      assert.equal(ids.get("e2"), ids.get("e1"));
      assert.notEqual(ids.get("late"), ids.get("e1"));
      assert.equal(ids.get("e3"), ids.get("e1"));
    });
  });

  test("visitors idle past twice the timeout leave the carry-over state", async () => {
    const lake = await tempLake();
    const connection = await lake.engine.connect();
    try {
      const sessionizer = new Sessionizer(THIRTY_MINUTES, { pruneIntervalMs: 0 });
      const load = async (rows: [string, string][]) => {
        const values = rows.map(([visitor, at]) => `('${visitor}', TIMESTAMPTZ '2026-11-20 ${at}:00+00')`);
        await connection.run(
          `CREATE OR REPLACE TEMP TABLE batch AS
           SELECT visitor AS anonymous_id, NULL::VARCHAR AS user_id, ts, NULL::VARCHAR AS session_id
           FROM (VALUES ${values.join(", ")}) AS rows(visitor, ts)`,
        );
        await sessionizer.sessionize(connection, "batch");
        sessionizer.remember();
      };
      await load([
        ["a", "10:00"],
        ["b", "10:00"],
      ]);
      assert.equal(sessionizer.visitors, 2);
      // 70 minutes on: a has been idle for more than twice the timeout, b came back.
      await load([["b", "11:10"]]);
      assert.equal(sessionizer.visitors, 1);
    } finally {
      connection.closeSync();
      await lake.close();
    }
  });

  test("a batch of one day is written into that day's folder, a batch of two into both", async () => {
    await withLake(async (lake, bus) => {
      const topic = await bus.topic("events");
      const loader = await startLoader(lake, bus);
      await topic.append([line({ id: "d1", at: "10:00" }), line({ id: "d2", at: "23:59" })]);
      await loader.loadAvailable();
      await topic.append([
        line({ id: "d3", at: "23:59", anonymousId: "b" }),
        line({ id: "d4", day: "2026-11-21", at: "00:10", anonymousId: "b" }),
      ]);
      await loader.loadAvailable();
      const files = (await lake.catalog.liveFiles("events")).map((file) => file.path).sort();
      assert.equal(files.length, 3);
      assert.deepEqual(
        files.map((path) => path.split("/").slice(0, 2).join("/")),
        ["events/dt=2026-11-20", "events/dt=2026-11-20", "events/dt=2026-11-21"],
      );
      const result = await lake.warehouse.query(
        "SELECT event_id, CAST(dt AS VARCHAR) FROM events ORDER BY event_id",
      );
      assert.deepEqual(result.rows, [
        ["d1", "2026-11-20"],
        ["d2", "2026-11-20"],
        ["d3", "2026-11-20"],
        ["d4", "2026-11-21"],
      ]);
      const ids = await sessions(lake);
      assert.equal(ids.get("d4"), ids.get("d3"), "a session goes on past midnight");
    });
  });

  test("a client's own session id is kept, the user id keys server-side events, and no visitor means no session", async () => {
    await withLake(async (lake, bus) => {
      const topic = await bus.topic("events");
      await topic.append([
        line({ id: "c1", at: "10:00", sessionId: "client-session" }),
        line({ id: "u1", at: "10:00", anonymousId: null, userId: "user-7" }),
        line({ id: "u2", at: "10:10", anonymousId: null, userId: "user-7" }),
        line({ id: "n1", at: "10:00", anonymousId: null, userId: null }),
      ]);
      const loader = await startLoader(lake, bus);
      await loader.loadAvailable();
      const ids = await sessions(lake);
      assert.equal(ids.get("c1"), "client-session");
      assert.ok(ids.get("u1"));
      assert.equal(ids.get("u2"), ids.get("u1"));
      assert.equal(ids.get("n1"), null);
    });
  });

  test("a batch in which no event needs a session loads, and so does a restart over such a lake", async () => {
    await withLake(async (lake, bus) => {
      const topic = await bus.topic("events");
      await topic.append([
        line({ id: "c1", at: "10:00", anonymousId: null, sessionId: "client-session" }),
        line({ id: "n1", at: "10:00", anonymousId: null }),
      ]);
      assert.equal(await (await startLoader(lake, bus)).loadAvailable(), 2);
      // No visitor in the lake: the restarted loader starts with no open sessions.
      await topic.append([line({ id: "e1", at: "10:05" })]);
      assert.equal(await (await startLoader(lake, bus)).loadAvailable(), 1);
      const ids = await sessions(lake);
      assert.equal(ids.get("c1"), "client-session");
      assert.equal(ids.get("n1"), null);
      assert.ok(ids.get("e1"));
    });
  });

  test("loading the same events again names their sessions the same", async () => {
    const names: Array<Map<string, string | null>> = [];
    for (let run = 0; run < 2; run++) {
      await withLake(async (lake, bus) => {
        const topic = await bus.topic("events");
        await topic.append([line({ id: "e1", at: "10:00" }), line({ id: "e2", at: "11:00" })]);
        const loader = await startLoader(lake, bus);
        await loader.loadAvailable();
        names.push(await sessions(lake));
      });
    }
    assert.deepEqual(names[0], names[1]);
  });
});
