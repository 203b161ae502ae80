/**
 * The first-party browser tracker served at `/sluice.js`. Its source is plain browser JavaScript
 * in `tracker/sluice.js`, served as written (no build step, no dependencies); it is read once, and
 * gzipped once for clients that accept it. The TypeScript build does not copy .js files, so when
 * running from dist/ the file is read from the source tree beside it.
 */
import { existsSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const BESIDE = new URL("./tracker/sluice.js", import.meta.url);
const IN_SOURCE_TREE = new URL("../../src/collect/tracker/sluice.js", import.meta.url);

function readTracker(): Buffer {
  const path = existsSync(fileURLToPath(BESIDE)) ? BESIDE : IN_SOURCE_TREE;
  return readFileSync(path);
}

const plain = readTracker();

export const TRACKER_SCRIPT: { readonly plain: Buffer; readonly gzip: Buffer } = {
  plain,
  gzip: gzipSync(plain, { level: 9 }),
};
