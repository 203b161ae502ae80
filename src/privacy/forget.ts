/**
 * The right to be forgotten: every row of a user, in every lake table, rewritten away.
 *
 * A user's rows are those with their `user_id` (as sent, or as its HMAC token when the policy hashes
 * user ids), and those of the anonymous ids linked to them: an anonymous id that appears on a row
 * with the user's id (identify, or any event that carries both). A linked anonymous id's rows that
 * name another user are kept. A table whose user ids are in a column of another name is named in
 * `forget_user_columns` (a loaded `crm_contacts.customer_id`). Tables without those columns but with
 * a `payload` (the quarantine `events_rejected`) lose the rows whose payload carries any of the ids.
 *
 * Each table is rewritten and committed on its own (atomic per table). The deletion log records who
 * asked, when, and the rows removed per table, with the user only as an HMAC token. Forgetting a
 * user twice removes nothing the second time: the request is idempotent.
 */
import { randomUUID } from "node:crypto";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { AccountStore, appDbPath } from "../accounts/index.js";
import type { TableDef } from "../catalog/index.js";
import { QualityStore, qualityDbPath } from "../quality/store.js";
import { sqlIdent, sqlString } from "../warehouse/index.js";
import { piiToken } from "./obfuscate.js";
import { PolicyError } from "./policy.js";
import { type LakeAccess, type RewriteResult, rewriteTable, sqlIn } from "./rewrite.js";
import { appendDeletion, type DeletionRecord } from "./store.js";

export interface ForgetRequest {
  userId: string;
  requestedBy: string;
  secret: string;
  dataDir: string;
  /** Tables whose user ids are in a column not named `user_id`: table → column. */
  userColumns: Readonly<Record<string, string>>;
}

export async function forgetUser(lake: LakeAccess, request: ForgetRequest): Promise<DeletionRecord> {
  const requestedAt = new Date().toISOString();
  const userIds = withTokens([request.userId], request.secret);
  const tables = await lake.catalog.tables();
  // A misnamed column is found before any table is rewritten, not half-way.
  const userColumn = new Map(tables.map((table) => [table.name, userColumnOf(table, request.userColumns)]));
  const linked = await linkedAnonymousIds(lake, tables, userColumn, userIds);
  const anonymousIds = withTokens(linked, request.secret);
  const rows: Record<string, number> = {};
  for (const table of tables) {
    const deleteWhere = userRows(table, userColumn.get(table.name), userIds, anonymousIds);
    if (deleteWhere === null) continue;
    const result: RewriteResult = await rewriteTable(lake, {
      table,
      operation: "forget",
      deleteWhere,
      changesWhere: deleteWhere,
    });
    if (result.rowsDeleted > 0) rows[table.name] = result.rowsDeleted;
  }
  const ids = [...userIds, ...anonymousIds];
  // Profiles keep a column's top values, minimum and maximum, and check results a sample of rows,
  // all read by viewers; SQL that users ran may name the user (a filter, an error quoting the id).
  forgetInStore(qualityDbPath(request.dataDir), (file) => new QualityStore(file), ids);
  forgetInStore(appDbPath(request.dataDir), (file) => new AccountStore(file), ids);
  const record: DeletionRecord = {
    id: randomUUID(),
    requested_at: requestedAt,
    finished_at: new Date().toISOString(),
    requested_by: request.requestedBy,
    subject: piiToken(request.secret, request.userId),
    linked_anonymous_ids: linked.length,
    rows,
    total_rows: Object.values(rows).reduce((sum, count) => sum + count, 0),
  };
  await appendDeletion(request.dataDir, record);
  return record;
}

/** Replaces the ids with `(forgotten)` in a SQLite store of the data dir, when it exists. */
function forgetInStore(
  file: string,
  open: (file: string) => { forgetValues(ids: readonly string[]): number; close(): void },
  ids: readonly string[],
): void {
  if (!existsSync(file)) return;
  const store = open(file);
  try {
    store.forgetValues(ids);
  } finally {
    store.close();
  }
}

/** Each id and its HMAC token: a table may hold either, depending on the policy when it was written. */
function withTokens(ids: readonly string[], secret: string): string[] {
  const all = new Set<string>();
  for (const id of ids) {
    all.add(id);
    all.add(piiToken(secret, id));
  }
  return [...all];
}

function columnsOf(table: TableDef): Set<string> {
  return new Set(table.columns.map((column) => column.name));
}

/** The column holding a table's user ids: the configured one, else `user_id`; undefined for none. */
function userColumnOf(table: TableDef, configured: Readonly<Record<string, string>>): string | undefined {
  const columns = columnsOf(table);
  const named = configured[table.name];
  if (named === undefined) return columns.has("user_id") ? "user_id" : undefined;
  if (!columns.has(named)) {
    throw new PolicyError(
      `forget_user_columns.${table.name}: the table has no column ${named} (it has ${[...columns].join(", ")})`,
    );
  }
  return named;
}

/**
 * Anonymous ids that appear on a row with one of the user's ids, in any table that has both; and
 * the ids an alias call of the user's names as its previous one (Segment's `context.previousId`).
 */
async function linkedAnonymousIds(
  lake: LakeAccess,
  tables: TableDef[],
  userColumn: ReadonlyMap<string, string | undefined>,
  userIds: string[],
): Promise<string[]> {
  const found = new Set<string>();
  const connection = await lake.engine.connect();
  try {
    for (const table of tables) {
      const columns = columnsOf(table);
      const user = userColumn.get(table.name);
      if (user === undefined || !columns.has("anonymous_id")) continue;
      const files = await lake.catalog.liveFiles(table.name);
      if (files.length === 0) continue;
      const paths = files.map((file) => sqlString(join(lake.lakeRoot, file.path))).join(", ");
      const ids = ["CAST(anonymous_id AS VARCHAR)"];
      if (columns.has("context") && columns.has("event_type")) {
        ids.push(`CASE WHEN event_type = 'alias' THEN json_extract_string(context, '$.previousId') END`);
      }
      const result = await connection.runAndReadAll(
        `SELECT DISTINCT id
         FROM read_parquet([${paths}], union_by_name = true, hive_partitioning = false),
              unnest([${ids.join(", ")}]) AS linked(id)
         WHERE ${sqlIn(`CAST(${sqlIdent(user)} AS VARCHAR)`, userIds)} AND id IS NOT NULL`,
      );
      for (const [id] of result.getRowsJson() as [string][]) found.add(id);
    }
  } finally {
    connection.closeSync();
  }
  return [...found];
}

/** The SQL predicate of the user's rows in a table, or null when the table cannot hold any. */
function userRows(
  table: TableDef,
  userColumn: string | undefined,
  userIds: string[],
  anonymousIds: string[],
): string | null {
  const columns = columnsOf(table);
  const user = `CAST(${sqlIdent(userColumn ?? "user_id")} AS VARCHAR)`;
  const anonymous = `CAST(${sqlIdent("anonymous_id")} AS VARCHAR)`;
  if (userColumn !== undefined && columns.has("anonymous_id")) {
    return `(${sqlIn(user, userIds)} OR (${sqlIn(anonymous, anonymousIds)} AND (${user} IS NULL OR ${sqlIn(user, userIds)})))`;
  }
  if (userColumn !== undefined) return sqlIn(user, userIds);
  if (columns.has("anonymous_id")) return sqlIn(anonymous, anonymousIds);
  if (columns.has("payload")) {
    // A quarantined payload is the event's text: JSON (`"id"`), a pixel's query string (`=id`), or
    // a body the collector could not read, in base64 (plain text sent with a wrong encoding).
    const base64 = "TRY(decode(from_base64(payload)))";
    const needles = [...userIds, ...anonymousIds].flatMap((id) => [
      `contains(payload, ${sqlString(JSON.stringify(id))})`,
      `regexp_matches(payload, ${sqlString(`(^|[?&])[^=&]*=${escapeRegex(encodeURIComponent(id))}(&|$)`)})`,
      `contains(${base64}, ${sqlString(JSON.stringify(id))})`,
    ]);
    return `(${needles.join(" OR ")})`;
  }
  return null;
}

function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}
