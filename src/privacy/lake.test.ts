/**
 * Forget and retention on lake tables other than the collector's: a loaded table whose files differ
 * in columns, user ids stored as tokens, and an unpartitioned table aged by a column.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { AccountStore, appDbPath } from "../accounts/index.js";
import type { TableColumn, TableDef } from "../catalog/index.js";
import { loadConfig } from "../config/index.js";
import { writeParquet } from "../lake/index.js";
import { EVENTS, tempLake } from "../lake/test-support.js";
import { eventually } from "../server/test-support.js";
import { forgetUser } from "./forget.js";
import { piiToken } from "./obfuscate.js";
import { runRetention } from "./retention.js";
import { Privacy } from "./service.js";

const SECRET = "lake-test-secret";
type Lake = Awaited<ReturnType<typeof tempLake>>;

const CONTACT_COLUMNS: TableColumn[] = [
  { name: "user_id", type: "VARCHAR" },
  { name: "email", type: "VARCHAR" },
  { name: "updated_at", type: "TIMESTAMPTZ" },
];

async function append(lake: Lake, table: TableDef, selectSql: string): Promise<void> {
  const connection = await lake.engine.connect();
  try {
    const add = await writeParquet(connection, { lakeRoot: lake.lakeRoot, table, selectSql, prefix: "test" });
    await lake.catalog.commit({ table: table.name, operation: "load", add, columns: table.columns });
  } finally {
    connection.closeSync();
  }
}

async function rows(lake: Lake, sql: string): Promise<unknown[][]> {
  return (await lake.warehouse.query(sql)).rows;
}

describe("forget and retention on any lake table", () => {
  let lake: Lake;
  const contacts: TableDef = { name: "crm_contacts", columns: CONTACT_COLUMNS, partitionBy: null };
  const contactsWithPlan: TableDef = {
    ...contacts,
    columns: [...CONTACT_COLUMNS, { name: "plan", type: "VARCHAR" }],
  };

  before(async () => {
    lake = await tempLake();
    // An older file without the plan column, then one with it: the table gained a column.
    await append(
      lake,
      contacts,
      `SELECT * FROM (VALUES ('u1', 'a@x.example', TIMESTAMPTZ '2020-01-01'), ('u2', 'b@x.example', now()))
       t(user_id, email, updated_at)`,
    );
    await append(
      lake,
      contactsWithPlan,
      "SELECT * FROM (VALUES ('u1', 'c@x.example', now(), 'pro')) t(user_id, email, updated_at, plan)",
    );
    // Events whose user ids were hashed at the door, and an anonymous visit linked by identify.
    const u1 = piiToken(SECRET, "u1");
    const event = (
      id: string,
      userId: string | null,
      anonymousId: string | null,
      type = "track",
      context = "NULL",
    ) =>
      `SELECT '${id}' AS event_id, '${type}' AS event_type, ${userId === null ? "NULL" : `'${userId}'`} AS user_id,
              ${anonymousId === null ? "NULL" : `'${anonymousId}'`} AS anonymous_id, now() AS ts, now() AS received_at,
              ${context}::JSON AS context`;
    const selects = [
      event("e1", u1, "anon-1"),
      event("e2", null, "anon-1"),
      event("e3", "u2", null),
      // An alias call names the user's earlier anonymous id; that id's visit is theirs too.
      event("e4", u1, null, "alias", `'{"previousId": "anon-old"}'`),
      event("e5", null, "anon-old"),
    ];
    const given = ["event_id", "event_type", "user_id", "anonymous_id", "ts", "received_at", "context"];
    await append(
      lake,
      EVENTS,
      `SELECT ${EVENTS.columns.map((column) => (given.includes(column.name) ? column.name : `NULL::${column.type} AS ${column.name}`)).join(", ")}
       FROM (${selects.join(" UNION ALL ")})`,
    );
  });
  after(async () => {
    await lake.close();
  });

  test("forget finds the user as sent and as a token, in files with and without newer columns", async () => {
    // A loaded table whose user ids are in a column of another name.
    const orders: TableDef = {
      name: "shop_orders",
      columns: [
        { name: "buyer", type: "VARCHAR" },
        { name: "total", type: "DOUBLE" },
      ],
      partitionBy: null,
    };
    await append(lake, orders, "SELECT * FROM (VALUES ('u1', 10.0), ('u2', 20.0)) t(buyer, total)");
    const request = { userId: "u1", requestedBy: "test", secret: SECRET, dataDir: lake.dir };
    // A misnamed column stops forget before any table is rewritten.
    await assert.rejects(
      forgetUser(lake, { ...request, userColumns: { shop_orders: "buyer_id" } }),
      /forget_user_columns\.shop_orders: the table has no column buyer_id \(it has buyer, total\)/,
    );
    assert.equal((await rows(lake, "SELECT count(*) FROM events"))[0]?.[0], 5);
    // An analyst looked the user up in the SQL editor: the query history names them and a linked id.
    const accounts = new AccountStore(appDbPath(lake.dir));
    const { user } = accounts.createUser("analyst", "editor");
    accounts.recordQuery(user.id, {
      sql: "select * from events where user_id = 'u1' or anonymous_id = 'anon-1'",
      ok: true,
      ms: 1,
      rows: 1,
      error: null,
    });
    accounts.close();
    const record = await forgetUser(lake, { ...request, userColumns: { shop_orders: "buyer" } });
    assert.deepEqual(record.rows, { crm_contacts: 2, events: 4, shop_orders: 1 });
    assert.deepEqual(await rows(lake, "SELECT buyer FROM shop_orders"), [["u2"]]);
    assert.equal(record.linked_anonymous_ids, 2);
    assert.deepEqual(await rows(lake, "SELECT user_id, email, plan FROM crm_contacts"), [
      ["u2", "b@x.example", null],
    ]);
    assert.deepEqual(await rows(lake, "SELECT event_id FROM events"), [["e3"]]);
    const reopened = new AccountStore(appDbPath(lake.dir));
    assert.deepEqual(
      reopened.history(user.id).map((entry) => entry.sql),
      ["select * from events where user_id = '(forgotten)' or anonymous_id = '(forgotten)'"],
    );
    reopened.close();
    const again = await forgetUser(lake, { ...request, userColumns: { shop_orders: "buyer" } });
    assert.equal(again.total_rows, 0);
    const log = await readFile(join(lake.dir, "privacy", "deletions.jsonl"), "utf8");
    assert.equal(log.trim().split("\n").length, 2);
    assert.ok(!log.includes('"u1"') && !log.includes("anon-1") && !log.includes("anon-old"));
  });

  test("retention ages an unpartitioned table by its time column, and hashes like the door", async () => {
    await append(
      lake,
      contactsWithPlan,
      "SELECT * FROM (VALUES ('u3', 'd@x.example', TIMESTAMPTZ '2021-06-01', 'free')) t(user_id, email, updated_at, plan)",
    );
    const rules = [
      {
        table: "crm_contacts",
        timeColumn: "updated_at",
        scrub: [{ afterDays: 365, columns: ["email"], action: "hash" as const }],
      },
    ];
    const [result] = await runRetention(lake, rules, SECRET);
    assert.equal(result?.rowsChanged, 1);
    assert.deepEqual(await rows(lake, "SELECT user_id, email FROM crm_contacts ORDER BY user_id"), [
      ["u2", "b@x.example"],
      ["u3", piiToken(SECRET, "d@x.example")],
    ]);
    const [dropped] = await runRetention(
      lake,
      [{ table: "crm_contacts", dropAfterDays: 365, timeColumn: "updated_at", scrub: [] }],
      SECRET,
    );
    assert.equal(dropped?.rowsDeleted, 1);
    assert.deepEqual(await rows(lake, "SELECT user_id FROM crm_contacts"), [["u2"]]);
    const [missing] = await runRetention(
      lake,
      [{ table: "crm_contacts", dropAfterDays: 1, scrub: [] }],
      SECRET,
    );
    assert.match(String(missing?.error), /set time_column/);
  });

  test("forget and a retention run at once on the same files: both apply, each row counted once", async () => {
    const visits: TableDef = {
      name: "visits",
      columns: [
        { name: "user_id", type: "VARCHAR" },
        { name: "seen_at", type: "TIMESTAMPTZ" },
      ],
      partitionBy: null,
    };
    // Two files, each with the forgotten user's and another user's rows, old and new.
    for (let file = 0; file < 2; file++) {
      await append(
        lake,
        visits,
        `SELECT * FROM (VALUES ('u9', TIMESTAMPTZ '2020-01-01'), ('u9', now()), ('u8', TIMESTAMPTZ '2020-01-01'),
           ('u8', now())) t(user_id, seen_at)`,
      );
    }
    const [forgot, [retained]] = await Promise.all([
      forgetUser(lake, {
        userId: "u9",
        requestedBy: "test",
        secret: SECRET,
        dataDir: lake.dir,
        userColumns: {},
      }),
      runRetention(lake, [{ table: "visits", dropAfterDays: 365, timeColumn: "seen_at", scrub: [] }], SECRET),
    ]);
    assert.equal(retained?.error, undefined);
    assert.deepEqual(await rows(lake, "SELECT user_id, seen_at > TIMESTAMPTZ '2021-01-01' FROM visits"), [
      ["u8", true],
      ["u8", true],
    ]);
    // Whichever committed second planned again on the first one's files.
    assert.equal((forgot.rows.visits ?? 0) + (retained?.rowsDeleted ?? 0), 6);
  });

  test("the server's schedule applies the rules on its own", async () => {
    const config = loadConfig({
      env: {},
      overrides: {
        data_dir: lake.dir,
        pii_secret: SECRET,
        retention: { crm_contacts: { drop_after_days: 0, time_column: "updated_at" } },
        retention_interval_minutes: 0.005,
      },
    });
    const privacy = new Privacy({ config, lake, busEnds: async () => [] });
    privacy.startRetention();
    try {
      await eventually(
        async () => (await rows(lake, "SELECT count(*) FROM crm_contacts"))[0]?.[0] === 0,
        10_000,
      );
      assert.equal(privacy.lastRetentionError(), null);
    } finally {
      await privacy.stop();
    }
  });
});
