/**
 * Transformations inside the server: the project at `transform_project`, built on cron
 * schedules (`transform_schedules`: cron → selection) and on load (every
 * `transform_interval_ms`, the models downstream of each source table that got a new
 * snapshot are rebuilt: rollups for dashboards stay fresh), and on request over HTTP.
 * Builds run one at a time, on an engine of their own, so they never race each other.
 */
import { join } from "node:path";
import type { DuckDBInstance } from "@duckdb/node-api";
import { Cron } from "croner";
import type { Catalog } from "../catalog/index.js";
import { type Config, engineResources } from "../config/index.js";
import { createEngine } from "../warehouse/index.js";
import { Builder, type BuilderOptions, type BuildRequest, type BuildResult } from "./builder.js";
import { TransformError } from "./errors.js";
import { loadProject, type Project } from "./project.js";
import { openSqliteTransformStore, type TransformStore } from "./store.js";

export type TransformConfig = Pick<
  Config,
  | "data_dir"
  | "transform_project"
  | "transform_schedules"
  | "transform_interval_ms"
  | "duckdb_threads"
  | "duckdb_memory_limit"
>;

export interface TransformServiceOptions {
  config: TransformConfig;
  catalog: Catalog;
  log?: (message: string) => void;
  onTableBuilt?: BuilderOptions["onTableBuilt"];
  onAudit?: BuilderOptions["onAudit"];
}

const services = new WeakMap<Catalog, TransformService>();

export class TransformService {
  readonly #options: TransformServiceOptions;
  readonly #crons: Cron[] = [];
  #timer: NodeJS.Timeout | null = null;
  #queue: Promise<unknown> = Promise.resolve();
  #engine: Promise<DuckDBInstance> | null = null;
  #store: TransformStore | null = null;
  /** Source table → the snapshot last seen. */
  #seen = new Map<string, number>();
  #lastError: string | null = null;
  /** Schedules whose build is waiting or running. */
  readonly #due = new Set<string>();
  #stopped = true;

  /** The one service of a catalog (the server's and its HTTP routes' share it). */
  static for(options: TransformServiceOptions): TransformService {
    let service = services.get(options.catalog);
    if (!service) {
      service = new TransformService(options);
      services.set(options.catalog, service);
    }
    return service;
  }

  constructor(options: TransformServiceOptions) {
    this.#options = options;
  }

  get enabled(): boolean {
    return this.#options.config.transform_project !== "";
  }

  /** Starts schedules and build-on-load; nothing happens without `transform_project`. */
  start(): void {
    if (!this.enabled || !this.#stopped) return;
    this.#stopped = false;
    const { config } = this.#options;
    for (const [expression, selection] of Object.entries(config.transform_schedules)) {
      const select = selection.split(/\s+/).filter(Boolean);
      try {
        this.#crons.push(new Cron(expression, () => void this.#scheduled(expression, select)));
      } catch (error) {
        // A bad schedule is reported (health, log) without stopping the server or the other schedules.
        this.#lastError = `transform_schedules: "${expression}" is not a cron expression: ${(error as Error).message}`;
        this.#options.log?.(`transform: ${this.#lastError}`);
      }
    }
    if (config.transform_interval_ms > 0) {
      void this.#rememberSnapshots();
      const tick = () => {
        this.#timer = setTimeout(async () => {
          await this.#buildChanged();
          if (!this.#stopped) tick();
        }, config.transform_interval_ms);
      };
      tick();
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const cron of this.#crons.splice(0)) cron.stop();
    if (this.#timer) clearTimeout(this.#timer);
    await this.#queue.catch(() => {});
    if (this.#engine) (await this.#engine).closeSync();
    this.#engine = null;
    await this.#store?.close();
    this.#store = null;
    services.delete(this.#options.catalog);
  }

  /** Why the latest scheduled or on-load build failed, or null. */
  lastError(): string | null {
    return this.#lastError;
  }

  project(): Project {
    if (!this.enabled) throw new TransformError("no transform project: set transform_project in sluice.yaml");
    return loadProject(this.#options.config.transform_project);
  }

  store(): TransformStore {
    this.#store ??= openSqliteTransformStore(join(this.#options.config.data_dir, "catalog.db"));
    return this.#store;
  }

  /** A builder over the current project files (read again each time: edits apply on the next build). */
  async builder(options: { env?: string; trigger?: string } = {}): Promise<Builder> {
    const { config, catalog } = this.#options;
    this.#engine ??= createEngine({
      threads: config.duckdb_threads || undefined,
      ...engineResources(config, "background"),
    });
    return new Builder({
      project: this.project(),
      dataDir: config.data_dir,
      catalog,
      engine: await this.#engine,
      store: this.store(),
      env: options.env,
      trigger: options.trigger,
      onTableBuilt: this.#options.onTableBuilt,
      onAudit: this.#options.onAudit,
    });
  }

  /** Builds after any build already running. */
  build(request: BuildRequest & { env?: string }, trigger: string): Promise<BuildResult> {
    const run = this.#queue.then(async () => {
      try {
        const builder = await this.builder({ env: request.env, trigger });
        const result = await builder.build(request);
        const failed = result.runs.filter(
          (entry) => entry.status === "error" || entry.status === "failed_tests",
        );
        if (trigger !== "api") {
          this.#lastError =
            failed.length > 0 ? failed.map((entry) => `${entry.node}: ${entry.message}`).join("; ") : null;
          for (const entry of failed)
            this.#options.log?.(`transform: ${entry.node} ${entry.status}: ${entry.message}`);
        }
        return result;
      } catch (error) {
        if (trigger !== "api") {
          this.#lastError = (error as Error).message;
          this.#options.log?.(`transform: ${this.#lastError}`);
        }
        throw error;
      }
    });
    this.#queue = run.catch(() => {});
    return run;
  }

  /** A schedule's build, unless its previous one is still waiting or running (slow builds do not pile up). */
  async #scheduled(expression: string, select: string[]): Promise<void> {
    if (this.#due.has(expression)) return;
    this.#due.add(expression);
    try {
      await this.build({ select }, "schedule");
    } catch {
      // Reported by build() (log, lastError).
    } finally {
      this.#due.delete(expression);
    }
  }

  async #rememberSnapshots(): Promise<void> {
    try {
      for (const table of this.#sourceTables().keys()) {
        this.#seen.set(table, await this.#options.catalog.tableSnapshot(table));
      }
    } catch (error) {
      this.#lastError = (error as Error).message;
    }
  }

  /** Lake tables the project reads as sources, with their keys. */
  #sourceTables(): Map<string, string[]> {
    const tables = new Map<string, string[]>();
    for (const source of this.project().sources.values()) {
      tables.set(source.table, [...(tables.get(source.table) ?? []), source.key]);
    }
    return tables;
  }

  /** Rebuilds what is downstream of the source tables that changed since the last look. */
  async #buildChanged(): Promise<void> {
    const selection: string[] = [];
    try {
      const project = this.project();
      for (const [table, keys] of this.#sourceTables()) {
        const snapshot = await this.#options.catalog.tableSnapshot(table);
        const seen = this.#seen.get(table);
        this.#seen.set(table, snapshot);
        if (seen === undefined || seen === snapshot) continue;
        for (const key of keys) {
          if ([...project.nodes.values()].some((node) => node.sources.includes(key)))
            selection.push(`source:${key}+`);
        }
      }
    } catch (error) {
      // A broken project (being edited) is reported and looked at again next time.
      this.#lastError = (error as Error).message;
      return;
    }
    if (selection.length === 0) return;
    await this.build({ select: selection }, "on_load").catch(() => {});
  }
}
