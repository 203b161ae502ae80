/**
 * The actions of the PII policy on values, and a source's rules compiled into one function per
 * event. Nested values are changed copy-on-write: protocols may share one object between events of
 * a batch (a batch-level context), and an event is never obfuscated twice.
 */
import { createHmac } from "node:crypto";
import { truncateIp } from "../collect/fields.js";
import type { CanonicalEvent } from "../collect/model.js";
import { JSON_COLUMNS, type PiiAction, type PiiRules } from "./policy.js";

/** Tokens carry a prefix so that a token is recognised (and never hashed again by retention). */
export const TOKEN_PREFIX = "pii_";
/** 128 bits of the HMAC: ample against collisions, half the width of the full digest. */
const TOKEN_HEX_CHARS = 32;

/** HMAC-SHA256 of the text under the secret: the same input always gives the same token. */
export function piiToken(secret: string, text: string): string {
  return TOKEN_PREFIX + createHmac("sha256", secret).update(text).digest("hex").slice(0, TOKEN_HEX_CHARS);
}

export function isToken(value: string): boolean {
  return value.length === TOKEN_PREFIX.length + TOKEN_HEX_CHARS && value.startsWith(TOKEN_PREFIX);
}

/** An email keeps its domain (`***@example.com`); anything with 4+ digits keeps its last 4 (`***0958`). */
export function maskValue(text: string): string {
  const at = text.lastIndexOf("@");
  if (at >= 0) return `***${text.slice(at)}`;
  const digits = text.replace(/\D/g, "");
  return digits.length >= 4 ? `***${digits.slice(-4)}` : "***";
}

/** What an action makes of a value; DROP removes the key (or nulls the column). */
export const DROP = Symbol("drop");
type Transform = (value: unknown) => unknown;

export function transformFor(action: Exclude<PiiAction, "keep">, secret: string): Transform {
  switch (action) {
    case "hash": {
      const tokens = new TokenCache(secret);
      return (value) => (typeof value === "string" && isToken(value) ? value : tokens.token(textOf(value)));
    }
    case "mask":
      return (value) => maskValue(textOf(value));
    case "truncate_ip":
      return (value) => (typeof value === "string" ? truncateIp(value) : null);
    case "drop":
      return () => DROP;
  }
}

/**
 * Tokens of recently seen values: the same people identify again and again, and an HMAC costs a few
 * microseconds. Two generations of at most 4096 entries each, so memory stays bounded.
 */
class TokenCache {
  #current = new Map<string, string>();
  #previous = new Map<string, string>();

  constructor(private readonly secret: string) {}

  token(text: string): string {
    let token = this.#current.get(text);
    if (token !== undefined) return token;
    token = this.#previous.get(text) ?? piiToken(this.secret, text);
    if (this.#current.size >= 4096) {
      this.#previous = this.#current;
      this.#current = new Map();
    }
    this.#current.set(text, token);
    return token;
  }
}

function textOf(value: unknown): string {
  return typeof value === "string" ? value : JSON.stringify(value);
}

/** A node of the compiled rules inside a JSON column: a transform for this key, or rules below it. */
interface KeyRule {
  key: string;
  transform?: Transform;
  children?: KeyRule[];
}

/** One source's rules as a function that obfuscates an event in place; null when there are none. */
export function compileRules(rules: PiiRules, secret: string): ((event: CanonicalEvent) => void) | null {
  const steps: ((event: CanonicalEvent) => void)[] = [];
  const trees = new Map<string, KeyRule[]>();
  for (const [path, action] of Object.entries(rules)) {
    if (action === "keep") continue;
    const transform = transformFor(action, secret);
    const [column, ...keys] = path.split(".") as [keyof CanonicalEvent, ...string[]];
    if (keys.length === 0) {
      steps.push(columnStep(column, transform));
      continue;
    }
    const roots = trees.get(column) ?? [];
    trees.set(column, roots);
    insertRule(roots, keys, transform);
  }
  for (const [column, roots] of trees) {
    const name = column as "properties" | "context" | "traits";
    steps.push((event) => {
      const value = event[name];
      if (value !== null && value !== undefined) event[name] = applyRules(value, roots);
    });
  }
  if (steps.length === 0) return null;
  return (event) => {
    for (const step of steps) step(event);
  };
}

function columnStep(column: keyof CanonicalEvent, transform: Transform): (event: CanonicalEvent) => void {
  const isJson = JSON_COLUMNS.has(column);
  const row = (event: CanonicalEvent) => event as unknown as Record<string, unknown>;
  return (event) => {
    const value = row(event)[column];
    if (value === null || value === undefined) return;
    const changed = transform(value);
    row(event)[column] = changed === DROP || (isJson && typeof changed !== "object") ? null : changed;
  };
}

function insertRule(level: KeyRule[], keys: string[], transform: Transform): void {
  const [key, ...rest] = keys as [string, ...string[]];
  let node = level.find((rule) => rule.key === key);
  if (node === undefined) {
    node = { key };
    level.push(node);
  }
  if (rest.length === 0) {
    node.transform = transform;
    return;
  }
  node.children ??= [];
  insertRule(node.children, rest, transform);
}

/** The object with the rules applied: itself when nothing applied, else a changed shallow copy. */
function applyRules(container: Record<string, unknown>, rules: KeyRule[]): Record<string, unknown> {
  let copy: Record<string, unknown> | null = null;
  for (const rule of rules) {
    const value = container[rule.key];
    if (value === undefined) continue;
    let changed: unknown = value;
    if (rule.transform !== undefined) {
      if (value !== null) changed = transformLeaf(value, rule.transform);
    } else if (rule.children !== undefined) {
      changed = applyBelow(value, rule.children);
    }
    if (changed === value) continue;
    copy ??= { ...container };
    if (changed === DROP) delete copy[rule.key];
    else copy[rule.key] = changed;
  }
  return copy ?? container;
}

/** A list of values (`emails: [...]`) is changed value by value, so each hashes as it would alone. */
function transformLeaf(value: unknown, transform: Transform): unknown {
  if (!Array.isArray(value)) return transform(value);
  const changed = value.map((item) => (item === null ? null : transform(item)));
  return changed.includes(DROP) ? DROP : changed;
}

/**
 * The rules applied below a key: inside an object, or inside each object of an array (Snowplow's
 * context entities, a list of products), so that a path names a key in every element.
 */
function applyBelow(value: unknown, rules: KeyRule[]): unknown {
  if (isRecord(value)) return applyRules(value, rules);
  if (!Array.isArray(value)) return value;
  let copy: unknown[] | null = null;
  for (let index = 0; index < value.length; index++) {
    const changed = applyBelow(value[index], rules);
    if (changed === value[index]) continue;
    copy ??= [...value];
    copy[index] = changed;
  }
  return copy ?? value;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
