/**
 * The browser app: one page, a view per path (History API), each drawing itself from the HTTP
 * API. A view returns an optional cleanup, run when the user navigates away (timers, charts).
 */
import { analysisView } from "./analyses-view.js";
import { api, can, type Me } from "./api.js";
import { chartsList, chartView } from "./charts-view.js";
import { dashboardsList, dashboardView } from "./dashboard-view.js";
import { catalogView, liveView } from "./data-view.js";
import { h } from "./dom.js";
import { settingsView, signinView, usersView } from "./people-view.js";
import { sqlView } from "./sql-view.js";

export type Cleanup = (() => void) | undefined;
export interface ViewContext {
  me: Me;
  main: HTMLElement;
  params: Record<string, string>;
  query: URLSearchParams;
  navigate(path: string): void;
}
type View = (context: ViewContext) => Cleanup | Promise<Cleanup>;

const ROUTES: [RegExp, View][] = [
  [/^\/$/, homeView],
  [/^\/sql$/, sqlView],
  [/^\/explore$/, (context) => analysisView(context, "explore")],
  [/^\/funnels$/, (context) => analysisView(context, "funnel")],
  [/^\/retention$/, (context) => analysisView(context, "retention")],
  [/^\/charts$/, chartsList],
  [/^\/charts\/(?<id>new|\d+)$/, chartView],
  [/^\/dashboards$/, dashboardsList],
  [/^\/dashboards\/(?<id>\d+)$/, dashboardView],
  [/^\/catalog$/, catalogView],
  [/^\/live$/, liveView],
  [/^\/users$/, usersView],
  [/^\/settings$/, settingsView],
];

const NAV: [string, string][] = [
  ["/dashboards", "Dashboards"],
  ["/explore", "Explore"],
  ["/funnels", "Funnels"],
  ["/retention", "Retention"],
  ["/sql", "SQL"],
  ["/charts", "Charts"],
  ["/catalog", "Catalog"],
  ["/live", "Live"],
];

const root = document.getElementById("app") as HTMLElement;
let cleanup: Cleanup;
let me: Me | null = null;

async function render(): Promise<void> {
  cleanup?.();
  cleanup = undefined;
  const path = location.pathname;
  if (path === "/signin") {
    root.replaceChildren(signinView(navigate));
    return;
  }
  if (!me) {
    try {
      me = await api<Me>("GET", "/v1/me");
    } catch {
      return; // api() sent the browser to /signin
    }
  }
  const main = h("main");
  root.replaceChildren(layout(me, path), main);
  for (const [pattern, view] of ROUTES) {
    const match = pattern.exec(path);
    if (!match) continue;
    try {
      cleanup = await view({
        me,
        main,
        params: match.groups ?? {},
        query: new URLSearchParams(location.search),
        navigate,
      });
    } catch (error) {
      main.append(h("div.error", { role: "alert" }, (error as Error).message));
    }
    return;
  }
  main.append(h("h1", null, "Not found"), h("p", null, `Nothing at ${path}.`));
}

function layout(me: Me, path: string): HTMLElement {
  const link = ([href, text]: [string, string]) =>
    h("a", { href, className: path === href || path.startsWith(`${href}/`) ? "active" : "" }, text);
  return h(
    "header.top",
    null,
    h("a.brand", { href: "/" }, "Sluice"),
    h("nav", null, NAV.map(link), can(me, "admin") ? link(["/users", "Users"]) : null),
    h(
      "a.who",
      { href: "/settings", title: "your account and API tokens" },
      `${me.user?.username ?? "admin token"} · ${me.role}`,
    ),
  );
}

export function navigate(path: string): void {
  history.pushState(null, "", path);
  void render();
}

async function homeView({ main }: ViewContext): Promise<Cleanup> {
  const { dashboards } = await api<{ dashboards: { id: number; name: string; description: string }[] }>(
    "GET",
    "/v1/dashboards",
  );
  main.append(
    h("h1", null, "Welcome to Sluice"),
    h(
      "div.cards",
      null,
      dashboards.map((dashboard) =>
        h(
          "a.card",
          { href: `/dashboards/${dashboard.id}` },
          h("h3", null, dashboard.name),
          h("p", null, dashboard.description),
        ),
      ),
      h(
        "a.card",
        { href: "/explore" },
        h("h3", null, "Explore events"),
        h("p", null, "Counts, users and sums over time, no SQL."),
      ),
      h(
        "a.card",
        { href: "/sql" },
        h("h3", null, "SQL editor"),
        h("p", null, "Query every table with DuckDB SQL."),
      ),
      h("a.card", { href: "/live" }, h("h3", null, "Live"), h("p", null, "Events as they arrive.")),
    ),
  );
  return undefined;
}

// Links inside the app navigate without reloading.
document.addEventListener("click", (event) => {
  const anchor = (event.target as Element).closest("a");
  if (
    !anchor ||
    anchor.target ||
    anchor.hasAttribute("download") ||
    event.ctrlKey ||
    event.metaKey ||
    event.shiftKey
  )
    return;
  const url = new URL(anchor.href, location.href);
  if (url.origin !== location.origin || url.pathname.startsWith("/login/") || url.pathname.startsWith("/v1/"))
    return;
  event.preventDefault();
  navigate(url.pathname + url.search);
});
window.addEventListener("popstate", () => void render());
void render();
