/**
 * Quality in the server: follows the catalog and runs profiles and checks after every load,
 * and checks on their schedules. One background loop, one job at a time (one core at most):
 *
 * - Loads and syncs: every loaded run in the catalog's history (`catalog.loads`, whichever
 *   process made it: an upload, the landing folder, a schedule, or `sluice load` next to the
 *   server) gets its table profiled and checked once. The last run handled is kept in
 *   quality.db, so loads made while the server was down are caught up at start.
 * - Streaming tables (`events`, loaded every 250 ms): each partition whose row count changed
 *   is profiled at most once per `profile_interval_ms`, and the table's checks run at most that
 *   often. Compaction rewrites files but keeps row counts, so it triggers nothing.
 * - Schedules (`cron`/`every` per table in the check files) run that table's checks; edits to
 *   the check files are picked up without a restart.
 */
import { Cron } from "croner";
import type { Catalog } from "../catalog/index.js";
import type { AuditCandidate, TestOutcome } from "../transform/index.js";
import { auditBuild } from "./audit.js";
import type { Project } from "./project.js";
import type { Quality } from "./quality.js";

export interface QualityWatcherOptions {
  quality: Quality;
  catalog: Catalog;
  /** Tables fed continuously from the bus, profiled per partition with a throttle. */
  streamingTables: string[];
  /** Profile after loads (false: checks only). */
  profiling: boolean;
  /** A streaming table's partition is profiled, and its checks run, at most this often. */
  profileIntervalMs: number;
  /** How often the catalog and the check files are looked at. */
  pollIntervalMs?: number;
  /** Profiles and check results older than this many days are forgotten (the latest of each stays). */
  historyDays?: number;
  log?: (message: string) => void;
}

const LOADS_CURSOR = "watcher:loads";

export class QualityWatcher {
  readonly #options: Required<QualityWatcherOptions>;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #started = false;
  /** Set by stop(): work in progress ends between tables. */
  #stopped = false;
  #lastError: string | null = null;
  /** Streaming table → the table snapshot last looked at. */
  readonly #seenSnapshots = new Map<string, number>();
  /** `table/partition` (or `table` for its checks) → when it was last handled. */
  readonly #lastRun = new Map<string, number>();
  #schedules: { fingerprint: string; stop(): void } | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #prunedAt = 0;

  constructor(options: QualityWatcherOptions) {
    this.#options = { pollIntervalMs: 2_000, historyDays: 90, log: () => {}, ...options };
  }

  start(): void {
    if (this.#started) return;
    this.#started = true;
    this.#stopped = false;
    const tick = () => {
      this.#running = this.#tick().finally(() => {
        this.#running = null;
        if (!this.#stopped) this.#timer = setTimeout(tick, this.#options.pollIntervalMs);
      });
    };
    tick();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#started = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#schedules?.stop();
    this.#schedules = null;
    await this.#running;
    await this.#queue.catch(() => {});
  }

  /** The latest problem (a malformed check file, a failed profile), or null once things work again. */
  lastError(): string | null {
    return this.#lastError;
  }

  /**
   * Before a model's table is published: its checks on the written files (`auditBuild`), in
   * turn with the watcher's other work. A throw (a malformed check file) fails the build.
   */
  auditBuild(candidate: AuditCandidate): Promise<TestOutcome[]> {
    return this.#serial(() => auditBuild(this.#options.quality, candidate));
  }

  /**
   * After a transformation published `table`: profile it and, unless the build's audit already
   * checked these rows, run its checks (trigger `build`). A failing check alerts like a load's.
   */
  async afterBuild(table: string, published: { audited: boolean }): Promise<void> {
    await this.#serial(async () => {
      if (this.#options.profiling) await this.#options.quality.profileTable(table);
      if (!published.audited) await this.#check(table, "build");
    }).catch((error: Error) => this.#options.log(`quality: after the build of ${table}: ${error.message}`));
  }

  /** One pass: new loads, streaming partitions, schedules. Exposed for tests. */
  async tick(): Promise<void> {
    await this.#tick();
  }

  async #tick(): Promise<void> {
    let problem: string | null = null;
    const note = (error: unknown) => {
      problem = (error as Error).message;
      // A malformed check file fails every pass: say so once, not every 2 seconds.
      if (problem !== this.#lastError) this.#options.log(`quality: ${problem}`);
    };
    await this.#serial(() => this.#afterLoads()).catch(note);
    for (const table of this.#options.streamingTables) {
      await this.#serial(() => this.#afterStreaming(table)).catch(note);
    }
    try {
      this.#reschedule(this.#options.quality.project());
    } catch (error) {
      note(error);
    }
    if (Date.now() - this.#prunedAt >= 3_600_000) {
      this.#prunedAt = Date.now();
      const before = new Date(Date.now() - this.#options.historyDays * 86_400_000).toISOString();
      this.#options.quality.store.prune(before);
    }
    this.#lastError = problem;
  }

  /** Jobs run one at a time, whether from the loop or a schedule. */
  #serial<T>(job: () => Promise<T>): Promise<T> {
    const next = this.#queue.catch(() => {}).then(job);
    this.#queue = next;
    return next;
  }

  async #afterLoads(): Promise<void> {
    const { quality, catalog } = this.#options;
    const cursor = quality.store.cursor(LOADS_CURSOR) ?? 0;
    const runs = (await catalog.loads({ limit: 200 })).filter((run) => run.id > cursor);
    if (runs.length === 0) return;
    // Each loaded table with its latest load.
    const latestLoad = new Map<string, (typeof runs)[number]>();
    for (const run of runs) {
      if (run.status !== "loaded") continue;
      const newest = latestLoad.get(run.table);
      if (newest === undefined || run.id > newest.id) latestLoad.set(run.table, run);
    }
    let failure: Error | null = null;
    for (const [table, latest] of latestLoad) {
      if (this.#stopped) return;
      // One table failing (dropped since, unreadable) must not hold up the others or repeat forever.
      try {
        if (this.#options.profiling) await quality.profileTable(table);
        if (!this.#audited(table, latest)) await this.#check(table, "load");
      } catch (error) {
        failure ??= new Error(`after the load of ${table}: ${(error as Error).message}`);
      }
    }
    quality.store.setCursor(LOADS_CURSOR, Math.max(...runs.map((run) => run.id)));
    if (failure) throw failure;
  }

  /**
   * Whether the load's checks already ran on the table as it left it: a loader with quality
   * audits its files before committing (results with trigger `audit` while the load ran).
   */
  #audited(table: string, run: { startedAt: string; finishedAt: string }): boolean {
    return this.#options.quality.store
      .results({ table, limit: 200 })
      .some(
        (result) =>
          result.trigger === "audit" && result.ranAt >= run.startedAt && result.ranAt <= run.finishedAt,
      );
  }

  async #afterStreaming(table: string): Promise<void> {
    const { quality, catalog, profileIntervalMs } = this.#options;
    const snapshot = await catalog.tableSnapshot(table);
    if (snapshot === 0 || this.#seenSnapshots.get(table) === snapshot) return;
    const rows = new Map<string, number>();
    for (const file of await catalog.liveFiles(table)) {
      rows.set(file.partition, (rows.get(file.partition) ?? 0) + file.rows);
    }
    const profiled = new Map(
      quality.store.latestProfiles(table).map((profile) => [profile.partition, profile]),
    );
    const now = Date.now();
    const due: string[] = [];
    let waiting = false;
    for (const [partition, count] of rows) {
      const last = profiled.get(partition);
      if (last?.rows === count) continue;
      const lastAt = this.#lastRun.get(`${table}/${partition}`) ?? (last ? Date.parse(last.profiledAt) : 0);
      if (now - lastAt >= profileIntervalMs) due.push(partition);
      else waiting = true;
    }
    // Only a snapshot fully handled is skipped next time; throttled partitions are looked at again.
    if (!waiting) this.#seenSnapshots.set(table, snapshot);
    if (due.length === 0) return;
    if (this.#options.profiling) {
      await quality.profileTable(table, { partitions: due });
      for (const partition of due) this.#lastRun.set(`${table}/${partition}`, now);
    }
    if (now - (this.#lastRun.get(table) ?? 0) >= profileIntervalMs) {
      this.#lastRun.set(table, now);
      await this.#check(table, "load");
    }
  }

  async #check(table: string, trigger: string): Promise<void> {
    const run = await this.#options.quality.runChecks(table, { trigger });
    for (const problem of run.alertProblems) this.#options.log(`quality: ${problem}`);
  }

  /** Starts the project's schedules, or restarts them when the check files changed. */
  #reschedule(project: Project): void {
    if (!this.#started || this.#schedules?.fingerprint === project.fingerprint) return;
    this.#schedules?.stop();
    const stops: (() => void)[] = [];
    for (const { table, schedule } of project.tables.values()) {
      if (!schedule) continue;
      const run = () => {
        void this.#serial(() => this.#check(table, "schedule")).catch((error: Error) =>
          this.#options.log(`quality: checks of ${table} failed: ${error.message}`),
        );
      };
      if ("cron" in schedule) {
        const cron = new Cron(schedule.cron, run);
        stops.push(() => cron.stop());
      } else {
        const timer = setInterval(run, schedule.everyMs);
        stops.push(() => clearInterval(timer));
      }
    }
    this.#schedules = {
      fingerprint: project.fingerprint,
      stop: () => {
        for (const stop of stops) stop();
      },
    };
  }
}
