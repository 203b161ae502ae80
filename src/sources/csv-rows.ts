/**
 * Where rows end in CSV text that arrives in chunks (RFC 4180, as PostgreSQL's COPY writes
 * it): at a newline outside quotes. A quote inside a quoted value is doubled, so counting
 * quotes tells whether a position is inside one.
 */

/** Whether CSV text that starts inside a quoted value (`quoted`) ends inside one. */
export function endsQuoted(chunk: Buffer, quoted: boolean): boolean {
  let inside = quoted;
  for (let quote = chunk.indexOf(0x22); quote >= 0; quote = chunk.indexOf(0x22, quote + 1)) inside = !inside;
  return inside;
}

/** The offset just past the last row of CSV text that ends in `chunk` (0 when none does): a newline outside quotes. */
export function lastRowEnd(chunk: Buffer, quoted: boolean): number {
  const outside: [number, number][] = [];
  let inside = quoted;
  let from = 0;
  for (let quote = chunk.indexOf(0x22); quote >= 0; quote = chunk.indexOf(0x22, quote + 1)) {
    if (!inside) outside.push([from, quote]);
    inside = !inside;
    from = quote + 1;
  }
  if (!inside) outside.push([from, chunk.length]);
  for (const [start, stop] of outside.reverse()) {
    const newline = stop > start ? chunk.lastIndexOf(0x0a, stop - 1) : -1;
    if (newline >= start) return newline + 1;
  }
  return 0;
}
