/** Helpers for the web app's tests: a real server with a small known shop, signing in by link, API calls. */
import { ADMIN_TOKEN, basicAuth, eventually, query, type startTestServer } from "../server/test-support.js";

export type TestServer = Awaited<ReturnType<typeof startTestServer>>;

/** A few visitors' journeys yesterday: 4 view a product, 3 add it, 2 check out, 1 orders (in EUR). */
export function shopEvents(now = Date.now()): Record<string, unknown>[] {
  const day = new Date(now - 86_400_000);
  day.setUTCHours(12, 0, 0, 0);
  const at = (minutes: number) => new Date(day.getTime() + minutes * 60_000).toISOString();
  const journeys: [string, string, string[]][] = [
    ["u1", "EUR", ["Product Viewed", "Product Added", "Checkout Started", "Order Completed"]],
    ["u2", "EUR", ["Product Viewed", "Product Added", "Checkout Started"]],
    ["u3", "USD", ["Product Viewed", "Product Added"]],
    ["u4", "USD", ["Product Viewed"]],
  ];
  return journeys.flatMap(([userId, currency, steps]) =>
    steps.map((event, index) => ({
      type: "track",
      event,
      userId,
      messageId: `${userId}-${index}`,
      timestamp: at(index * 5),
      properties: { currency, ...(event === "Order Completed" ? { revenue: 42.5 } : { product: "Tee" }) },
    })),
  );
}

/** Sends events through the collector and waits until all of them are queryable. */
export async function sendEvents(server: TestServer, batch: Record<string, unknown>[]): Promise<void> {
  const before = await countEvents(server);
  const response = await fetch(`${server.url}/v1/batch`, {
    method: "POST",
    headers: { authorization: basicAuth(), "content-type": "application/json" },
    body: JSON.stringify({ batch }),
  });
  if (response.status !== 200) throw new Error(`batch failed: ${response.status} ${await response.text()}`);
  await eventually(async () => (await countEvents(server)) >= before + batch.length);
}

async function countEvents(server: TestServer): Promise<number> {
  return Number((await query(server.url, "SELECT count(*) FROM events")).rows[0]?.[0]);
}

/** A parsed JSON answer: its shape is what the assertions check. */
// biome-ignore lint/suspicious/noExplicitAny: answers of every route, checked field by field by the tests.
export type Json = Record<string, any>;

/** Calls the API; `auth` is a bearer token or a session cookie (then the CSRF header is sent too). */
export type Caller = (
  method: string,
  path: string,
  body?: unknown,
  extraHeaders?: Record<string, string>,
) => Promise<{
  status: number;
  body: Json;
  headers: Headers;
}>;

export function caller(
  server: TestServer,
  auth: { token?: string; cookie?: string; csrf?: boolean } = { token: ADMIN_TOKEN },
): Caller {
  return async (method, path, body, extraHeaders = {}) => {
    const headers: Record<string, string> = { ...extraHeaders };
    if (auth.token) headers.authorization = `Bearer ${auth.token}`;
    if (auth.cookie) headers.cookie = auth.cookie;
    if (auth.cookie && auth.csrf !== false) headers["x-sluice-csrf"] = "1";
    if (body !== undefined) headers["content-type"] = "application/json";
    const response = await fetch(`${server.url}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      redirect: "manual",
    });
    const text = await response.text();
    let parsed: Json = {};
    try {
      parsed = text ? JSON.parse(text) : {};
    } catch {
      parsed = { text };
    }
    return { status: response.status, body: parsed, headers: response.headers };
  };
}

/** Opens a one-time link (as a browser would) and returns the session cookie it sets. */
export async function signInWithLink(link: string): Promise<{ cookie: string; location: string }> {
  const response = await fetch(link, { method: "POST", redirect: "manual" });
  const setCookie = response.headers.get("set-cookie") ?? "";
  const location = response.headers.get("location") ?? "";
  const cookie = setCookie.split(";")[0] ?? "";
  if (!cookie.startsWith("sluice_session="))
    throw new Error(`no session from ${link}: ${response.status} ${location}`);
  return { cookie, location };
}

/** A new user of a role, invited by the admin token and signed in by their link. */
export async function userWithRole(
  server: TestServer,
  username: string,
  role: string,
): Promise<{ cookie: string; token: string }> {
  const admin = caller(server);
  const invited = await admin("POST", "/v1/users", { username, role });
  if (invited.status !== 201) throw new Error(`invite failed: ${JSON.stringify(invited.body)}`);
  const { cookie } = await signInWithLink(invited.body.inviteUrl);
  const created = await caller(server, { cookie })("POST", "/v1/tokens", { name: `${username}'s script` });
  return { cookie, token: created.body.secret };
}
