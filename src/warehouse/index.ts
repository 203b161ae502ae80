export { ARROW_STREAM_TYPE, ArrowStreamEncoder } from "./arrow.js";
export { createEngine, type EngineOptions, sqlIdent, sqlString, truncateUtc } from "./engine.js";
export type { Node as ParseNode, ParseTree, Restriction } from "./restrict.js";
export { csvLine, valueText } from "./text.js";
export {
  AccessError,
  type AccessOptions,
  QueryError,
  type QueryResult,
  QueryTimeout,
  type ResultColumn,
  type RowsOptions,
  type RowsResult,
  type StatementDescription,
  Warehouse,
  type WarehouseOptions,
} from "./warehouse.js";
