/** A file that cannot be loaded as it is: the message says why, in one line, for the person who sent it. */
export class Rejection extends Error {}

/**
 * DuckDB's errors span many lines (the failing line, "Possible Solution" hints, the
 * reader's whole configuration); the first lines up to that noise say what is wrong.
 */
export function duckDbMessage(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  const lines: string[] = [];
  for (const raw of message.split("\n")) {
    const line = raw.trim();
    if (/^(Possible (Solution|fix)|LINE \d+:|file =)/i.test(line) || (line === "" && lines.length > 0)) break;
    if (line) lines.push(line);
  }
  return lines.join("; ").replace(/^[A-Za-z ]+ Error: /, "");
}
