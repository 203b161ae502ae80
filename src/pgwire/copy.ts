/**
 * `COPY … TO STDOUT`, the way PostgreSQL clients export a result: psql's `\copy (query) to 'file'
 * csv header`, pg-copy-streams, psycopg's `cursor.copy()`, pgjdbc's CopyManager. The query (or the
 * table) runs through the warehouse like any SELECT, so the same read-only rules and roles apply;
 * the rows go back as PostgreSQL's text or CSV format, one CopyData message each. COPY FROM and
 * COPY to a server file or program are refused with the reason: tables change only through loads.
 */
import { identifierName, PgError } from "./statements.js";

export interface CopyOut {
  /** The SELECT whose rows are copied. */
  query: string;
  format: "text" | "csv";
  header: boolean;
  delimiter: string;
  /** How NULL is written. */
  nullText: string;
  quote: string;
  escape: string;
  /** CSV: columns whose non-null values are always quoted; "*" for all. */
  forceQuote: string[] | "*";
}

/** A COPY statement that cannot run here: 25006 read-only, 42501 not permitted, 42601 syntax, 0A000 not supported. */
export class CopyRefused extends PgError {
  constructor(message: string, code = "42601") {
    super(message, code);
  }
}

/** The COPY … TO STDOUT in `sql`, null when `sql` is not a COPY; throws CopyRefused for other COPYs. */
export function parseCopy(sql: string): CopyOut | null {
  const tokens = tokenize(sql.trim().replace(/;+\s*$/, ""));
  if (tokens[0]?.toLowerCase() !== "copy") return null;
  let at = 1;
  let query: string;
  const source = tokens[at] ?? "";
  if (source.startsWith("(")) {
    query = source.slice(1, -1).trim();
    at++;
  } else {
    if (source === "" || /^(to|from)$/i.test(source))
      throw new CopyRefused("COPY needs a table or a (query)");
    at++;
    const columns = tokens[at]?.startsWith("(") ? (tokens[at++] as string).slice(1, -1).trim() : "*";
    query = `SELECT ${columns} FROM ${source}`;
  }
  const direction = tokens[at++]?.toLowerCase();
  if (direction === "from") {
    throw new CopyRefused(
      "COPY FROM is not supported: tables change only through loads (sluice load, or POST /v1/tables/<table>/upload)",
      "25006",
    );
  }
  if (direction !== "to")
    throw new CopyRefused("COPY must be COPY (query) TO STDOUT or COPY table TO STDOUT");
  const target = tokens[at++]?.toLowerCase();
  if (target !== "stdout") {
    throw new CopyRefused(
      "COPY can only write to STDOUT here, never to a file or program on the server; in psql use \\copy to write a local file",
      "42501",
    );
  }
  return { query, ...copyOptions(tokens.slice(at)) };
}

/** The PostgreSQL text of each value (null for NULL) as one line of the COPY format, with its end of line. */
export function copyLine(
  values: readonly (string | null)[],
  copy: CopyOut,
  columns: readonly string[],
): string {
  const quoteAll = copy.forceQuote === "*";
  const fields = values.map((value, index) => {
    if (value === null) return copy.nullText;
    if (copy.format === "text") return escapeText(value, copy.delimiter);
    const forced = quoteAll || (copy.forceQuote as string[]).includes(columns[index] as string);
    return forced || needsQuotes(value, copy) ? quoteCsv(value, copy) : value;
  });
  return `${fields.join(copy.delimiter)}\n`;
}

/** The header line: the column names, quoted as values are where needed (FORCE_QUOTE is for values). */
export function copyHeader(columns: readonly string[], copy: CopyOut): string {
  return copyLine(columns, { ...copy, forceQuote: [] }, columns);
}

function copyOptions(tokens: string[]): Omit<CopyOut, "query"> {
  const options: Record<string, string | true> = {};
  let rest = tokens;
  if (rest[0]?.toLowerCase() === "with") rest = rest.slice(1);
  if (rest.length === 1 && rest[0]?.startsWith("(")) {
    // WITH (FORMAT csv, HEADER, DELIMITER ';', FORCE_QUOTE (a, b))
    for (const option of splitTopLevel((rest[0] as string).slice(1, -1))) {
      const [name, ...value] = tokenize(option);
      if (name === undefined) continue;
      options[name.toLowerCase()] = value.length === 0 ? true : value.join(" ");
    }
  } else {
    // The pre-9.0 syntax psql's \copy passes on: CSV HEADER DELIMITER [AS] ';' NULL [AS] '' …
    for (let index = 0; index < rest.length; index++) {
      const word = (rest[index] as string).toLowerCase();
      const takesValue = ["delimiter", "null", "quote", "escape", "encoding"].includes(word);
      if (word === "csv" || word === "binary") options.format = word;
      else if (word === "force" && rest[index + 1]?.toLowerCase() === "quote") {
        // FORCE QUOTE * | FORCE QUOTE a, b: the names run to the next option's keyword.
        const names: string[] = [];
        for (
          index += 2;
          index < rest.length && !LEGACY_KEYWORDS.has((rest[index] as string).toLowerCase());
          index++
        ) {
          names.push(rest[index] as string);
        }
        index--;
        options.force_quote = names.join(", ");
      } else if (takesValue) {
        if (rest[index + 1]?.toLowerCase() === "as") index++;
        options[word] = rest[++index] ?? "";
      } else options[word] = true;
    }
  }
  return resolveOptions(options);
}

/** The words that start an option in the pre-9.0 syntax. */
const LEGACY_KEYWORDS = new Set([
  "csv",
  "binary",
  "header",
  "delimiter",
  "null",
  "quote",
  "escape",
  "force",
  "encoding",
]);

function resolveOptions(options: Record<string, string | true>): Omit<CopyOut, "query"> {
  const format = String(unquote(options.format ?? "text")).toLowerCase();
  if (format === "binary")
    throw new CopyRefused("COPY in binary format is not supported; use FORMAT csv or text", "0A000");
  if (format !== "text" && format !== "csv") throw new CopyRefused(`COPY format "${format}" not recognized`);
  const csv = format === "csv";
  const known = new Set([
    "format",
    "header",
    "delimiter",
    "null",
    "quote",
    "escape",
    "force_quote",
    "encoding",
  ]);
  for (const name of Object.keys(options)) {
    if (!known.has(name))
      throw new CopyRefused(`COPY option "${name}" is not supported for COPY TO STDOUT`, "0A000");
  }
  const encoding = options.encoding === undefined ? "utf8" : unquote(options.encoding).toLowerCase();
  if (encoding.replace(/[-_]/g, "") !== "utf8") throw new CopyRefused("COPY writes UTF8 only", "0A000");
  const delimiter = oneCharacter(options, "delimiter", csv ? "," : "\t");
  const quote = oneCharacter(options, "quote", '"');
  const escapeChar = oneCharacter(options, "escape", quote);
  if (
    !csv &&
    (options.quote !== undefined || options.escape !== undefined || options.force_quote !== undefined)
  ) {
    throw new CopyRefused("COPY QUOTE, ESCAPE and FORCE_QUOTE are available only in CSV mode");
  }
  const header = options.header === undefined ? false : truthy(options.header);
  const forceQuote =
    options.force_quote === undefined
      ? []
      : options.force_quote === "*"
        ? "*"
        : splitTopLevel(String(options.force_quote).replace(/^\(|\)$/g, "")).map(identifierName);
  return {
    format: csv ? "csv" : "text",
    header,
    delimiter,
    nullText: options.null === undefined ? (csv ? "" : "\\N") : unquote(options.null),
    quote,
    escape: escapeChar,
    forceQuote,
  };
}

function oneCharacter(options: Record<string, string | true>, name: string, fallback: string): string {
  const value = options[name];
  if (value === undefined) return fallback;
  const text = value === true ? "" : unquote(value);
  if ([...text].length !== 1) throw new CopyRefused(`COPY ${name} must be a single one-byte character`);
  return text;
}

function truthy(value: string | true): boolean {
  if (value === true) return true;
  const word = unquote(value).toLowerCase();
  if (["true", "on", "1"].includes(word)) return true;
  if (["false", "off", "0"].includes(word)) return false;
  throw new CopyRefused(`COPY HEADER takes a Boolean value, not "${value}"`);
}

/** A quoted literal's text ('it''s', E'…' is not needed by clients here), or the word itself. */
function unquote(value: string | true): string {
  if (value === true) return "";
  if (value.startsWith("'") && value.endsWith("'")) return value.slice(1, -1).replaceAll("''", "'");
  if (value.startsWith('"') && value.endsWith('"')) return value.slice(1, -1).replaceAll('""', '"');
  return value;
}

/** PostgreSQL's text format: backslash escapes for the characters that would break a line. */
function escapeText(value: string, delimiter: string): string {
  let out = "";
  for (const char of value) {
    if (char === "\\") out += "\\\\";
    else if (char === "\n") out += "\\n";
    else if (char === "\r") out += "\\r";
    else if (char === "\t") out += "\\t";
    else if (char === delimiter) out += `\\${char}`;
    else out += char;
  }
  return out;
}

function needsQuotes(value: string, copy: CopyOut): boolean {
  return (
    value === copy.nullText ||
    value === "\\." ||
    value.includes(copy.delimiter) ||
    value.includes(copy.quote) ||
    value.includes(copy.escape) ||
    value.includes("\n") ||
    value.includes("\r")
  );
}

function quoteCsv(value: string, copy: CopyOut): string {
  let out = copy.quote;
  for (const char of value) {
    if (char === copy.quote || char === copy.escape) out += copy.escape;
    out += char;
  }
  return out + copy.quote;
}

/**
 * Words, 'literals', "names" and (parenthesised groups) of a statement, outside comments; a group
 * is one token with its parentheses, nested ones and literals inside it kept as written.
 */
function tokenize(text: string): string[] {
  const tokens: string[] = [];
  let index = 0;
  while (index < text.length) {
    const char = text[index] as string;
    if (/\s|,/.test(char)) {
      index++;
    } else if (text.startsWith("--", index)) {
      const end = text.indexOf("\n", index);
      index = end === -1 ? text.length : end + 1;
    } else if (text.startsWith("/*", index)) {
      const end = text.indexOf("*/", index + 2);
      index = end === -1 ? text.length : end + 2;
    } else {
      const end = tokenEnd(text, index);
      tokens.push(text.slice(index, end));
      index = end;
    }
  }
  return tokens;
}

/** Where the token starting at `start` ends: a literal, a parenthesised group, or a word (a.b and "a".b too). */
function tokenEnd(text: string, start: number): number {
  const char = text[start] as string;
  if (char === "'" || char === '"') return skipQuoted(text, start);
  if (char === "(") {
    let depth = 0;
    let index = start;
    while (index < text.length) {
      const current = text[index] as string;
      if (current === "'" || current === '"') {
        index = skipQuoted(text, index);
        continue;
      }
      if (text.startsWith("--", index)) {
        const end = text.indexOf("\n", index);
        index = end === -1 ? text.length : end + 1;
        continue;
      }
      if (current === "(") depth++;
      else if (current === ")" && --depth === 0) return index + 1;
      index++;
    }
    throw new CopyRefused("COPY: unbalanced parentheses");
  }
  let index = start;
  while (index < text.length && !/[\s,(]/.test(text[index] as string)) {
    index = text[index] === '"' ? skipQuoted(text, index) : index + 1;
  }
  return index;
}

/** The index after the quoted text starting at `start` (a doubled quote is part of it). */
function skipQuoted(text: string, start: number): number {
  const quote = text[start] as string;
  let index = start + 1;
  while (index < text.length) {
    if (text[index] === quote) {
      if (text[index + 1] === quote) index += 2;
      else return index + 1;
    } else index++;
  }
  throw new CopyRefused("COPY: unterminated quoted text");
}

/** Splits at commas outside parentheses and quotes. */
function splitTopLevel(text: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let index = 0; index < text.length; index++) {
    const char = text[index] as string;
    if (char === "'" || char === '"') index = skipQuoted(text, index) - 1;
    else if (char === "(") depth++;
    else if (char === ")") depth--;
    else if (char === "," && depth === 0) {
      parts.push(text.slice(start, index));
      start = index + 1;
    }
  }
  parts.push(text.slice(start));
  return parts.map((part) => part.trim()).filter((part) => part !== "");
}
