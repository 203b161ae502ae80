import type { DuckDBConnection } from "@duckdb/node-api";
import type { Catalog, TableDef } from "../catalog/index.js";
import { sqlIdent, sqlString } from "../warehouse/index.js";

/** The columns sessions need; a table without them (events_rejected, loaded files) is left alone. */
const SESSION_COLUMNS = ["session_id", "anonymous_id", "user_id", "ts"];

export const hasSessionColumns = (table: TableDef): boolean =>
  SESSION_COLUMNS.every((name) => table.columns.some((column) => column.name === name));

/**
 * Sessions by inactivity: an event that arrives without a session id (the client's own, as
 * Snowplow's `sid` or PostHog's `$session_id`, is kept) joins the latest session of its visitor
 * (`anonymous_id`, else `user_id`) unless more than the timeout passed since that session's
 * last event; then it starts a new one.
 *
 * This runs in the loader, on each micro-batch sorted by event time, so events that arrive out
 * of order within a flush still get the right session. What carries over between batches is
 * each visitor's latest session and time, in a DuckDB table of the loading engine; at start it
 * is rebuilt from the lake, so a restart continues sessions instead of splitting them.
 *
 * A new session's id is derived from the visitor and its first event's time (md5), so loading
 * the same batch again, after a crash before its commit, names the sessions the same.
 */
export class Sessionizer {
  readonly #state: string;
  readonly #timeoutMs: number;

  constructor(table: TableDef, timeoutMs: number) {
    this.#state = sqlIdent(`session_state_${table.name}`);
    this.#timeoutMs = timeoutMs;
  }

  /** Creates the carry-over state from the lake's latest sessions (the last two days loaded). */
  async restore(
    connection: DuckDBConnection,
    catalog: Catalog,
    table: TableDef,
    lakeRoot: string,
  ): Promise<void> {
    await connection.run(
      `CREATE OR REPLACE TABLE ${this.#state} (visitor VARCHAR PRIMARY KEY, last_ts TIMESTAMPTZ, session_id VARCHAR)`,
    );
    const files = await catalog.liveFiles(table.name);
    const days = [...new Set(files.map((file) => file.partition))].sort().slice(-2);
    const recent = files.filter((file) => days.includes(file.partition));
    if (recent.length === 0) return;
    const paths = recent.map((file) => sqlString(`${lakeRoot}/${file.path}`)).join(", ");
    await connection.run(
      `INSERT INTO ${this.#state}
       WITH lake AS (
         SELECT coalesce(anonymous_id, user_id) AS visitor, ts, session_id
         FROM read_parquet([${paths}], hive_partitioning = false)
         WHERE session_id IS NOT NULL AND coalesce(anonymous_id, user_id) IS NOT NULL
       )
       SELECT visitor, max(ts), arg_max(session_id, ts) FROM lake
       WHERE ts >= (SELECT max(ts) FROM lake) - to_milliseconds(${this.#timeoutMs})
       GROUP BY visitor`,
    );
  }

  /**
   * Creates the temp table `name` holding the batch `source` (a query over the batch's rows)
   * with session ids filled in, plus `_visitor` and `_assigned` for `remember`.
   */
  async sessionize(connection: DuckDBConnection, source: string, name: string): Promise<void> {
    const timeout = this.#timeoutMs;
    await connection.run(
      `CREATE OR REPLACE TEMP TABLE ${sqlIdent(name)} AS
       WITH batch AS (
         SELECT *, row_number() OVER () AS _row, coalesce(anonymous_id, user_id) AS _visitor FROM (${source})
       ),
       pending AS (
         SELECT batch._row, batch._visitor, batch.ts, state.last_ts AS state_ts, state.session_id AS state_session,
           lag(batch.ts) OVER (PARTITION BY batch._visitor ORDER BY batch.ts, batch._row) AS previous_ts
         FROM batch LEFT JOIN ${this.#state} AS state ON state.visitor = batch._visitor
         WHERE batch.session_id IS NULL AND batch._visitor IS NOT NULL
       ),
       flagged AS (
         SELECT *,
           CASE WHEN previous_ts IS NULL
             THEN NOT coalesce(abs(epoch_ms(ts) - epoch_ms(state_ts)) <= ${timeout}, false)
             ELSE epoch_ms(ts) - epoch_ms(previous_ts) > ${timeout}
           END AS starts
         FROM pending
       ),
       numbered AS (
         SELECT *, sum(starts::INTEGER) OVER (
           PARTITION BY _visitor ORDER BY ts, _row ROWS UNBOUNDED PRECEDING
         ) AS session_number
         FROM flagged
       ),
       named AS (
         SELECT _row,
           CASE WHEN session_number = 0 THEN state_session
             ELSE md5(_visitor || '@' || epoch_ms(min(ts) OVER (PARTITION BY _visitor, session_number)))
           END AS assigned
         FROM numbered
       )
       SELECT batch.* EXCLUDE (_row) REPLACE (coalesce(batch.session_id, named.assigned) AS session_id),
         named.assigned IS NOT NULL AS _assigned
       FROM batch LEFT JOIN named USING (_row)`,
    );
  }

  /** After the batch is committed: its visitors' latest sessions carry over to the next batch. */
  async remember(connection: DuckDBConnection, name: string): Promise<void> {
    await connection.run(
      `INSERT INTO ${this.#state}
       SELECT _visitor, max(ts), arg_max(session_id, ts) FROM ${sqlIdent(name)} WHERE _assigned GROUP BY _visitor
       ON CONFLICT (visitor) DO UPDATE SET
         session_id = CASE WHEN excluded.last_ts >= last_ts THEN excluded.session_id ELSE session_id END,
         last_ts = greatest(last_ts, excluded.last_ts)`,
    );
    // Visitors idle past the timeout start afresh anyway; forgetting them bounds the state.
    await connection.run(
      `DELETE FROM ${this.#state}
       WHERE last_ts < (SELECT max(last_ts) FROM ${this.#state}) - to_milliseconds(${2 * this.#timeoutMs})`,
    );
  }
}
