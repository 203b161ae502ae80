import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { clientAddress, trustedProxies } from "./client-address.js";

describe("client address behind proxies", () => {
  const loopback = trustedProxies("127.0.0.0/8,::1");
  const internal = trustedProxies("127.0.0.1, 10.0.0.0/8, fd00::/8");

  test("believes X-Forwarded-For only from a trusted peer", () => {
    assert.equal(clientAddress("127.0.0.1", "203.0.113.7", loopback), "203.0.113.7");
    assert.equal(clientAddress("::ffff:127.0.0.1", "203.0.113.7", loopback), "203.0.113.7");
    assert.equal(clientAddress("::1", "2001:db8::5", loopback), "2001:db8::5");
    assert.equal(clientAddress("198.51.100.2", "203.0.113.7", loopback), "198.51.100.2");
    assert.equal(clientAddress("127.0.0.1", undefined, loopback), "127.0.0.1");
    assert.equal(clientAddress("127.0.0.1", "203.0.113.7", trustedProxies("")), "127.0.0.1");
  });

  test("reads the chain from the right: what a client writes at its left is not believed", () => {
    // The client claims 1.1.1.1; its own address was appended by the first trusted proxy.
    assert.equal(clientAddress("10.0.0.2", "1.1.1.1, 203.0.113.7, 10.0.0.9", internal), "203.0.113.7");
    assert.equal(clientAddress("10.0.0.2", ["1.1.1.1", "203.0.113.7"], internal), "203.0.113.7");
    // Every hop trusted: the leftmost is the client (an internal caller).
    assert.equal(clientAddress("10.0.0.2", "10.1.2.3, 10.0.0.9", internal), "10.1.2.3");
    // Ports and brackets, as some proxies write them.
    assert.equal(clientAddress("127.0.0.1", "203.0.113.7:51234", internal), "203.0.113.7");
    assert.equal(clientAddress("127.0.0.1", "[2001:db8::5]:443", internal), "2001:db8::5");
    // Garbage: the client is the hop that passed it on.
    assert.equal(clientAddress("10.0.0.2", "unknown, 10.0.0.9", internal), "10.0.0.9");
  });

  test("refuses a setting that is not addresses and ranges", () => {
    for (const bad of ["localhost", "10.0.0.0/33", "10.0.0.0/8/1", "::1/129", "300.1.1.1"]) {
      assert.throws(() => trustedProxies(bad), /trusted_proxies: .* is not an IP address or CIDR range/, bad);
    }
  });
});
