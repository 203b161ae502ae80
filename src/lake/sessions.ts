import type { DuckDBConnection } from "@duckdb/node-api";
import type { Catalog, TableDef } from "../catalog/index.js";
import { sqlIdent, sqlString } from "../warehouse/index.js";

/** The columns sessions need; a table without them (events_rejected, loaded files) is left alone. */
const SESSION_COLUMNS = ["session_id", "anonymous_id", "user_id", "ts"];

/** The temp table of a batch's session assignments. */
const SESSIONS = "batch_sessions";

/** How often, by default, visitors idle past twice the timeout are dropped from the carry-over state. */
const PRUNE_INTERVAL_MS = 60_000;

export const hasSessionColumns = (table: TableDef): boolean =>
  SESSION_COLUMNS.every((name) => table.columns.some((column) => column.name === name));

/**
 * A visitor's latest session: the time of its last event (ms since the epoch), and either the
 * time of its first, which names it (see `sessionize`), or its id as read from the lake.
 */
interface OpenSession {
  lastMs: number;
  startMs?: number;
  sessionId?: string;
}

/**
 * Sessions by inactivity: an event that arrives without a session id (the client's own, as
 * Snowplow's `sid` or PostHog's `$session_id`, is kept) joins the latest session of its visitor
 * (`anonymous_id`, else `user_id`) unless more than the timeout passed since that session's
 * last event; then it starts a new one.
 *
 * This runs in the loader, on each micro-batch in event-time order, so events that arrive out
 * of order within a flush still get the right session. What carries over between batches is
 * each visitor's latest session and time, in a map in memory; at start it is rebuilt from the
 * lake, so a restart continues sessions instead of splitting them.
 *
 * The assignment is computed here rather than in SQL: window functions and joins against the
 * carry-over state cost DuckDB 15 ms per flush of a few events (half the loader's time at a
 * trickle), while a batch's visitors are a few lookups in a map. The batch's rows that need a
 * session are read out (three narrow columns) and their sessions appended back.
 *
 * A new session's id is derived from the visitor and its first event's time (md5 of
 * `visitor@epoch_ms`), so loading the same batch again, after a crash before its commit, names
 * the sessions the same.
 */
export class Sessionizer {
  readonly #timeoutMs: number;
  readonly #pruneIntervalMs: number;
  readonly #open = new Map<string, OpenSession>();
  /** The batch's latest session per visitor, applied by `remember` once the batch is committed. */
  #batchLatest = new Map<string, OpenSession>();
  #prunedAt = Date.now();

  constructor(timeoutMs: number, options: { pruneIntervalMs?: number } = {}) {
    this.#timeoutMs = timeoutMs;
    this.#pruneIntervalMs = options.pruneIntervalMs ?? PRUNE_INTERVAL_MS;
  }

  /** Visitors whose latest session carries over to the next batch. */
  get visitors(): number {
    return this.#open.size;
  }

  /** Fills the carry-over state from the lake's latest sessions (the last two days loaded). */
  async restore(
    connection: DuckDBConnection,
    catalog: Catalog,
    table: TableDef,
    lakeRoot: string,
  ): Promise<void> {
    this.#open.clear();
    const files = await catalog.liveFiles(table.name);
    const days = [...new Set(files.map((file) => file.partition))].sort().slice(-2);
    const recent = files.filter((file) => days.includes(file.partition));
    if (recent.length === 0) return;
    const paths = recent.map((file) => sqlString(`${lakeRoot}/${file.path}`)).join(", ");
    const reader = await connection.runAndReadAll(
      `WITH lake AS (
         SELECT coalesce(anonymous_id, user_id) AS visitor, ts, session_id
         FROM read_parquet([${paths}], hive_partitioning = false)
         WHERE session_id IS NOT NULL AND coalesce(anonymous_id, user_id) IS NOT NULL
       )
       SELECT visitor, CAST(epoch_ms(max(ts)) AS DOUBLE), arg_max(session_id, ts) FROM lake
       WHERE ts >= (SELECT max(ts) FROM lake) - to_milliseconds(${this.#timeoutMs})
       GROUP BY visitor`,
    );
    // No rows give no columns at all.
    const [visitors = [], lastMs = [], sessionIds = []] = reader.getColumns() as [
      string[]?,
      number[]?,
      string[]?,
    ];
    for (let index = 0; index < visitors.length; index++) {
      this.#keep(visitors[index] as string, {
        lastMs: lastMs[index] as number,
        sessionId: sessionIds[index] as string,
      });
    }
  }

  /**
   * Assigns the sessions of the batch in temp table `batch` (its `rowid`s number the rows): the
   * assignments go to temp table `batch_sessions` (one narrow row per event that needed one), and
   * the returned SQL selects the batch with them filled in.
   */
  async sessionize(connection: DuckDBConnection, batch: string): Promise<string> {
    // Each visitor's rows together, in event-time order (ties in batch order).
    const reader = await connection.runAndReadAll(
      `SELECT CAST(rowid AS INTEGER) AS row_id, coalesce(anonymous_id, user_id) AS visitor,
         CAST(epoch_ms(ts) AS DOUBLE) AS ms
       FROM ${sqlIdent(batch)}
       WHERE session_id IS NULL AND visitor IS NOT NULL
       ORDER BY visitor, ms, row_id`,
    );
    // No rows give no columns at all.
    const [rowIds = [], visitors = [], times = []] = reader.getColumns() as [number[]?, string[]?, number[]?];
    await connection.run(
      `CREATE OR REPLACE TEMP TABLE ${SESSIONS} (row_id INTEGER, start_ms DOUBLE, open_session VARCHAR)`,
    );
    const appender = await connection.createAppender(SESSIONS, "main", "temp");
    this.#batchLatest = new Map();
    let session: OpenSession | undefined;
    for (let index = 0; index < rowIds.length; index++) {
      const visitor = visitors[index] as string;
      const ms = times[index] as number;
      // The session before this event: the visitor's previous one in the batch, else its open
      // one. The event joins it if it lies within the timeout of its last event, before or after
      // it: an open session may have later events than a batch of late ones.
      const previous = index > 0 && visitors[index - 1] === visitor ? session : this.#open.get(visitor);
      session =
        previous !== undefined && Math.abs(ms - previous.lastMs) <= this.#timeoutMs
          ? { ...previous, lastMs: ms }
          : { lastMs: ms, startMs: ms };
      appender.appendInteger(rowIds[index] as number);
      if (session.sessionId === undefined) {
        appender.appendDouble(session.startMs as number);
        appender.appendNull();
      } else {
        appender.appendNull();
        appender.appendVarchar(session.sessionId);
      }
      appender.endRow();
      this.#batchLatest.set(visitor, session);
    }
    appender.closeSync();
    // md5 in SQL, vectorised: one per row costs JavaScript's crypto 2 µs.
    return `SELECT batch.* REPLACE (coalesce(
        batch.session_id,
        sessions.open_session,
        md5(coalesce(batch.anonymous_id, batch.user_id) || '@' || CAST(sessions.start_ms AS BIGINT))
      ) AS session_id)
      FROM ${sqlIdent(batch)} AS batch LEFT JOIN ${SESSIONS} AS sessions ON sessions.row_id = batch.rowid`;
  }

  /**
   * After the batch is committed: its visitors' latest sessions carry over to the next batch; a
   * later event already in the state (a batch of late events) wins. Once a minute, visitors idle
   * past twice the timeout are dropped (they start afresh anyway), which bounds the state.
   */
  remember(): void {
    for (const [visitor, latest] of this.#batchLatest) this.#keep(visitor, latest);
    this.#batchLatest = new Map();
    if (Date.now() - this.#prunedAt < this.#pruneIntervalMs) return;
    let latestMs = Number.NEGATIVE_INFINITY;
    for (const open of this.#open.values()) latestMs = Math.max(latestMs, open.lastMs);
    const oldest = latestMs - 2 * this.#timeoutMs;
    for (const [visitor, open] of this.#open) if (open.lastMs < oldest) this.#open.delete(visitor);
    this.#prunedAt = Date.now();
  }

  /** Records a visitor's session unless the state already holds a later one. */
  #keep(visitor: string, session: OpenSession): void {
    const known = this.#open.get(visitor);
    if (known !== undefined && known.lastMs > session.lastMs) return;
    this.#open.set(visitor, session);
  }
}
