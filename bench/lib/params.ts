/**
 * Benchmark parameters: each one has a default and can be set by a flag
 * (`--events 1000000`, `--events=1m`) or an environment variable (`BENCH_EVENTS=1m`).
 * Flags win over the environment. Numbers accept `_` separators and k/m suffixes.
 */

export interface ParamSpec {
  default: number | string | boolean;
  help: string;
}

export type ParamSpecs = Record<string, ParamSpec>;

/** The parsed values, typed after the defaults. */
export type ParamValues<S extends ParamSpecs> = {
  [K in keyof S]: S[K]["default"] extends number
    ? number
    : S[K]["default"] extends boolean
      ? boolean
      : string;
};

export class UsageError extends Error {}

export function parseParams<S extends ParamSpecs>(
  specs: S,
  argv: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
): ParamValues<S> {
  const raw = new Map<string, string>();
  for (const name of Object.keys(specs)) {
    const fromEnv = env[envName(name)];
    if (fromEnv !== undefined && fromEnv !== "") raw.set(name, fromEnv);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? "";
    const match = /^--([a-z0-9-]+)(?:=(.*))?$/.exec(arg);
    if (!match?.[1]) throw new UsageError(`unexpected argument "${arg}"`);
    const name = match[1];
    const spec = specs[name];
    if (!spec) throw new UsageError(`unknown flag --${name}`);
    if (match[2] !== undefined) {
      raw.set(name, match[2]);
    } else if (typeof spec.default === "boolean") {
      raw.set(name, "true");
    } else {
      const value = argv[++i];
      if (value === undefined) throw new UsageError(`flag --${name} needs a value`);
      raw.set(name, value);
    }
  }
  const values: Record<string, number | string | boolean> = {};
  for (const [name, spec] of Object.entries(specs)) {
    const text = raw.get(name);
    values[name] = text === undefined ? spec.default : coerce(name, spec.default, text);
  }
  return values as ParamValues<S>;
}

function coerce(name: string, example: number | string | boolean, text: string): number | string | boolean {
  if (typeof example === "boolean") {
    const lower = text.trim().toLowerCase();
    if (["1", "true", "yes", "on"].includes(lower)) return true;
    if (["0", "false", "no", "off"].includes(lower)) return false;
    throw new UsageError(`--${name} must be true or false`);
  }
  if (typeof example === "number") {
    const match = /^(-?[\d_.]+(?:e\d+)?)([km]?)$/i.exec(text.trim());
    const scale = { "": 1, k: 1_000, m: 1_000_000 }[(match?.[2] ?? "").toLowerCase()] ?? 1;
    const number = match?.[1] ? Number(match[1].replaceAll("_", "")) * scale : Number.NaN;
    if (!Number.isFinite(number) || number < 0)
      throw new UsageError(`--${name} must be a non-negative number`);
    return number;
  }
  return text;
}

export const envName = (name: string): string => `BENCH_${name.toUpperCase().replaceAll("-", "_")}`;

/** Usage lines for a set of parameters. */
export function describeParams(specs: ParamSpecs): string {
  return Object.entries(specs)
    .map(([name, spec]) => {
      const flag = typeof spec.default === "boolean" ? `--${name}` : `--${name} <${typeof spec.default}>`;
      const shown = spec.default === "" ? "" : ` (default ${spec.default})`;
      return `    ${flag.padEnd(30)} ${spec.help}${shown}  [env ${envName(name)}]`;
    })
    .join("\n");
}

/** The values as flags, for the report: what to type to reproduce the run. */
export function formatParams(values: Record<string, number | string | boolean>): string {
  return Object.entries(values)
    .filter(([, value]) => value !== "" && value !== false)
    .map(([name, value]) => (value === true ? `--${name}` : `--${name} ${value}`))
    .join(" ");
}
