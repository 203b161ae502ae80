/** The SQL editor: CodeMirror 6 with SQL highlighting, table and column completion, Ctrl+Enter to run. */
import { sql } from "@codemirror/lang-sql";
import { Compartment, Prec } from "@codemirror/state";
import { keymap } from "@codemirror/view";
import { basicSetup, EditorView } from "codemirror";
import { api } from "./api.js";

export interface CatalogTable {
  name: string;
  rows: number;
  bytes: number;
  files: number;
  freshness: string | null;
  partitionedBy: string | null;
  columns: { name: string; type: string; description: string | null }[];
}

let catalog: Promise<CatalogTable[]> | null = null;

/** The catalog, fetched once per page load. */
export function catalogTables(): Promise<CatalogTable[]> {
  catalog ??= api<{ tables: CatalogTable[] }>("GET", "/v1/catalog").then((body) => body.tables);
  return catalog;
}

export function sqlEditor(
  parent: HTMLElement,
  doc: string,
  run: () => void,
  onChange?: (text: string) => void,
): EditorView {
  const language = new Compartment();
  const runAndStop = () => {
    run();
    return true;
  };
  const view = new EditorView({
    doc,
    parent,
    extensions: [
      Prec.highest(
        keymap.of([
          { key: "Mod-Enter", run: runAndStop },
          { key: "Shift-Enter", run: runAndStop },
        ]),
      ),
      basicSetup,
      language.of(sql()),
      EditorView.lineWrapping,
      EditorView.updateListener.of((update) => {
        if (update.docChanged) onChange?.(update.state.doc.toString());
      }),
    ],
  });
  // Tables and their columns complete once the catalog is here.
  catalogTables()
    .then((tables) => {
      const schema: Record<string, string[]> = {};
      for (const table of tables) schema[table.name] = table.columns.map((column) => column.name);
      view.dispatch({ effects: language.reconfigure(sql({ schema })) });
    })
    .catch(() => {});
  return view;
}

/**
 * Where DuckDB says an error is: its message has the statement line ("LINE 2: select …") and a
 * caret under the spot. Returns the offset in `text`, or null.
 */
export function errorOffset(message: string, text: string): number | null {
  const match = /LINE (\d+): (.*)\n(\s*)\^/.exec(message);
  if (!match) return null;
  const lineNumber = Number(match[1]);
  const shown = match[2] as string;
  const caret = (match[3] as string).length - "LINE ".length - String(lineNumber).length - 2;
  const lines = text.split("\n");
  const line = lines[lineNumber - 1];
  if (line === undefined) return null;
  // DuckDB may show an excerpt of a long line ("..." first); find it in the line.
  const excerpt = shown.replace(/^\.\.\./, "").replace(/\.\.\.$/, "");
  const start = Math.max(0, line.indexOf(excerpt.slice(0, 20)));
  const column = shown.startsWith("...") ? start + caret - 3 : caret;
  const before = lines.slice(0, lineNumber - 1).reduce((sum, one) => sum + one.length + 1, 0);
  return before + Math.max(0, Math.min(column, line.length));
}
