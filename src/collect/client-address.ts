/**
 * The address an event came from, behind reverse proxies. Sluice is usually run behind one (nginx,
 * Caddy, a cloud load balancer), which connects from its own address and names the client in
 * `X-Forwarded-For`; without reading it every event would get the proxy's IP and country. The
 * header is believed only from `trusted_proxies` (loopback by default), and read from the right:
 * each trusted hop names the one before it, and the first hop not trusted is the client (a client
 * can put anything at the left of the header, but not past its own proxy).
 */
import { BlockList, isIP } from "node:net";

/** Parses `trusted_proxies` (comma-separated addresses and CIDR ranges; "" trusts none). */
export function trustedProxies(setting: string): BlockList | null {
  const entries = setting
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry !== "");
  if (entries.length === 0) return null;
  const list = new BlockList();
  for (const entry of entries) {
    const [address = "", prefix, extra] = entry.split("/");
    const family = isIP(address);
    const bits = prefix === undefined ? (family === 6 ? 128 : 32) : Number(prefix);
    if (
      family === 0 ||
      extra !== undefined ||
      !Number.isInteger(bits) ||
      bits < 0 ||
      bits > (family === 6 ? 128 : 32)
    ) {
      throw new Error(`trusted_proxies: "${entry}" is not an IP address or CIDR range (such as 10.0.0.0/8)`);
    }
    list.addSubnet(address, bits, family === 6 ? "ipv6" : "ipv4");
  }
  return list;
}

/** The client's address: the peer's, or the one its trusted proxies forwarded. */
export function clientAddress(
  peer: string | undefined,
  forwardedFor: string | string[] | undefined,
  trusted: BlockList | null,
): string | undefined {
  if (trusted === null || peer === undefined || forwardedFor === undefined || !isTrusted(peer, trusted)) {
    return peer;
  }
  const hops = (Array.isArray(forwardedFor) ? forwardedFor.join(",") : forwardedFor).split(",");
  let nearest = peer;
  for (let index = hops.length - 1; index >= 0; index--) {
    const hop = withoutPort((hops[index] as string).trim());
    // A hop that is no address ("unknown", garbage): the client is whoever sent it on.
    if (isIP(hop) === 0) return nearest;
    if (!isTrusted(hop, trusted)) return hop;
    nearest = hop;
  }
  return nearest;
}

function isTrusted(address: string, trusted: BlockList): boolean {
  const family = isIP(address);
  return family !== 0 && trusted.check(address, family === 6 ? "ipv6" : "ipv4");
}

/** `1.2.3.4:5678` and `[2001:db8::1]:443` as proxies may write them, without the port. */
function withoutPort(hop: string): string {
  if (hop.startsWith("[")) {
    const close = hop.indexOf("]");
    return hop.slice(1, close === -1 ? undefined : close);
  }
  const colon = hop.indexOf(":");
  return colon !== -1 && colon === hop.lastIndexOf(":") ? hop.slice(0, colon) : hop;
}
