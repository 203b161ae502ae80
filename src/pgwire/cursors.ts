/**
 * SQL cursors: `DECLARE name CURSOR [WITH HOLD] FOR query`, `FETCH [FORWARD] [n | ALL] FROM name`,
 * `MOVE …` and `CLOSE name | ALL`. Clients read large results with them a batch at a time:
 * psycopg2's named cursors (and so SQLAlchemy's `stream_results`, pandas' chunked reads), psqlODBC's
 * declare/fetch mode (Tableau), pgjdbc with a fetch size outside autocommit. A cursor is the
 * warehouse's streaming query, paused between FETCHes, so it holds at most a fetch's rows plus
 * one chunk in memory; it reads one snapshot, like any statement. Cursors scan forward only, as a
 * PostgreSQL cursor declared without SCROLL does.
 */
import type { DuckDBValue } from "@duckdb/node-api";
import type { ResultColumn } from "../warehouse/index.js";
import { identifierName, PgError } from "./statements.js";

export type CursorStatement =
  | { kind: "declare"; name: string; hold: boolean; query: string }
  | { kind: "fetch" | "move"; name: string; count: number }
  | { kind: "close"; name: string | null };

/** A cursor statement that cannot run, with PostgreSQL's SQLSTATE. */
export class CursorError extends PgError {}

const NAME = String.raw`("(?:[^"]|"")+"|[A-Za-z_][\w$]*)`;
const DECLARE = new RegExp(
  String.raw`^declare\s+${NAME}\s+((?:(?:binary|asensitive|insensitive|no\s+scroll|scroll)\s+)*)cursor\s+(?:(with|without)\s+hold\s+)?for\s+([\s\S]+)$`,
  "i",
);
const FETCH = new RegExp(String.raw`^(fetch|move)\s+(?:([\s\S]*?)\s+)?(?:(?:from|in)\s+)?${NAME}$`, "i");
const CLOSE = new RegExp(String.raw`^close\s+(?:all|${NAME})$`, "i");

/** The cursor statement `sql` is, or null; throws CursorError for forms that cannot run here. */
export function parseCursorStatement(sql: string): CursorStatement | null {
  const text = sql
    .trim()
    .replace(/;+\s*$/, "")
    .trim();
  const word = /^\w+/.exec(text)?.[0]?.toLowerCase();
  if (word === "declare") {
    const match = DECLARE.exec(text);
    if (!match) throw new CursorError(`syntax error in DECLARE: ${text.slice(0, 80)}`, "42601");
    const options = (match[2] ?? "").toLowerCase();
    if (/\bbinary\b/.test(options)) throw new CursorError("BINARY cursors are not supported", "0A000");
    if (/(^|\s)scroll\b/.test(options.replace(/no\s+scroll/g, ""))) {
      throw new CursorError("SCROLL cursors are not supported: cursors here scan forward only", "0A000");
    }
    return {
      kind: "declare",
      name: identifierName(match[1] as string),
      hold: match[3]?.toLowerCase() === "with",
      query: (match[4] as string).trim(),
    };
  }
  if (word === "fetch" || word === "move") {
    const match = FETCH.exec(text);
    if (!match) throw new CursorError(`syntax error in ${word.toUpperCase()}: ${text.slice(0, 80)}`, "42601");
    return {
      kind: word,
      name: identifierName(match[3] as string),
      count: fetchCount((match[2] ?? "").trim().toLowerCase()),
    };
  }
  if (word === "close") {
    const match = CLOSE.exec(text);
    if (!match) throw new CursorError(`syntax error in CLOSE: ${text.slice(0, 80)}`, "42601");
    return { kind: "close", name: match[1] === undefined ? null : identifierName(match[1]) };
  }
  return null;
}

/** How many rows a FETCH direction asks for; Infinity for ALL. Backward directions are refused. */
function fetchCount(direction: string): number {
  const words = direction.split(/\s+/).filter((part) => part !== "");
  if (words.length === 0 || (words.length === 1 && (words[0] === "next" || words[0] === "forward"))) return 1;
  const last = words.at(-1) as string;
  const forward =
    words.length === 1 || (words.length === 2 && (words[0] === "forward" || words[0] === "relative"));
  if (forward && last === "all") return Number.POSITIVE_INFINITY;
  if (forward && /^\+?\d+$/.test(last)) return Number(last);
  throw new CursorError(
    `cursor can only scan forward: FETCH ${direction.toUpperCase()} is not supported`,
    "55000",
  );
}

/** Starts a query that hands its rows over as they come, awaiting each hand-over (Warehouse.stream). */
export type StartStream = (
  sink: {
    start(columns: ResultColumn[]): void;
    rows(rows: DuckDBValue[][]): Promise<boolean>;
  },
  signal: AbortSignal,
) => Promise<unknown>;

/** A declared cursor: a running query paused until rows are taken. */
export class Cursor {
  readonly columns: Promise<ResultColumn[]>;
  /** Rows received and not taken yet, in chunks. */
  readonly #chunks: DuckDBValue[][][] = [];
  #buffered = 0;
  #wanted = 0;
  #finished = false;
  #failure: unknown = null;
  /** Wakes the query's hand-over when rows are wanted, or the cursor closed. */
  #resumeQuery: (() => void) | null = null;
  /** Wakes a waiting take when rows arrived or the query ended. */
  #rowsArrived: (() => void) | null = null;
  readonly #stop = new AbortController();

  constructor(
    readonly hold: boolean,
    start: StartStream,
  ) {
    let announce: (columns: ResultColumn[]) => void = () => {};
    this.columns = new Promise((resolve) => {
      announce = resolve;
    });
    const running = start(
      {
        start: (columns) => announce(columns),
        rows: async (rows) => {
          this.#chunks.push(rows);
          this.#buffered += rows.length;
          this.#wakeTake();
          while (this.#buffered >= this.#wanted && !this.#stop.signal.aborted) {
            await new Promise<void>((resolve) => {
              this.#resumeQuery = resolve;
            });
          }
          return !this.#stop.signal.aborted;
        },
      },
      this.#stop.signal,
    );
    // The first failure is the query's own (a SQL error surfaces at DECLARE through `columns`).
    this.columns = Promise.race([this.columns, running.then(() => this.columns)]);
    running.then(
      () => this.#finish(null),
      (error) => this.#finish(error),
    );
  }

  /** Up to `count` rows (fewer only at the end of the result). */
  async take(count: number): Promise<DuckDBValue[][]> {
    this.#wanted = count;
    this.#resumeQuery?.();
    while (this.#buffered < count && !this.#finished) {
      await new Promise<void>((resolve) => {
        this.#rowsArrived = resolve;
      });
    }
    this.#wanted = 0;
    if (this.#failure !== null && this.#buffered === 0) throw this.#failure;
    const rows: DuckDBValue[][] = [];
    while (rows.length < count && this.#chunks.length > 0) {
      const chunk = this.#chunks[0] as DuckDBValue[][];
      const room = count - rows.length;
      if (chunk.length <= room) {
        rows.push(...chunk);
        this.#chunks.shift();
      } else rows.push(...chunk.splice(0, room));
    }
    this.#buffered -= rows.length;
    return rows;
  }

  /** Stops the query; its connection and snapshot go back to the warehouse. */
  close(): void {
    this.#stop.abort();
    this.#resumeQuery?.();
  }

  #finish(error: unknown): void {
    this.#finished = true;
    if (error !== null && !this.#stop.signal.aborted) this.#failure = error;
    this.#wakeTake();
  }

  #wakeTake(): void {
    const wake = this.#rowsArrived;
    this.#rowsArrived = null;
    wake?.();
  }
}
