/**
 * The canonical event: one row of the `events` table, as it travels on the bus
 * (one JSON object per line) and as the loader writes it to Parquet.
 * Column order and types here are the contract users query (see DESIGN.md).
 */
export interface CanonicalEvent {
  event_id: string;
  event_type: EventType;
  event: string | null;
  user_id: string | null;
  anonymous_id: string | null;
  session_id: string | null;
  /** Event time, ISO 8601 UTC with milliseconds, corrected for client clock skew. */
  ts: string;
  /** Server receive time, ISO 8601 UTC with milliseconds. */
  received_at: string;
  source: string;
  page_url: string | null;
  page_path: string | null;
  referrer: string | null;
  user_agent: string | null;
  browser: string | null;
  os: string | null;
  device_type: string | null;
  /** Client IP with the host part zeroed (IPv4 /24, IPv6 /48). */
  ip: string | null;
  country: string | null;
  properties: Record<string, unknown> | null;
  context: Record<string, unknown> | null;
  traits: Record<string, unknown> | null;
}

export const EVENT_TYPES = ["track", "page", "screen", "identify", "group", "alias"] as const;
export type EventType = (typeof EVENT_TYPES)[number];

/** A quarantined input: a row of `events_rejected`. */
export interface RejectedEvent {
  /** The raw event (or whole request) text as received. */
  payload: string;
  source: string;
  received_at: string;
  /** A sentence naming the problem and the field. */
  reason: string;
}

export interface ColumnDef {
  name: string;
  /** A DuckDB type name. */
  type: string;
}

/** Columns of `events`, in order; `dt` (UTC date of `ts`) is the Hive partition column, kept in the path. */
export const EVENT_COLUMNS: readonly ColumnDef[] = [
  { name: "event_id", type: "VARCHAR" },
  { name: "event_type", type: "VARCHAR" },
  { name: "event", type: "VARCHAR" },
  { name: "user_id", type: "VARCHAR" },
  { name: "anonymous_id", type: "VARCHAR" },
  { name: "session_id", type: "VARCHAR" },
  { name: "ts", type: "TIMESTAMPTZ" },
  { name: "received_at", type: "TIMESTAMPTZ" },
  { name: "source", type: "VARCHAR" },
  { name: "page_url", type: "VARCHAR" },
  { name: "page_path", type: "VARCHAR" },
  { name: "referrer", type: "VARCHAR" },
  { name: "user_agent", type: "VARCHAR" },
  { name: "browser", type: "VARCHAR" },
  { name: "os", type: "VARCHAR" },
  { name: "device_type", type: "VARCHAR" },
  { name: "ip", type: "VARCHAR" },
  { name: "country", type: "VARCHAR" },
  { name: "properties", type: "JSON" },
  { name: "context", type: "JSON" },
  { name: "traits", type: "JSON" },
];

export const REJECTED_COLUMNS: readonly ColumnDef[] = [
  { name: "payload", type: "VARCHAR" },
  { name: "source", type: "VARCHAR" },
  { name: "received_at", type: "TIMESTAMPTZ" },
  { name: "reason", type: "VARCHAR" },
];
