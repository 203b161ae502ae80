/**
 * Privacy as the server and the CLI use it: the policy in force (and changing it), forget,
 * retention runs (on a schedule in the server) and the deletion log.
 *
 * Events still on the bus when a user is forgotten: forget first waits until the lake loader has
 * loaded everything that was on the bus when the request came (the bus's end positions then, against
 * the loaders' committed positions in the catalog), then rewrites. So every event received before
 * the request is gone when it returns; events received after it are new data. This was chosen over
 * a tombstone the loader would apply, which would put a check of every loaded row against the
 * deletion list on the hot path and need the raw ids kept somewhere. Afterwards (and after each
 * retention run) the server drops the bus segments whose records are all in the lake
 * (`releaseLoaded`), so forgotten and expired records do not stay on disk until their segment fills.
 */
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import type { Bus } from "../bus/index.js";
import { listSegments } from "../bus/segments.js";
import type { Config } from "../config/index.js";
import type { PolicyCell } from "./door.js";
import { forgetUser } from "./forget.js";
import {
  DEFAULT_RULES,
  effectiveRules,
  type PiiPolicy,
  type PiiRules,
  PolicyError,
  parsePolicy,
} from "./policy.js";
import { retentionRules, runRetention, type TableRetention } from "./retention.js";
import type { LakeAccess } from "./rewrite.js";
import {
  type DeletionRecord,
  type PolicyOrigin,
  piiSecret,
  policyInForce,
  readDeletions,
  removeSavedPolicy,
  savePolicy,
} from "./store.js";

/** Forget could not start: events received before it are not in the lake yet. Retrying is safe. */
export class LoaderBehindError extends Error {}

/** A bus-fed table's loader must have committed at least this position. */
export interface BusEnd {
  table: string;
  position: number;
}

export interface PrivacyOptions {
  config: Config;
  lake: LakeAccess;
  /** The bus's end positions now, per table it feeds. */
  busEnds: () => Promise<BusEnd[]>;
  /** The collector's policy memory (server only): policy changes reach it at once. */
  cell?: PolicyCell;
  /** How long forget waits for the loader to catch up with the bus. */
  loaderWaitMs?: number;
  /** Drops the bus's records that are all in the lake (the server's bus; absent in the CLI). */
  releaseLoaded?: () => Promise<void>;
}

const FIRST_RETENTION_DELAY_MS = 5 * 60_000;

/** Well under what the collector's shared memory holds (door.ts), secret included. */
const MAX_POLICY_CHARS = 512 * 1024;

export const POLICY_CHANGE_NOTE =
  "The policy applies to events received from now on; events already stored keep the obfuscation they were stored with (a retention scrub or forget changes stored rows).";

export interface PolicyView {
  /** The rules as set, per source ("*" = every source), over the defaults. */
  policy: PiiPolicy;
  /** Where they come from: sluice.yaml (`config`) or this API (`api`, stored in the data dir). */
  origin: PolicyOrigin;
  defaults: PiiRules;
  /** What applies to a source with no rules of its own: defaults, then "*". */
  every_source: PiiRules;
  raw_zone: boolean;
  note: string;
}

export class Privacy {
  readonly #options: PrivacyOptions;
  readonly #secret: string;
  /** Forget and retention runs one at a time in this process (other processes: see rewrite.ts). */
  #queue: Promise<unknown> = Promise.resolve();
  #schedule: { timer: NodeJS.Timeout | null; stopped: boolean } | null = null;
  #lastRetentionError: string | null = null;

  constructor(options: PrivacyOptions) {
    this.#options = options;
    this.#secret = piiSecret(options.config);
    // A mistake in the rules stops start-up (and the CLI) with a clear message.
    retentionRules(options.config);
  }

  policy(): PolicyView {
    const { policy, origin } = policyInForce(this.#options.config);
    return {
      policy,
      origin,
      defaults: { ...DEFAULT_RULES },
      every_source: effectiveRules(policy, "*"),
      raw_zone: this.#options.config.raw_zone,
      note: POLICY_CHANGE_NOTE,
    };
  }

  /** Replaces the policy (throws PolicyError naming the problem); stored, and in force for the next request. */
  async setPolicy(value: unknown): Promise<PolicyView> {
    const policy = parsePolicy(value, "policy");
    if (JSON.stringify(policy).length > MAX_POLICY_CHARS) {
      throw new PolicyError(`the policy is longer than ${MAX_POLICY_CHARS} characters`);
    }
    await savePolicy(this.#options.config.data_dir, policy);
    this.#publish(policy);
    return this.policy();
  }

  /** Back to sluice.yaml's `pii_policy`. */
  async resetPolicy(): Promise<PolicyView> {
    await removeSavedPolicy(this.#options.config.data_dir);
    this.#publish(policyInForce(this.#options.config).policy);
    return this.policy();
  }

  #publish(policy: PiiPolicy): void {
    const cell = this.#options.cell;
    if (cell !== undefined) cell.set({ ...cell.get(), policy });
  }

  forget(userId: string, requestedBy: string): Promise<DeletionRecord> {
    if (userId.trim() === "") return Promise.reject(new PolicyError("the user id to forget is empty"));
    return this.#serial(async () => {
      await this.#waitForLoaders();
      const record = await forgetUser(this.#options.lake, {
        userId,
        requestedBy,
        secret: this.#secret,
        dataDir: this.#options.config.data_dir,
        userColumns: this.#options.config.forget_user_columns,
      });
      await this.#options.releaseLoaded?.();
      return record;
    });
  }

  runRetention(): Promise<TableRetention[]> {
    return this.#serial(async () => {
      const results = await runRetention(
        this.#options.lake,
        retentionRules(this.#options.config),
        this.#secret,
      );
      await this.#options.releaseLoaded?.();
      return results;
    });
  }

  deletions(limit?: number): Promise<DeletionRecord[]> {
    return readDeletions(this.#options.config.data_dir, limit);
  }

  /**
   * Runs the retention rules 5 minutes after start (or one interval, if shorter), then every
   * `retention_interval_minutes`; never with no rules or an interval of 0.
   */
  startRetention(): void {
    const intervalMs = this.#options.config.retention_interval_minutes * 60_000;
    if (this.#schedule !== null || intervalMs <= 0 || retentionRules(this.#options.config).length === 0)
      return;
    const schedule: { timer: NodeJS.Timeout | null; stopped: boolean } = { timer: null, stopped: false };
    this.#schedule = schedule;
    const run = async () => {
      try {
        const results = await this.runRetention();
        const failed = results.find((result) => result.error !== undefined);
        this.#lastRetentionError = failed === undefined ? null : `${failed.table}: ${failed.error}`;
      } catch (error) {
        this.#lastRetentionError = (error as Error).message;
      }
      if (!schedule.stopped) schedule.timer = setTimeout(run, intervalMs);
    };
    // Not at once: start-up (loading what the bus holds, rebuilding dedupe) goes first.
    schedule.timer = setTimeout(run, Math.min(intervalMs, FIRST_RETENTION_DELAY_MS));
  }

  /** The last scheduled run's failure, or null. */
  lastRetentionError(): string | null {
    return this.#lastRetentionError;
  }

  async stop(): Promise<void> {
    if (this.#schedule !== null) {
      this.#schedule.stopped = true;
      if (this.#schedule.timer !== null) clearTimeout(this.#schedule.timer);
    }
    await this.#queue.catch(() => undefined);
  }

  #serial<T>(work: () => Promise<T>): Promise<T> {
    const next = this.#queue.catch(() => undefined).then(work);
    this.#queue = next;
    return next;
  }

  async #waitForLoaders(): Promise<void> {
    const { catalog } = this.#options.lake;
    const deadline = Date.now() + (this.#options.loaderWaitMs ?? 120_000);
    // Only topics that a loader feeds into a lake table can be waited for.
    const tables = new Set((await catalog.tables()).map((table) => table.name));
    for (const end of await this.#options.busEnds()) {
      if (!tables.has(end.table)) continue;
      while (((await catalog.offset(`loader:${end.table}`)) ?? 0) < end.position) {
        if (Date.now() > deadline) {
          throw new LoaderBehindError(
            `the lake loader has not yet loaded the ${end.table} events received before this request; retry later`,
          );
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    }
  }
}

/** The ends of a running bus, for the server. */
export function busEndsOf(bus: Bus, tables: readonly string[]): () => Promise<BusEnd[]> {
  return async () =>
    Promise.all(tables.map(async (table) => ({ table, position: (await bus.topic(table)).end() })));
}

/**
 * The ends of another process's bus, from its segment files (for the CLI while a server runs):
 * the last segment's start plus its size covers every acknowledged event.
 */
export function busEndsOnDisk(busDir: string): () => Promise<BusEnd[]> {
  return async () => {
    const ends: BusEnd[] = [];
    let entries: import("node:fs").Dirent[];
    try {
      entries = await readdir(busDir, { withFileTypes: true });
    } catch {
      return ends;
    }
    for (const entry of entries) {
      if (!entry.isDirectory()) continue;
      const segments = await listSegments(join(busDir, entry.name));
      const last = segments.at(-1);
      if (last !== undefined) ends.push({ table: entry.name, position: last.start + last.size });
    }
    return ends;
  };
}
