/**
 * The first, pure half of collecting a request: everything that needs no shared state, so it can
 * run on a worker thread. The request's protocol (by method and path) does auth by write key, body
 * decoding, parsing, validation and normalising; every accepted event is then enriched and encoded
 * as a bus line, every rejected input as a quarantine row. What is left for the main thread (dedupe,
 * the bus appends, counters) is in `Collector` (index.ts).
 */
import { doorPolicy } from "../privacy/door.js";
import type { Arrival } from "./fields.js";
import { POSTHOG } from "./posthog.js";
import {
  answered,
  type CollectorRoute,
  type PreparedRequest,
  type PrepareSettings,
  type Protocol,
  type RequestToPrepare,
} from "./request.js";
import { schemaCheck } from "./schemas.js";
import { SEGMENT } from "./segment.js";
import { SNOWPLOW } from "./snowplow.js";

export {
  type BatchItemError,
  type CollectorLimits,
  type CollectorRoute,
  type CollectResponse,
  DEFAULT_LIMITS,
  type PreparedRequest,
  type PrepareSettings,
  type RequestToPrepare,
} from "./request.js";

/** Every protocol the collector speaks. A new one is a file and a line here. */
const PROTOCOLS: readonly Protocol[] = [SEGMENT, SNOWPLOW, POSTHOG];

/** Every collector endpoint, for the HTTP server to route. */
export const COLLECTOR_ROUTES: readonly CollectorRoute[] = PROTOCOLS.flatMap((protocol) => protocol.routes);

const PROTOCOL_BY_ROUTE = new Map(
  PROTOCOLS.flatMap((protocol) =>
    protocol.routes.map((route) => [routeKey(route.method, route.path), protocol] as const),
  ),
);

/** A path's trailing slash is not significant: SDKs differ on it (PostHog's `/e/`, Segment's `/v1/track`). */
function routeKey(method: string, path: string): string {
  return `${method} ${path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path}`;
}

/** Prepares one request; never throws. */
export function prepare(request: RequestToPrepare, settings: PrepareSettings): PreparedRequest {
  try {
    const protocol = PROTOCOL_BY_ROUTE.get(routeKey(request.method, request.path));
    if (protocol === undefined) {
      return answered(
        404,
        `There is no collector endpoint for ${request.method} ${request.path}; see the collector endpoints in the README.`,
      );
    }
    const arrival: Arrival = {
      source: "",
      receivedAtMs: request.receivedAtMs,
      receivedAt: new Date(request.receivedAtMs).toISOString(),
      remoteAddress: request.remoteAddress,
      privacy: settings.privacy === undefined ? undefined : doorPolicy(settings.privacy),
      schemas: settings.schemas === undefined ? undefined : schemaCheck(settings.schemas),
      dedupeSeeds: settings.dedupeSeeds,
    };
    return protocol.prepare(request, settings, arrival);
  } catch {
    return answered(500, "The collector failed unexpectedly; retry later.");
  }
}
