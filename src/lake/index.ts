export { fsyncPath } from "../bus/index.js";
export { type CompactionResult, Compactor, type CompactorOptions } from "./compactor.js";
export { Loader, type LoaderOptions, type LoaderStatus } from "./loader.js";
export { LakeProcess, type LakeStatus, waitUntilGone } from "./process.js";
export { adoptFiles, writeParquet } from "./writer.js";
