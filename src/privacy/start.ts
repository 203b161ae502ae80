/** Privacy in the server: the collector's policy memory, the raw zone's table, scheduled retention. */
import type { DuckDBInstance } from "@duckdb/node-api";
import type { Bus, Topic } from "../bus/index.js";
import type { Catalog, TableDef } from "../catalog/index.js";
import { EVENT_COLUMNS } from "../collect/model.js";
import type { Config } from "../config/index.js";
import type { AccessOptions } from "../warehouse/index.js";
import { PolicyCell, type PrivacyHandle } from "./door.js";
import { RAW_TABLE } from "./retention.js";
import { busEndsOf, Privacy } from "./service.js";
import { doorSettings } from "./store.js";

/** The raw zone: the events before PII obfuscation, for admins only, with a shorter retention. */
const RAW_TABLE_DEF: TableDef = {
  name: RAW_TABLE,
  columns: [...EVENT_COLUMNS],
  partitionBy: { column: "dt", fromTimestamp: "ts" },
};

/** The bus-fed lake tables, with `events_raw` when the raw zone is on. */
export function withRawZone(config: Pick<Config, "raw_zone">, tables: TableDef[]): TableDef[] {
  return config.raw_zone && !tables.some((table) => table.name === RAW_TABLE)
    ? [...tables, RAW_TABLE_DEF]
    : tables;
}

export interface StartedPrivacy {
  privacy: Privacy;
  /** For the Collector's options. */
  collector: { privacy: PrivacyHandle; raw: Topic | undefined };
}

/** Reads the policy and secret, starts scheduled retention; `tables` are the bus-fed lake tables. */
export async function startPrivacy(options: {
  config: Config;
  bus: Bus;
  catalog: Catalog;
  loadEngine: DuckDBInstance;
  lakeRoot: string;
  tables: TableDef[];
}): Promise<StartedPrivacy> {
  const { config, bus } = options;
  const cell = new PolicyCell(doorSettings(config));
  const privacy = new Privacy({
    config,
    lake: { catalog: options.catalog, engine: options.loadEngine, lakeRoot: options.lakeRoot },
    busEnds: busEndsOf(
      bus,
      options.tables.map((table) => table.name),
    ),
    cell,
    releaseLoaded: async () => {
      for (const { name } of options.tables) {
        await bus.roll(name);
        const loaded = await options.catalog.offset(`loader:${name}`);
        if (loaded !== null) await (await bus.topic(name)).release(loaded);
      }
    },
  });
  privacy.startRetention();
  return {
    privacy,
    collector: { privacy: cell.handle, raw: config.raw_zone ? await bus.topic(RAW_TABLE) : undefined },
  };
}

/**
 * What `role`'s SQL may read: an admin's anything the query engine allows; anyone else's only
 * tables by name (warehouse/restrict.ts), never the raw zone, which holds personal data as it was
 * received.
 */
export function queryAccess(role: string): AccessOptions {
  return role === "admin" ? {} : { restriction: { hiddenTables: [RAW_TABLE] } };
}
