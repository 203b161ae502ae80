/** `node dist/web/build.js`, run by `npm run build` (and so `npm ci`): bundles the browser app into dist/web-assets/. */
import { ASSETS_DIR, buildWebAssets } from "./assets.js";

await buildWebAssets();
console.log(`web app bundled into ${ASSETS_DIR}`);
