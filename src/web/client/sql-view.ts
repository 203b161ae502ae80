/** The SQL editor: run with Ctrl+Enter, results grid, CSV download, history, errors pointing at their spot. */
import { EditorSelection } from "@codemirror/state";
import { ApiError, api, latestOnly, type QueryResult } from "./api.js";
import { h } from "./dom.js";
import { errorOffset, sqlEditor } from "./editor.js";
import type { Cleanup, ViewContext } from "./main.js";
import { resultsGrid } from "./render.js";

const DRAFT_KEY = "sluice.sql.draft";
const DEFAULT_SQL =
  "select event, count(*) as events\nfrom events\nwhere ts >= now() - interval 7 day\ngroup by 1\norder by 2 desc";

interface HistoryEntry {
  id: number;
  sql: string;
  ok: boolean;
  ms: number;
  rows: number | null;
  error: string | null;
  at: string;
}

export async function sqlView({ main, query, navigate }: ViewContext): Promise<Cleanup> {
  const output = h("div.results");
  const status = h("span.status");
  const historyList = h("ol.history");
  const editorHost = h("div.editor");
  const initial = query.get("sql") ?? localStorage.getItem(DRAFT_KEY) ?? DEFAULT_SQL;
  const latest = latestOnly();
  const run = async () => {
    const text = editor.state.doc.toString();
    status.textContent = "Running…";
    output.replaceChildren();
    const started = performance.now();
    try {
      const result = await latest(api<QueryResult>("POST", "/v1/query", { sql: text }));
      const ms = Math.round(performance.now() - started);
      status.textContent = `${result.rows.length.toLocaleString()} rows${result.truncated ? " (cut; download CSV for all)" : ""} in ${ms} ms`;
      output.append(resultsGrid(result));
    } catch (error) {
      status.textContent = "";
      const message = (error as Error).message;
      output.append(h("pre.error", { role: "alert" }, message));
      const offset = error instanceof ApiError ? errorOffset(message, text) : null;
      if (offset !== null) {
        editor.dispatch({ selection: EditorSelection.cursor(offset), scrollIntoView: true });
        editor.focus();
      }
    }
    void loadHistory();
  };
  const editor = sqlEditor(
    editorHost,
    initial,
    () => void run(),
    (text) => localStorage.setItem(DRAFT_KEY, text),
  );

  const downloadCsv = async () => {
    const response = await fetch("/v1/query", {
      method: "POST",
      headers: { "content-type": "application/json", "x-sluice-csrf": "1" },
      body: JSON.stringify({ sql: editor.state.doc.toString(), format: "csv" }),
    });
    if (!response.ok) {
      output.replaceChildren(
        h("pre.error", { role: "alert" }, ((await response.json()) as { error: string }).error),
      );
      return;
    }
    const url = URL.createObjectURL(await response.blob());
    const link = h("a", { href: url, download: "result.csv" });
    document.body.append(link);
    link.click();
    link.remove();
    URL.revokeObjectURL(url);
  };

  const loadHistory = async () => {
    const { history } = await api<{ history: HistoryEntry[] }>("GET", "/v1/history");
    historyList.replaceChildren(
      ...history.map((entry) =>
        h(
          "li",
          {
            className: entry.ok ? "" : "failed",
            title: entry.error ?? `${entry.rows} rows in ${entry.ms} ms, ${entry.at}`,
            onclick: () =>
              editor.dispatch({ changes: { from: 0, to: editor.state.doc.length, insert: entry.sql } }),
          },
          entry.sql.length > 140 ? `${entry.sql.slice(0, 140)}…` : entry.sql,
        ),
      ),
    );
  };

  main.append(
    h(
      "div.sql-page",
      null,
      h(
        "section",
        null,
        h("h1", null, "SQL"),
        editorHost,
        h(
          "div.toolbar",
          null,
          h(
            "button.primary#run",
            { onclick: () => void run(), title: "Ctrl+Enter" },
            "Run ",
            h("kbd", null, "Ctrl+Enter"),
          ),
          h("button#csv", { onclick: () => void downloadCsv() }, "Download CSV"),
          h(
            "button#to-chart",
            { onclick: () => navigate(`/charts/new?sql=${encodeURIComponent(editor.state.doc.toString())}`) },
            "Make a chart",
          ),
          status,
        ),
        output,
      ),
      h("aside", null, h("h2", null, "History"), historyList),
    ),
  );
  editor.focus();
  void loadHistory();
  return () => editor.destroy();
}
