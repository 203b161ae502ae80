/** Small HTTP client for the server's query API and collector, as a user's code would call them. */
import type { SluiceServer } from "./server.js";

export interface QueryResponse {
  columns: { name: string; type: string }[];
  rows: unknown[][];
  truncated?: boolean;
}

/** `POST /v1/query`; throws with the server's message on any non-200. */
export async function query(server: SluiceServer, sql: string): Promise<QueryResponse> {
  const response = await fetch(`${server.url}/v1/query`, {
    method: "POST",
    headers: { authorization: `Bearer ${server.adminToken}`, "content-type": "application/json" },
    body: JSON.stringify({ sql }),
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`query failed with HTTP ${response.status}: ${text}\nSQL: ${sql}`);
  return JSON.parse(text) as QueryResponse;
}

export const basicAuth = (writeKey: string): string =>
  `Basic ${Buffer.from(`${writeKey}:`).toString("base64")}`;

/** SQL string literal. */
export const sqlString = (value: string): string => `'${value.replaceAll("'", "''")}'`;
