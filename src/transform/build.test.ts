import assert from "node:assert/strict";
import { existsSync, readFileSync, utimesSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { appendEvents, copyShop, type Lab, openLab, writeProject } from "./test-support.js";

const ORDERS_SQL = "SELECT * FROM orders ORDER BY order_id";
const CUSTOMERS_SQL = "SELECT * FROM customers ORDER BY customer_id";

describe("the shop project", () => {
  let lab: Lab;
  let shop: string;
  before(async () => {
    lab = await openLab();
    shop = copyShop(lab);
  });
  after(() => lab.close());

  test("a failing error-severity test keeps the model unpublished and skips what is downstream", async () => {
    const result = await lab.builder(shop).build({ exclude: ["tag:events"] });
    const status = Object.fromEntries(result.runs.map((run) => [run.node, run.status]));
    assert.deepEqual(status, {
      raw_customers: "success",
      raw_orders: "success",
      raw_payments: "success",
      stg_customers: "success",
      stg_orders: "success",
      orders: "failed_tests",
      customers: "skipped",
    });
    assert.equal(result.ok, false);
    const tables = (await lab.catalog.tables()).map((table) => table.name);
    assert.ok(!tables.includes("orders"), "production never sees the untested orders table");
    assert.ok(!tables.includes("customers"));
    const orders = result.runs.find((run) => run.node === "orders");
    const failed = orders?.tests.find((outcome) => outcome.status === "fail");
    assert.equal(failed?.name, "accepted_values_orders_status");
    assert.deepEqual(JSON.parse(readFileSync(failed?.failuresFile as string, "utf8")), [
      { value_field: "lost", n_records: 1 },
    ]);
    assert.match(orders?.message ?? "", /not published: accepted_values_orders_status/);
    // No file of the failed build is left in the lake.
    assert.deepEqual(await lab.catalog.listedPaths("orders"), []);
  });

  test("once the data is fixed, the marts are published with the expected rows, descriptions and a warning", async () => {
    const seed = join(shop, "seeds", "raw_orders.csv");
    writeFileSync(seed, readFileSync(seed, "utf8").replace("4,3,2026-01-07,lost\n", ""));
    const result = await lab.builder(shop).build({ select: ["tag:daily"] });
    assert.equal(
      result.ok,
      false,
      "raw_orders changed but was not selected: orders reads the old seed table",
    );
    const rebuilt = await lab.builder(shop).build({ select: ["raw_orders+"] });
    assert.equal(rebuilt.ok, true, JSON.stringify(rebuilt.runs.map((run) => run.message)));
    assert.deepEqual(await lab.rows(ORDERS_SQL), [
      [1, 1, "2026-01-01", "completed", 15, 10],
      [2, 1, "2026-01-05", "shipped", 20, 20],
      [3, 2, "2026-01-06", "completed", 30, 0],
    ]);
    assert.deepEqual(await lab.rows(CUSTOMERS_SQL), [
      [1, "Ann", "Lee", 2, 35, "2026-01-01"],
      [2, "Bob", "Ray", 1, 30, "2026-01-06"],
      [3, "Cid", "Moe", 0, 0, null],
    ]);
    const customers = rebuilt.runs.find((run) => run.node === "customers");
    assert.equal(customers?.status, "success");
    assert.deepEqual(
      customers?.tests.map((outcome) => [outcome.name, outcome.status]),
      [
        ["unique_customers_customer_id", "pass"],
        ["not_null_customers_first_order", "warn"],
      ],
    );
    const orders = (await lab.catalog.tables()).find((table) => table.name === "orders");
    assert.equal(
      orders?.columns.find((column) => column.name === "amount")?.description,
      "Total paid, in euros.",
    );
    assert.equal(orders?.columns.find((column) => column.name === "order_id")?.type, "BIGINT");
  });

  test("re-running a build leaves identical tables, and sweeps what a crashed build left", async () => {
    const before = [await lab.rows(ORDERS_SQL), await lab.rows(CUSTOMERS_SQL)];
    const orphan = join(lab.dataDir, "lake", "orders", "model-from-a-crash.parquet");
    writeFileSync(orphan, "not committed");
    const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
    utimesSync(orphan, twoHoursAgo, twoHoursAgo);
    const result = await lab.builder(shop).build({ exclude: ["tag:events"] });
    assert.equal(result.ok, true);
    assert.equal(existsSync(orphan), false);
    assert.deepEqual([await lab.rows(ORDERS_SQL), await lab.rows(CUSTOMERS_SQL)], before);
    assert.equal(
      (await lab.catalog.liveFiles("orders")).length,
      1,
      "the old files were replaced, not added to",
    );
  });

  test("sluice test runs the tests on the tables as they are, sources' and singular ones included", async () => {
    const result = await lab.builder(shop).test({ select: ["orders"] });
    assert.deepEqual(
      result.tests.map((outcome) => [outcome.name, outcome.status]),
      [
        ["unique_orders_order_id", "pass"],
        ["not_null_orders_order_id", "pass"],
        ["relationships_orders_customer_id", "pass"],
        ["accepted_values_orders_status", "pass"],
        ["assert_order_amount_not_negative", "pass"],
      ],
    );
    assert.equal(result.ok, true);
  });

  test("compile renders refs, macros and vars, with ephemeral models inlined as CTEs", async () => {
    const sql = await lab.builder(shop).compile("orders");
    assert.match(sql, /^WITH __ephemeral__stg_payments AS \(\n/);
    assert.match(sql, /\(amount \/ 100\) as amount/);
    assert.match(sql, /,\n with payments as|,\nwith payments as|,\n\s*payments as \(/);
    assert.match(sql, /from "stg_orders" as o/);
  });

  test("docs lists lineage, descriptions, columns with types and tests, and the last run", async () => {
    const docs = (await lab.builder(shop).docs()) as {
      nodes: {
        name: string;
        description: string;
        columns: { name: string; type: string | null; tests: { name: string }[] }[];
        lastRun: { status: string } | null;
      }[];
      lineage: { from: string; to: string }[];
      sources: { name: string }[];
    };
    const orders = docs.nodes.find((node) => node.name === "orders");
    assert.equal(orders?.description, "One row per order, with what was paid.");
    assert.equal(orders?.lastRun?.status, "success");
    const status = orders?.columns.find((column) => column.name === "status");
    assert.equal(status?.type, "VARCHAR");
    assert.deepEqual(
      status?.tests.map((test) => test.name),
      ["accepted_values_orders_status"],
    );
    assert.ok(docs.lineage.some((edge) => edge.from === "stg_payments" && edge.to === "orders"));
    assert.ok(docs.lineage.some((edge) => edge.from === "source:sluice.events" && edge.to === "fct_events"));
    assert.deepEqual(
      docs.sources.map((source) => source.name),
      ["sluice.events"],
    );
  });

  test("--env dev builds beside production, reading production for what it did not build; promote publishes it", async () => {
    const model = join(shop, "models", "marts", "customers.sql");
    writeFileSync(model, readFileSync(model, "utf8").replace("c.last_name,", "c.last_name,\n    c.country,"));
    const dev = lab.builder(shop, { env: "dev" });
    const modified = ["state:modified,path:models/marts"];
    assert.deepEqual(await dev.select({ select: modified }), ["customers"]);
    const result = await dev.build({ select: modified });
    assert.equal(result.ok, true);
    assert.deepEqual(await lab.rows("SELECT customer_id, country FROM dev__customers ORDER BY 1"), [
      [1, "DE"],
      [2, "FR"],
      [3, "DE"],
    ]);
    assert.ok(
      !(await lab.rows("DESCRIBE customers")).some((row) => row[0] === "country"),
      "production is untouched",
    );
    assert.ok(
      !(await lab.catalog.tables()).some((table) => table.name === "dev__orders"),
      "dev read production orders",
    );

    const promoted = await dev.promote();
    assert.deepEqual(
      promoted.map((run) => [run.node, run.status]),
      [["customers", "success"]],
    );
    assert.deepEqual(
      await lab.rows(CUSTOMERS_SQL),
      await lab.rows("SELECT * FROM dev__customers ORDER BY customer_id"),
    );
    assert.deepEqual(await lab.builder(shop).select({ select: modified }), []);
  });
});

describe("incremental models over events", () => {
  let lab: Lab;
  let shop: string;
  before(async () => {
    lab = await openLab();
    shop = copyShop(lab);
  });
  after(() => lab.close());

  const FCT = "SELECT event_id, event, user_id, ts, dt FROM fct_events ORDER BY event_id";
  const DAILY = "SELECT day, event, events, users FROM daily_event_counts ORDER BY day, event";

  test("the first build reads everything, later ones only what is past the watermark (with lookback), merged", async () => {
    await appendEvents(lab, [
      ["e1", "page", "u1", "2026-01-01 10:00:00+00"],
      ["e2", "page", "u2", "2026-01-01 11:00:00+00"],
      ["e3", "signup", "u1", "2026-01-02 09:00:00+00"],
    ]);
    const first = await lab.builder(shop).build({ select: ["tag:events"] });
    assert.equal(first.ok, true, JSON.stringify(first));
    assert.deepEqual(await lab.rows(DAILY), [
      ["2026-01-01", "page", 2, 2],
      ["2026-01-02", "signup", 1, 1],
    ]);
    await appendEvents(lab, [
      ["e4", "page", "u3", "2026-01-02 08:30:00+00"], // late, but within the hour of lookback
      ["e5", "page", "u1", "2026-01-03 12:00:00+00"],
    ]);
    const second = await lab.builder(shop).build({ select: ["tag:events"] });
    assert.equal(second.ok, true);
    const fct = second.runs.find((run) => run.node === "fct_events");
    assert.equal(fct?.rows, 3, "e3 (within the lookback), e4 and e5 were read again, not e1 and e2");
    assert.deepEqual(
      (await lab.rows(FCT)).map((row) => row[0]),
      ["e1", "e2", "e3", "e4", "e5"],
    );
    assert.deepEqual(await lab.rows(DAILY), [
      ["2026-01-01", "page", 2, 2],
      ["2026-01-02", "page", 1, 1],
      ["2026-01-02", "signup", 1, 1],
      ["2026-01-03", "page", 1, 1],
    ]);
    const partitions = (await lab.catalog.liveFiles("daily_event_counts"))
      .map((file) => file.partition)
      .sort();
    assert.deepEqual(partitions, ["2026-01-01", "2026-01-02", "2026-01-03"]);
  });

  test("a re-run with nothing new changes nothing; --full-refresh rebuilds the same tables", async () => {
    const snapshot = await lab.catalog.tableSnapshot("fct_events");
    const dailySnapshot = await lab.catalog.tableSnapshot("daily_event_counts");
    const again = await lab.builder(shop).build({ select: ["tag:events"] });
    assert.deepEqual(
      again.runs.map((run) => run.status),
      ["up_to_date", "up_to_date"],
    );
    assert.equal(await lab.catalog.tableSnapshot("fct_events"), snapshot);
    assert.equal(await lab.catalog.tableSnapshot("daily_event_counts"), dailySnapshot);
    const fct = await lab.rows(FCT);
    const daily = await lab.rows(DAILY);
    const refreshed = await lab.builder(shop).build({ select: ["tag:events"], fullRefresh: true });
    assert.equal(refreshed.ok, true);
    assert.deepEqual(await lab.rows(FCT), fct);
    assert.deepEqual(await lab.rows(DAILY), daily);
  });

  test("a merge rejects duplicate keys in the new rows, naming them, and publishes nothing", async () => {
    const snapshot = await lab.catalog.tableSnapshot("fct_events");
    await appendEvents(lab, [
      ["e6", "page", "u1", "2026-01-04 10:00:00+00"],
      ["e6", "page", "u1", "2026-01-04 10:00:01+00"],
    ]);
    const duplicate = await lab.builder(shop).build({ select: ["fct_events"] });
    assert.equal(duplicate.runs[0]?.status, "error");
    assert.equal(
      duplicate.runs[0]?.message,
      "models/events/fct_events.sql:1: unique_key event_id is not unique in the new rows of fct_events: e6 (2 rows); make the key unique or use incremental_strategy delete+insert",
    );
    assert.equal(await lab.catalog.tableSnapshot("fct_events"), snapshot);
  });
});

describe("incremental strategies", () => {
  let lab: Lab;
  before(async () => {
    lab = await openLab();
  });
  after(() => lab.close());

  test("append adds rows past the watermark; delete+insert replaces every row of the keys it brings", async () => {
    const root = writeProject(lab, "strategies", {
      "seeds/src.csv": "id,day,amount\n1,2026-01-01,10\n2,2026-01-01,5\n3,2026-01-02,7\n",
      "models/appended.sql":
        "{{ config(materialized='incremental', watermark='id') }}\nselect id, day, amount from {{ ref('src') }}\n",
      "models/by_day.sql": [
        "{{ config(materialized='incremental', incremental_strategy='delete+insert', unique_key='day') }}",
        "select day, id, amount from {{ ref('src') }}",
        "{% if is_incremental() %}where day >= (select max(day) from {{ this }}){% endif %}",
        "",
      ].join("\n"),
    });
    assert.equal((await lab.builder(root).build()).ok, true);
    writeFileSync(
      join(root, "seeds", "src.csv"),
      "id,day,amount\n1,2026-01-01,10\n2,2026-01-01,5\n3,2026-01-02,8\n4,2026-01-02,1\n5,2026-01-03,2\n",
    );
    const result = await lab.builder(root).build();
    assert.equal(result.ok, true);
    assert.deepEqual(
      result.runs.map((run) => [run.node, run.rows]),
      [
        ["src", 5],
        ["appended", 2],
        ["by_day", 3],
      ],
    );
    assert.deepEqual(await lab.rows("SELECT id, amount FROM appended ORDER BY id"), [
      [1, 10],
      [2, 5],
      [3, 7],
      [4, 1],
      [5, 2],
    ]);
    assert.deepEqual(await lab.rows("SELECT day, id, amount FROM by_day ORDER BY id"), [
      ["2026-01-01", 1, 10],
      ["2026-01-01", 2, 5],
      ["2026-01-02", 3, 8],
      ["2026-01-02", 4, 1],
      ["2026-01-03", 5, 2],
    ]);
  });

  test("an onAudit hook (quality checks) sees the unpublished files and can keep them unpublished", async () => {
    const root = writeProject(lab, "audited", {
      "models/audited.sql": "select 1 as id union all select 2\n",
    });
    const seen: number[] = [];
    const builder = lab.builder(root, {
      onAudit: async ({ table, paths }) => {
        const rows = await lab.warehouse.query(
          `SELECT count(*) FROM read_parquet([${paths.map((path) => `'${path}'`).join(", ")}])`,
        );
        seen.push(rows.rows[0]?.[0] as number);
        return [
          {
            name: "enough_rows",
            severity: "error",
            status: "fail",
            failures: 0,
            failuresFile: null,
            message: `check of ${table}: too few rows`,
          },
        ];
      },
    });
    const result = await builder.build();
    assert.deepEqual(seen, [2]);
    assert.equal(result.runs[0]?.status, "failed_tests");
    assert.equal(result.runs[0]?.message, "not published: enough_rows (check of audited: too few rows)");
    assert.ok(!(await lab.catalog.tables()).some((table) => table.name === "audited"));
  });

  test("onTableBuilt (profiling) does not hold up the models downstream; build() waits for it", async () => {
    const root = writeProject(lab, "hooked", {
      "models/upstream.sql": "select 1 as id\n",
      "models/downstream.sql": "select * from {{ ref('upstream') }}\n",
    });
    let downstreamBuilt: () => void = () => {};
    const downstream = new Promise<void>((resolve) => {
      downstreamBuilt = resolve;
    });
    const events: string[] = [];
    const builder = lab.builder(root, {
      onResult: (run) => {
        events.push(`built ${run.node}`);
        if (run.node === "downstream") downstreamBuilt();
      },
      onTableBuilt: async (table) => {
        // The upstream table's hook finishes only once its downstream model was built (or 5 s).
        if (table === "upstream")
          await Promise.race([downstream, new Promise((resolve) => setTimeout(resolve, 5_000))]);
        events.push(`hooked ${table}`);
      },
    });
    const result = await builder.build();
    assert.equal(result.ok, true);
    assert.ok(events.indexOf("built downstream") < events.indexOf("hooked upstream"), events.join(", "));
    assert.ok(events.includes("hooked downstream"), "every hook finished before build() returned");
  });

  test("a changed column list asks for --full-refresh", async () => {
    const root = writeProject(lab, "strategies", {
      "models/appended.sql":
        "{{ config(materialized='incremental', watermark='id') }}\nselect id, day, amount, 1 as extra from {{ ref('src') }}\n",
    });
    const result = await lab.builder(root).build({ select: ["appended"] });
    assert.equal(
      result.runs[0]?.message,
      "models/appended.sql: the columns of incremental model appended changed (added extra INTEGER): rebuild it with --full-refresh",
    );
    const refreshed = await lab.builder(root).build({ select: ["appended"], fullRefresh: true });
    assert.equal(refreshed.ok, true);
    assert.deepEqual(await lab.rows("SELECT count(*), sum(extra) FROM appended"), [[5, 5]]);
  });
});

describe("dbt projects as written", () => {
  let lab: Lab;
  before(async () => {
    lab = await openLab();
  });
  after(() => lab.close());

  test("set, for loops, comments, data-tests, arguments: and doc blocks work unchanged", async () => {
    const root = writeProject(lab, "jaffle", {
      "dbt_project.yml":
        "name: 'jaffle_shop'\nconfig-version: 2\nprofile: 'jaffle_shop'\nmodels:\n  jaffle_shop:\n    +materialized: table\n",
      "seeds/raw_payments.csv":
        "id,order_id,payment_method,amount\n1,1,credit_card,1000\n2,1,coupon,100\n3,2,gift_card,1700\n",
      "models/order_payments.sql": [
        "{% set payment_methods = ['credit_card', 'coupon', 'gift_card'] %}",
        "with payments as (",
        "    {#- seeds stand in for the source here #}",
        "    select * from {{ ref('raw_payments') }}",
        ")",
        "select",
        "    order_id,",
        "    {% for payment_method in payment_methods -%}",
        "    sum(case when payment_method = '{{ payment_method }}' then amount else 0 end) as {{ payment_method }}_amount,",
        "    {% endfor -%}",
        "    sum(amount) as total_amount",
        "from payments",
        "group by order_id",
        "",
      ].join("\n"),
      "models/schema.yml": [
        "version: 2",
        "models:",
        "  - name: order_payments",
        "    columns:",
        "      - name: order_id",
        "        description: '{{ doc(\"order_id\") }}'",
        "        data-tests:",
        "          - unique",
        "          - accepted_values:",
        "              arguments:",
        "                values: [1, 2]",
        "",
      ].join("\n"),
      "models/docs.md": "{% docs order_id %}\nThe order's id.\n{% enddocs %}\n",
    });
    const result = await lab.builder(root).build();
    assert.equal(result.ok, true, JSON.stringify(result.runs.map((run) => run.message)));
    assert.deepEqual(await lab.rows("SELECT * FROM order_payments ORDER BY order_id"), [
      [1, 1000, 100, 0, 1100],
      [2, 0, 0, 1700, 1700],
    ]);
    const order = result.runs.find((run) => run.node === "order_payments");
    assert.deepEqual(
      order?.tests.map((outcome) => [outcome.name, outcome.status]),
      [
        ["unique_order_payments_order_id", "pass"],
        ["accepted_values_order_payments_order_id", "pass"],
      ],
    );
    const table = (await lab.catalog.tables()).find((candidate) => candidate.name === "order_payments");
    assert.equal(table?.columns[0]?.description, "The order's id.");
  });

  test("a macro may return a value (dbt's return()), also to another macro; do, items(), get(), True work", async () => {
    const root = writeProject(lab, "returning", {
      "macros/methods.sql": [
        "{% macro payment_methods() %}{{ return(['card', 'coupon']) }}{% endmacro %}",
        "{% macro method_columns() %}",
        "  {%- set columns = [] -%}",
        "  {%- for method in payment_methods() -%}{%- do columns.append(method ~ '_amount') -%}{%- endfor -%}",
        "  {%- set renames = {'a': 'b'} -%}",
        "  {%- for old, new in renames.items() if renames.get('a') == 'b' and True -%}{%- do columns.append(new) -%}{%- endfor -%}",
        "  {{ return(columns | join(', ')) }}",
        "{% endmacro %}",
        "",
      ].join("\n"),
      "models/methods.sql":
        "select {% for method in payment_methods() %}1 as {{ method }}_amount{% if not loop.last %}, {% endif %}{% endfor %}\n-- {{ method_columns() }}\n",
    });
    assert.equal(
      await lab.builder(root).compile("methods"),
      "select 1 as card_amount, 1 as coupon_amount\n-- card_amount, coupon_amount, b\n",
    );
  });

  test("source freshness (loaded_at_field, warn_after, error_after) is tested by sluice test, not by builds", async () => {
    const hoursAgo = (hours: number) =>
      new Date(Date.now() - hours * 3_600_000).toISOString().replace("Z", "");
    await appendEvents(lab, [
      ["f1", "Order Completed", "u1", hoursAgo(30)],
      ["f2", "Order Completed", "u2", hoursAgo(3)],
    ]);
    const root = writeProject(lab, "fresh", {
      "models/sources.yml": [
        "sources:",
        "  - name: sluice",
        "    loaded_at_field: ts",
        "    freshness:",
        "      warn_after: {count: 1, period: hour}",
        "      error_after: {count: 1, period: day}",
        "    tables:",
        "      - name: events",
        "      - name: events_rejected",
        "        freshness: null",
        "",
      ].join("\n"),
      "models/recent.sql": "select event_id from {{ source('sluice', 'events') }}\n",
    });
    const tested = await lab.builder(root).test();
    assert.deepEqual(
      tested.tests.map((test) => [test.name, test.status]),
      [
        ["source_freshness_sluice_events_warn", "warn"],
        ["source_freshness_sluice_events", "pass"],
      ],
    );
    assert.equal(tested.ok, true, "a warning does not fail");
    const failing = JSON.parse(readFileSync(tested.tests[0]?.failuresFile as string, "utf8"));
    assert.equal(Math.round(failing[0].hours_ago), 3);
    assert.match(
      tested.tests[0]?.message ?? "",
      /^newest ts is \S+ \S+, 3(\.\d+)? hours ago \(warn after 1 hour\)$/,
    );
    const built = await lab.builder(root).build();
    assert.deepEqual(built.sourceTests, []);
    assert.equal(built.ok, true);
  });

  test("the project's own generic tests ({% test %} in tests/generic/ and macros/) run with their arguments", async () => {
    const root = writeProject(lab, "own_tests", {
      "tests/generic/is_positive.sql":
        "{% test is_positive(model, column_name) %}\nselect * from {{ model }} where {{ column_name }} <= 0\n{% endtest %}\n",
      "macros/row_tests.sql":
        "{%- test at_least_rows(model, min_rows=1) -%}\nselect count(*) as n from {{ model }} having count(*) < {{ min_rows }}\n{%- endtest -%}\n",
      "models/amounts.sql": "select 1 as id, 10 as amount union all select 2, -3\n",
      "models/schema.yml": [
        "models:",
        "  - name: amounts",
        "    data_tests:",
        "      - at_least_rows:",
        "          arguments:",
        "            min_rows: 5",
        "          config:",
        "            severity: warn",
        "    columns:",
        "      - name: amount",
        "        data_tests:",
        "          - is_positive",
        "          - is_positive:",
        "              config:",
        "                where: id < 2",
        "",
      ].join("\n"),
    });
    const builder = lab.builder(root);
    const result = await builder.build();
    const amounts = result.runs[0];
    assert.equal(amounts?.status, "failed_tests");
    assert.deepEqual(
      amounts?.tests.map((outcome) => [outcome.name, outcome.status, outcome.failures]),
      [
        ["at_least_rows_amounts", "warn", 1],
        ["is_positive_amounts_amount", "fail", 1],
        ["is_positive_amounts_amount_2", "pass", 0],
      ],
    );
    assert.match(
      await builder.compile("is_positive_amounts_amount_2"),
      /select \* from \(SELECT \* FROM "amounts" WHERE id < 2\) where amount <= 0/,
    );
  });

  test("dbt's cross-database macros and adapter.quote render DuckDB SQL", async () => {
    const root = writeProject(lab, "cross_database", {
      "models/portable.sql": [
        "select",
        "  {{ dbt.date_trunc('month', \"date '2026-03-17'\") }} as month,",
        "  {{ dbt.dateadd('day', 2, \"date '2026-03-17'\") }} as later,",
        "  {{ dbt.datediff(\"date '2026-03-01'\", \"date '2026-03-17'\", 'day') }} as days,",
        "  {{ dbt.safe_cast(\"'x'\", dbt.type_int()) }} as bad_int,",
        "  {{ dbt.concat([\"'a'\", \"'b'\"]) }} as ab,",
        "  {{ dbt.split_part(\"'a-b'\", \"'-'\", 2) }} as b,",
        "  {{ dbt.hash(\"'x'\") }} = md5('x') as hashed,",
        "  {{ dbt.last_day(\"date '2026-02-10'\", 'month') }} as month_end,",
        "  1 as {{ adapter.quote('select') }}",
        "",
      ].join("\n"),
    });
    const result = await lab.builder(root).build();
    assert.equal(result.ok, true, JSON.stringify(result.runs.map((run) => run.message)));
    assert.deepEqual(
      await lab.rows(
        'SELECT CAST(month AS DATE)::VARCHAR, CAST(later AS DATE)::VARCHAR, days, bad_int, ab, b, hashed, month_end::VARCHAR, "select" FROM portable',
      ),
      [["2026-03-01", "2026-03-19", 16, null, "ab", "b", true, "2026-02-28", 1]],
    );
  });

  test("seeds take column_types from dbt_project.yml folders and schema.yml, so zip codes keep their zeros", async () => {
    const root = writeProject(lab, "typed_seeds", {
      "dbt_project.yml": [
        "name: typed",
        "seeds:",
        "  typed:",
        "    +column_types:",
        "      zip: varchar",
        "    lookups:",
        "      +tags: [lookup]",
        "",
      ].join("\n"),
      "seeds/lookups/stores.csv": "id,zip,opened\n1,02134,2026-01-01\n2,10001,2026-02-01\n",
      "seeds/regions.csv": "region,name\n01,North\n",
      "seeds/schema.yml": "seeds:\n  - name: stores\n    config:\n      column_types: {opened: varchar}\n",
    });
    const project = lab.builder(root);
    assert.deepEqual(await project.select({ select: ["tag:lookup"] }), ["stores"]);
    // regions has no zip column: the project-wide column_types do not apply to it.
    const result = await project.build();
    assert.equal(result.ok, true, JSON.stringify(result.runs.map((run) => run.message)));
    assert.deepEqual(await lab.rows("SELECT zip, opened FROM stores ORDER BY id"), [
      ["02134", "2026-01-01"],
      ["10001", "2026-02-01"],
    ]);
    const stores = (await lab.catalog.tables()).find((candidate) => candidate.name === "stores");
    assert.deepEqual(
      stores?.columns.map((column) => column.type),
      ["BIGINT", "VARCHAR", "VARCHAR"],
    );
  });
});

describe("project errors", () => {
  let lab: Lab;
  before(async () => {
    lab = await openLab();
  });
  after(() => lab.close());

  test("a cycle is reported with its path", () => {
    const root = writeProject(lab, "cycle", {
      "models/a.sql": "select * from {{ ref('c') }}\n",
      "models/b.sql": "select 1 as x\nunion all\nselect * from {{ ref('a') }}\n",
      "models/c.sql": "select * from {{ ref('b') }}\n",
    });
    assert.throws(() => lab.builder(root), {
      message:
        /models depend on each other in a cycle: (a -> b -> c -> a|b -> c -> a -> b|c -> a -> b -> c) \(/,
    });
  });

  test("an SQL error names the model file and the line", async () => {
    const root = writeProject(lab, "typo", {
      "models/ok.sql": "select 1 as id, 'x' as name\n",
      "models/bad.sql":
        "{{ config(materialized='table') }}\nselect\n    id,\n    nmae\nfrom {{ ref('ok') }}\n",
    });
    const result = await lab.builder(root).build();
    const bad = result.runs.find((run) => run.node === "bad");
    assert.equal(bad?.status, "error");
    assert.match(bad?.message ?? "", /^models\/bad\.sql:4: Binder Error: Referenced column "nmae" not found/);
  });

  test("template errors, unknown refs and unknown config values name the file and line", () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ "models/m.sql": "select 1\n{% if %}\n" }, /^models\/m\.sql:2: /],
      [
        { "models/m.sql": "select 1 as x\nfrom {{ ref('nope') }}\n" },
        /^models\/m\.sql:2: ref\('nope'\): no model or seed named nope$/,
      ],
      [
        {
          "models/m.sql":
            "\n{{ config(materialized='incremental', incremental_strategy='upsert') }}\nselect 1 as x\n",
        },
        /^models\/m\.sql:2: incremental_strategy must be one of append, merge, delete\+insert, insert_overwrite, not "upsert"$/,
      ],
      [
        {
          "models/m.sql": "select 1 as x\n",
          "models/schema.yml":
            "models:\n  - name: m\n    columns:\n      - name: x\n        tests:\n          - dbt_utils.at_least_one\n",
        },
        /^models\/schema\.yml:6: unknown test "dbt_utils\.at_least_one"/,
      ],
    ];
    for (const [index, [files, message]] of cases.entries()) {
      const root = writeProject(lab, `errors-${index}`, files);
      assert.throws(() => lab.builder(root), { message });
    }
  });

  test("models whose relationships tests read each other build without waiting on each other forever", async () => {
    const root = writeProject(lab, "mutual", {
      "models/a.sql": "{{ config(materialized='table') }}\nselect 1 as id\n",
      "models/b.sql": "{{ config(materialized='table') }}\nselect 1 as id\n",
      "models/schema.yml": [
        "models:",
        "  - name: a",
        "    columns:",
        "      - name: id",
        "        tests: [{relationships: {to: ref('b'), field: id}}]",
        "  - name: b",
        "    columns:",
        "      - name: id",
        "        tests: [{relationships: {to: ref('a'), field: id}}]",
        "",
      ].join("\n"),
    });
    const result = await lab.builder(root).build();
    assert.deepEqual(
      result.runs.map((run) => [run.node, run.status]),
      [
        ["a", "success"],
        ["b", "success"],
      ],
    );
    // One of them is built first: its test of the other could not run yet; the other's test did.
    assert.deepEqual(result.runs.map((run) => run.tests[0]?.status).sort(), ["pass", "skipped"]);
    const again = await lab.builder(root).build();
    assert.deepEqual(
      again.runs.flatMap((run) => run.tests.map((outcome) => outcome.status)),
      ["pass", "pass"],
    );
  });

  test("a model may not replace a table it did not build", async () => {
    const root = writeProject(lab, "owner", { "seeds/events.csv": "a\n1\n" });
    await appendEvents(lab, [["e1", "page", "u1", "2026-01-01 10:00:00+00"]]);
    const result = await lab.builder(root).build();
    assert.equal(result.runs[0]?.status, "error");
    assert.match(
      result.runs[0]?.message ?? "",
      /would replace lake table events, which was loaded or collected/,
    );
  });

  test("a first build of a merge model rejects NULL keys", async () => {
    const root = writeProject(lab, "nullkey", {
      "models/m.sql":
        "{{ config(materialized='incremental', unique_key='id') }}\nselect * from (values (1), (null)) as t(id)\n",
    });
    const result = await lab.builder(root).build();
    assert.equal(
      result.runs[0]?.message,
      "models/m.sql:1: unique_key id is NULL in 1 row of its rows of m: a merge needs a key on every row",
    );
    assert.ok(!(await lab.catalog.tables()).some((table) => table.name === "m"));
  });
});
