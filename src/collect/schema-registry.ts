/**
 * The event schemas of a data dir: `<data-dir>/schemas.json`, changed by `sluice schemas` and
 * the HTTP API. The server reads the file again when it changes (checked every 2 s), so a schema
 * added from the CLI applies to a running server too.
 */
import { existsSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { type EventSchema, SchemaCell, SchemaError, type SchemaSettings, schemaKey } from "./schemas.js";

export const schemasPath = (dataDir: string): string => join(dataDir, "schemas.json");

export class SchemaRegistry {
  readonly cell: SchemaCell;
  readonly #path: string;
  readonly #strictSources: string[];
  #modifiedMs = 0;

  constructor(dataDir: string, strictSources: string[] = []) {
    this.#path = schemasPath(dataDir);
    this.#strictSources = strictSources;
    this.cell = new SchemaCell(this.#settings(this.#read()));
  }

  list(): EventSchema[] {
    return this.cell.get().schemas;
  }

  /** Registers (or replaces) a schema; throws SchemaError when it is not one. */
  add(schema: unknown, event?: string): { schema: EventSchema; replaced: boolean } {
    const key = schemaKey(schema, event);
    const schemas = this.#read();
    const entry: EventSchema = {
      key,
      schema: schema as Record<string, unknown>,
      addedAt: new Date().toISOString(),
    };
    const replaced = schemas.some((existing) => existing.key === key);
    this.#write([...schemas.filter((existing) => existing.key !== key), entry]);
    return { schema: entry, replaced };
  }

  /** Removes the schema of `key`; false when there is none. */
  remove(key: string): boolean {
    const schemas = this.#read();
    const kept = schemas.filter((existing) => existing.key !== key);
    if (kept.length === schemas.length) return false;
    this.#write(kept);
    return true;
  }

  /** Takes in changes another process made to the file. */
  reloadIfChanged(): void {
    const modified = existsSync(this.#path) ? statSync(this.#path).mtimeMs : 0;
    if (modified !== this.#modifiedMs) this.cell.set(this.#settings(this.#read()));
  }

  #settings(schemas: EventSchema[]): SchemaSettings {
    return { schemas, strictSources: this.#strictSources };
  }

  #read(): EventSchema[] {
    if (!existsSync(this.#path)) {
      this.#modifiedMs = 0;
      return [];
    }
    this.#modifiedMs = statSync(this.#path).mtimeMs;
    try {
      return (JSON.parse(readFileSync(this.#path, "utf8")) as { schemas: EventSchema[] }).schemas;
    } catch (error) {
      throw new SchemaError(`${this.#path} is not a schema registry: ${(error as Error).message}`);
    }
  }

  /** Replaces the file whole (write, then rename), so no reader sees half of it. */
  #write(schemas: EventSchema[]): void {
    const temporary = `${this.#path}.${process.pid}.tmp`;
    writeFileSync(temporary, `${JSON.stringify({ schemas }, null, 2)}\n`);
    renameSync(temporary, this.#path);
    this.#modifiedMs = statSync(this.#path).mtimeMs;
    this.cell.set(this.#settings(schemas));
  }
}
