/**
 * Panel results cached by SQL and the snapshots of the tables it reads: a dashboard opened again
 * costs nothing until new data lands in one of its tables, and then exactly its panels over that
 * table are recomputed. Identical queries running at once share one run.
 */
import type { Catalog, TableDef } from "../catalog/index.js";
import type { AccessOptions, QueryResult, Warehouse } from "../warehouse/index.js";

export interface CachedResult {
  result: QueryResult;
  /** True when served from the cache. */
  cached: boolean;
  /** How long computing it took (when it was computed). */
  ms: number;
}

const MAX_ENTRIES = 500;

export class ResultCache {
  readonly #entries = new Map<string, { result: QueryResult; ms: number }>();
  readonly #running = new Map<string, Promise<{ result: QueryResult; ms: number }>>();

  /**
   * `access` applies to every query: cached results are shared between users, so charts and
   * previews run as the least of them may (a viewer: tables by name, no raw zone).
   */
  constructor(
    private readonly warehouse: Warehouse,
    private readonly catalog: Catalog,
    private readonly access: AccessOptions,
    private readonly maxRows = 10_000,
  ) {}

  async get(sql: string, tables: TableDef[]): Promise<CachedResult> {
    const read = tables.filter((table) => mentions(sql, table.name));
    const snapshots = await Promise.all(read.map((table) => this.catalog.tableSnapshot(table.name)));
    const key = `${read.map((table, index) => `${table.name}@${snapshots[index]}`).join(",")}\n${sql}`;
    const hit = this.#entries.get(key);
    if (hit) {
      // Map order is insertion order: re-inserting keeps recently used entries last.
      this.#entries.delete(key);
      this.#entries.set(key, hit);
      return { result: hit.result, cached: true, ms: hit.ms };
    }
    let running = this.#running.get(key);
    if (!running) {
      const started = performance.now();
      running = this.warehouse
        .query(sql, { ...this.access, maxRows: this.maxRows })
        .then((result) => ({ result, ms: Math.round(performance.now() - started) }));
      this.#running.set(key, running);
      running.then(
        (entry) => {
          this.#running.delete(key);
          this.#entries.set(key, entry);
          if (this.#entries.size > MAX_ENTRIES)
            this.#entries.delete(this.#entries.keys().next().value as string);
        },
        () => this.#running.delete(key),
      );
    }
    const entry = await running;
    return { result: entry.result, cached: false, ms: entry.ms };
  }

  clear(): void {
    this.#entries.clear();
  }
}

const mentions = (sql: string, name: string): boolean =>
  new RegExp(`(^|[^A-Za-z0-9_$])${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}($|[^A-Za-z0-9_$])`, "i").test(
    sql,
  );
