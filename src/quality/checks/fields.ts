/** Typed reading of one check's YAML mapping, with errors that name the field. */

/** A malformed check: the project loader adds the file and which check. */
export class CheckSpecError extends Error {}

export class Fields {
  readonly #raw: Record<string, unknown>;
  readonly #read = new Set<string>();

  constructor(raw: Record<string, unknown>) {
    this.#raw = raw;
  }

  has(key: string): boolean {
    return this.#raw[key] !== undefined && this.#raw[key] !== null;
  }

  string(key: string): string | undefined {
    const value = this.#take(key);
    if (value === undefined) return undefined;
    if (typeof value !== "string" || value.trim() === "")
      throw new CheckSpecError(`${key} must be a non-empty text`);
    return value;
  }

  requiredString(key: string, hint = ""): string {
    const value = this.string(key);
    if (value === undefined) throw new CheckSpecError(`${key} is required${hint ? ` (${hint})` : ""}`);
    return value;
  }

  number(key: string, options: { min?: number; integer?: boolean } = {}): number | undefined {
    const value = this.#take(key);
    if (value === undefined) return undefined;
    if (typeof value !== "number" || !Number.isFinite(value))
      throw new CheckSpecError(`${key} must be a number`);
    if (options.integer && !Number.isInteger(value))
      throw new CheckSpecError(`${key} must be a whole number`);
    if (options.min !== undefined && value < options.min)
      throw new CheckSpecError(`${key} must be at least ${options.min}`);
    return value;
  }

  /** A number, or a text such as a date (`2026-01-01`) compared in the column's own type. */
  bound(key: string): number | string | undefined {
    const value = this.#take(key);
    if (value === undefined) return undefined;
    if (typeof value === "number" && Number.isFinite(value)) return value;
    if (typeof value === "string" && value.trim() !== "") return value;
    if (value instanceof Date) return value.toISOString();
    throw new CheckSpecError(`${key} must be a number, or a date or time in quotes`);
  }

  /** A list of texts; a single text counts as a list of one. */
  strings(key: string): string[] | undefined {
    const value = this.#take(key);
    if (value === undefined) return undefined;
    const list = Array.isArray(value) ? value : [value];
    if (list.length === 0 || list.some((item) => typeof item !== "string" || item === ""))
      throw new CheckSpecError(`${key} must be a non-empty list of names`);
    return list as string[];
  }

  /** A list of scalar values (texts, numbers, booleans), compared as text. */
  values(key: string): string[] | undefined {
    const value = this.#take(key);
    if (value === undefined) return undefined;
    if (!Array.isArray(value) || value.length === 0)
      throw new CheckSpecError(`${key} must be a non-empty list of values`);
    return value.map((item) => {
      if (typeof item === "string" || typeof item === "number" || typeof item === "boolean")
        return String(item);
      throw new CheckSpecError(`${key} must list texts, numbers or booleans, not ${JSON.stringify(item)}`);
    });
  }

  /** A mapping of texts to texts (e.g. column → type). */
  stringMap(key: string): Record<string, string> | undefined {
    const value = this.#take(key);
    if (value === undefined) return undefined;
    if (typeof value !== "object" || value === null || Array.isArray(value))
      throw new CheckSpecError(`${key} must be a mapping of names to types`);
    for (const [name, type] of Object.entries(value)) {
      if (typeof type !== "string") throw new CheckSpecError(`${key}.${name} must be a type name`);
    }
    return value as Record<string, string>;
  }

  /** One of a few words. */
  choice<T extends string>(key: string, choices: readonly T[]): T | undefined {
    const value = this.#take(key);
    if (value === undefined) return undefined;
    if (typeof value !== "string" || !choices.includes(value as T))
      throw new CheckSpecError(`${key} must be one of ${choices.join(", ")}, not ${JSON.stringify(value)}`);
    return value as T;
  }

  /** A duration such as `90m`, `2h`, `1d` (or a number of minutes), in milliseconds. */
  duration(key: string): number | undefined {
    const value = this.#take(key);
    if (value === undefined) return undefined;
    const ms = typeof value === "number" ? value * 60_000 : parseDuration(String(value));
    if (ms === null || !(ms > 0)) throw new CheckSpecError(`${key} must be a duration such as 30m, 2h or 1d`);
    return ms;
  }

  /** Fails on any field no reader asked for (a typo must not silently disable a rule). */
  rejectUnknown(): void {
    const unknown = Object.keys(this.#raw).filter((key) => !this.#read.has(key));
    if (unknown.length > 0) {
      const names = unknown.map((key) => `"${key}"`).join(", ");
      throw new CheckSpecError(`unknown field${unknown.length === 1 ? "" : "s"} ${names}`);
    }
  }

  #take(key: string): unknown {
    this.#read.add(key);
    const value = this.#raw[key];
    return value === null ? undefined : value;
  }
}

const UNITS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };

/** `30s`, `15m`, `2h`, `1d`, `1w` → milliseconds; null when not a duration. */
export function parseDuration(text: string): number | null {
  const match = /^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$/i.exec(text);
  if (!match) return null;
  return Number(match[1]) * (UNITS[(match[2] as string).toLowerCase()] as number);
}
