/**
 * The one HTML page of the browser app: it loads the bundle, which draws every view and talks
 * only to the HTTP API. Every app path answers with it, so links and reloads work.
 */

/** Paths the browser app handles (Fastify route syntax). */
export const APP_PAGES = [
  "/",
  "/signin",
  "/sql",
  "/explore",
  "/funnels",
  "/retention",
  "/charts",
  "/charts/new",
  "/charts/:id",
  "/dashboards",
  "/dashboards/:id",
  "/catalog",
  "/live",
  "/users",
  "/settings",
];

/** The tab's icon, inline: a browser asks for /favicon.ico otherwise, and gets a 404 in its console. */
const ICON = `<link rel="icon" href="data:image/svg+xml,${encodeURIComponent(
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><rect width="16" height="16" rx="3" fill="#0f172a"/><path d="M3 11h10M3 7.5h7M3 4h4" stroke="#60a5fa" stroke-width="2" stroke-linecap="round"/></svg>',
)}">`;

export function renderShell(): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sluice</title>
${ICON}
<link rel="stylesheet" href="/assets/app.css">
</head>
<body>
<div id="app"><p class="loading">Loading…</p></div>
<script type="module" src="/assets/main.js"></script>
</body>
</html>
`;
}

/** The page a one-time link opens: one button that signs in (a POST), with no script. */
export function renderLinkPage(username: string): string {
  const name = username.replace(/[<>&"']/g, (char) => `&#${char.charCodeAt(0)};`);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in to Sluice</title>
${ICON}
<link rel="stylesheet" href="/assets/app.css">
</head>
<body>
<div class="signin">
<h1>Sluice</h1>
<p>This one-time link signs you in as <strong>${name}</strong>.</p>
<form method="post"><button class="primary" id="continue" type="submit">Continue as ${name}</button></form>
</div>
</body>
</html>
`;
}
