export * from "./catalog.js";
export { openSqliteCatalog } from "./sqlite.js";
