/**
 * The live home page at `/`: one self-contained HTML document (inline CSS and
 * script, nothing loaded from elsewhere) that polls `GET /v1/stats` every 2 s.
 * The browser code is plain JavaScript kept in strings; it avoids template
 * literals and backslashes so it reads the same here as in the browser.
 */

/** Pure functions the page script uses; kept apart so tests can run exactly this code. */
export const PAGE_HELPERS = `
/** A count with thousands separators in the reader's locale; a dash when unknown. */
function formatNumber(value, locale) {
  return typeof value === "number" && isFinite(value) ? Math.round(value).toLocaleString(locale) : "–";
}

/** The last 'count' minutes up to the one holding 'now' (ms), oldest first; minutes the server omits had 0 events. */
function lastMinutes(perMinute, now, count) {
  const eventsByMinute = new Map();
  for (const point of perMinute) eventsByMinute.set(Math.floor(Date.parse(point.minute) / 60000), point.events);
  const current = Math.floor(now / 60000);
  const minutes = [];
  for (let minute = current - count + 1; minute <= current; minute++) {
    minutes.push({ minute: minute * 60000, events: eventsByMinute.get(minute) || 0 });
  }
  return minutes;
}

/** The smallest round number (1, 2 or 5 times a power of ten) at or above 'value': a readable axis top. */
function niceCeiling(value) {
  if (!(value > 0)) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(value)));
  for (const step of [1, 2, 5]) if (value <= step * power) return step * power;
  return 10 * power;
}

/**
 * Bars for 'values' in a box of 'width' by 'height', scaled to a round maximum
 * of at least 10 (so half of it, the middle gridline, is a whole number too);
 * non-zero values stay visible.
 */
function barLayout(values, width, height) {
  const max = niceCeiling(Math.max(10, ...values));
  const slot = width / Math.max(values.length, 1);
  const gap = slot >= 4 ? 1 : 0;
  const bars = values.map(function (value, index) {
    const barHeight = value > 0 ? Math.max(1, (value / max) * height) : 0;
    return { x: index * slot, y: height - barHeight, width: slot - gap, height: barHeight };
  });
  return { max: max, bars: bars };
}
`;

/** Fetching, rendering and the token form; uses the helpers above. */
const PAGE_APP = `
const TOKEN_KEY = "sluice.adminToken";
const REFRESH_MS = 2000;
const REQUEST_TIMEOUT_MS = 5000;
const CHART = { width: 720, height: 200, left: 44, bottom: 22, top: 8 };
const SVG_NS = "http://www.w3.org/2000/svg";
const element = function (id) { return document.getElementById(id); };
let refreshTimer;

function readToken() {
  try {
    return localStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

let sessionToken = readToken();

function writeToken(token) {
  try {
    if (token) localStorage.setItem(TOKEN_KEY, token);
    else localStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage can be disabled; the token then lasts until the page is closed.
  }
  sessionToken = token;
}

function setStatus(state, text) {
  element("status").dataset.state = state;
  element("status-text").textContent = text;
}

async function refresh() {
  clearTimeout(refreshTimer);
  try {
    const headers = sessionToken ? { Authorization: "Bearer " + sessionToken } : {};
    const response = await fetch("/v1/stats", {
      headers: headers,
      cache: "no-store",
      signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
    });
    if (response.status === 401) return askForToken();
    if (!response.ok) throw new Error("The server answered HTTP " + response.status);
    render(await response.json());
    setStatus("live", "Live · updated " + new Date().toLocaleTimeString());
  } catch (error) {
    const unreachable = error instanceof TypeError || (error && error.name === "TimeoutError");
    setStatus("error", (unreachable ? "Server unreachable" : error.message) + " · retrying…");
  }
  refreshTimer = setTimeout(refresh, REFRESH_MS);
}

/** Polling pauses until a token is saved: without one every request would fail the same way. */
function askForToken() {
  const rejected = Boolean(sessionToken);
  writeToken(null);
  element("token-message").textContent = rejected
    ? "That token was not accepted. Enter the admin token again."
    : "This server needs its admin token to show statistics.";
  element("token-form").hidden = false;
  element("token-input").focus();
  setStatus("auth", "Waiting for the admin token");
}

element("token-form").addEventListener("submit", function (event) {
  event.preventDefault();
  const token = element("token-input").value.trim();
  if (!token) return;
  writeToken(token);
  element("token-input").value = "";
  element("token-form").hidden = true;
  setStatus("live", "Connecting…");
  refresh();
});

function render(stats) {
  element("total").textContent = formatNumber(stats.total);
  element("rejected").textContent = formatNumber(stats.rejected);
  element("last-minute").textContent = formatNumber(stats.lastMinute);
  const now = Date.parse(stats.generatedAt) || Date.now();
  drawChart(lastMinutes(stats.perMinute || [], now, 60));
  renderTopEvents(stats.topEvents || []);
}

function svg(name, attributes, text) {
  const node = document.createElementNS(SVG_NS, name);
  for (const key in attributes) node.setAttribute(key, attributes[key]);
  if (text !== undefined) node.textContent = text;
  return node;
}

function drawChart(minutes) {
  const chart = element("chart");
  const plotWidth = CHART.width - CHART.left;
  const plotHeight = CHART.height - CHART.bottom - CHART.top;
  const layout = barLayout(minutes.map(function (point) { return point.events; }), plotWidth, plotHeight);
  const parts = [];
  for (const fraction of [0, 0.5, 1]) {
    const y = CHART.top + plotHeight * (1 - fraction);
    parts.push(svg("line", { class: "grid", x1: CHART.left, x2: CHART.width, y1: y, y2: y }));
    parts.push(svg("text", { class: "axis", x: CHART.left - 6, y: y + 4, "text-anchor": "end" }, formatNumber(layout.max * fraction)));
  }
  layout.bars.forEach(function (bar, index) {
    const point = minutes[index];
    const rect = svg("rect", { class: "bar", x: CHART.left + bar.x, y: CHART.top + bar.y, width: bar.width, height: bar.height });
    rect.appendChild(svg("title", {}, minuteLabel(point.minute) + " · " + formatNumber(point.events) + " events"));
    parts.push(rect);
  });
  const last = minutes.length - 1;
  [0, Math.floor(last / 2), last].forEach(function (index) {
    const bar = layout.bars[index];
    const anchor = index === 0 ? "start" : index === last ? "end" : "middle";
    const x = CHART.left + bar.x + (index === 0 ? 0 : index === last ? bar.width : bar.width / 2);
    parts.push(svg("text", { class: "axis", x: x, y: CHART.height - 6, "text-anchor": anchor }, minuteLabel(minutes[index].minute)));
  });
  chart.replaceChildren(...parts);
}

function minuteLabel(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function renderTopEvents(topEvents) {
  const list = element("top-events");
  const top = topEvents.slice(0, 10);
  const highest = Math.max(1, ...top.map(function (entry) { return entry.count; }));
  list.replaceChildren(...top.map(function (entry) {
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = entry.event || "(unnamed)";
    const count = document.createElement("span");
    count.className = "count";
    count.textContent = formatNumber(entry.count);
    const bar = document.createElement("span");
    bar.className = "share";
    bar.style.width = ((entry.count / highest) * 100).toFixed(1) + "%";
    item.append(name, count, bar);
    return item;
  }));
  element("top-empty").hidden = top.length > 0;
}

element("query-hint").textContent = element("query-hint").textContent.replace("http://HOST", location.origin);
drawChart(lastMinutes([], Date.now(), 60));
refresh();
`;

const PAGE_STYLE = `
:root {
  color-scheme: light dark;
  --bg: #f5f6f8; --card: #ffffff; --text: #1b1f24; --muted: #5f6b7a; --line: #e2e6eb;
  --accent: #2f6fed; --accent-soft: rgba(47, 111, 237, 0.12); --ok: #1f9d55; --bad: #d64545; --warn: #c98a00;
}
@media (prefers-color-scheme: dark) {
  :root {
    --bg: #0f1217; --card: #171b22; --text: #e6eaf0; --muted: #97a1b0; --line: #29303a;
    --accent: #6b95ff; --accent-soft: rgba(107, 149, 255, 0.16);
  }
}
* { box-sizing: border-box; }
body {
  margin: 0; background: var(--bg); color: var(--text);
  font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", sans-serif;
}
header, main { max-width: 960px; margin: 0 auto; padding: 0 20px; }
header { display: flex; flex-wrap: wrap; align-items: baseline; gap: 4px 16px; padding-top: 28px; padding-bottom: 12px; }
h1 { margin: 0; font-size: 26px; letter-spacing: -0.02em; }
.tagline { color: var(--muted); }
.status { margin: 0 0 0 auto; color: var(--muted); font-size: 13px; display: flex; align-items: center; gap: 8px; }
.status::before { content: ""; width: 8px; height: 8px; border-radius: 50%; background: var(--muted); }
.status[data-state="live"]::before { background: var(--ok); box-shadow: 0 0 0 3px rgba(31, 157, 85, 0.2); }
.status[data-state="error"]::before { background: var(--bad); }
.status[data-state="auth"]::before { background: var(--warn); }
main { display: grid; grid-template-columns: minmax(0, 1fr); gap: 16px; padding-bottom: 40px; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 12px; padding: 16px 20px; }
h2 { margin: 0 0 8px; font-size: 13px; font-weight: 600; color: var(--muted); text-transform: uppercase; letter-spacing: 0.04em; }
.metrics { display: grid; grid-template-columns: repeat(auto-fit, minmax(180px, 1fr)); gap: 16px; }
.value { margin: 0; font-size: 32px; font-weight: 650; font-variant-numeric: tabular-nums; }
#chart { width: 100%; height: auto; display: block; }
#chart .bar { fill: var(--accent); }
#chart .bar:hover { opacity: 0.7; }
#chart .grid { stroke: var(--line); stroke-width: 1; }
#chart .axis { fill: var(--muted); font-size: 11px; font-variant-numeric: tabular-nums; }
.top-events { list-style: none; margin: 0; padding: 0; }
.top-events li { position: relative; display: flex; justify-content: space-between; gap: 12px; padding: 6px 10px; border-radius: 6px; }
.top-events .name, .top-events .count { position: relative; z-index: 1; }
.top-events .count { font-variant-numeric: tabular-nums; color: var(--muted); }
.top-events .share { position: absolute; inset: 0 auto 0 0; background: var(--accent-soft); border-radius: 6px; }
.muted { color: var(--muted); margin: 0; }
form { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 12px; border-color: var(--warn); }
form p { flex-basis: 100%; margin: 0; }
input, button { font: inherit; padding: 6px 10px; border-radius: 8px; border: 1px solid var(--line); background: var(--bg); color: var(--text); }
input { flex: 1; min-width: 220px; }
button { background: var(--accent); border-color: var(--accent); color: #fff; cursor: pointer; }
pre { margin: 0; padding: 12px; overflow-x: auto; background: var(--bg); border-radius: 8px; font-size: 13px; }
[hidden] { display: none !important; }
`;

const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light dark">
<title>Sluice · live events</title>
<style>${PAGE_STYLE}</style>
</head>
<body>
<header>
  <h1>Sluice</h1>
  <span class="tagline">events in, answers out</span>
  <p id="status" class="status" data-state="connecting" role="status" aria-live="polite"><span id="status-text">Connecting…</span></p>
</header>
<main>
  <form id="token-form" class="card" hidden>
    <p id="token-message"></p>
    <label for="token-input">Admin token</label>
    <input id="token-input" type="password" autocomplete="off" spellcheck="false">
    <button type="submit">Show statistics</button>
  </form>
  <section class="metrics">
    <div class="card"><h2>Total events</h2><p id="total" class="value">–</p></div>
    <div class="card"><h2>Rejected events</h2><p id="rejected" class="value">–</p></div>
    <div class="card"><h2>Events in the last minute</h2><p id="last-minute" class="value">–</p></div>
  </section>
  <section class="card">
    <h2>Events per minute, last 60 minutes</h2>
    <svg id="chart" viewBox="0 0 720 200" role="img" aria-label="Bar chart of events per minute over the last hour"></svg>
  </section>
  <section class="card">
    <h2>Top events</h2>
    <ol id="top-events" class="top-events"></ol>
    <p id="top-empty" class="muted">No events yet.</p>
  </section>
  <section class="card">
    <h2>Try a query</h2>
    <pre><code id="query-hint">curl -s -X POST http://HOST/v1/query -H 'Authorization: Bearer TOKEN' -d '{"sql":"select event, count(*) from events group by 1 order by 2 desc"}'</code></pre>
  </section>
</main>
<script>
${PAGE_HELPERS}
${PAGE_APP}
</script>
</body>
</html>
`;

export function renderHomePage(): string {
  return PAGE;
}
