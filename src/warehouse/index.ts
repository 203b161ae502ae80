export { createEngine, type EngineOptions, sqlIdent, sqlString } from "./engine.js";
export { type QueryResult, QueryError, Warehouse, type WarehouseOptions } from "./warehouse.js";
