/** Every check kind, by its YAML `type`: a new kind is a file in this folder plus one line here. */
import { acceptedValues } from "./accepted-values.js";
import { anomaly } from "./anomaly.js";
import { change } from "./change.js";
import type { CheckKind } from "./check.js";
import { duplicates } from "./duplicates.js";
import { freshness } from "./freshness.js";
import { missing } from "./missing.js";
import { range } from "./range.js";
import { references } from "./references.js";
import { regex } from "./regex.js";
import { rowCount } from "./row-count.js";
import { schemaChange } from "./schema-change.js";
import { customSql } from "./sql.js";

// biome-ignore lint/suspicious/noExplicitAny: each kind has its own spec type, opaque to callers.
export const CHECK_KINDS: ReadonlyMap<string, CheckKind<any>> = new Map(
  [
    rowCount,
    missing,
    duplicates,
    acceptedValues,
    regex,
    range,
    freshness,
    schemaChange,
    references,
    customSql,
    anomaly,
    change,
  ].map((kind) => [kind.kind, kind]),
);
