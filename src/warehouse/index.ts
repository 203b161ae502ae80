export { createEngine, type EngineOptions, sqlIdent, sqlString } from "./engine.js";
export { QueryError, type QueryResult, Warehouse, type WarehouseOptions } from "./warehouse.js";
