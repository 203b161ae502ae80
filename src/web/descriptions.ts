/**
 * Business-friendly descriptions of the columns Sluice itself defines (the event tables), shown in
 * the catalog browser where the catalog has none; loaded tables describe their own columns.
 */
const EVENTS: Record<string, string> = {
  event_id: "Unique id of the event (the sender's message id, or one Sluice made)",
  event_type: "Kind of call: track, page, screen, identify, group or alias",
  event: "What happened: the event name (e.g. Order Completed) or the page or screen name",
  user_id: "The signed-in person, when known",
  anonymous_id: "The visitor's browser or device, before (or without) signing in",
  session_id: "The visit: events of one visitor until 30 minutes pass without one",
  ts: "When it happened (UTC), corrected for the device's clock",
  received_at: "When Sluice received it (UTC)",
  source: "Which site or app sent it (the write key's source)",
  page_url: "Full address of the page",
  page_path: "Path of the page, e.g. /products/trail-runner",
  referrer: "The page the visitor came from",
  user_agent: "The browser's self-description",
  browser: "Browser, e.g. Chrome",
  os: "Operating system, e.g. iOS",
  device_type: "desktop, mobile, tablet, tv or bot",
  ip: "Network address, with the last part removed for privacy",
  country: "Country (ISO code) of the address, when a GeoIP database is configured",
  properties: "The event's details (JSON), e.g. revenue, currency, product name",
  context: "Technical details (JSON): library, campaign, locale, …",
  traits: "What is known about the person (JSON), from identify calls",
  dt: "Day of the event (UTC): filter on it to read only those days",
};

const REJECTED: Record<string, string> = {
  payload: "What was received, as text",
  source: "Which site or app sent it",
  received_at: "When Sluice received it (UTC)",
  reason: "Why it was not accepted",
  dt: "Day it was received (UTC)",
};

const BY_TABLE: Record<string, Record<string, string>> = { events: EVENTS, events_rejected: REJECTED };

/** The description to show for a column: the catalog's own, else Sluice's for its event tables. */
export function columnDescription(table: string, column: string, own: string | undefined): string | null {
  return own ?? BY_TABLE[table]?.[column] ?? null;
}
