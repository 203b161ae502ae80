/** The web app: its HTTP API and pages (`webRoutes`), charts rendered on the server, saved charts and dashboards. */
export { WebAccess } from "./access.js";
export { buildWebAssets } from "./assets.js";
export { type ChartSpec, chartOption, specProblem } from "./charts/spec.js";
export { renderChartSvg } from "./charts/svg.js";
export { savedStore, webRoutes } from "./routes.js";
export { type Dashboard, type SavedChart, SavedStore } from "./saved.js";
export { ensureShopOverview, SHOP_OVERVIEW_FIELDS, SHOP_OVERVIEW_PANELS } from "./shop-overview.js";
