/**
 * `type: schema_change` — the table's columns against a baseline: the columns listed in
 * `columns` (name → type) when given, else those of the profile taken before the table's
 * latest change (so a load that adds, removes or retypes a column fails it once, and the
 * next load without a change recovers). `fail_on` narrows it (default: added, removed, retyped).
 */
import type { CheckKind } from "./check.js";
import { CheckSpecError } from "./fields.js";

const CHANGES = ["added", "removed", "retyped"] as const;
type Change = (typeof CHANGES)[number];

interface Spec {
  expected?: Record<string, string>;
  failOn: Change[];
}

export const schemaChange: CheckKind<Spec> = {
  kind: "schema_change",
  fields: ["columns", "fail_on"],
  parse(fields) {
    const failOn = fields.strings("fail_on") ?? [...CHANGES];
    for (const change of failOn) {
      if (!(CHANGES as readonly string[]).includes(change))
        throw new CheckSpecError(`fail_on must list ${CHANGES.join(", ")}, not ${JSON.stringify(change)}`);
    }
    return { expected: fields.stringMap("columns"), failOn: failOn as Change[] };
  },
  defaultName: () => "schema_change",
  async run(spec, context) {
    let baseline: Map<string, string>;
    let against: string;
    if (spec.expected) {
      baseline = new Map(Object.entries(spec.expected).map(([name, type]) => [name, type.toUpperCase()]));
      against = "the declared columns";
    } else {
      const previous = await context.previousColumns();
      if (!previous) {
        return { passed: true, observed: 0, message: "no earlier profile to compare the columns with yet" };
      }
      baseline = new Map(previous.columns.map((column) => [column.name, column.type.toUpperCase()]));
      against = `the profile of ${previous.profiledAt}`;
    }
    const current = new Map(context.table.columns.map((column) => [column.name, column.type.toUpperCase()]));
    const found: Record<Change, string[]> = { added: [], removed: [], retyped: [] };
    for (const [name, type] of current) {
      const before = baseline.get(name);
      if (before === undefined) found.added.push(`${name} (${type})`);
      else if (before !== type) found.retyped.push(`${name} (${before} → ${type})`);
    }
    for (const [name, type] of baseline) if (!current.has(name)) found.removed.push(`${name} (${type})`);
    const changes = CHANGES.filter((change) => found[change].length > 0).map(
      (change) => `${change} ${found[change].join(", ")}`,
    );
    const failing = spec.failOn.reduce((sum, change) => sum + found[change].length, 0);
    return {
      passed: failing === 0,
      observed: failing,
      message:
        changes.length === 0
          ? `columns unchanged since ${against}`
          : `since ${against}: ${changes.join("; ")}`,
    };
  },
};
