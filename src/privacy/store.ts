/**
 * What privacy keeps in the data dir, under `privacy/`: the HMAC secret (when the configuration
 * has none), the policy set over HTTP (it wins over sluice.yaml's `pii_policy` until removed), and
 * the deletion log (JSON lines; no personal data, only the HMAC token of each forgotten user id).
 */
import { randomBytes, randomUUID } from "node:crypto";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { appendFile, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { Config } from "../config/index.js";
import type { DoorSettings } from "./door.js";
import { type PiiPolicy, parsePolicy } from "./policy.js";

export const privacyDir = (dataDir: string): string => join(dataDir, "privacy");
const secretPath = (dataDir: string) => join(privacyDir(dataDir), "secret");
const policyPath = (dataDir: string) => join(privacyDir(dataDir), "policy.json");
const deletionLogPath = (dataDir: string) => join(privacyDir(dataDir), "deletions.jsonl");

/**
 * The HMAC key: `pii_secret`, or else the one generated into the data dir on first use (readable
 * by its owner only), so that tokens stay the same across restarts and between the CLI and server.
 */
export function piiSecret(config: Config): string {
  if (config.pii_secret) return config.pii_secret;
  const path = secretPath(config.data_dir);
  if (!existsSync(path)) {
    mkdirSync(privacyDir(config.data_dir), { recursive: true, mode: 0o700 });
    try {
      // "wx": if another process created it first, theirs is kept and read below.
      writeFileSync(path, randomBytes(32).toString("hex"), { mode: 0o600, flag: "wx" });
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    }
  }
  return readFileSync(path, "utf8").trim();
}

/** Where the policy in force comes from. */
export type PolicyOrigin = "config" | "api";

/** The policy in force: the one set over HTTP if any, else sluice.yaml's. */
export function policyInForce(config: Config): { policy: PiiPolicy; origin: PolicyOrigin } {
  const path = policyPath(config.data_dir);
  if (existsSync(path)) {
    return { policy: parsePolicy(JSON.parse(readFileSync(path, "utf8")), path), origin: "api" };
  }
  return { policy: parsePolicy(config.pii_policy), origin: "config" };
}

/** The door's settings for a data dir, as the server starts. */
export function doorSettings(config: Config): DoorSettings {
  return { policy: policyInForce(config).policy, secret: piiSecret(config), rawZone: config.raw_zone };
}

/** Stores a policy set over HTTP (atomically: a crash leaves the old or the new one). */
export async function savePolicy(dataDir: string, policy: PiiPolicy): Promise<void> {
  await mkdir(privacyDir(dataDir), { recursive: true, mode: 0o700 });
  const temporary = `${policyPath(dataDir)}.${randomUUID()}.tmp`;
  await writeFile(temporary, `${JSON.stringify(policy, null, 2)}\n`, { mode: 0o600 });
  await rename(temporary, policyPath(dataDir));
}

/** Drops the policy set over HTTP: sluice.yaml's applies again. */
export async function removeSavedPolicy(dataDir: string): Promise<void> {
  await rm(policyPath(dataDir), { force: true });
}

/** One forget request, as the deletion log records it. */
export interface DeletionRecord {
  id: string;
  /** When the request was made and finished (ISO 8601). */
  requested_at: string;
  finished_at: string;
  requested_by: string;
  /** HMAC-SHA256 token of the user id: proves which user was forgotten to whoever knows the id, reveals nothing else. */
  subject: string;
  /** Anonymous ids linked to the user through identify events, counted (not listed). */
  linked_anonymous_ids: number;
  /** Rows removed, per table (tables with none left out). */
  rows: Record<string, number>;
  total_rows: number;
}

export async function appendDeletion(dataDir: string, record: DeletionRecord): Promise<void> {
  await mkdir(privacyDir(dataDir), { recursive: true, mode: 0o700 });
  await appendFile(deletionLogPath(dataDir), `${JSON.stringify(record)}\n`, { mode: 0o600 });
}

/** The deletion log, newest first. */
export async function readDeletions(dataDir: string, limit = 100): Promise<DeletionRecord[]> {
  let text: string;
  try {
    text = await readFile(deletionLogPath(dataDir), "utf8");
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
    throw error;
  }
  const lines = text.split("\n").filter((line) => line.trim() !== "");
  return lines
    .slice(-limit)
    .reverse()
    .map((line) => JSON.parse(line) as DeletionRecord);
}
