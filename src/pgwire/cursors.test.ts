import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type DuckDBValue, INTEGER } from "@duckdb/node-api";
import { Cursor, CursorError, parseCursorStatement, type StartStream } from "./cursors.js";

describe("SQL cursors", () => {
  test("reads DECLARE, FETCH, MOVE and CLOSE as clients send them", () => {
    assert.deepEqual(parseCursorStatement('DECLARE "c_7f1" CURSOR WITHOUT HOLD FOR SELECT 1'), {
      kind: "declare",
      name: "c_7f1",
      hold: false,
      query: "SELECT 1",
    });
    assert.deepEqual(
      parseCursorStatement('declare "SQL_CUR0x1" cursor with hold for select a,\n b from t;'),
      { kind: "declare", name: "SQL_CUR0x1", hold: true, query: "select a,\n b from t" },
    );
    assert.equal(parseCursorStatement("DECLARE _psql_cursor NO SCROLL CURSOR FOR SELECT 1")?.kind, "declare");
    assert.deepEqual(parseCursorStatement('FETCH FORWARD 2000 FROM "c_7f1"'), {
      kind: "fetch",
      name: "c_7f1",
      count: 2000,
    });
    assert.deepEqual(parseCursorStatement("fetch 100 in C"), { kind: "fetch", name: "c", count: 100 });
    assert.deepEqual(parseCursorStatement("FETCH c"), { kind: "fetch", name: "c", count: 1 });
    assert.equal(parseCursorStatement("FETCH ALL FROM c")?.kind, "fetch");
    assert.equal((parseCursorStatement("FETCH FORWARD ALL IN c") as { count: number }).count, Infinity);
    assert.deepEqual(parseCursorStatement("MOVE 5 IN c"), { kind: "move", name: "c", count: 5 });
    assert.deepEqual(parseCursorStatement("CLOSE ALL"), { kind: "close", name: null });
    assert.deepEqual(parseCursorStatement('CLOSE "C"'), { kind: "close", name: "C" });
    assert.equal(parseCursorStatement("SELECT 1"), null);
  });

  test("refuses what a forward-only cursor cannot do, with PostgreSQL's SQLSTATEs", () => {
    const refusals: [string, string, RegExp][] = [
      ["FETCH BACKWARD 2 FROM c", "55000", /can only scan forward/],
      ["FETCH PRIOR FROM c", "55000", /can only scan forward/],
      ["FETCH ABSOLUTE 3 FROM c", "55000", /can only scan forward/],
      ["DECLARE c SCROLL CURSOR FOR SELECT 1", "0A000", /SCROLL cursors are not supported/],
      ["DECLARE c BINARY CURSOR FOR SELECT 1", "0A000", /BINARY cursors/],
      ["DECLARE c FOR SELECT 1", "42601", /syntax error in DECLARE/],
    ];
    for (const [sql, code, message] of refusals) {
      assert.throws(
        () => parseCursorStatement(sql),
        (error: Error) => error instanceof CursorError && error.code === code && message.test(error.message),
        sql,
      );
    }
  });

  /** A query of `total` rows in chunks of `chunk`, counting the chunks it has handed over. */
  function fakeQuery(total: number, chunk: number, failAt?: number) {
    const state = { handed: 0, stopped: false };
    const start: StartStream = async (sink, signal) => {
      sink.start([{ name: "n", type: INTEGER }]);
      for (let from = 0; from < total; from += chunk) {
        if (failAt !== undefined && from >= failAt) throw new Error("Conversion Error: boom");
        const rows: DuckDBValue[][] = [];
        for (let n = from; n < Math.min(total, from + chunk); n++) rows.push([n]);
        state.handed++;
        if (!(await sink.rows(rows)) || signal.aborted) {
          state.stopped = true;
          return;
        }
      }
    };
    return { start, state };
  }

  test("hands out rows in order, runs the query only as far as rows are fetched, and stops it on close", async () => {
    const { start, state } = fakeQuery(10_000, 100);
    const cursor = new Cursor(false, start);
    assert.deepEqual(await cursor.columns, [{ name: "n", type: INTEGER }]);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(state.handed, 1, "paused after its first chunk until a FETCH");
    assert.deepEqual(
      (await cursor.take(3)).map((row) => row[0]),
      [0, 1, 2],
    );
    const next = await cursor.take(250);
    assert.equal(next[0]?.[0], 3);
    assert.equal(next.at(-1)?.[0], 252);
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.ok(state.handed <= 4, `${state.handed} chunks for 253 rows`);
    cursor.close();
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(state.stopped, true);
  });

  test("ends with a short fetch, then empty ones; a failure mid-way arrives at the fetch after the rows before it", async () => {
    const whole = new Cursor(false, fakeQuery(5, 2).start);
    assert.equal((await whole.take(Number.POSITIVE_INFINITY)).length, 5);
    assert.deepEqual(await whole.take(10), []);

    const failing = new Cursor(false, fakeQuery(1000, 100, 300).start);
    assert.equal((await failing.take(300)).length, 300);
    await assert.rejects(failing.take(1), /Conversion Error: boom/);
  });
});
