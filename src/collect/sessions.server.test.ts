/**
 * Sessions as a user configures them: `session_timeout_minutes` decides how much inactivity ends a
 * visitor's session, and 0 leaves only the session ids clients send.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { basicAuth, eventually, query, startTestServer } from "../server/test-support.js";

type Server = Awaited<ReturnType<typeof startTestServer>>;

const MINUTE = 60_000;
const START = Date.parse("2026-11-20T10:00:00.000Z");

/** One visitor's track events, `minutes` after START, in one batch in the order given. */
function batch(visitor: string, minutes: number[]) {
  return {
    batch: minutes.map((minute) => ({
      type: "track",
      event: "Tick",
      messageId: `${visitor}-${minute}`,
      anonymousId: visitor,
      timestamp: new Date(START + minute * MINUTE).toISOString(),
    })),
  };
}

async function send(server: Server, body: unknown): Promise<void> {
  const response = await fetch(`${server.url}/v1/batch`, {
    method: "POST",
    headers: { authorization: basicAuth(), "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  assert.equal(response.status, 200);
}

/** The visitor's events' minutes grouped by session, in time order, once all `count` are loaded. */
async function sessionsOf(server: Server, visitor: string, count: number): Promise<string[]> {
  const sql = `SELECT session_id, event_id FROM events WHERE anonymous_id = '${visitor}' ORDER BY ts`;
  await eventually(async () => (await query(server.url, sql)).rows.length === count);
  const groups = new Map<unknown, string[]>();
  for (const [session, id] of (await query(server.url, sql)).rows) {
    const minute = String(id).slice(visitor.length + 1);
    groups.set(session, [...(groups.get(session) ?? []), minute]);
  }
  return [...groups].map(([session, minutes]) => `${session === null ? "none" : "session"}: ${minutes}`);
}

describe("session_timeout_minutes", () => {
  let fiveMinutes: Server;
  let off: Server;
  before(async () => {
    fiveMinutes = await startTestServer({ session_timeout_minutes: 5 });
    off = await startTestServer({ session_timeout_minutes: 0 });
  });
  after(async () => {
    await fiveMinutes.close();
    await off.close();
  });

  test("more inactivity than the configured timeout starts a new session, whatever order the events came in", async () => {
    // Gaps of 4, 6 and 3 minutes: under 30 minutes this would be one session.
    await send(fiveMinutes, batch("visitor-5", [13, 0, 10, 4]));
    assert.deepEqual(await sessionsOf(fiveMinutes, "visitor-5", 4), ["session: 0,4", "session: 10,13"]);
  });

  test("0 assigns no sessions: only a client's own session id is kept", async () => {
    await send(off, batch("visitor-off", [0, 1]));
    await send(off, {
      batch: [
        {
          type: "track",
          event: "Tick",
          messageId: "visitor-own-0",
          anonymousId: "visitor-own",
          context: { sessionId: "client-session" },
        },
      ],
    });
    assert.deepEqual(await sessionsOf(off, "visitor-off", 2), ["none: 0,1"]);
    await eventually(async () => {
      const own = await query(off.url, "SELECT session_id FROM events WHERE anonymous_id = 'visitor-own'");
      return own.rows.length === 1 && own.rows[0]?.[0] === "client-session";
    });
  });
});
