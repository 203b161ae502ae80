import assert from "node:assert/strict";
import { execFile, spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import pg from "pg";
import { to as copyTo } from "pg-copy-streams";
import postgres from "postgres";
import { ADMIN_TOKEN, basicAuth, eventually, query, startTestServer } from "../server/test-support.js";
import { userWithRole } from "../web/test-support.js";
import { BI_QUERIES } from "./test-support.js";

const run = promisify(execFile);

/** Clients from Debian packages: .ci/run installs them; elsewhere their tests say what to install. */
const missing = (check: string[], install: string): string | false => {
  const probe = spawnSync(check[0] as string, check.slice(1), { stdio: "ignore" });
  return probe.status === 0 ? false : `needs ${install} (apt-get install -y ${install})`;
};
const noPsql = missing(["psql", "--version"], "postgresql-client");
const noPsycopg2 = missing(["/usr/bin/python3", "-c", "import psycopg2"], "python3-psycopg2");
const noSqlAlchemy = missing(["/usr/bin/python3", "-c", "import sqlalchemy, psycopg2"], "python3-sqlalchemy");
const noPsycopg3 = missing(["/usr/bin/python3", "-c", "import psycopg"], "python3-psycopg");

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
  /** psql's unaligned output of one `-c` command, logged in as `user`. */
  const psql = async (user: string, password: string, command: string, options: string[] = []) => {
    const args = ["-h", "127.0.0.1", "-p", String(port), "-U", user, "-d", "sluice", "-At", ...options];
    args.push("-c", command);
    const env = { ...process.env, PGPASSWORD: password, PGCONNECT_TIMEOUT: "10" };
    return (await run("psql", args, { env })).stdout;
  };

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

  test("every sandbox escape, attempted as a viewer over HTTP, the web app and the Postgres port, is refused", async () => {
    const viewer = await userWithRole(server, "escape-viewer", "viewer");
    const lakeFile = `${server.dataDir}/lake/events/**/*.parquet`;
    const catalogDb = `${server.dataDir}/catalog.db`;
    const written = [
      "/tmp/sluice-escape.csv",
      `${server.dataDir}/lake/escape.parquet`,
      "/tmp/sluice-escape.db",
    ];
    const escapes = [
      "SELECT * FROM read_csv('/etc/passwd')",
      "SELECT * FROM read_text('/etc/hostname')",
      "SELECT * FROM read_blob('/etc/hostname')",
      `SELECT count(*) FROM read_parquet('${lakeFile}')`,
      `SELECT count(*) FROM '${lakeFile}'`,
      `SELECT * FROM read_text('${catalogDb}')`,
      `SELECT * FROM sqlite_scan('${catalogDb}', 'files')`,
      `SELECT * FROM '${catalogDb}'`,
      "SELECT * FROM glob('/*')",
      `SELECT * FROM glob('${server.dataDir}/**')`,
      "SELECT * FROM query_table('events')",
      "SELECT getvariable('sluice_files_events')",
      "SELECT current_setting('allowed_directories')",
      "COPY (SELECT * FROM read_csv('/etc/passwd')) TO STDOUT",
      "COPY events FROM STDIN",
      `COPY (SELECT 1) TO '${written[0]}'`,
      `COPY (SELECT 1) TO '${written[1]}'`,
      `ATTACH '${written[2]}'`,
      `ATTACH '${catalogDb}' AS catalog (TYPE sqlite)`,
      "INSTALL httpfs",
      "LOAD httpfs",
      "CREATE TABLE escape AS SELECT 1",
      "INSERT INTO events (event) VALUES ('x')",
      "UPDATE events SET event = 'x'",
      "DELETE FROM events",
      "DROP VIEW events",
      "PRAGMA database_list",
      "CALL pragma_database_list()",
      "EXPORT DATABASE '/tmp/sluice-escape-export'",
      `SELECT 1; COPY (SELECT 1) TO '${written[0]}'`,
      `SELECT 1; ATTACH '${written[2]}'`,
      "SET enable_external_access = true",
      "SET allowed_directories = ['/']",
      "RESET allowed_directories",
      "SET lock_configuration = false",
      "RESET lock_configuration",
      "SET memory_limit = '1TB'",
    ];
    const client = new pg.Client({ ...connection(), user: "escape-viewer", password: viewer.token });
    await client.connect();
    try {
      for (const sql of escapes) {
        // The HTTP API with an API token, the web app's SQL editor (a signed-in session) and its charts.
        for (const [path, body, headers] of [
          ["/v1/query", { sql }, { authorization: `Bearer ${viewer.token}` }],
          ["/v1/query", { sql }, { cookie: viewer.cookie, "x-sluice-csrf": "1" }],
          [
            "/v1/charts/preview",
            { spec: { type: "table", query: { sql } } },
            { cookie: viewer.cookie, "x-sluice-csrf": "1" },
          ],
        ] as const) {
          const response = await fetch(`${server.url}${path}`, {
            method: "POST",
            headers: { ...headers, "content-type": "application/json" },
            body: JSON.stringify(body),
          });
          assert.ok([400, 403].includes(response.status), `${path}: HTTP ${response.status} for ${sql}`);
          const { error } = (await response.json()) as { error: string };
          assert.match(
            error,
            /Not allowed|Only read-only|Permission Error|Parser Error|Catalog Error/,
            `${path} ${sql}: ${error}`,
          );
        }
        await assert.rejects(client.query(sql), (error: Error & { code?: string }) => {
          assert.ok(
            ["42501", "25006", "42601", "42P01"].includes(error.code ?? ""),
            `${sql}: ${error.code} ${error.message}`,
          );
          return true;
        });
      }
      for (const file of written) assert.equal(existsSync(file), false, `${file} was not written`);
      // What a viewer is for still works, on both paths, and the sandbox still holds.
      assert.equal((await client.query("SELECT count(*) AS n FROM events")).rows[0]?.n > 0, true);
      await assert.rejects(client.query("SELECT * FROM read_csv('/etc/passwd')"), { code: "42501" });
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

  test("a large result streams: rows arrive while the query runs, and a cancel stops it there", async () => {
    const sql = postgres({ ...connection(), onnotice: () => {} });
    try {
      let received = 0;
      const endless = sql`SELECT i FROM range(10000000000) t(i)`;
      await assert.rejects(
        endless.forEach(() => {
          received++;
          if (received === 1) endless.cancel();
        }),
        { code: "57014" },
      );
      // Read whole first, the result would have been cut at pg_max_rows (1,000,000) and then sent.
      assert.ok(received > 0 && received < 1_000_000, `${received} rows`);
    } finally {
      await sql.end();
    }
  });

  test("psql runs queries with the API token as password", { skip: noPsql }, async () => {
    const stdout = await psql(
      "admin",
      ADMIN_TOKEN,
      "SELECT event, count(*) FROM events WHERE event_id LIKE 'pg-%' GROUP BY 1 ORDER BY 1",
    );
    assert.equal(stdout.trim(), "Order Completed|2\nSigned Up|1");
  });

  test("unnamed columns get PostgreSQL's names, so code reading rows[0].count works", async () => {
    const client = new pg.Client(connection());
    await client.connect();
    try {
      const sql =
        "SELECT count(*), max(ts)::DATE, sum((properties->>'revenue')::DOUBLE), 1 + 1, event " +
        "FROM events WHERE event_id LIKE 'pg-%' GROUP BY event ORDER BY event";
      const simple = await client.query(sql);
      assert.deepEqual(
        simple.fields.map((field) => field.name),
        ["count", "max", "sum", "?column?", "event"],
      );
      assert.equal(simple.rows[0]?.count, "2");
      assert.equal(simple.rows[0]?.sum, 31.5);
      // The extended protocol describes the same names before any row is read.
      const prepared = await client.query({ name: "named", text: `${sql} LIMIT $1`, values: [1] });
      assert.deepEqual(Object.keys(prepared.rows[0] ?? {}), ["count", "max", "sum", "?column?", "event"]);
    } finally {
      await client.end();
    }
  });

  test("COPY … TO STDOUT exports a result: psql's \\copy to a local CSV file, pg-copy-streams, refusals", async () => {
    const viewer = await userWithRole(server, "copy-viewer", "viewer");
    const select =
      "SELECT event_id, event, properties->>'revenue' AS revenue, NULL AS nothing, 'a,\"b\"' AS text FROM events WHERE event_id LIKE 'pg-%' ORDER BY 1";
    if (!noPsql) {
      const file = join(server.dataDir, "..", `copy-${process.pid}.csv`);
      try {
        const stdout = await psql("copy-viewer", viewer.token, `\\copy (${select}) to '${file}' csv header`);
        assert.equal(stdout.trim(), "COPY 3");
        assert.equal(
          readFileSync(file, "utf8"),
          'event_id,event,revenue,nothing,text\npg-1,Order Completed,10.5,,"a,""b"""\n' +
            'pg-2,Order Completed,21,,"a,""b"""\npg-3,Signed Up,31.5,,"a,""b"""\n',
        );
      } finally {
        rmSync(file, { force: true });
      }
    }
    const client = new pg.Client({ ...connection(), user: "copy-viewer", password: viewer.token });
    await client.connect();
    try {
      const copied = async (sql: string) => {
        const chunks: Buffer[] = [];
        const stream = client.query(copyTo(sql));
        for await (const chunk of stream) chunks.push(chunk as Buffer);
        return { text: Buffer.concat(chunks).toString("utf8"), rowCount: stream.rowCount };
      };
      const text = await copied(`COPY (${select}) TO STDOUT`);
      assert.equal(text.rowCount, 3);
      assert.equal(text.text.split("\n")[0], 'pg-1\tOrder Completed\t10.5\t\\N\ta,"b"');
      const table = await copied("COPY events (event_id, ts) TO STDOUT WITH (FORMAT csv, FORCE_QUOTE *)");
      assert.ok(table.text.includes('"pg-1","2026-11-20 10:00:00+00"\n'), table.text.slice(0, 200));
      // The session goes on normally after COPY data, and refusals name the reason.
      assert.equal((await client.query("SELECT 42 AS n")).rows[0]?.n, 42);
      await assert.rejects(client.query("COPY (SELECT 1) TO STDOUT (FORMAT binary)"), {
        code: "0A000",
        message: /binary format is not supported/,
      });
      await assert.rejects(client.query("COPY events_raw TO STDOUT"), { code: "42501" });
      await assert.rejects(client.query("COPY (SELECT nope FROM events) TO STDOUT"), { code: "42703" });
    } finally {
      await client.end();
    }
  });

  test("psql's \\dt, \\d, \\l and \\dn list the lake's tables and columns with PostgreSQL's types", {
    skip: noPsql,
  }, async () => {
    const asAdmin = (command: string) => psql("admin", ADMIN_TOKEN, command);
    const tables = (await asAdmin("\\dt")).trim().split("\n");
    assert.ok(tables.includes("main|events|table|sluice"), tables.join("\n"));
    const columns = (await asAdmin("\\d events")).trim().split("\n");
    assert.ok(columns.includes("event_id|character varying|||"), columns.join("\n"));
    assert.ok(columns.includes("ts|timestamp with time zone|||"), columns.join("\n"));
    assert.ok(columns.includes("properties|json|||"), columns.join("\n"));
    const databases = (await asAdmin("\\l")).trim().split("\n");
    assert.match(databases[0] ?? "", /^sluice\|sluice\|UTF8\|/);
    assert.deepEqual((await asAdmin("\\dn")).trim().split("\n"), ["main|sluice"]);
    // Several statements in one -c: each answers in turn, as PostgreSQL's simple protocol does.
    assert.equal((await asAdmin("SELECT 1 AS a; SELECT 'two' AS b; -- done")).trim(), "1\ntwo");
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

  test("cursors: psycopg2's named cursors and psql's FETCH_COUNT read a result in batches", async (t) => {
    await t.test("psycopg2", { skip: noPsycopg2 }, async () => {
      const script = `
import psycopg2, sys
conn = psycopg2.connect(host="127.0.0.1", port=${port}, user="admin", password=sys.argv[1], dbname="sluice")
cur = conn.cursor(name="big")
cur.itersize = 1000
cur.execute("SELECT range AS n, range % 7 AS r FROM range(25000) ORDER BY n")
total, last = 0, None
for n, r in cur:
    total += 1
    last = (n, r)
cur.close()
conn.commit()
print(total, last)
`;
      const { stdout } = await run("/usr/bin/python3", ["-c", script, ADMIN_TOKEN]);
      assert.equal(stdout.trim(), "25000 (24999, 2)");
    });
    await t.test("psql", { skip: noPsql }, async () => {
      const sql = "SELECT event_id, count(*) FROM events WHERE event_id LIKE 'pg-%' GROUP BY 1 ORDER BY 1";
      const stdout = await psql("admin", ADMIN_TOKEN, sql, ["-v", "FETCH_COUNT=2"]);
      assert.equal(stdout.trim(), "pg-1|1\npg-2|1\npg-3|1");
    });
  });

  test("cursors: DECLARE in a transaction, FETCH and MOVE forward, WITH HOLD past COMMIT, errors as PostgreSQL's", async () => {
    const client = new pg.Client(connection());
    await client.connect();
    try {
      await assert.rejects(client.query("DECLARE c CURSOR FOR SELECT 1"), { code: "25P01" });
      await client.query("BEGIN");
      const declared = await client.query(
        "DECLARE c CURSOR FOR SELECT event_id, count(*) FROM events WHERE event_id LIKE 'pg-%' GROUP BY 1 ORDER BY 1",
      );
      assert.equal(declared.command, "DECLARE");
      const first = await client.query("FETCH 2 FROM c");
      assert.equal(first.command, "FETCH");
      assert.deepEqual(first.rows, [
        { event_id: "pg-1", count: "1" },
        { event_id: "pg-2", count: "1" },
      ]);
      assert.deepEqual((await client.query("FETCH ALL IN c")).rows, [{ event_id: "pg-3", count: "1" }]);
      assert.equal((await client.query("FETCH NEXT FROM c")).rowCount, 0);
      await client.query("DECLARE h CURSOR WITH HOLD FOR SELECT range AS n FROM range(10)");
      await client.query("COMMIT");
      await assert.rejects(client.query("FETCH 1 FROM c"), { code: "34000" }, "closed at COMMIT");
      await assert.rejects(client.query("DECLARE h CURSOR WITH HOLD FOR SELECT 1"), { code: "42P03" });
      assert.equal((await client.query("MOVE 4 IN h")).rowCount, 4);
      assert.deepEqual((await client.query("FETCH 2 FROM h")).rows, [{ n: "4" }, { n: "5" }]);
      await assert.rejects(client.query("FETCH BACKWARD 1 FROM h"), { code: "55000" });
      await client.query("CLOSE h");
      await assert.rejects(client.query("FETCH 1 FROM h"), { code: "34000" });
      // Large moves and fetches go a part at a time, and count every row.
      await client.query("DECLARE big CURSOR WITH HOLD FOR SELECT range AS n FROM range(100000)");
      assert.equal((await client.query("MOVE 50000 IN big")).rowCount, 50000);
      const rest = await client.query("FETCH ALL FROM big");
      assert.equal(rest.rowCount, 50000);
      assert.deepEqual([rest.rows[0], rest.rows.at(-1)], [{ n: "50000" }, { n: "99999" }]);
      // Each open cursor holds a connection of the query engine: a session may have 64.
      for (let index = 0; index < 63; index++) {
        await client.query(`DECLARE many${index} CURSOR WITH HOLD FOR SELECT ${index}`);
      }
      await assert.rejects(client.query("DECLARE one_too_many CURSOR WITH HOLD FOR SELECT 1"), {
        code: "53000",
      });
      await client.query("CLOSE ALL");
      // DISCARD ALL, which poolers send between clients, closes held cursors and prepared statements.
      await client.query("DECLARE kept CURSOR WITH HOLD FOR SELECT 1");
      assert.equal((await client.query({ name: "prepared_one", text: "SELECT 1 AS one" })).rows[0]?.one, 1);
      await client.query("DISCARD ALL");
      await assert.rejects(client.query("FETCH 1 FROM kept"), { code: "34000" });
      await assert.rejects(
        client.query({ name: "prepared_one", text: "SELECT 1 AS one" }),
        /prepared statement "prepared_one" does not exist/,
      );
      await client.query({ name: "prepared_two", text: "SELECT 2 AS two" });
      await client.query("DEALLOCATE PREPARE Prepared_Two");
      await assert.rejects(client.query({ name: "prepared_two", text: "SELECT 2 AS two" }), /does not exist/);
      // The extended protocol: a FETCH with a parameterised DECLARE before it.
      await client.query("BEGIN");
      await client.query({
        text: "DECLARE p CURSOR FOR SELECT range AS n FROM range($1::INTEGER)",
        values: [3],
      });
      assert.deepEqual((await client.query({ text: "FETCH ALL FROM p", values: [] })).rows, [
        { n: "0" },
        { n: "1" },
        { n: "2" },
      ]);
      await client.query("ROLLBACK");
      assert.equal((await client.query("SELECT 1 AS one")).rows[0]?.one, 1);
    } finally {
      await client.end();
    }
  });

  test("an account logs in with its own name and password (SCRAM-SHA-256), with its role; wrong ones are refused", async () => {
    const { accounts } = server.sluice;
    const ann = accounts.createUser("ann", "viewer").user;
    accounts.setPassword(ann.id, "ann's long password");
    const bob = accounts.createUser("bob", "admin").user;
    accounts.setPassword(bob.id, "bob's long password");
    const asAnn = new pg.Client({ ...connection(), user: "ann", password: "ann's long password" });
    await asAnn.connect();
    try {
      assert.deepEqual((await asAnn.query("SELECT current_user AS who")).rows, [{ who: "ann" }]);
      // A viewer's login: the catalog's tables by name, never files.
      await assert.rejects(
        asAnn.query(`SELECT count(*) FROM read_parquet('${server.dataDir}/lake/events/**/*.parquet')`),
        { code: "42501" },
      );
    } finally {
      await asAnn.end();
    }
    const asBob = postgres({
      ...connection(),
      user: "bob",
      password: "bob's long password",
      onnotice: () => {},
    });
    try {
      const [row] =
        await asBob`SELECT current_user AS who, count(*)::INTEGER AS n FROM events WHERE event_id LIKE 'pg-%'`;
      assert.deepEqual({ ...row }, { who: "bob", n: 3 });
    } finally {
      await asBob.end();
    }
    const refused = async (user: string, password: string) =>
      assert.rejects(new pg.Client({ ...connection(), user, password }).connect(), { code: "28P01" }, user);
    await refused("ann", "bob's long password");
    await refused("nobody", "ann's long password");
    accounts.updateUser(ann.id, { disabled: true });
    await refused("ann", "ann's long password");
    if (!noPsql) {
      assert.equal((await psql("bob", "bob's long password", "SELECT current_user")).trim(), "bob");
    }
  });

  test("portals: postgres.js reads a result in row-limited Executes, each resumed after PortalSuspended", async () => {
    const sql = postgres({ ...connection(), onnotice: () => {} });
    try {
      const batches: number[][] = [];
      for await (const rows of sql`SELECT range::INTEGER AS i FROM range(${25}::INTEGER)`.cursor(10)) {
        batches.push(rows.map((row) => row.i as number));
      }
      assert.deepEqual(
        batches.map((batch) => batch.length),
        [10, 10, 5],
      );
      assert.deepEqual(
        batches.flat(),
        Array.from({ length: 25 }, (_, i) => i),
      );
    } finally {
      await sql.end();
    }
  });

  test("values arrive in PostgreSQL's exact text format (node-postgres, parsers off)", async () => {
    const client = new pg.Client({ ...connection(), types: { getTypeParser: () => (text: string) => text } });
    await client.connect();
    try {
      const { rows, fields } =
        await client.query(`SELECT 1::SMALLINT AS i2, 2::INTEGER AS i4, 9007199254740993::BIGINT AS i8,
        0.1::FLOAT AS f4, 0.1::DOUBLE AS f8, 'NaN'::DOUBLE AS nan, -12345.678::DECIMAL(12,3) AS num, true AS b, 'tëxt' AS t,
        DATE '2026-11-20' AS d, TIMESTAMP '2026-11-20 10:00:00.123456' AS ts, TIMESTAMPTZ '2026-11-20 10:00:00+00' AS tstz,
        TIME '01:02:03' AS tm, INTERVAL '1 year 2 months -3 days 4 hours' AS iv, '{"a":[1,2]}'::JSON AS j,
        '6ba7b810-9dad-11d1-80b4-00c04fd430c8'::UUID AS u, '\\xDE\\xAD'::BLOB AS bytes, [1, 2, NULL]::INTEGER[] AS ints,
        ['a', 'b c', NULL, '"q\\', 'NULL', ''] AS texts, NULL::INTEGER AS nothing`);
      assert.deepEqual(rows[0], {
        i2: "1",
        i4: "2",
        i8: "9007199254740993",
        f4: "0.1",
        f8: "0.1",
        nan: "NaN",
        num: "-12345.678",
        b: "t",
        t: "tëxt",
        d: "2026-11-20",
        ts: "2026-11-20 10:00:00.123456",
        tstz: "2026-11-20 10:00:00+00",
        tm: "01:02:03",
        iv: "1 year 2 mons -3 days +04:00:00",
        j: '{"a":[1,2]}',
        u: "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        bytes: "\\xdead",
        ints: "{1,2,NULL}",
        texts: '{a,"b c",NULL,"\\"q\\\\","NULL",""}',
        nothing: null,
      });
      assert.deepEqual(
        fields.map((field) => field.dataTypeID),
        [
          21, 23, 20, 700, 701, 701, 1700, 16, 25, 1082, 1114, 1184, 1083, 1186, 114, 2950, 17, 1007, 1009,
          23,
        ],
      );
    } finally {
      await client.end();
    }
  });

  test("psycopg 3 reads every common type in text and in binary, and sends parameters both ways", {
    skip: noPsycopg3,
  }, async () => {
    const script = `
import datetime, decimal, json, psycopg, sys, uuid
conn = psycopg.connect(host="127.0.0.1", port=${port}, user="admin", password=sys.argv[1], dbname="sluice")
utc = datetime.timezone.utc
params = (41, "x", b"\\xde\\xad\\xbe", datetime.date(2026, 1, 31), datetime.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=utc),
          uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8"), decimal.Decimal("-1.25"), 2.5, True)
out = {}
for binary in (False, True):
    cur = conn.cursor(binary=binary)
    cur.execute("""SELECT 1::SMALLINT, 2::INTEGER, 9007199254740993::BIGINT, 0.5::FLOAT, 0.1::DOUBLE, -12345.678::DECIMAL(12,3),
        123456789012345678901234567890::HUGEINT, 0.001::DECIMAL(10,4), true, 'tëxt', DATE '2026-11-20',
        TIMESTAMP '2026-11-20 10:00:00.123456', TIMESTAMPTZ '2026-11-20 10:00:00.5+00', TIME '01:02:03.5',
        INTERVAL '1 month 2 days 3 seconds', '{"a":[1,2]}'::JSON, '6ba7b810-9dad-11d1-80b4-00c04fd430c8'::UUID,
        '\\\\xDE\\\\xAD'::BLOB, [1, 2, NULL]::INTEGER[], ['a', 'b c', NULL, '"q"'], [0.5, 1.25]::DECIMAL(5,2)[], NULL::INTEGER""")
    values = cur.fetchone()
    cur.execute("SELECT %s::INTEGER + 1, %s, octet_length(%s::BLOB), %s::DATE + 1, %s::TIMESTAMPTZ, %s::UUID, %s::DECIMAL(10,2), %s::DOUBLE * 2, NOT %s::BOOLEAN", params, binary=binary)
    out["binary" if binary else "text"] = [repr(values), repr(cur.fetchone())]
print(json.dumps(out))
`;
    const { stdout } = await run("/usr/bin/python3", ["-c", script, ADMIN_TOKEN]);
    const results = JSON.parse(stdout) as Record<"text" | "binary", [string, string]>;
    const expected = [
      "(1, 2, 9007199254740993, 0.5, 0.1, Decimal('-12345.678'), Decimal('123456789012345678901234567890'), " +
        "Decimal('0.0010'), True, 'tëxt', datetime.date(2026, 11, 20), datetime.datetime(2026, 11, 20, 10, 0, 0, 123456), " +
        "datetime.datetime(2026, 11, 20, 10, 0, 0, 500000, tzinfo=datetime.timezone.utc), datetime.time(1, 2, 3, 500000), " +
        "datetime.timedelta(days=32, seconds=3), {'a': [1, 2]}, UUID('6ba7b810-9dad-11d1-80b4-00c04fd430c8'), b'\\xde\\xad', " +
        "[1, 2, None], ['a', 'b c', None, '\"q\"'], [Decimal('0.50'), Decimal('1.25')], None)",
      "(42, 'x', 3, datetime.date(2026, 2, 1), datetime.datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=datetime.timezone.utc), " +
        "UUID('6ba7b810-9dad-11d1-80b4-00c04fd430c8'), Decimal('-1.25'), 5.0, False)",
    ];
    assert.deepEqual(results.text, expected);
    assert.deepEqual(results.binary, expected);
  });

  test("psycopg 3 copies a result out row by row, with its types read back", {
    skip: noPsycopg3,
  }, async () => {
    const script = `
import json, psycopg, sys
conn = psycopg.connect(host="127.0.0.1", port=${port}, user="admin", password=sys.argv[1], dbname="sluice")
cur = conn.cursor()
rows = []
with cur.copy("COPY (SELECT event_id, (properties->>'revenue')::DOUBLE AS revenue, 'tab\\there' AS t FROM events WHERE event_id LIKE 'pg-%' ORDER BY 1) TO STDOUT") as copy:
    copy.set_types(["text", "float8", "text"])
    for row in copy.rows():
        rows.append(list(row))
print(json.dumps({"rows": rows, "rowcount": cur.rowcount}))
`;
    const { stdout } = await run("/usr/bin/python3", ["-c", script, ADMIN_TOKEN]);
    assert.deepEqual(JSON.parse(stdout), {
      rows: [
        ["pg-1", 10.5, "tab\there"],
        ["pg-2", 21, "tab\there"],
        ["pg-3", 31.5, "tab\there"],
      ],
      rowcount: 3,
    });
  });

  test("fifty sessions at once each get their own answer", async () => {
    const clients = Array.from({ length: 50 }, () => new pg.Client(connection()));
    await Promise.all(clients.map((client) => client.connect()));
    try {
      const answers = await Promise.all(
        clients.map((client, index) =>
          client.query(
            "SELECT $1::INTEGER * 2 AS doubled, count(*)::INTEGER AS n FROM events WHERE event_id LIKE 'pg-%'",
            [index],
          ),
        ),
      );
      assert.deepEqual(
        answers.map((answer) => answer.rows[0]),
        clients.map((_, index) => ({ doubled: index * 2, n: 3 })),
      );
    } finally {
      await Promise.all(clients.map((client) => client.end()));
    }
  });

  test("BI tools' start-up and introspection queries (JDBC, DBeaver, Metabase, Superset, Tableau) answer a viewer", async () => {
    const { accounts } = server.sluice;
    accounts.setPassword(accounts.createUser("analyst", "viewer").user.id, "analyst's password");
    const client = new pg.Client({ ...connection(), user: "analyst", password: "analyst's password" });
    await client.connect();
    try {
      for (const [tool, sql, check] of BI_QUERIES) {
        // Simple protocol, then extended (as JDBC and most drivers send them).
        for (const values of [undefined, []]) {
          const result = await client.query(sql, values).catch((error: Error) => {
            throw new Error(`${tool}: ${error.message}`);
          });
          check(result.rows, tool);
        }
      }
    } finally {
      await client.end();
    }
  });
});
