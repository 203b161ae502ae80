/**
 * The lake process: loading the bus into the lake and compaction, apart from the server
 * so that DuckDB's CPU-heavy work runs at a lower priority than collecting (see
 * process.ts). It reads the bus files the server writes, up to the durable ends the
 * server sends, and commits to the catalog as the in-process loaders do.
 */
import { acquireLock, releaseLock } from "../bus/lock.js";
import { TopicReader } from "../bus/reader.js";
import { openSqliteCatalog } from "../catalog/index.js";
import { createEngine } from "../warehouse/index.js";
import { Compactor } from "./compactor.js";
import { Loader } from "./loader.js";
import type { LakeProcessMessage, LakeProcessSettings, ServerMessage } from "./process.js";

const STATUS_INTERVAL_MS = 500;
/** A loader this far behind the bus's end defers compaction (a quarter of its largest batch). */
const BEHIND_BYTES = 16 * 1024 * 1024;

/**
 * The durable end of each topic, as the server last sent it. Listened for from the first moment:
 * ends sent while the loaders are still starting would otherwise be dropped, and the server
 * sends each end only once.
 */
const latestEnds = new Map<string, number>();
const readers = new Map<string, TopicReader>();
process.on("message", (message: ServerMessage) => {
  if (message.type !== "ends") return;
  for (const [topic, end] of Object.entries(message.ends)) {
    latestEnds.set(topic, end);
    readers.get(topic)?.setEnd(end);
  }
});

function send(message: LakeProcessMessage): void {
  process.send?.(message);
}

async function run(settings: LakeProcessSettings): Promise<() => Promise<void>> {
  await acquireLock(settings.lakeRoot);
  const catalog = openSqliteCatalog(settings.catalogPath);
  const engine = await createEngine({
    threads: settings.duckdbThreads,
    memoryLimit: settings.memoryLimit,
    tempDir: settings.tempDir,
  });
  const loaders: Loader[] = [];
  for (const table of settings.tables) {
    const reader = await TopicReader.open(settings.busDir, table.name, (position) =>
      send({ type: "release", topic: table.name, position }),
    );
    reader.setEnd(Math.max(settings.ends[table.name] ?? 0, latestEnds.get(table.name) ?? 0));
    readers.set(table.name, reader);
    const loader = new Loader({
      topic: reader,
      catalog,
      engine,
      lakeRoot: settings.lakeRoot,
      table,
      flushIntervalMs: settings.flushIntervalMs,
      sessionTimeoutMs: settings.sessionTimeoutMs,
    });
    await loader.init();
    loaders.push(loader);
  }
  const compactor = new Compactor({
    catalog,
    engine,
    lakeRoot: settings.lakeRoot,
    tables: settings.tables,
    ...settings.compaction,
    deferWhile: () => loaders.some((loader) => loader.status().lagBytes > BEHIND_BYTES),
  });
  // A lake process that died mid-load left files no commit lists.
  await compactor.sweepOrphans();

  const report = () =>
    send({
      type: "status",
      loaders: loaders.map((loader) => loader.status()),
      compactorError: compactor.lastError(),
    });
  const timer = setInterval(report, STATUS_INTERVAL_MS);
  for (const loader of loaders) loader.start();
  compactor.start();
  report();
  send({ type: "ready" });
  return async () => {
    clearInterval(timer);
    await compactor.stop();
    for (const loader of loaders) await loader.stop();
    await catalog.close();
    engine.closeSync();
    await releaseLock(settings.lakeRoot);
  };
}

// Without the server there is nobody to send ends or take releases: stop at once. A commit in
// flight is atomic in the catalog; its files, if uncommitted, are swept by the next start.
process.on("disconnect", () => process.exit(0));

process.once("message", (first: ServerMessage) => {
  if (first.type !== "start") return;
  run(first.settings).then(
    (stop) => {
      process.on("message", (message: ServerMessage) => {
        if (message.type !== "stop") return;
        stop().then(
          () => process.exit(0),
          () => process.exit(1),
        );
      });
    },
    (error: Error) => {
      send({ type: "failed", error: error.message });
      process.exit(1);
    },
  );
});
