/**
 * Saved charts and dashboards, in the accounts database (`app.db`). A dashboard is a grid of
 * panels, each a saved chart at a position and size (12 columns wide, rows of 80 px), plus the
 * filters it offers and how often it refreshes.
 */
import type Database from "better-sqlite3";
import { type ChartSpec, specProblem } from "./charts/spec.js";

const SCHEMA = `
CREATE TABLE IF NOT EXISTS charts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  spec TEXT NOT NULL,
  created_by TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS dashboards (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL UNIQUE,
  description TEXT NOT NULL DEFAULT '',
  panels TEXT NOT NULL,
  filters TEXT NOT NULL,
  refresh_seconds INTEGER NOT NULL DEFAULT 0,
  created_by TEXT,
  created_at TEXT NOT NULL,
  updated_at TEXT NOT NULL
);
`;

export const GRID_COLUMNS = 12;

export interface SavedChart {
  id: number;
  name: string;
  spec: ChartSpec;
  createdBy: string | null;
  createdAt: string;
  updatedAt: string;
}

export interface Panel {
  chartId: number;
  /** Grid column (0-11) and row of the top-left corner; width in columns, height in rows. */
  x: number;
  y: number;
  w: number;
  h: number;
}

/** A filter the dashboard offers: a column or property of the events, with an optional default. */
export interface DashboardFilter {
  name: string;
  label?: string;
  default?: string;
}

export interface Dashboard {
  id: number;
  name: string;
  description: string;
  panels: Panel[];
  filters: DashboardFilter[];
  /** Auto-refresh interval; 0 = none. */
  refreshSeconds: number;
  createdBy: string | null;
  createdAt: string;
  updatedAt: string;
}

export class SavedError extends Error {
  constructor(
    message: string,
    readonly status = 400,
  ) {
    super(message);
  }
}

interface ChartRow {
  id: number;
  name: string;
  spec: string;
  created_by: string | null;
  created_at: string;
  updated_at: string;
}

interface DashboardRow {
  id: number;
  name: string;
  description: string;
  panels: string;
  filters: string;
  refresh_seconds: number;
  created_by: string | null;
  created_at: string;
  updated_at: string;
}

const toChart = (row: ChartRow): SavedChart => ({
  id: row.id,
  name: row.name,
  spec: JSON.parse(row.spec),
  createdBy: row.created_by,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

const toDashboard = (row: DashboardRow): Dashboard => ({
  id: row.id,
  name: row.name,
  description: row.description,
  panels: JSON.parse(row.panels),
  filters: JSON.parse(row.filters),
  refreshSeconds: row.refresh_seconds,
  createdBy: row.created_by,
  createdAt: row.created_at,
  updatedAt: row.updated_at,
});

function checkName(name: unknown): string {
  if (typeof name !== "string" || name.trim() === "" || name.length > 200) {
    throw new SavedError('field "name" must be a non-empty string of at most 200 characters');
  }
  return name.trim();
}

export class SavedStore {
  constructor(private readonly db: Database.Database) {
    db.exec(SCHEMA);
  }

  charts(): SavedChart[] {
    return (this.db.prepare("SELECT * FROM charts ORDER BY name, id").all() as ChartRow[]).map(toChart);
  }

  chart(id: number): SavedChart {
    const row = this.db.prepare("SELECT * FROM charts WHERE id = ?").get(id) as ChartRow | undefined;
    if (!row) throw new SavedError(`no chart with id ${id}`, 404);
    return toChart(row);
  }

  createChart(body: { name?: unknown; spec?: unknown }, by: string | null): SavedChart {
    const name = checkName(body.name);
    const spec = checkSpec(body.spec);
    const now = new Date().toISOString();
    const { lastInsertRowid } = this.db
      .prepare("INSERT INTO charts (name, spec, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?)")
      .run(name, JSON.stringify(spec), by, now, now);
    return this.chart(Number(lastInsertRowid));
  }

  updateChart(id: number, body: { name?: unknown; spec?: unknown }): SavedChart {
    const chart = this.chart(id);
    const name = body.name === undefined ? chart.name : checkName(body.name);
    const spec = body.spec === undefined ? chart.spec : checkSpec(body.spec);
    this.db
      .prepare("UPDATE charts SET name = ?, spec = ?, updated_at = ? WHERE id = ?")
      .run(name, JSON.stringify(spec), new Date().toISOString(), id);
    return this.chart(id);
  }

  /** Deletes a chart that no dashboard shows. */
  deleteChart(id: number): void {
    this.chart(id);
    const users = this.dashboards().filter((dashboard) =>
      dashboard.panels.some((panel) => panel.chartId === id),
    );
    if (users.length > 0) {
      throw new SavedError(
        `chart ${id} is on dashboard ${users.map((dashboard) => `"${dashboard.name}"`).join(", ")}: remove it there first`,
        409,
      );
    }
    this.db.prepare("DELETE FROM charts WHERE id = ?").run(id);
  }

  dashboards(): Dashboard[] {
    return (this.db.prepare("SELECT * FROM dashboards ORDER BY name").all() as DashboardRow[]).map(
      toDashboard,
    );
  }

  dashboard(id: number): Dashboard {
    const row = this.db.prepare("SELECT * FROM dashboards WHERE id = ?").get(id) as DashboardRow | undefined;
    if (!row) throw new SavedError(`no dashboard with id ${id}`, 404);
    return toDashboard(row);
  }

  dashboardByName(name: string): Dashboard | null {
    const row = this.db.prepare("SELECT * FROM dashboards WHERE name = ?").get(name) as
      | DashboardRow
      | undefined;
    return row ? toDashboard(row) : null;
  }

  createDashboard(body: Record<string, unknown>, by: string | null): Dashboard {
    const name = checkName(body.name);
    if (this.dashboardByName(name)) throw new SavedError(`a dashboard named "${name}" already exists`, 409);
    const fields = this.#fields(body, { description: "", panels: [], filters: [], refreshSeconds: 0 });
    const now = new Date().toISOString();
    const { lastInsertRowid } = this.db
      .prepare(
        "INSERT INTO dashboards (name, description, panels, filters, refresh_seconds, created_by, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
      )
      .run(
        name,
        fields.description,
        JSON.stringify(fields.panels),
        JSON.stringify(fields.filters),
        fields.refreshSeconds,
        by,
        now,
        now,
      );
    return this.dashboard(Number(lastInsertRowid));
  }

  updateDashboard(id: number, body: Record<string, unknown>): Dashboard {
    const dashboard = this.dashboard(id);
    const name = body.name === undefined ? dashboard.name : checkName(body.name);
    const other = this.dashboardByName(name);
    if (other && other.id !== id) throw new SavedError(`a dashboard named "${name}" already exists`, 409);
    const fields = this.#fields(body, dashboard);
    this.db
      .prepare(
        "UPDATE dashboards SET name = ?, description = ?, panels = ?, filters = ?, refresh_seconds = ?, updated_at = ? WHERE id = ?",
      )
      .run(
        name,
        fields.description,
        JSON.stringify(fields.panels),
        JSON.stringify(fields.filters),
        fields.refreshSeconds,
        new Date().toISOString(),
        id,
      );
    return this.dashboard(id);
  }

  deleteDashboard(id: number): void {
    this.dashboard(id);
    this.db.prepare("DELETE FROM dashboards WHERE id = ?").run(id);
  }

  #fields(
    body: Record<string, unknown>,
    current: Pick<Dashboard, "description" | "panels" | "filters" | "refreshSeconds">,
  ): Pick<Dashboard, "description" | "panels" | "filters" | "refreshSeconds"> {
    const description = body.description ?? current.description;
    if (typeof description !== "string") throw new SavedError('field "description" must be a string');
    const refreshSeconds = body.refreshSeconds ?? current.refreshSeconds;
    if (
      !Number.isInteger(refreshSeconds) ||
      (refreshSeconds as number) < 0 ||
      (refreshSeconds as number) > 86_400
    ) {
      throw new SavedError('field "refreshSeconds" must be a whole number of seconds (0 = no auto-refresh)');
    }
    const panels = body.panels === undefined ? current.panels : this.#panels(body.panels);
    const filters = body.filters === undefined ? current.filters : checkFilters(body.filters);
    return { description, panels, filters, refreshSeconds: refreshSeconds as number };
  }

  #panels(value: unknown): Panel[] {
    if (!Array.isArray(value)) throw new SavedError('field "panels" must be a list of {chartId, x, y, w, h}');
    return value.map((panel: Record<string, unknown>, index) => {
      const at = `panels[${index}]`;
      if (typeof panel !== "object" || panel === null) throw new SavedError(`${at} must be an object`);
      const chartId = Number(panel.chartId);
      if (!Number.isInteger(chartId)) throw new SavedError(`${at}.chartId must be a chart id`);
      this.chart(chartId);
      const x = panel.x ?? 0;
      const y = panel.y ?? index * 4;
      const w = panel.w ?? 6;
      const h = panel.h ?? 4;
      const whole = (v: unknown, min: number, max: number) =>
        Number.isInteger(v) && (v as number) >= min && (v as number) <= max;
      if (
        !whole(w, 1, GRID_COLUMNS) ||
        !whole(x, 0, GRID_COLUMNS - 1) ||
        (x as number) + (w as number) > GRID_COLUMNS
      ) {
        throw new SavedError(
          `${at}: x (0-11) and w (1-12) must keep the panel within ${GRID_COLUMNS} columns`,
        );
      }
      if (!whole(y, 0, 1000) || !whole(h, 1, 20))
        throw new SavedError(`${at}: y must be 0-1000 and h 1-20 rows`);
      return { chartId, x: x as number, y: y as number, w: w as number, h: h as number };
    });
  }
}

function checkSpec(spec: unknown): ChartSpec {
  const problem = specProblem(spec);
  if (problem) throw new SavedError(`field "spec": ${problem}`);
  return spec as ChartSpec;
}

function checkFilters(value: unknown): DashboardFilter[] {
  if (!Array.isArray(value))
    throw new SavedError('field "filters" must be a list of {name, label?, default?}');
  return value.map((filter: Record<string, unknown>, index) => {
    if (typeof filter?.name !== "string" || !/^[A-Za-z_][A-Za-z0-9_.$-]{0,99}$/.test(filter.name)) {
      throw new SavedError(`filters[${index}].name must be a column or property name`);
    }
    for (const key of ["label", "default"]) {
      if (filter[key] !== undefined && typeof filter[key] !== "string") {
        throw new SavedError(`filters[${index}].${key} must be a string`);
      }
    }
    return {
      name: filter.name,
      label: filter.label as string | undefined,
      default: filter.default as string | undefined,
    };
  });
}
