/**
 * The web app's HTTP API and pages. Everything the browser app does goes through these routes,
 * so scripts can do it too (see README, HTTP API). Roles: viewers read and query, editors also
 * save charts and dashboards, admins also manage users.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import {
  clearedSessionCookie,
  LOGIN_LINK_MS,
  type Principal,
  parseCookies,
  SESSION_COOKIE,
  sessionCookie,
} from "../accounts/index.js";
import type { TableDef } from "../catalog/index.js";
import { queryAccess } from "../privacy/index.js";
import type { Sluice } from "../server/runtime.js";
import { AccessError, QueryError, type QueryResult, sqlIdent, sqlString } from "../warehouse/index.js";
import { sendError, type WebAccess } from "./access.js";
import { AnalysisError, exploreSql, funnelSql, propertySql, retentionSql } from "./analyses.js";
import { webAssets } from "./assets.js";
import type { ChartQuery, ChartSpec } from "./charts/spec.js";
import { specProblem } from "./charts/spec.js";
import { renderChartSvg } from "./charts/svg.js";
import { columnDescription } from "./descriptions.js";
import { applyFilters, type Filters, filtersFromQuery } from "./filters.js";
import { ResultCache } from "./results.js";
import { SavedStore } from "./saved.js";
import { APP_PAGES, renderLinkPage, renderShell } from "./shell.js";

export interface WebRoutesOptions {
  sluice: Pick<Sluice, "catalog" | "warehouse">;
  access: WebAccess;
}

/** Saved charts and dashboards of a running server, for the demo and scripts in-process. */
export function savedStore(access: WebAccess): SavedStore {
  return new SavedStore(access.accounts.db);
}

const json = (request: FastifyRequest): Record<string, unknown> => {
  const body = request.body;
  if (Buffer.isBuffer(body) && body.length > 0) {
    try {
      const parsed = JSON.parse(body.toString("utf8"));
      if (typeof parsed === "object" && parsed !== null && !Array.isArray(parsed)) return parsed;
    } catch {
      // answered below
    }
    throw new BadRequest("the request body must be a JSON object");
  }
  return {};
};

class BadRequest extends Error {
  readonly status = 400;
}

const idParam = (request: FastifyRequest): number => {
  const id = Number((request.params as { id: string }).id);
  if (!Number.isInteger(id) || id < 1)
    throw new BadRequest("the id in the path must be a positive whole number");
  return id;
};

const who = (principal: Principal): string | null => principal.user?.username ?? null;

export async function webRoutes(app: FastifyInstance, options: WebRoutesOptions): Promise<void> {
  const { sluice, access } = options;
  const { accounts } = access;
  const { catalog, warehouse } = sluice;
  const saved = savedStore(access);
  const cache = new ResultCache(warehouse, catalog, queryAccess("viewer"));
  const base = (request: FastifyRequest) =>
    `${request.protocol}://${request.headers.host ?? request.hostname}`;
  // Behind a proxy that terminates TLS, the browser still talks HTTPS: keep the cookie Secure.
  const secure = (request: FastifyRequest) =>
    request.protocol === "https" || request.headers["x-forwarded-proto"] === "https";

  /** Runs a handler, answering known errors (with a status) as JSON. */
  const handle =
    <T>(run: (request: FastifyRequest, reply: FastifyReply) => Promise<T> | T) =>
    async (request: FastifyRequest, reply: FastifyReply) => {
      try {
        return await run(request, reply);
      } catch (error) {
        if (error instanceof QueryError || error instanceof AnalysisError) {
          return reply.code(error instanceof AccessError ? 403 : 400).send({ error: error.message });
        }
        return sendError(reply, error);
      }
    };

  // ---- pages

  const shell = async (_request: FastifyRequest, reply: FastifyReply) =>
    reply.type("text/html; charset=utf-8").header("cache-control", "no-store").send(renderShell());
  for (const page of APP_PAGES) app.get(page, shell);
  app.get("/assets/:name", async (request, reply) => {
    const { name } = request.params as { name: string };
    const asset = (await webAssets()).get(name);
    if (!asset) return reply.code(404).send({ error: `no asset ${name}` });
    const gzip = /\bgzip\b/.test(String(request.headers["accept-encoding"] ?? ""));
    return reply
      .headers({
        "content-type": asset.type,
        "cache-control": "no-cache",
        vary: "Accept-Encoding",
        ...(gzip ? { "content-encoding": "gzip" } : {}),
      })
      .send(gzip ? asset.gzip : asset.body);
  });

  // ---- signing in

  // A one-time link opens a page that asks to continue: services that fetch links to preview them
  // (chat apps, mail scanners) only GET, so they cannot use the link up.
  app.get("/login/:token", async (request, reply) => {
    try {
      const user = accounts.checkLink((request.params as { token: string }).token);
      return reply
        .type("text/html; charset=utf-8")
        .header("cache-control", "no-store")
        .send(renderLinkPage(user.username));
    } catch (error) {
      if (!(error instanceof Error && "status" in error)) throw error;
      return reply.redirect(`/signin?error=${encodeURIComponent(error.message)}`);
    }
  });

  app.post("/login/:token", async (request, reply) => {
    // A form of this origin only: another site must not sign a visitor in to an account of its choosing.
    const origin = request.headers.origin;
    if (origin !== undefined && (!URL.canParse(origin) || new URL(origin).host !== request.headers.host)) {
      return reply.code(403).send({ error: "sign in from Sluice's own page" });
    }
    try {
      const user = accounts.consumeLink((request.params as { token: string }).token);
      reply.header("set-cookie", sessionCookie(accounts.createSession(user.id), secure(request)));
      return reply.redirect(user.hasPassword ? "/" : "/settings?welcome=1", 303);
    } catch (error) {
      if (!(error instanceof Error && "status" in error)) throw error;
      return reply.redirect(`/signin?error=${encodeURIComponent(error.message)}`, 303);
    }
  });

  app.post(
    "/v1/session",
    handle(async (request, reply) => {
      const body = json(request);
      const user =
        typeof body.username === "string" && typeof body.password === "string"
          ? accounts.checkPassword(body.username, body.password)
          : null;
      if (!user) return reply.code(401).send({ error: "wrong user name or password" });
      reply.header("set-cookie", sessionCookie(accounts.createSession(user.id), secure(request)));
      return { user };
    }),
  );

  app.delete("/v1/session", async (request, reply) => {
    const principal = access.guard(request, reply, "viewer");
    if (!principal) return reply;
    const secret = parseCookies(request.headers.cookie).get(SESSION_COOKIE);
    if (secret) accounts.endSession(secret);
    return reply.header("set-cookie", clearedSessionCookie()).send({ ok: true });
  });

  app.get("/v1/me", async (request, reply) => {
    const principal = access.guard(request, reply, "viewer");
    if (!principal) return reply;
    return { role: principal.role, via: principal.via, user: principal.user };
  });

  app.put(
    "/v1/me/password",
    handle(async (request, reply) => {
      const principal = access.guard(request, reply, "viewer");
      if (!principal) return reply;
      if (principal.via !== "session" || !principal.user) {
        return reply.code(403).send({ error: "sign in in the browser to set your password" });
      }
      accounts.setPassword(principal.user.id, json(request).password);
      return { ok: true };
    }),
  );

  app.get("/v1/history", async (request, reply) => {
    const principal = access.guard(request, reply, "viewer");
    if (!principal) return reply;
    return { history: principal.user ? accounts.history(principal.user.id) : [] };
  });

  // ---- users (admin)

  app.get("/v1/users", async (request, reply) => {
    if (!access.guard(request, reply, "admin")) return reply;
    return { users: accounts.users() };
  });

  app.post(
    "/v1/users",
    handle(async (request, reply) => {
      if (!access.guard(request, reply, "admin")) return reply;
      const body = json(request);
      const { user, linkToken } = accounts.createUser(body.username, body.role);
      return reply.code(201).send({ user, inviteUrl: `${base(request)}/login/${linkToken}` });
    }),
  );

  app.patch(
    "/v1/users/:id",
    handle(async (request, reply) => {
      if (!access.guard(request, reply, "admin")) return reply;
      return { user: accounts.updateUser(idParam(request), json(request)) };
    }),
  );

  app.delete(
    "/v1/users/:id",
    handle(async (request, reply) => {
      if (!access.guard(request, reply, "admin")) return reply;
      accounts.deleteUser(idParam(request));
      return { ok: true };
    }),
  );

  app.post(
    "/v1/users/:id/login-link",
    handle(async (request, reply) => {
      if (!access.guard(request, reply, "admin")) return reply;
      const id = idParam(request);
      if (!accounts.user(id)) return reply.code(404).send({ error: `no user with id ${id}` });
      const token = accounts.issueLink(id, "login", LOGIN_LINK_MS);
      return { loginUrl: `${base(request)}/login/${token}` };
    }),
  );

  // ---- API tokens

  app.get("/v1/tokens", async (request, reply) => {
    const principal = access.guard(request, reply, "viewer");
    if (!principal) return reply;
    if (principal.role === "admin") return { tokens: accounts.tokens() };
    return { tokens: principal.user ? accounts.tokens(principal.user.id) : [] };
  });

  app.post(
    "/v1/tokens",
    handle(async (request, reply) => {
      const principal = access.guard(request, reply, "viewer");
      if (!principal) return reply;
      if (!principal.user) {
        return reply
          .code(400)
          .send({ error: "the configured admin token has no user: sign in to create API tokens" });
      }
      const body = json(request);
      const { token, secret } = accounts.createToken(
        { ...principal.user, role: principal.role },
        body.name,
        body.role,
      );
      return reply.code(201).send({ token, secret });
    }),
  );

  app.delete(
    "/v1/tokens/:id",
    handle(async (request, reply) => {
      const principal = access.guard(request, reply, "viewer");
      if (!principal) return reply;
      const id = idParam(request);
      const token = accounts.tokens().find((one) => one.id === id);
      if (!token) return reply.code(404).send({ error: `no API token with id ${id}` });
      if (principal.role !== "admin" && token.userId !== principal.user?.id) {
        return reply.code(403).send({ error: "only admins can revoke other users' tokens" });
      }
      accounts.revokeToken(id);
      return { ok: true };
    }),
  );

  // ---- running questions

  const tables = () => catalog.tables();
  const eventColumns = async () =>
    new Set(
      (await tables()).find((table) => table.name === "events")?.columns.map((column) => column.name) ?? [],
    );

  /** The SQL a chart query runs, with dashboard filters applied. */
  const compile = async (query: ChartQuery, filters: Filters): Promise<string> => {
    let sql: string;
    if ("sql" in query) sql = query.sql;
    else if ("explore" in query) sql = exploreSql(query.explore, await eventColumns());
    else if ("funnel" in query) sql = funnelSql(query.funnel as never, await eventColumns());
    else sql = retentionSql(query.retention);
    return applyFilters(sql, filters, await tables());
  };

  const run = async (query: ChartQuery, filters: Filters) => {
    const sql = await compile(query, filters);
    const { result, cached, ms } = await cache.get(sql, await tables());
    return { sql, ...result, cached, ms };
  };

  app.post(
    "/v1/charts/preview",
    handle(async (request, reply) => {
      if (!access.guard(request, reply, "viewer")) return reply;
      const body = json(request);
      const spec = (body.spec ?? { type: "table", query: body.query }) as ChartSpec;
      const problem = specProblem(spec);
      if (problem) return reply.code(400).send({ error: problem });
      return run(spec.query, checkFilters(body.filters));
    }),
  );

  // ---- charts

  app.get("/v1/charts", async (request, reply) => {
    if (!access.guard(request, reply, "viewer")) return reply;
    return { charts: saved.charts() };
  });

  app.post(
    "/v1/charts",
    handle(async (request, reply) => {
      const principal = access.guard(request, reply, "editor");
      if (!principal) return reply;
      return reply.code(201).send({ chart: saved.createChart(json(request), who(principal)) });
    }),
  );

  app.get(
    "/v1/charts/:id",
    handle(async (request, reply) => {
      if (!access.guard(request, reply, "viewer")) return reply;
      return { chart: saved.chart(idParam(request)) };
    }),
  );

  app.put(
    "/v1/charts/:id",
    handle(async (request, reply) => {
      if (!access.guard(request, reply, "editor")) return reply;
      return { chart: saved.updateChart(idParam(request), json(request)) };
    }),
  );

  app.delete(
    "/v1/charts/:id",
    handle(async (request, reply) => {
      if (!access.guard(request, reply, "editor")) return reply;
      saved.deleteChart(idParam(request));
      return { ok: true };
    }),
  );

  app.get(
    "/v1/charts/:id/data",
    handle(async (request, reply) => {
      if (!access.guard(request, reply, "viewer")) return reply;
      const chart = saved.chart(idParam(request));
      return run(chart.spec.query, filtersFromQuery(request.query as Record<string, unknown>));
    }),
  );

  app.get(
    "/v1/charts/:id/svg",
    handle(async (request, reply) => {
      if (!access.guard(request, reply, "viewer")) return reply;
      const chart = saved.chart(idParam(request));
      const { width: w, height: h, ...rest } = request.query as Record<string, string>;
      const width = w === undefined ? 800 : Number(w);
      const height = h === undefined ? 400 : Number(h);
      if (![width, height].every((size) => Number.isInteger(size) && size >= 100 && size <= 4000)) {
        return reply.code(400).send({ error: "width and height must be whole numbers of pixels (100-4000)" });
      }
      const data = await run(chart.spec.query, filtersFromQuery(rest));
      const spec = { ...chart.spec, title: chart.spec.title ?? chart.name };
      return reply.type("image/svg+xml").send(await renderChartSvg(spec, data, { width, height }));
    }),
  );

  // ---- dashboards

  app.get("/v1/dashboards", async (request, reply) => {
    if (!access.guard(request, reply, "viewer")) return reply;
    return { dashboards: saved.dashboards() };
  });

  app.post(
    "/v1/dashboards",
    handle(async (request, reply) => {
      const principal = access.guard(request, reply, "editor");
      if (!principal) return reply;
      return reply.code(201).send({ dashboard: saved.createDashboard(json(request), who(principal)) });
    }),
  );

  app.get(
    "/v1/dashboards/:id",
    handle(async (request, reply) => {
      if (!access.guard(request, reply, "viewer")) return reply;
      const dashboard = saved.dashboard(idParam(request));
      const charts = dashboard.panels.map((panel) => saved.chart(panel.chartId));
      return { dashboard, charts };
    }),
  );

  app.put(
    "/v1/dashboards/:id",
    handle(async (request, reply) => {
      if (!access.guard(request, reply, "editor")) return reply;
      return { dashboard: saved.updateDashboard(idParam(request), json(request)) };
    }),
  );

  app.delete(
    "/v1/dashboards/:id",
    handle(async (request, reply) => {
      if (!access.guard(request, reply, "editor")) return reply;
      saved.deleteDashboard(idParam(request));
      return { ok: true };
    }),
  );

  /** Every panel's data under the URL's filters (over the dashboard's defaults), in parallel. */
  app.get(
    "/v1/dashboards/:id/data",
    handle(async (request, reply) => {
      if (!access.guard(request, reply, "viewer")) return reply;
      const dashboard = saved.dashboard(idParam(request));
      const defaults: Filters = {};
      for (const filter of dashboard.filters) if (filter.default) defaults[filter.name] = filter.default;
      const filters = { ...defaults, ...filtersFromQuery(request.query as Record<string, unknown>) };
      const started = performance.now();
      const panels = await Promise.all(
        dashboard.panels.map(async (panel) => {
          try {
            const chart = saved.chart(panel.chartId);
            return { chartId: panel.chartId, ...(await run(chart.spec.query, filters)) };
          } catch (error) {
            if (
              error instanceof QueryError ||
              error instanceof AnalysisError ||
              (error as { status?: number }).status
            ) {
              return { chartId: panel.chartId, error: (error as Error).message };
            }
            throw error;
          }
        }),
      );
      return { filters, panels, ms: Math.round(performance.now() - started) };
    }),
  );

  // ---- the catalog, properties, live events

  app.get(
    "/v1/catalog",
    handle(async (request, reply) => {
      if (!access.guard(request, reply, "viewer")) return reply;
      const all = await tables();
      return {
        tables: await Promise.all(all.map((table) => describeTable(table))),
      };
    }),
  );

  const describeTable = async (table: TableDef) => {
    const files = await catalog.liveFiles(table.name);
    const rows = files.reduce((sum, file) => sum + file.rows, 0);
    const bytes = files.reduce((sum, file) => sum + file.bytes, 0);
    const timestamp = table.partitionBy?.fromTimestamp;
    let freshness: string | null = null;
    if (timestamp && rows > 0) {
      const latest = files
        .map((file) => file.partition)
        .sort()
        .at(-1);
      const result = await warehouse.query(
        `SELECT strftime(max(${sqlIdent(timestamp)}), '%Y-%m-%dT%H:%M:%S.%gZ') FROM ${sqlIdent(table.name)} WHERE dt >= DATE ${sqlString(latest ?? "1970-01-01")}`,
      );
      freshness = (result.rows[0]?.[0] as string | null) ?? null;
    } else {
      const [load] = await catalog.loads({ table: table.name, limit: 1 });
      freshness = load?.finishedAt ?? null;
    }
    return {
      name: table.name,
      rows,
      bytes,
      files: files.length,
      freshness,
      partitionedBy: table.partitionBy?.column ?? null,
      columns: [
        ...table.columns,
        ...(table.partitionBy
          ? [{ name: table.partitionBy.column, type: "DATE", description: undefined }]
          : []),
      ].map((column) => ({
        name: column.name,
        type: column.type,
        description: columnDescription(table.name, column.name, column.description),
      })),
    };
  };

  app.get(
    "/v1/properties",
    handle(async (request, reply) => {
      if (!access.guard(request, reply, "viewer")) return reply;
      const columns = [...(await eventColumns())].filter(
        (name) => !["properties", "context", "traits", "dt"].includes(name),
      );
      const keys = await cache.get(
        "SELECT DISTINCT unnest(json_keys(properties)) AS key FROM events WHERE ts >= now() - INTERVAL 7 DAY ORDER BY 1 LIMIT 500",
        await tables(),
      );
      const events = await cache.get(
        "SELECT event, count(*) AS count FROM events WHERE ts >= now() - INTERVAL 30 DAY AND event IS NOT NULL GROUP BY 1 ORDER BY 2 DESC LIMIT 500",
        await tables(),
      );
      return {
        columns,
        properties: keys.result.rows.map((row) => row[0]).filter((key) => !columns.includes(key as string)),
        events: events.result.rows.map(([event, count]) => ({ event, count })),
      };
    }),
  );

  app.get(
    "/v1/properties/:name/values",
    handle(async (request, reply) => {
      if (!access.guard(request, reply, "viewer")) return reply;
      const { name } = request.params as { name: string };
      const prefix = String((request.query as { q?: string }).q ?? "");
      const property = propertySql(name, await eventColumns());
      const sql = `SELECT ${property}::VARCHAR AS value, count(*) AS count FROM events
        WHERE ts >= now() - INTERVAL 30 DAY AND ${property} IS NOT NULL
          AND starts_with(lower(${property}::VARCHAR), lower(${sqlString(prefix)}))
        GROUP BY 1 ORDER BY 2 DESC LIMIT 50`;
      const { result } = await cache.get(sql, await tables());
      return { values: result.rows.map(([value, count]) => ({ value, count })) };
    }),
  );

  app.get(
    "/v1/live/events",
    handle(async (request, reply) => {
      if (!access.guard(request, reply, "viewer")) return reply;
      const limit = Number((request.query as { limit?: string }).limit ?? 50);
      if (!Number.isInteger(limit) || limit < 1 || limit > 500)
        return reply.code(400).send({ error: "limit must be 1-500" });
      const result: QueryResult = await warehouse.query(
        `SELECT strftime(received_at, '%Y-%m-%dT%H:%M:%S.%gZ') AS received_at, event_type, event, coalesce(user_id, anonymous_id) AS who,
           page_path, country, browser, device_type, source
         FROM events WHERE received_at >= now() - INTERVAL 1 HOUR AND ts >= now() - INTERVAL 2 DAY
         ORDER BY received_at DESC LIMIT ${limit}`,
      );
      return result;
    }),
  );
}

function checkFilters(value: unknown): Filters {
  if (value === undefined || value === null) return {};
  if (typeof value !== "object" || Array.isArray(value))
    throw new BadRequest('"filters" must be an object like {"country": "NL"}');
  return filtersFromQuery(value as Record<string, unknown>);
}
