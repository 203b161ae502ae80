/**
 * Checks are declared in YAML, versioned with the project: `<project>/quality.yml` and/or
 * `<project>/checks/*.yml`. Each file maps table names to their checks (and an optional
 * schedule):
 *
 *     orders:
 *       cron: "0 * * * *"          # or every: 30m; checks also run after every load
 *       checks:
 *         - type: row_count
 *           min: 1
 *         - type: missing
 *           column: customer_id
 *           severity: warn         # default error
 *
 * Parsing opens no database: a malformed file fails here, naming the file and the check.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import { Cron } from "croner";
import { parse as parseYaml } from "yaml";
import { CheckSpecError, Fields, parseDuration } from "./checks/fields.js";
import { CHECK_KINDS } from "./checks/registry.js";
import { SEVERITIES, type Severity } from "./model.js";

/** A malformed check file: the message names the file and the check. */
export class ProjectError extends Error {}

export interface CheckDefinition {
  table: string;
  name: string;
  kind: string;
  severity: Severity;
  /** SQL condition limiting the rows checked, e.g. `dt >= current_date - 7`. */
  where?: string;
  /** The kind's own settings, as its `parse` made them. */
  spec: unknown;
  /** Where it was declared: `checks/orders.yml`, check 2. */
  origin: string;
}

export type Schedule = { everyMs: number } | { cron: string };

export interface TableChecks {
  table: string;
  checks: CheckDefinition[];
  schedule: Schedule | null;
}

export interface Project {
  dir: string;
  tables: Map<string, TableChecks>;
  /** The files read, with their modification times: a change means the project must be read again. */
  fingerprint: string;
}

const TABLE_KEYS = new Set(["checks", "cron", "every"]);
/** Fields every check takes. */
const COMMON_FIELDS = ["type", "name", "severity", "where"];

/** The YAML files of a project, in a stable order. */
export function projectFiles(dir: string): string[] {
  const files = ["quality.yml", "quality.yaml"]
    .map((name) => join(dir, name))
    .filter((file) => existsSync(file));
  const checksDir = join(dir, "checks");
  if (existsSync(checksDir) && statSync(checksDir).isDirectory()) {
    for (const name of readdirSync(checksDir).sort()) {
      if (/\.ya?ml$/i.test(name) && !name.startsWith(".")) files.push(join(checksDir, name));
    }
  }
  return files;
}

/** Files, modification times and sizes: cheap to compare, so a server notices edits without a restart. */
export function projectFingerprint(dir: string): string {
  return projectFiles(dir)
    .map((file) => {
      const stat = statSync(file, { throwIfNoEntry: false });
      return `${file}:${stat?.mtimeMs ?? 0}:${stat?.size ?? 0}`;
    })
    .join("|");
}

/** Reads and validates every check file of the project. A project without any has no checks. */
export function loadProject(dir: string): Project {
  const fingerprint = projectFingerprint(dir);
  const tables = new Map<string, TableChecks>();
  for (const file of projectFiles(dir)) {
    const where = relative(dir, file) || file;
    let parsed: unknown;
    try {
      parsed = parseYaml(readFileSync(file, "utf8"));
    } catch (error) {
      throw new ProjectError(
        `${where} is not valid YAML: ${(error as Error).message.split("\n")[0]?.replace(/:$/, "")}`,
      );
    }
    if (parsed === null || parsed === undefined) continue;
    if (typeof parsed !== "object" || Array.isArray(parsed)) {
      throw new ProjectError(`${where} must map table names to their checks (e.g. "orders:" then "checks:")`);
    }
    for (const [table, body] of Object.entries(parsed as Record<string, unknown>)) {
      const entry = parseTable(table, body, where);
      const existing = tables.get(table);
      if (!existing) {
        tables.set(table, entry);
        continue;
      }
      if (existing.schedule && entry.schedule)
        throw new ProjectError(`${where}: table ${table} has a schedule in another file already`);
      existing.schedule ??= entry.schedule;
      existing.checks.push(...entry.checks);
    }
  }
  for (const { table, checks } of tables.values()) {
    const seen = new Map<string, string>();
    for (const check of checks) {
      const earlier = seen.get(check.name);
      if (earlier) {
        throw new ProjectError(
          `${check.origin}: table ${table} already has a check named "${check.name}" (${earlier}); give one of them another name`,
        );
      }
      seen.set(check.name, check.origin);
    }
  }
  return { dir, tables, fingerprint };
}

function parseTable(table: string, body: unknown, where: string): TableChecks {
  // `orders: [ ...checks ]` is short for `orders: { checks: [...] }`.
  const mapping = Array.isArray(body) ? { checks: body } : body;
  if (typeof mapping !== "object" || mapping === null) {
    throw new ProjectError(`${where}: ${table} must have a list of checks under "checks:"`);
  }
  const fields = mapping as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((key) => !TABLE_KEYS.has(key));
  if (unknown.length > 0) {
    throw new ProjectError(
      `${where}: ${table} has unknown key${unknown.length === 1 ? "" : "s"} ${unknown.map((key) => `"${key}"`).join(", ")} (expected checks, cron or every)`,
    );
  }
  if (!Array.isArray(fields.checks)) {
    throw new ProjectError(
      `${where}: ${table}.checks must be a list of checks (each starting with "- type: …")`,
    );
  }
  return {
    table,
    schedule: parseSchedule(fields, `${where}: ${table}`),
    checks: fields.checks.map((raw, index) =>
      parseCheck(table, raw, `${where}: ${table} check ${index + 1}`),
    ),
  };
}

function parseSchedule(fields: Record<string, unknown>, where: string): Schedule | null {
  if (fields.cron !== undefined && fields.every !== undefined)
    throw new ProjectError(`${where}: set cron or every, not both`);
  if (fields.every !== undefined) {
    const everyMs = parseDuration(String(fields.every));
    if (everyMs === null || everyMs < 1000)
      throw new ProjectError(`${where}: every must be a duration such as 30s, 15m, 1h or 1d`);
    return { everyMs };
  }
  if (fields.cron !== undefined) {
    const cron = String(fields.cron);
    try {
      new Cron(cron, { paused: true }).stop();
    } catch (error) {
      throw new ProjectError(
        `${where}: cron "${cron}" is not a cron expression: ${(error as Error).message}`,
      );
    }
    return { cron };
  }
  return null;
}

function parseCheck(table: string, raw: unknown, where: string): CheckDefinition {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) {
    throw new ProjectError(`${where}: a check must be a mapping starting with "type:"`);
  }
  const fields = new Fields(raw as Record<string, unknown>);
  const type = (raw as Record<string, unknown>).type;
  const kind = typeof type === "string" ? CHECK_KINDS.get(type) : undefined;
  if (!kind) {
    const known = [...CHECK_KINDS.keys()].join(", ");
    throw new ProjectError(
      type === undefined
        ? `${where}: type is required (one of ${known})`
        : `${where}: unknown type ${JSON.stringify(type)} (one of ${known})`,
    );
  }
  const label = `${where} (${kind.kind})`;
  // Unknown fields first: a misspelt one must be named, not reported as a missing one.
  const allowed = new Set([...COMMON_FIELDS, ...kind.fields]);
  const unknown = Object.keys(raw).filter((key) => !allowed.has(key));
  if (unknown.length > 0) {
    const names = unknown.map((key) => `"${key}"`).join(", ");
    throw new ProjectError(
      `${label}: unknown field${unknown.length === 1 ? "" : "s"} ${names} (${kind.kind} takes ${kind.fields.join(", ")})`,
    );
  }
  try {
    fields.string("type");
    const name = fields.string("name");
    const severity = fields.choice("severity", SEVERITIES) ?? "error";
    const condition = fields.string("where");
    const spec = kind.parse(fields);
    fields.rejectUnknown();
    return {
      table,
      name: name ?? kind.defaultName(spec),
      kind: kind.kind,
      severity,
      where: condition,
      spec,
      origin: where,
    };
  } catch (error) {
    if (error instanceof CheckSpecError) throw new ProjectError(`${label}: ${error.message}`);
    throw error;
  }
}
