import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { loadProject, ProjectError } from "./project.js";

describe("check files", () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "sluice-quality-project-"));
    await mkdir(join(dir, "checks"));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const project = async (files: Record<string, string>) => {
    await rm(join(dir, "quality.yml"), { force: true });
    await rm(join(dir, "checks"), { recursive: true, force: true });
    await mkdir(join(dir, "checks"));
    for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
    return loadProject(dir);
  };
  test("quality.yml and checks/*.yml are merged per table, with names, severities and schedules", async () => {
    const loaded = await project({
      "quality.yml": "orders:\n  every: 30m\n  checks:\n    - { type: row_count, min: 1 }\n",
      "checks/orders.yml":
        "orders:\n  - { type: missing, column: email, severity: warn, where: \"dt > '2026-01-01'\" }\n",
      "checks/notes.txt": "not a check file",
    });
    const orders = loaded.tables.get("orders");
    assert.deepEqual(orders?.schedule, { everyMs: 1_800_000 });
    assert.deepEqual(
      orders.checks.map((check) => [
        check.name,
        check.kind,
        check.severity,
        check.where ?? null,
        check.origin,
      ]),
      [
        ["row_count", "row_count", "error", null, "quality.yml: orders check 1"],
        ["missing(email)", "missing", "warn", "dt > '2026-01-01'", "checks/orders.yml: orders check 1"],
      ],
    );
  });

  test("a malformed file fails with the file, the table, the check and the reason", async () => {
    const cases: [Record<string, string>, string | RegExp][] = [
      [
        { "quality.yml": "orders: [" },
        "quality.yml is not valid YAML: Flow sequence in block collection must be sufficiently indented and end with a ] at line 1, column 10",
      ],
      [
        { "checks/a.yml": "- just a list" },
        'checks/a.yml must map table names to their checks (e.g. "orders:" then "checks:")',
      ],
      [
        { "checks/a.yml": "orders:\n  - { type: nope }" },
        'checks/a.yml: orders check 1: unknown type "nope" (one of row_count, missing, duplicates, accepted_values, regex, range, freshness, schema_change, references, sql, anomaly, change)',
      ],
      [
        { "checks/a.yml": "orders:\n  - { column: x }" },
        "checks/a.yml: orders check 1: type is required (one of row_count, missing, duplicates, accepted_values, regex, range, freshness, schema_change, references, sql, anomaly, change)",
      ],
      [
        { "checks/a.yml": "orders:\n  - { type: row_count }" },
        "checks/a.yml: orders check 1 (row_count): set min, max or both",
      ],
      [
        { "checks/a.yml": "orders:\n  - { type: range, column: x, min: [1] }" },
        "checks/a.yml: orders check 1 (range): min must be a number, or a date or time in quotes",
      ],
      [
        { "checks/a.yml": "orders:\n  - { type: missing, column: x, severity: fatal }" },
        'checks/a.yml: orders check 1 (missing): severity must be one of warn, error, not "fatal"',
      ],
      [
        { "checks/a.yml": "orders:\n  - { type: freshness, max_age: soon }" },
        "checks/a.yml: orders check 1 (freshness): max_age must be a duration such as 30m, 2h or 1d",
      ],
      [
        { "checks/a.yml": "orders:\n  - { type: references, column: x, to: customers }" },
        'checks/a.yml: orders check 1 (references): to must be table.column (e.g. customers.id), not "customers"',
      ],
      [
        { "checks/a.yml": "orders:\n  cron: every hour\n  checks: []" },
        /^checks\/a\.yml: orders: cron "every hour" is not a cron expression: /,
      ],
      [
        { "checks/a.yml": "orders:\n  - { type: sql, sql: select 1 }\n  - { type: sql, sql: select 2 }" },
        'checks/a.yml: orders check 2: table orders already has a check named "sql" (checks/a.yml: orders check 1); give one of them another name',
      ],
      [
        { "checks/a.yml": "orders:\n  chekcs: []" },
        'checks/a.yml: orders has unknown key "chekcs" (expected checks, cron or every)',
      ],
    ];
    for (const [files, message] of cases) {
      await assert.rejects(project(files), (error: Error) => {
        assert.ok(error instanceof ProjectError, String(error));
        if (typeof message === "string") assert.equal(error.message, message);
        else assert.match(error.message, message);
        return true;
      });
    }
  });
});
