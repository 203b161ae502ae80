import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type RenderContext, SqlTemplate, templateEnvironment } from "./render.js";

describe("rendering", () => {
  const env = templateEnvironment();
  const render = (raw: string, isIncremental = false) => {
    const config: Record<string, unknown> = {};
    const context: RenderContext = {
      path: "models/m.sql",
      vars: { days: 7 },
      env: "prod",
      isIncremental,
      ref: (name) => `"${name}"`,
      source: (source, table) => `"${source}_${table}"`,
      config: (values) => Object.assign(config, values),
      thisRelation: '"m"',
    };
    return { sql: new SqlTemplate(raw, "models/m.sql", env).render(context, {}), config };
  };

  test("run_started_at is a datetime, invocation_id an id, a source's identifier its table", () => {
    const { sql } = render(
      "{{ run_started_at.strftime('%Y-%m-%d') }}|{{ run_started_at }}|{{ invocation_id }}|{{ source('web', 'views').identifier }}",
    );
    const [day, stamp, invocation, identifier] = sql.split("|");
    assert.match(day ?? "", /^\d{4}-\d{2}-\d{2}$/);
    assert.match(stamp ?? "", /^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{6}\+00:00$/);
    assert.ok(stamp?.startsWith(day ?? "-"));
    assert.match(invocation ?? "", /^[0-9a-f-]{36}$/);
    assert.equal(identifier, "web_views");
  });

  test("literal calls render by substitution exactly as nunjucks renders them", () => {
    const raw = [
      "{{ config(materialized='incremental', unique_key=['a', \"b\"], partition_by={'field': 'day', 'granularity': 'day'}, tags=[], enabled=true, lookback=2) }}",
      "select * from {{ ref('orders') }} o join {{ ref( \"shop\" , 'customers' ) }} c using (id)",
      "union all select * from {{ source('shop', 'payments') }} where x in (select x from {{ this }})",
      "",
    ].join("\n");
    const viaNunjucks = render(`${raw}{# forces nunjucks #}`);
    const bySubstitution = render(raw);
    assert.equal(bySubstitution.sql, viaNunjucks.sql);
    assert.deepEqual(bySubstitution.config, viaNunjucks.config);
    assert.deepEqual(bySubstitution.config, {
      materialized: "incremental",
      unique_key: ["a", "b"],
      partition_by: { field: "day", granularity: "day" },
      tags: [],
      enabled: true,
      lookback: 2,
    });
    assert.equal(
      bySubstitution.sql,
      '\nselect * from "orders" o join "customers" c using (id)\nunion all select * from "shop_payments" where x in (select x from "m")\n',
    );
  });

  test("an is_incremental() block of literal calls renders by substitution too, as nunjucks would", () => {
    const raw = [
      "{{ config(materialized='incremental') }}",
      "select * from {{ source('shop', 'events') }}",
      "{% if is_incremental() %}",
      "where ts > (select max(ts) from {{ this }})",
      "{% endif %}",
      "",
    ].join("\n");
    for (const incremental of [false, true]) {
      assert.equal(render(raw, incremental).sql, render(`${raw}{# forces nunjucks #}`, incremental).sql);
    }
    assert.match(render(raw, true).sql, /where ts > \(select max\(ts\) from "m"\)/);
    assert.doesNotMatch(render(raw, false).sql, /where/);
  });

  test("blocks, vars and is_incremental() go through nunjucks", () => {
    const raw = "select {{ var('days') }} as d{% if is_incremental() %} where t > 1{% endif %}";
    assert.equal(render(raw).sql, "select 7 as d");
    assert.equal(render(raw, true).sql, "select 7 as d where t > 1");
    assert.throws(() => render("select {{ var('nope') }}"), {
      message: /^models\/m\.sql:1: var\('nope'\) is not defined/,
    });
  });
});
