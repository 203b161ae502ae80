/** The HTTP API, as the browser app calls it: JSON in and out, the session cookie, the CSRF header. */

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export async function api<T = Record<string, unknown>>(
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  const response = await fetch(path, {
    method,
    headers: {
      "x-sluice-csrf": "1",
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
    credentials: "same-origin",
  });
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = text === "" ? null : JSON.parse(text);
  } catch {
    parsed = { error: text };
  }
  if (!response.ok) {
    const message =
      (parsed as { error?: string } | null)?.error ?? `${response.status} ${response.statusText}`;
    if (response.status === 401 && !location.pathname.startsWith("/signin")) {
      location.href = `/signin?next=${encodeURIComponent(location.pathname + location.search)}`;
    }
    throw new ApiError(message, response.status);
  }
  return parsed as T;
}

/**
 * Keeps only the latest of a view's requests: `const latest = latestOnly()`, then
 * `await latest(api(…))`. An answer (or error) to a request started before the latest one never
 * arrives, so a slow, older answer cannot overwrite a newer one on the screen.
 */
export function latestOnly(): <T>(request: Promise<T>) => Promise<T> {
  let latest = 0;
  return <T>(request: Promise<T>) => {
    const mine = ++latest;
    return new Promise<T>((resolve, reject) => {
      request.then(
        (value) => mine === latest && resolve(value),
        (error: unknown) => mine === latest && reject(error),
      );
    });
  };
}

export interface QueryResult {
  columns: { name: string; type: string }[];
  rows: unknown[][];
  truncated?: boolean;
  sql?: string;
  cached?: boolean;
  ms?: number;
}

export type Role = "viewer" | "editor" | "admin";

export interface Me {
  role: Role;
  via: string;
  user: { id: number; username: string; role: Role; hasPassword: boolean } | null;
}

const RANK: Record<Role, number> = { viewer: 0, editor: 1, admin: 2 };
export const can = (me: Me, role: Role): boolean => RANK[me.role] >= RANK[role];
