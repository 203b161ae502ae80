/**
 * The browser app's bundle: `src/web/client/` (TypeScript, CodeMirror, ECharts) bundled by esbuild
 * into `dist/web-assets/` at build time (`npm run build`, which `npm ci` runs). A server started
 * from source rebuilds it when a client file is newer than the bundle, so tests and development
 * never serve a stale app.
 */
import { existsSync, readdirSync, statSync } from "node:fs";
import { mkdir, readFile, rename, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import { gzipSync } from "node:zlib";

const ROOT = resolve(import.meta.dirname, "..", "..");
export const CLIENT_DIR = join(ROOT, "src", "web", "client");
export const ASSETS_DIR = join(ROOT, "dist", "web-assets");
const OUTPUTS = ["main.js", "app.css"] as const;

export interface Asset {
  type: string;
  body: Buffer;
  gzip: Buffer;
}

/** Bundles the client into `dist/web-assets/` (each file replaced atomically). */
export async function buildWebAssets(): Promise<void> {
  const esbuild = await import("esbuild");
  const result = await esbuild.build({
    entryPoints: [join(CLIENT_DIR, "main.ts"), join(CLIENT_DIR, "app.css")],
    bundle: true,
    minify: true,
    format: "esm",
    target: "es2022",
    outdir: ASSETS_DIR,
    write: false,
    logLevel: "silent",
    legalComments: "none",
  });
  await mkdir(ASSETS_DIR, { recursive: true });
  for (const file of result.outputFiles) {
    const temporary = `${file.path}.${process.pid}.tmp`;
    await writeFile(temporary, file.contents);
    await rename(temporary, file.path);
  }
}

/** Whether the bundle is missing, or older than a client source file (when the sources are here). */
function stale(): boolean {
  const built = OUTPUTS.map((name) => join(ASSETS_DIR, name));
  if (!built.every((path) => existsSync(path))) return true;
  if (!existsSync(CLIENT_DIR)) return false;
  const builtAt = Math.min(...built.map((path) => statSync(path).mtimeMs));
  const sources = [CLIENT_DIR, join(ROOT, "src", "web", "charts")];
  return sources.some((dir) =>
    readdirSync(dir).some(
      (name) => !name.endsWith(".test.ts") && statSync(join(dir, name)).mtimeMs > builtAt,
    ),
  );
}

let loading: Promise<Map<string, Asset>> | null = null;

/** The bundle's files by name, built first when missing or stale. */
export function webAssets(): Promise<Map<string, Asset>> {
  loading ??= (async () => {
    if (stale()) await buildWebAssets();
    const assets = new Map<string, Asset>();
    for (const name of OUTPUTS) {
      const body = await readFile(join(ASSETS_DIR, name));
      const type = name.endsWith(".js") ? "text/javascript; charset=utf-8" : "text/css; charset=utf-8";
      assets.set(name, { type, body, gzip: gzipSync(body) });
    }
    return assets;
  })();
  loading.catch(() => {
    loading = null;
  });
  return loading;
}
