/**
 * CORS for the collector endpoints. Trackers post from the sites they track, so every origin may
 * send events; credentials are allowed (the origin is echoed, as `*` does not allow them) so that
 * Snowplow's `sp` cookie travels with the requests, as with the reference collector. The write key,
 * not the origin, decides whether events are accepted.
 */

/** Headers for an answer to a request from `origin` (none for a request that is not cross-origin). */
export function corsHeaders(origin: string | undefined): Record<string, string> {
  if (origin === undefined || origin === "") return {};
  return {
    "access-control-allow-origin": origin,
    "access-control-allow-credentials": "true",
    vary: "Origin",
  };
}

/** What a preflight (OPTIONS) answer adds to `corsHeaders`. */
export const PREFLIGHT_HEADERS: Readonly<Record<string, string>> = {
  "access-control-allow-methods": "GET, POST, OPTIONS",
  "access-control-allow-headers": "Content-Type, Content-Encoding, Authorization, SP-Anonymous, X-Write-Key",
  "access-control-max-age": "3600",
};
