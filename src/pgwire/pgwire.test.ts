import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { connect } from "node:net";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import pg from "pg";
import postgres from "postgres";
import { ADMIN_TOKEN, basicAuth, eventually, query, startTestServer } from "../server/test-support.js";

const run = promisify(execFile);

/** Clients from Debian packages: .ci/run installs them; elsewhere their tests say what to install. */
const missing = (check: string[], install: string): string | false => {
  const probe = spawnSync(check[0] as string, check.slice(1), { stdio: "ignore" });
  return probe.status === 0 ? false : `needs ${install} (apt-get install -y ${install})`;
};
const noPsql = missing(["psql", "--version"], "postgresql-client");
const noPsycopg2 = missing(["/usr/bin/python3", "-c", "import psycopg2"], "python3-psycopg2");
const noSqlAlchemy = missing(["/usr/bin/python3", "-c", "import sqlalchemy, psycopg2"], "python3-sqlalchemy");

describe("PostgreSQL wire protocol, with real clients", () => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  let port = 0;
  const connection = () => ({
    host: "127.0.0.1",
    port,
    user: "admin",
    database: "sluice",
    password: ADMIN_TOKEN,
  });

  before(async () => {
    server = await startTestServer();
    port = Number(server.pgAddress.split(":").at(-1));
    const batch = [1, 2, 3].map((i) => ({
      type: "track",
      event: i === 3 ? "Signed Up" : "Order Completed",
      userId: `user-${i}`,
      messageId: `pg-${i}`,
      timestamp: "2026-11-20T10:00:00.000Z",
      properties: { revenue: i * 10.5 },
    }));
    const response = await fetch(`${server.url}/v1/batch`, {
      method: "POST",
      headers: { authorization: basicAuth(), "content-type": "application/json" },
      body: JSON.stringify({ batch }),
    });
    assert.equal(response.status, 200);
    await eventually(async () => {
      const result = await query(server.url, "SELECT count(*) FROM events WHERE event_id LIKE 'pg-%'");
      return result.rows[0]?.[0] === 3;
    });
  });
  after(() => server.close());

  test("node-postgres: simple and extended queries, parameters and types", async () => {
    const client = new pg.Client(connection());
    await client.connect();
    try {
      const simple = await client.query(
        "SELECT event, count(*) AS n FROM events WHERE event_id LIKE 'pg-%' GROUP BY 1 ORDER BY 1",
      );
      assert.deepEqual(simple.rows, [
        { event: "Order Completed", n: "2" },
        { event: "Signed Up", n: "1" },
      ]);
      assert.equal(simple.command, "SELECT");
      assert.equal(simple.rowCount, 2);

      const params = await client.query(
        "SELECT user_id, ts, properties, (properties->>'revenue')::DOUBLE AS revenue, dt FROM events WHERE user_id = $1 AND ts > $2",
        ["user-2", "2026-11-01T00:00:00Z"],
      );
      assert.equal(params.rows.length, 1);
      const row = params.rows[0];
      assert.equal(row.user_id, "user-2");
      assert.deepEqual(row.ts, new Date("2026-11-20T10:00:00.000Z"));
      assert.deepEqual(row.properties, { revenue: 21 }, "JSON arrives as json");
      assert.equal(row.revenue, 21);
      assert.equal(row.dt.getFullYear(), 2026, "dates arrive as dates");

      const types = await client.query(
        "SELECT true AS yes, 42::INTEGER AS i, 1.5::DECIMAL(10,2) AS d, NULL::VARCHAR AS nothing, 'x' AS text",
      );
      assert.deepEqual(types.rows[0], { yes: true, i: 42, d: "1.50", nothing: null, text: "x" });
      const prepared = {
        name: "by-event",
        text: "SELECT count(*)::INTEGER AS n FROM events WHERE event = $1",
      };
      assert.deepEqual((await client.query({ ...prepared, values: ["Signed Up"] })).rows, [{ n: 1 }]);
      assert.deepEqual((await client.query({ ...prepared, values: ["Order Completed"] })).rows, [{ n: 2 }]);
      // Session statements BI tools send are answered as PostgreSQL would.
      await client.query("BEGIN");
      await client.query("SET extra_float_digits = 3");
      assert.deepEqual((await client.query("SHOW standard_conforming_strings")).rows, [
        { standard_conforming_strings: "on" },
      ]);
      await client.query("COMMIT");
      assert.match((await client.query("SELECT version()")).rows[0].version, /^PostgreSQL 16/);
    } finally {
      await client.end();
    }
  });

  test("SQL errors and sandbox refusals arrive as PostgreSQL errors; the session goes on", async () => {
    const client = new pg.Client(connection());
    await client.connect();
    try {
      const refusals: [string, string][] = [
        ["SELECT * FROM read_csv('/etc/passwd')", "42501"],
        ["CREATE TABLE t AS SELECT 1", "25006"],
        ["SELECT no_such_column FROM events", "42703"],
        ["SELEC 1", "42601"],
      ];
      for (const [sql, code] of refusals) {
        await assert.rejects(client.query(sql), (error: Error & { code?: string }) => {
          assert.equal(error.code, code, `${sql}: ${error.message}`);
          return true;
        });
      }
      await assert.rejects(
        client.query("SELECT $1::INTEGER", ["not a number"]),
        /Conversion Error|Could not convert/,
      );
      assert.deepEqual((await client.query("SELECT 1 AS one")).rows, [{ one: 1 }]);
    } finally {
      await client.end();
    }
  });

  test("every sandbox escape, attempted as a viewer over HTTP and the Postgres port, is refused", async () => {
    const accounts = server.sluice.accounts;
    const viewer = accounts.createUser("escape-viewer", "viewer").user;
    const { secret } = accounts.createToken(viewer, "escapes", "viewer");
    const lakeFile = `${server.dataDir}/lake/events/**/*.parquet`;
    const escapes = [
      "SELECT * FROM read_csv('/etc/passwd')",
      "SELECT * FROM read_text('/etc/hostname')",
      `SELECT count(*) FROM read_parquet('${lakeFile}')`,
      `SELECT count(*) FROM '${lakeFile}'`,
      "SELECT * FROM glob('/*')",
      "SELECT * FROM query_table('events')",
      "SELECT getvariable('sluice_files_events')",
      "COPY (SELECT 1) TO '/tmp/sluice-escape.csv'",
      `COPY (SELECT 1) TO '${server.dataDir}/lake/escape.parquet'`,
      "ATTACH '/tmp/sluice-escape.db'",
      "INSTALL httpfs",
      "LOAD httpfs",
      "CREATE TABLE escape AS SELECT 1",
      "DROP VIEW events",
      "DELETE FROM events",
    ];
    const client = new pg.Client({ ...connection(), user: "escape-viewer", password: secret });
    await client.connect();
    try {
      for (const sql of escapes) {
        const response = await fetch(`${server.url}/v1/query`, {
          method: "POST",
          headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
          body: JSON.stringify({ sql }),
        });
        assert.ok([400, 403].includes(response.status), `HTTP ${response.status} for ${sql}`);
        assert.ok(((await response.json()) as { error: string }).error.length > 0);
        await assert.rejects(client.query(sql), (error: Error & { code?: string }) => {
          assert.ok(error.code && error.code !== "XX000", `${sql}: ${error.code} ${error.message}`);
          return true;
        });
      }
      // Settings that would lift the sandbox: refused over HTTP; accepted and ignored by the Postgres
      // port (tools send SETs of their own), where the sandbox then still holds.
      for (const sql of ["SET enable_external_access = true", "SET allowed_directories = ['/']"]) {
        const response = await fetch(`${server.url}/v1/query`, {
          method: "POST",
          headers: { authorization: `Bearer ${secret}`, "content-type": "application/json" },
          body: JSON.stringify({ sql }),
        });
        assert.equal(response.status, 400, sql);
        await client.query(sql);
        await assert.rejects(
          client.query("SELECT * FROM read_csv('/etc/passwd')"),
          /Permission Error|Not allowed/,
        );
      }
      // What a viewer is for still works, on both paths.
      assert.equal((await client.query("SELECT count(*) AS n FROM events")).rows[0]?.n > 0, true);
      assert.equal((await query(server.url, "SELECT count(*) FROM events")).rows.length, 1);
    } finally {
      await client.end();
    }
    assert.equal(
      (await query(server.url, "SELECT count(*) FROM events WHERE event_id LIKE 'pg-%'")).rows[0]?.[0],
      3,
    );
  });

  test("garbage on the port is refused with a FATAL error, and the server goes on", async () => {
    const exchange = (bytes: Buffer) =>
      new Promise<string>((resolve) => {
        const socket = connect(port, "127.0.0.1");
        let received = "";
        socket.on("data", (chunk) => {
          received += chunk.toString("latin1");
        });
        socket.on("close", () => resolve(received));
        socket.on("error", () => resolve(received));
        socket.end(bytes);
      });
    const huge = Buffer.alloc(8);
    huge.writeInt32BE(2_000_000_000, 0);
    for (const bytes of [
      Buffer.from("GET / HTTP/1.1\r\n\r\n"),
      huge,
      Buffer.from([0, 0, 0, 8, 0, 2, 0, 0]),
    ]) {
      assert.match(await exchange(bytes), /FATAL/);
    }
    const client = new pg.Client(connection());
    await client.connect();
    assert.deepEqual((await client.query("SELECT 1 AS one")).rows, [{ one: 1 }]);
    await client.end();
  });

  test("a wrong password is refused", async () => {
    const client = new pg.Client({ ...connection(), password: "not-the-token" });
    await assert.rejects(client.connect(), (error: Error & { code?: string }) => {
      assert.equal(error.code, "28P01");
      return true;
    });
  });

  test("postgres.js: tagged queries with parameters, and cancelling a running query", async () => {
    const sql = postgres({ ...connection(), max: 2, onnotice: () => {} });
    try {
      const rows = await sql`SELECT ${5}::INTEGER + 1 AS six, ${"user-1"} AS who`;
      assert.deepEqual([...rows], [{ six: 6, who: "user-1" }]);
      const events =
        await sql`SELECT count(*)::INTEGER AS n FROM events WHERE user_id IN ${sql(["user-1", "user-3"])}`;
      assert.equal(events[0]?.n, 2);
      const slow = sql`SELECT sum(i) FROM range(100000000000) t(i)`;
      const started = Date.now();
      setTimeout(() => slow.cancel(), 300);
      await assert.rejects(slow, (error: Error & { code?: string }) => {
        assert.equal(error.code, "57014", error.message);
        return true;
      });
      assert.ok(Date.now() - started < 10_000, "the query stopped when cancelled");
    } finally {
      await sql.end();
    }
  });

  test("psql runs queries with the API token as password", { skip: noPsql }, async () => {
    const { stdout } = await run(
      "psql",
      [
        "-h",
        "127.0.0.1",
        "-p",
        String(port),
        "-U",
        "admin",
        "-d",
        "sluice",
        "-At",
        "-c",
        "SELECT event, count(*) FROM events WHERE event_id LIKE 'pg-%' GROUP BY 1 ORDER BY 1",
      ],
      { env: { ...process.env, PGPASSWORD: ADMIN_TOKEN, PGCONNECT_TIMEOUT: "10" } },
    );
    assert.equal(stdout.trim(), "Order Completed|2\nSigned Up|1");
  });

  test("psql's \\dt and \\d list the lake's tables and columns with PostgreSQL's types", {
    skip: noPsql,
  }, async () => {
    const psql = (command: string) =>
      run(
        "psql",
        ["-h", "127.0.0.1", "-p", String(port), "-U", "admin", "-d", "sluice", "-At", "-c", command],
        {
          env: { ...process.env, PGPASSWORD: ADMIN_TOKEN, PGCONNECT_TIMEOUT: "10" },
        },
      );
    const tables = (await psql("\\dt")).stdout.trim().split("\n");
    assert.ok(tables.includes("main|events|table|sluice"), tables.join("\n"));
    const columns = (await psql("\\d events")).stdout.trim().split("\n");
    assert.ok(columns.includes("event_id|character varying|||"), columns.join("\n"));
    assert.ok(columns.includes("ts|timestamp with time zone|||"), columns.join("\n"));
    assert.ok(columns.includes("properties|json|||"), columns.join("\n"));
  });

  test("SQLAlchemy reflects tables, columns and their descriptions", { skip: noSqlAlchemy }, async () => {
    const loaded = await fetch(`${server.url}/v1/tables/pg_orders/upload`, {
      method: "POST",
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      body: (() => {
        const form = new FormData();
        form.append("file", new Blob(["Order ID,Total Amount\n1,2.5\n2,4\n"]), "orders.csv");
        return form;
      })(),
    });
    assert.equal(loaded.status, 200, await loaded.text());
    const script = `
import sqlalchemy as sa, sys, json
engine = sa.create_engine(f"postgresql+psycopg2://admin:{sys.argv[1]}@127.0.0.1:${port}/sluice")
inspector = sa.inspect(engine)
orders = sa.Table("pg_orders", sa.MetaData(), autoload_with=engine)
with engine.connect() as connection:
    total = connection.execute(sa.select(sa.func.sum(orders.c.total_amount))).scalar()
print(json.dumps({
    "tables": inspector.get_table_names(),
    "columns": [[c["name"], str(c["type"]), c["comment"]] for c in inspector.get_columns("pg_orders")],
    "indexes": inspector.get_indexes("events"),
    "primary_key": inspector.get_pk_constraint("events")["constrained_columns"],
    "total": float(total),
}))
`;
    const { stdout } = await run("/usr/bin/python3", ["-c", script, ADMIN_TOKEN]);
    const reflected = JSON.parse(stdout);
    assert.ok(reflected.tables.includes("events") && reflected.tables.includes("pg_orders"));
    assert.deepEqual(reflected.columns, [
      ["order_id", "INTEGER", "Order ID"],
      ["total_amount", "NUMERIC", "Total Amount"],
    ]);
    assert.deepEqual(reflected.indexes, []);
    assert.deepEqual(reflected.primary_key, []);
    assert.equal(reflected.total, 6.5);
  });

  // Debian's python3 with python3-psycopg2: a python3 of its own earlier on PATH would lack it.
  test("Python's psycopg2 queries with parameters inside its implicit transaction", {
    skip: noPsycopg2,
  }, async () => {
    const script = `
import psycopg2, sys
conn = psycopg2.connect(host="127.0.0.1", port=${port}, user="admin", password=sys.argv[1], dbname="sluice")
cur = conn.cursor()
cur.execute("SELECT user_id, (properties->>'revenue')::DOUBLE FROM events WHERE user_id = %s", ("user-1",))
print(cur.fetchall())
conn.rollback()
conn.close()
`;
    const { stdout } = await run("/usr/bin/python3", ["-c", script, ADMIN_TOKEN]);
    assert.equal(stdout.trim(), "[('user-1', 10.5)]");
  });
});
