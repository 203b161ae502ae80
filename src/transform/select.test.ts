import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { describe, test } from "node:test";
import { loadProject } from "./project.js";
import { selectNodes } from "./select.js";
import { SHOP_FIXTURE } from "./test-support.js";

describe("selection", () => {
  const project = loadProject(SHOP_FIXTURE);
  const select = (...selectors: string[]) => selectNodes(project, selectors);

  test("no selector is every node, parents before children", () => {
    const all = select();
    assert.equal(all.length, 10);
    for (const [child, parents] of project.parents) {
      for (const parent of parents)
        assert.ok(all.indexOf(parent) < all.indexOf(child), `${parent} before ${child}`);
    }
  });

  test("name+, +name, tag:, path:, source: and globs", () => {
    assert.deepEqual(select("orders+"), ["orders", "customers"]);
    assert.deepEqual(
      new Set(select("+orders")),
      new Set(["raw_orders", "raw_payments", "stg_orders", "stg_payments", "orders"]),
    );
    assert.deepEqual(select("tag:daily"), ["orders", "customers"]);
    assert.deepEqual(select("path:models/staging"), ["stg_customers", "stg_orders", "stg_payments"]);
    assert.deepEqual(select("source:sluice+"), ["fct_events", "daily_event_counts"]);
    assert.deepEqual(new Set(select("stg_*")), new Set(["stg_customers", "stg_orders", "stg_payments"]));
  });

  test("dbt's other forms: folders by fully qualified name, implicit paths, depths, @, config. and resource_type:", () => {
    const staging = ["stg_customers", "stg_orders", "stg_payments"];
    assert.deepEqual(select("staging"), staging);
    assert.deepEqual(select("shop.staging"), staging);
    assert.deepEqual(select("marts.orders"), ["orders"]);
    assert.deepEqual(select("models/staging"), staging);
    assert.deepEqual(select("models/marts/orders.sql"), ["orders"]);
    assert.deepEqual(select("stg_orders+1"), ["stg_orders", "orders"]);
    assert.deepEqual(new Set(select("1+orders")), new Set(["stg_orders", "stg_payments", "orders"]));
    assert.deepEqual(
      new Set(select("@stg_customers")),
      new Set([...select("+customers"), "stg_customers"]),
      "customers and everything it needs",
    );
    assert.deepEqual(select("config.materialized:table"), [
      "raw_customers",
      "raw_orders",
      "raw_payments",
      "orders",
      "customers",
    ]);
    assert.deepEqual(select("config.incremental_strategy:insert_overwrite"), ["daily_event_counts"]);
    assert.deepEqual(select("resource_type:seed"), ["raw_customers", "raw_orders", "raw_payments"]);
    assert.throws(() => select("resource_type:test"), { message: /Sluice selects models and seeds/ });
  });

  test("tags add up from dbt_project.yml, schema.yml and config(), as in dbt", () => {
    const dir = mkdtempSync(join(tmpdir(), "sluice-select-"));
    try {
      const files: Record<string, string> = {
        "dbt_project.yml": "name: p\nmodels:\n  p:\n    marts:\n      +tags: [daily]\n",
        "models/marts/orders.sql": "{{ config(tags=['finance']) }}\nselect 1 as id\n",
        "models/marts/schema.yml": "models:\n  - name: orders\n    config:\n      tags: [pii]\n",
      };
      for (const [path, content] of Object.entries(files)) {
        mkdirSync(dirname(join(dir, path)), { recursive: true });
        writeFileSync(join(dir, path), content);
      }
      const tagged = loadProject(dir);
      assert.deepEqual(tagged.nodes.get("orders")?.config.tags, ["daily", "pii", "finance"]);
      assert.deepEqual(selectNodes(tagged, ["tag:daily"]), ["orders"]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("dbt_project.yml settings that apply to nothing, and misspelt settings, are warnings", () => {
    const dir = mkdtempSync(join(tmpdir(), "sluice-warn-"));
    try {
      const files: Record<string, string> = {
        "dbt_project.yml": [
          "name: shop",
          "models:",
          "  my_new_project:",
          "    +materialized: table",
          "  shop:",
          "    +materialised: table",
          "    stagin:",
          "      +tags: [x]",
          "    stage:",
          "      events:",
          "        +tags: [y]",
          "",
        ].join("\n"),
        "models/stage/events/e.sql": "{{ config(materialized='view', tag='daily') }}\nselect 1 as id\n",
        "models/stage/events/f.sql":
          "{{ config(materialized='incremental', on_schema_change='append_new_columns', post_hook='analyze') }}\nselect 1 as id\n",
        "models/stage/events/g.sql":
          "{{ config(materialized='incremental', on_schema_change='fail') }}\nselect 1 as id\n",
      };
      for (const [path, content] of Object.entries(files)) {
        mkdirSync(dirname(join(dir, path)), { recursive: true });
        writeFileSync(join(dir, path), content);
      }
      const warned = loadProject(dir);
      assert.deepEqual(warned.warnings, [
        "dbt_project.yml: models.my_new_project applies to nothing: this project is named shop (packages are not supported)",
        "dbt_project.yml: models.shop.+materialised: did you mean +materialized?",
        "dbt_project.yml: models.shop.stagin applies to nothing: no model is in a folder stagin",
        "models/stage/events/e.sql:1: config tag: did you mean tags?",
        "post_hook is not supported (hooks are not run); set for f",
        "on_schema_change is not supported (a changed column list stops an incremental build and asks for --full-refresh); set for f",
      ]);
      assert.deepEqual(
        warned.nodes.get("e")?.config.tags,
        ["y"],
        "a folder named like a setting is a folder",
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("selectors add up, a comma intersects, --exclude removes", () => {
    assert.deepEqual(new Set(select("orders", "fct_events")), new Set(["orders", "fct_events"]));
    assert.deepEqual(select("+customers,tag:daily"), ["orders", "customers"]);
    assert.deepEqual(selectNodes(project, ["tag:daily"], ["customers"]), ["orders"]);
  });

  test("state:modified is what is new or changed since its last successful build", () => {
    const built = new Map([...project.nodes.values()].map((node) => [node.name, node.checksum]));
    built.set("stg_orders", "an older checksum");
    built.delete("fct_events");
    assert.deepEqual(
      new Set(selectNodes(project, ["state:modified"], [], { builtChecksums: built })),
      new Set(["stg_orders", "fct_events"]),
    );
    assert.deepEqual(selectNodes(project, ["state:modified+"], [], { builtChecksums: built }).sort(), [
      "customers",
      "daily_event_counts",
      "fct_events",
      "orders",
      "stg_orders",
    ]);
  });

  test("a selector that matches nothing is an error that says so", () => {
    assert.throws(() => select("ordres"), { message: /no model or seed matches "ordres"/ });
    assert.throws(() => select("tag:weekly"), { message: "no model or seed has tag weekly" });
    assert.throws(() => select("config:x"), { message: /unknown selector method "config:"/ });
    assert.throws(() => select("config.schema:x"), { message: /config\.schema: is not a selector/ });
  });
});
