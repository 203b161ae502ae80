/**
 * Enrichment in a server as a user configures it: `geoip_database` names a MaxMind file, user
 * agents are parsed and bots flagged; the stored address is still truncated by the PII policy.
 * Behind a trusted proxy, the address is the client's from X-Forwarded-For.
 */
import assert from "node:assert/strict";
import { rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { basicAuth, eventually, query, startTestServer, tempDataDir } from "../server/test-support.js";
import { countryDatabase } from "./test-support/mmdb.js";

const CHROME =
  "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36";
const GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";

describe("enrichment in a server", () => {
  let server: Awaited<ReturnType<typeof startTestServer>>;
  let dir: string;
  before(async () => {
    dir = await tempDataDir();
    const database = join(dir, "countries.mmdb");
    // Two halves of one /24 in different countries: only the full address tells them apart.
    await writeFile(database, countryDatabase({ "203.0.113.0/25": "AT", "203.0.113.128/25": "DE" }));
    server = await startTestServer({ geoip_database: database });
  });
  after(async () => {
    await server.close();
    await rm(dir, { recursive: true, force: true });
  });

  test("country from the full address, which is stored truncated; browser, os, device and the bot flag from the user agent", async () => {
    const send = (userId: string, ip: string, userAgent: string) =>
      fetch(`${server.url}/v1/track`, {
        method: "POST",
        headers: { authorization: basicAuth(), "content-type": "application/json" },
        body: JSON.stringify({ userId, event: "Visited", context: { ip, userAgent } }),
      });
    assert.equal((await send("geo-person", "203.0.113.200", CHROME)).status, 200);
    assert.equal((await send("geo-crawler", "203.0.113.7", GOOGLEBOT)).status, 200);
    const sql = `SELECT user_id, country, ip, browser, os, device_type, context->>'is_bot'
      FROM events WHERE user_id LIKE 'geo-%' ORDER BY user_id`;
    await eventually(async () => (await query(server.url, sql)).rows.length === 2);
    assert.deepEqual((await query(server.url, sql)).rows, [
      ["geo-crawler", "AT", "203.0.113.0", "Googlebot", null, "bot", "true"],
      ["geo-person", "DE", "203.0.113.0", "Chrome", "Windows", "desktop", "false"],
    ]);
  });

  test("behind a reverse proxy on the same machine, the client's address comes from X-Forwarded-For", async () => {
    const response = await fetch(`${server.url}/v1/track`, {
      method: "POST",
      headers: {
        authorization: basicAuth(),
        "content-type": "application/json",
        // What the client wrote itself (left) is not believed; what the proxy appended is.
        "x-forwarded-for": "198.51.100.1, 203.0.113.9",
      },
      body: JSON.stringify({ userId: "proxied-person", event: "Visited" }),
    });
    assert.equal(response.status, 200);
    const sql = "SELECT country, ip FROM events WHERE user_id = 'proxied-person'";
    await eventually(async () => (await query(server.url, sql)).rows.length === 1);
    assert.deepEqual((await query(server.url, sql)).rows, [["AT", "203.0.113.0"]]);
  });
});
