/**
 * Column and table names. People name columns "Order ID", "customerName" or
 * "Margin %"; queries are easier over `order_id`, `customer_name`, `margin_pct`.
 */

/** The snake_case form of a header; "" when nothing is left of it. */
export function snakeCase(header: string): string {
  return header
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "") // accents: Café → Cafe
    .replace(/%/g, " pct ")
    .replace(/#/g, " num ")
    .replace(/([a-z0-9])([A-Z])/g, "$1_$2") // customerName → customer_Name
    .replace(/([A-Z]+)([A-Z][a-z])/g, "$1_$2") // HTTPStatus → HTTP_Status
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .replace(/^(\d)/, "_$1"); // a leading digit would need quoting in SQL
}

/**
 * Names for a file's columns, in order: snake_case, unique (`amount`, `amount_2`), and
 * `column_<n>` (1-based position) for headers that are empty or have no letters or digits.
 */
export function columnNames(headers: readonly string[]): string[] {
  const used = new Set<string>();
  return headers.map((header, i) => {
    const base = snakeCase(header) || `column_${i + 1}`;
    let name = base;
    for (let n = 2; used.has(name); n++) name = `${base}_${n}`;
    used.add(name);
    return name;
  });
}

const TABLE_NAME = /^[a-z][a-z0-9_]{0,62}$/;

/** Why `name` cannot be a loaded table's name, or null when it can. */
export function tableNameProblem(name: string): string | null {
  if (TABLE_NAME.test(name)) return null;
  const suggestion = snakeCase(name);
  return `"${name}" is not a valid table name: use lower case letters, digits and _, starting with a letter${
    suggestion && TABLE_NAME.test(suggestion) ? ` (e.g. ${suggestion})` : ""
  }`;
}
