/**
 * Event schemas: JSON Schemas registered for event names (`Order Completed`) and for Snowplow
 * iglu URIs (`iglu:com.acme/checkout/jsonschema/1-0-0`). A track event's properties (a Snowplow
 * self-describing event's data) are validated against the schema of its name or URI before the
 * event is stored, and so is the data of each Snowplow context entity whose URI has a schema; one
 * that fails is refused with the schema's exact complaint and quarantined in `events_rejected`,
 * never written to `events`. Events without a schema are accepted, unless their source is strict
 * (`strict_sources`).
 *
 * The registry is shared with the collector's worker threads like the PII policy (see
 * shared-settings.ts); each thread compiles a schema (ajv) the first time it needs it.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import addFormats from "ajv-formats";
import { type Arrival, Invalid } from "./fields.js";
import type { CanonicalEvent } from "./model.js";
import { type SharedHandle, SharedSettings, sharedReader } from "./shared-settings.js";

export interface EventSchema {
  /** The event name, or the iglu URI of a self-describing schema. */
  key: string;
  schema: Record<string, unknown>;
  addedAt: string;
}

export interface SchemaSettings {
  schemas: EventSchema[];
  /** Sources that accept only events with a registered schema. */
  strictSources: string[];
}

export class SchemaError extends Error {}

const IGLU_VERSION = /^\d+-\d+-\d+$/;

/**
 * The schema as ajv takes it: Snowplow schemas name Iglu's self-describing meta-schema in
 * `$schema`, which ajv does not know; they are JSON Schema draft 4 otherwise.
 */
function compilable(schema: object): object {
  const { $schema, ...rest } = schema as { $schema?: unknown };
  return typeof $schema === "string" && $schema.includes("iglucentral.com") ? rest : schema;
}

/** A fresh validator: every error reported, formats (email, date-time, …) checked. */
function newAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, strict: false });
  addFormats.default(ajv);
  return ajv;
}

/**
 * The key a schema is registered under: its iglu URI when it describes itself (`self` with
 * vendor, name, format and version), else `event`. Throws SchemaError when it has neither, or is
 * not a JSON Schema ajv can compile.
 */
export function schemaKey(schema: unknown, event?: string): string {
  if (schema === null || typeof schema !== "object" || Array.isArray(schema)) {
    throw new SchemaError("a schema must be a JSON object (a JSON Schema)");
  }
  try {
    newAjv().compile(compilable(schema));
  } catch (error) {
    throw new SchemaError(`not a valid JSON Schema: ${(error as Error).message}`);
  }
  const self = (schema as { self?: Record<string, unknown> }).self;
  if (event !== undefined && event.trim() !== "") return event.trim();
  if (self && typeof self === "object") {
    const { vendor, name, format, version } = self;
    if (
      typeof vendor !== "string" ||
      typeof name !== "string" ||
      typeof format !== "string" ||
      typeof version !== "string" ||
      !IGLU_VERSION.test(version)
    ) {
      throw new SchemaError('"self" must have string vendor, name, format and a version like 1-0-0');
    }
    return `iglu:${vendor}/${name}/${format}/${version}`;
  }
  throw new SchemaError(
    'name the event the schema is for (--event NAME), or give the schema a Snowplow "self"',
  );
}

/** The registry as one thread sees it, compiling each schema when first used. */
export class SchemaCheck {
  readonly #schemas: Map<string, Record<string, unknown>>;
  readonly #strict: Set<string>;
  readonly #compiled = new Map<string, ValidateFunction>();
  #ajv: Ajv | null = null;

  constructor(settings: SchemaSettings) {
    this.#schemas = new Map(settings.schemas.map((entry) => [entry.key, entry.schema]));
    this.#strict = new Set(settings.strictSources);
  }

  /**
   * Null when the event may be stored; else the field (under `at`) and reason it is refused for.
   * `key` names the schema: the event's name, or a self-describing event's iglu URI.
   */
  problem(event: CanonicalEvent, key: string, source: string, at: string): Invalid | null {
    if (event.event_type !== "track") return null;
    const schema = this.#schemas.get(key);
    if (schema === undefined) {
      return this.#strict.has(source)
        ? new Invalid(
            `${at}event`,
            `No schema is registered for event "${key}", and source ${source} accepts only events with one.`,
          )
        : null;
    }
    const errors = this.#errors(key, schema, event.properties ?? {});
    if (errors === null) return null;
    return new Invalid(
      `${at}properties${firstPath(errors)}`,
      `Event "${event.event}" does not match its schema ${key}: ${described("properties", errors)}.`,
    );
  }

  /**
   * Null when a Snowplow context entity may be stored: its schema is not registered (Snowplow's
   * own entities, such as web_page, need none, even for a strict source) or its data match it.
   * Else the field (`at` is the entity's, e.g. `data[0].cx[1].`) and reason the event is refused for.
   */
  entityProblem(
    entity: { schema: string; data?: unknown },
    event: CanonicalEvent,
    at: string,
  ): Invalid | null {
    const schema = this.#schemas.get(entity.schema);
    if (schema === undefined) return null;
    const errors = this.#errors(entity.schema, schema, entity.data ?? {});
    if (errors === null) return null;
    const name = event.event ?? event.event_type;
    return new Invalid(
      `${at}data${firstPath(errors)}`,
      `Context ${entity.schema} of event "${name}" does not match its schema: ${described("data", errors)}.`,
    );
  }

  /** Null when `value` matches the schema of `key`; else every complaint (ajv's). */
  #errors(key: string, schema: Record<string, unknown>, value: unknown): ErrorObject[] | null {
    let validate = this.#compiled.get(key);
    if (validate === undefined) {
      this.#ajv ??= newAjv();
      validate = this.#ajv.compile(compilable(schema));
      this.#compiled.set(key, validate);
    }
    return validate(value) ? null : (validate.errors ?? []);
  }
}

/** ".path.to" of the first complaint's value, "" for the whole value. */
function firstPath(errors: ErrorObject[]): string {
  const path = (errors[0]?.instancePath ?? "").split("/").filter(Boolean).join(".");
  return path === "" ? "" : `.${path}`;
}

/** Every complaint, its value named from `root`: "properties.revenue must be >= 0; …". */
function described(root: string, errors: ErrorObject[]): string {
  return errors
    .map((error) => `${[root, ...error.instancePath.split("/").filter(Boolean)].join(".")} ${error.message}`)
    .join("; ");
}

/** The registry in shared memory. */
export class SchemaCell extends SharedSettings<SchemaSettings> {
  constructor(settings: SchemaSettings) {
    super(settings, { capacityBytes: 8 * 1024 * 1024, what: "the event schemas" });
  }
}

/**
 * The registry of a cell, from any thread; rebuilt only after a change. Undefined when there is
 * nothing to check (no schema, no strict source): events then pay nothing for schemas.
 */
export const schemaCheck: (handle: SharedHandle) => SchemaCheck | undefined = sharedReader(
  (settings: SchemaSettings) =>
    settings.schemas.length === 0 && settings.strictSources.length === 0
      ? undefined
      : new SchemaCheck(settings),
);

/**
 * An event the schemas accept, or the Invalid that refuses it; an Invalid passes through. The
 * schema is the one of `key` when given (a protocol's own schema URI), else of the event's name:
 * never one the client names in its context, or any event could claim another's schema.
 */
export function withSchema(
  result: CanonicalEvent | Invalid,
  arrival: Arrival,
  at: string,
  key?: string,
): CanonicalEvent | Invalid {
  if (result instanceof Invalid || arrival.schemas === undefined) return result;
  return arrival.schemas.problem(result, key ?? result.event ?? "", arrival.source, at) ?? result;
}
