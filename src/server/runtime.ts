import { mkdir } from "node:fs/promises";
import { join } from "node:path";
import type { DuckDBInstance } from "@duckdb/node-api";
import { AccountStore, appDbPath } from "../accounts/index.js";
import { type Bus, openEmbeddedBus } from "../bus/index.js";
import { acquireLock, releaseLock } from "../bus/lock.js";
import { type Catalog, openSqliteCatalog, type TableDef } from "../catalog/index.js";
import { Collector, type CollectorStats, Deduper, SchemaRegistry, trustedProxies } from "../collect/index.js";
import { EVENT_COLUMNS, REJECTED_COLUMNS } from "../collect/model.js";
import { type Config, engineResources, writeKeys } from "../config/index.js";
import {
  Compactor,
  LakeProcess,
  type LakeStatus,
  Loader,
  type LoaderStatus,
  waitUntilGone,
} from "../lake/index.js";
import { type Privacy, startPrivacy, withRawZone } from "../privacy/index.js";
import { openQuality, type Quality, QualityWatcher } from "../quality/index.js";
import { DbSyncScheduler, LandingWatcher } from "../sources/index.js";
import { TransformService } from "../transform/index.js";
import { createEngine, Warehouse } from "../warehouse/index.js";

/** How often the server looks for changes to schemas.json made by `sluice schemas`. */
const SCHEMA_RELOAD_MS = 2_000;

/** A comma-separated setting as its items. */
const listSetting = (text: string): string[] =>
  text
    .split(",")
    .map((item) => item.trim())
    .filter((item) => item !== "");

/** The lake tables fed from the bus: topic name = table name. */
export const LAKE_TABLES: TableDef[] = [
  { name: "events", columns: [...EVENT_COLUMNS], partitionBy: { column: "dt", fromTimestamp: "ts" } },
  {
    name: "events_rejected",
    columns: [...REJECTED_COLUMNS],
    partitionBy: { column: "dt", fromTimestamp: "received_at" },
  },
];

export interface Sluice {
  config: Config;
  bus: Bus;
  catalog: Catalog;
  /** DuckDB for users' queries (sandboxed). */
  engine: DuckDBInstance;
  /** DuckDB for Sluice's own writing: loads and compaction. */
  loadEngine: DuckDBInstance;
  warehouse: Warehouse;
  collector: Collector;
  /** Event schemas checked by the collector (`schemas.json`). */
  schemas: SchemaRegistry;
  privacy: Privacy;
  /** Users, sessions and API tokens (`app.db`). */
  accounts: AccountStore;
  /** Profiles and checks (`quality.db`), run after loads and on schedules by a QualityWatcher. */
  quality: Quality;
  health(): Health;
  close(): Promise<void>;
}

export interface Health {
  ok: boolean;
  collector: { ok: boolean } & CollectorStats;
  bus: { ok: boolean };
  loader: { ok: boolean; lastError: string | null; tables: LoaderStatus[] };
  /** Compaction failing does not stop ingest or queries, so it is reported but not counted in `ok`. */
  compactor: { lastError: string | null };
  /** Failures to read the landing folders are reported, like compaction's, without failing health. */
  landing: { lastError: string | null };
  /** Database syncs whose latest scheduled run failed, reported like landing's without failing health. */
  dbSync: { lastError: string | null };
  /** The latest scheduled retention run's failure, reported like landing's without failing health. */
  retention: { lastError: string | null };
  /** A malformed check file or a failed profile, reported without failing health. */
  quality: { lastError: string | null };
  /** The latest scheduled or on-load model build's failure, reported like quality's without failing health. */
  transform: { lastError: string | null };
}

export const catalogPath = (dataDir: string): string => join(dataDir, "catalog.db");
export const lakePath = (dataDir: string): string => join(dataDir, "lake");
export const busPath = (dataDir: string): string => join(dataDir, "bus");

/** DuckDB for users' queries, as configured: sandboxed to reading the lake. */
export function createQueryEngine(config: Config): Promise<DuckDBInstance> {
  return createEngine({
    threads: config.duckdb_threads || undefined,
    ...engineResources(config, "foreground"),
    sandbox: {
      readableDirs: [lakePath(config.data_dir)],
      spillLimit: config.duckdb_spill_limit || undefined,
    },
  });
}

/**
 * DuckDB for Sluice's own writing (loading the bus and files, compaction): not sandboxed, and kept
 * to few threads so ingest keeps its cores.
 */
export function createLoadEngine(config: Config): Promise<DuckDBInstance> {
  return createEngine({
    threads: config.loader_duckdb_threads || undefined,
    ...engineResources(config, "background"),
  });
}

/** The warehouse over a data dir's lake, with the configured query limits. */
export function warehouseFor(config: Config, catalog: Catalog, engine: DuckDBInstance): Warehouse {
  return new Warehouse({
    catalog,
    engine,
    lakeRoot: lakePath(config.data_dir),
    timeoutMs: config.query_timeout_ms,
    maxRows: config.query_max_rows,
  });
}

/** Takes the lake's writer lock, once a lake process of an earlier server has exited. */
async function takeLakeLock(lakeRoot: string): Promise<void> {
  await waitUntilGone(lakeRoot);
  await acquireLock(lakeRoot);
}

/** The storage side of Sluice: bus, catalog, lake loaders; no collector or HTTP. */
export interface Storage {
  bus: Bus;
  catalog: Catalog;
  /** DuckDB for queries. */
  engine: DuckDBInstance;
  /** DuckDB for loading and compaction, kept to few threads so ingest keeps its cores. */
  loadEngine: DuckDBInstance;
  loaders: Loader[];
  compactor: Compactor;
  close(): Promise<void>;
}

/**
 * Opens the bus (taking its lock), the catalog and the lake, sweeps what a
 * crash left behind, and loads everything already on the bus. Used by the
 * server at start-up and by `sluice query` when no server is running.
 */
export async function openStorage(config: Config): Promise<Storage> {
  await mkdir(config.data_dir, { recursive: true });
  const lakeRoot = lakePath(config.data_dir);
  await mkdir(lakeRoot, { recursive: true });
  await takeLakeLock(lakeRoot);
  const bus = await openEmbeddedBus({
    dir: busPath(config.data_dir),
    segmentBytes: config.segment_bytes,
    fsync: config.fsync,
  });
  const catalog = openSqliteCatalog(catalogPath(config.data_dir));
  const engine = await createQueryEngine(config);
  const loadEngine = await createLoadEngine(config);
  const loaders: Loader[] = [];
  for (const table of withRawZone(config, LAKE_TABLES)) {
    const loader = new Loader({
      topic: await bus.topic(table.name),
      catalog,
      engine: loadEngine,
      lakeRoot,
      table,
      flushIntervalMs: config.flush_interval_ms,
      sessionTimeoutMs: config.session_timeout_minutes * 60_000,
    });
    await loader.init();
    loaders.push(loader);
  }
  const compactor = new Compactor({
    catalog,
    engine: loadEngine,
    lakeRoot,
    tables: withRawZone(config, LAKE_TABLES),
    targetBytes: config.compaction_target_bytes,
    minFiles: config.compaction_min_files,
    intervalMs: config.compaction_interval_ms,
    deleteGraceMs: config.delete_grace_ms,
  });
  await compactor.sweepOrphans();
  for (const loader of loaders) await loader.loadAvailable();
  return {
    bus,
    catalog,
    engine,
    loadEngine,
    loaders,
    compactor,
    async close() {
      await compactor.stop();
      for (const loader of loaders) await loader.stop();
      await bus.close();
      await catalog.close();
      engine.closeSync();
      loadEngine.closeSync();
      await releaseLock(lakeRoot);
    },
  };
}

/** Starts everything but HTTP: storage, background loading and compaction, the collector. */
export async function startSluice(config: Config): Promise<Sluice> {
  const storage = await openStorage(config);
  const { bus, catalog, engine, loadEngine } = storage;
  // Built first: a mistake in db_sources stops start-up with a ConfigError before anything runs.
  const dbSync = new DbSyncScheduler({ dataDir: config.data_dir, catalog, engine: loadEngine, config });
  const warehouse = warehouseFor(config, catalog, engine);
  const windowMs = config.dedupe_window_hours * 3_600_000;
  const deduper = new Deduper({ windowMs });
  await rememberRecentIds(warehouse, deduper, windowMs);
  const { privacy, collector: door } = await startPrivacy({
    config,
    bus,
    catalog,
    loadEngine,
    lakeRoot: lakePath(config.data_dir),
    tables: withRawZone(config, LAKE_TABLES),
  });
  // Event schemas (schemas.json), read again when `sluice schemas` changes them from another process.
  const schemas = new SchemaRegistry(config.data_dir, listSetting(config.strict_sources));
  const schemaReload = setInterval(() => {
    try {
      schemas.reloadIfChanged();
    } catch (error) {
      console.error(`sluice: event schemas not reloaded: ${(error as Error).message}`);
    }
  }, SCHEMA_RELOAD_MS);
  schemaReload.unref();
  const collector = new Collector({
    events: await bus.topic("events"),
    rejected: await bus.topic("events_rejected"),
    writeKeys: writeKeys(config),
    limits: { maxEventBytes: config.max_event_bytes, maxRequestBytes: config.max_request_bytes },
    deduper,
    workers: Math.floor(config.collect_workers),
    enrichment: { userAgent: config.enrich_user_agents, geoipDatabase: config.geoip_database },
    trustedProxies: trustedProxies(config.trusted_proxies),
    schemas: schemas.cell.handle,
    ...door,
  });
  await collector.warmUp();
  const lake = await startLake(config, storage);
  const accounts = new AccountStore(appDbPath(config.data_dir));
  // Profiles and checks after every load (any process's, from the catalog) and on schedules;
  // file loads are audited by their table's checks before they are committed.
  const quality = await openQuality({ config, catalog });
  const landing = new LandingWatcher({
    dataDir: config.data_dir,
    catalog,
    engine: loadEngine,
    config,
    quality,
  });
  landing.start();
  dbSync.start();
  const qualityWatcher = new QualityWatcher({
    quality,
    catalog,
    streamingTables: LAKE_TABLES.map((table) => table.name),
    profiling: config.profiling,
    profileIntervalMs: config.profile_interval_ms,
    historyDays: config.quality_history_days,
    log: (message) => console.error(`sluice: ${message}`),
  });
  qualityWatcher.start();
  // Models on cron schedules and rebuilt downstream of tables that got new data (transform_project).
  const transform = TransformService.for({
    config,
    catalog,
    log: (message) => console.error(`sluice: ${message}`),
    // A model's table is checked before it is published (an error check keeps it unpublished), profiled after.
    onAudit: (candidate) => qualityWatcher.auditBuild(candidate),
    onTableBuilt: (table, _snapshot, published) => qualityWatcher.afterBuild(table, published),
  });
  transform.start();

  const health = (): Health => {
    const status = lake.status();
    const loaderOk = status.running && status.loaders.every((loader) => loader.healthy);
    const busOk = bus.healthy();
    return {
      ok: loaderOk && busOk,
      // The collector can acknowledge only what the bus can store.
      collector: { ok: busOk, ...collector.stats() },
      bus: { ok: busOk },
      loader: { ok: loaderOk, lastError: status.lastError, tables: status.loaders },
      compactor: { lastError: status.compactorError },
      landing: { lastError: landing.lastError() },
      dbSync: { lastError: dbSync.lastError() },
      retention: { lastError: privacy.lastRetentionError() },
      quality: { lastError: qualityWatcher.lastError() },
      transform: { lastError: transform.lastError() },
    };
  };
  return {
    config,
    bus,
    catalog,
    engine,
    loadEngine,
    warehouse,
    collector,
    schemas,
    privacy,
    accounts,
    quality,
    health,
    async close() {
      clearInterval(schemaReload);
      await transform.stop();
      // Before quality closes: a landing load may be in its audit.
      await landing.stop();
      await qualityWatcher.stop();
      await quality.close();
      await collector.close();
      await privacy.stop();
      await dbSync.stop();
      await lake.stop();
      await storage.close();
      accounts.close();
    },
  };
}

/** Loading and compaction from now on: in a niced child process (the default), or here. */
async function startLake(
  config: Config,
  storage: Storage,
): Promise<{ status(): LakeStatus; stop(): Promise<void> }> {
  const { loaders, compactor, bus } = storage;
  if (!config.lake_process) {
    for (const loader of loaders) loader.start();
    compactor.start();
    return {
      status: () => ({
        running: true,
        loaders: loaders.map((loader) => loader.status()),
        lastError: null,
        compactorError: compactor.lastError(),
      }),
      async stop() {
        await compactor.stop();
        for (const loader of loaders) await loader.stop();
      },
    };
  }
  // The child takes over the lake: this process let go of it once the start-up load was done.
  const lakeRoot = lakePath(config.data_dir);
  await releaseLock(lakeRoot);
  return LakeProcess.start({
    settings: {
      busDir: busPath(config.data_dir),
      catalogPath: catalogPath(config.data_dir),
      lakeRoot,
      tables: withRawZone(config, LAKE_TABLES),
      flushIntervalMs: config.flush_interval_ms,
      sessionTimeoutMs: config.session_timeout_minutes * 60_000,
      duckdbThreads: config.loader_duckdb_threads || undefined,
      ...engineResources(config, "background"),
      compaction: {
        targetBytes: config.compaction_target_bytes,
        minFiles: config.compaction_min_files,
        intervalMs: config.compaction_interval_ms,
        deleteGraceMs: config.delete_grace_ms,
      },
    },
    topics: await Promise.all(withRawZone(config, LAKE_TABLES).map((table) => bus.topic(table.name))),
    niceness: config.lake_process_nice,
    log: (message) => console.error(`sluice: ${message}`),
  });
}

/** Rebuilds the dedupe window from the lake: the bus was fully loaded at start-up. */
async function rememberRecentIds(warehouse: Warehouse, deduper: Deduper, windowMs: number): Promise<void> {
  const since = new Date(Date.now() - windowMs).toISOString();
  const result = await warehouse.query(
    `SELECT source, event_id, epoch_ms(received_at) FROM events WHERE received_at >= TIMESTAMPTZ '${since}'`,
    { maxRows: Number.MAX_SAFE_INTEGER },
  );
  for (const [source, id, receivedAt] of result.rows as [string, string, number][]) {
    deduper.remember(source, id, receivedAt);
  }
}
