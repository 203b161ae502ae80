/**
 * Enough of PostgreSQL's system catalog for tools to find tables and columns: psql's `\d`
 * commands, SQLAlchemy's and JDBC's reflection, BI tools' schema browsers.
 *
 * DuckDB has a `pg_catalog` of its own, but it misses relations tools read (pg_roles,
 * pg_database, pg_description, ...), functions they call (pg_get_userbyid, ...), and its type
 * OIDs are not PostgreSQL's (format_type(23) is `float8` there, `integer` here). So Sluice keeps
 * its own catalog in the schema `sluice_pg`, built from DuckDB's metadata with PostgreSQL's
 * OIDs, and rewrites the statements a client sends to read it (`toDuckDbSql`): references to
 * `pg_catalog.X` or a bare `pg_X` go to `sluice_pg.X` where Sluice defines X, PostgreSQL-only
 * syntax (OPERATOR(pg_catalog.~), COLLATE pg_catalog.default, ::regclass casts) becomes DuckDB's.
 */
import { OID } from "./types.js";

export const COMPAT_SCHEMA = "sluice_pg";

/** Our namespace OIDs: PostgreSQL's own for pg_catalog and public; `main` holds the lake tables. */
const NAMESPACE = { pg_catalog: 11, main: 2200, information_schema: 13000 } as const;

/** pg_type rows: name, OID, length, category, array type OID (0 for array types), element OID. */
const TYPES: [string, number, number, string, number, number][] = [
  ["bool", OID.bool, 1, "B", 1000, 0],
  ["bytea", OID.bytea, -1, "U", 1001, 0],
  ["name", 19, 64, "S", 1003, 0],
  ["int8", OID.int8, 8, "N", 1016, 0],
  ["int2", OID.int2, 2, "N", 1005, 0],
  ["int4", OID.int4, 4, "N", 1007, 0],
  ["text", OID.text, -1, "S", 1009, 0],
  ["oid", 26, 4, "N", 1028, 0],
  ["json", OID.json, -1, "U", 199, 0],
  ["float4", OID.float4, 4, "N", 1021, 0],
  ["float8", OID.float8, 8, "N", 1022, 0],
  ["varchar", OID.varchar, -1, "S", 1015, 0],
  ["date", OID.date, 4, "D", 1182, 0],
  ["time", OID.time, 8, "D", 1183, 0],
  ["timestamp", OID.timestamp, 8, "D", 1115, 0],
  ["timestamptz", OID.timestamptz, 8, "D", 1185, 0],
  ["interval", OID.interval, 16, "T", 1187, 0],
  ["timetz", OID.timetz, 12, "D", 1270, 0],
  ["numeric", OID.numeric, -1, "N", 1231, 0],
  ["uuid", OID.uuid, 16, "U", 2951, 0],
  ["_bool", 1000, -1, "A", 0, OID.bool],
  ["_int2", 1005, -1, "A", 0, OID.int2],
  ["_int4", 1007, -1, "A", 0, OID.int4],
  ["_text", 1009, -1, "A", 0, OID.text],
  ["_varchar", 1015, -1, "A", 0, OID.varchar],
  ["_int8", 1016, -1, "A", 0, OID.int8],
  ["_float8", 1022, -1, "A", 0, OID.float8],
];

/** format_type's names: what psql's \d and information_schema show. */
const TYPE_DISPLAY: Record<string, string> = {
  bool: "boolean",
  int8: "bigint",
  int2: "smallint",
  int4: "integer",
  float4: "real",
  float8: "double precision",
  varchar: "character varying",
  timestamp: "timestamp without time zone",
  timestamptz: "timestamp with time zone",
  time: "time without time zone",
  timetz: "time with time zone",
  _int4: "integer[]",
  _int8: "bigint[]",
  _text: "text[]",
  _varchar: "character varying[]",
};

/** DuckDB's type name (duckdb_columns().data_type) → PostgreSQL type OID, as the wire sends them. */
const DUCKDB_TYPE_OID = `CASE
    WHEN data_type = 'BOOLEAN' THEN ${OID.bool}
    WHEN data_type IN ('TINYINT', 'SMALLINT', 'UTINYINT') THEN ${OID.int2}
    WHEN data_type IN ('INTEGER', 'USMALLINT') THEN ${OID.int4}
    WHEN data_type IN ('BIGINT', 'UINTEGER') THEN ${OID.int8}
    WHEN data_type IN ('UBIGINT', 'HUGEINT', 'UHUGEINT') OR data_type LIKE 'DECIMAL%' THEN ${OID.numeric}
    WHEN data_type = 'FLOAT' THEN ${OID.float4}
    WHEN data_type = 'DOUBLE' THEN ${OID.float8}
    WHEN data_type = 'DATE' THEN ${OID.date}
    WHEN data_type = 'TIME' THEN ${OID.time}
    WHEN data_type LIKE 'TIMESTAMP WITH TIME ZONE' THEN ${OID.timestamptz}
    WHEN data_type LIKE 'TIMESTAMP%' THEN ${OID.timestamp}
    WHEN data_type = 'INTERVAL' THEN ${OID.interval}
    WHEN data_type = 'UUID' THEN ${OID.uuid}
    WHEN data_type = 'BLOB' THEN ${OID.bytea}
    WHEN data_type = 'JSON' THEN ${OID.json}
    WHEN data_type = 'VARCHAR' THEN ${OID.varchar}
    ELSE ${OID.text}
  END`;

const values = (rows: (string | number | null)[][]): string =>
  rows
    .map(
      (row) =>
        `(${row.map((value) => (typeof value === "string" ? `'${value}'` : value === null ? "NULL" : value)).join(", ")})`,
    )
    .join(",\n      ");

/** The lake's tables and views as relations: DuckDB's metadata of schema main. */
const RELATIONS = `
  SELECT view_oid AS oid, view_name AS relname, column_count AS relnatts, comment FROM duckdb_views()
  WHERE schema_name = 'main' AND NOT internal AND database_name = current_database()
  UNION ALL
  SELECT table_oid, table_name, column_count, comment FROM duckdb_tables()
  WHERE schema_name = 'main' AND NOT internal AND database_name = current_database()`;

const COLUMNS = `
  SELECT table_oid AS attrelid, column_name AS attname, column_index AS attnum, ${DUCKDB_TYPE_OID} AS atttypid,
    NOT is_nullable AS attnotnull, comment, column_default
  FROM duckdb_columns()
  WHERE schema_name = 'main' AND NOT internal AND database_name = current_database()`;

/** Relations clients read that have nothing to say here: the right columns, no rows. */
const EMPTY_RELATIONS: Record<string, string> = {
  pg_index: `indexrelid INTEGER, indrelid INTEGER, indnatts SMALLINT, indnkeyatts SMALLINT, indisunique BOOLEAN,
    indisprimary BOOLEAN, indisexclusion BOOLEAN, indimmediate BOOLEAN, indisclustered BOOLEAN, indisvalid BOOLEAN,
    indisready BOOLEAN, indislive BOOLEAN, indisreplident BOOLEAN, indkey INTEGER[], indcollation INTEGER[],
    indclass INTEGER[], indoption INTEGER[], indexprs VARCHAR, indpred VARCHAR, indnullsnotdistinct BOOLEAN`,
  pg_constraint: `oid INTEGER, conname VARCHAR, connamespace INTEGER, contype VARCHAR, condeferrable BOOLEAN,
    condeferred BOOLEAN, convalidated BOOLEAN, conrelid INTEGER, contypid INTEGER, conindid INTEGER,
    conparentid INTEGER, confrelid INTEGER, confupdtype VARCHAR, confdeltype VARCHAR, confmatchtype VARCHAR,
    conislocal BOOLEAN, coninhcount INTEGER, connoinherit BOOLEAN, conkey SMALLINT[], confkey SMALLINT[],
    conbin VARCHAR, consrc VARCHAR`,
  pg_attrdef: "oid INTEGER, adrelid INTEGER, adnum SMALLINT, adbin VARCHAR",
  pg_inherits: "inhrelid INTEGER, inhparent INTEGER, inhseqno INTEGER, inhdetachpending BOOLEAN",
  pg_trigger:
    "oid INTEGER, tgrelid INTEGER, tgparentid INTEGER, tgname VARCHAR, tgfoid INTEGER, tgenabled VARCHAR, tgisinternal BOOLEAN",
  pg_rewrite: "oid INTEGER, rulename VARCHAR, ev_class INTEGER, ev_type VARCHAR, is_instead BOOLEAN",
  pg_policy:
    "oid INTEGER, polname VARCHAR, polrelid INTEGER, polcmd VARCHAR, polpermissive BOOLEAN, polroles INTEGER[], polqual VARCHAR, polwithcheck VARCHAR",
  pg_statistic_ext:
    "oid INTEGER, stxrelid INTEGER, stxname VARCHAR, stxnamespace INTEGER, stxowner INTEGER, stxkeys SMALLINT[], stxkind VARCHAR[], stxstattarget INTEGER",
  pg_publication: "oid INTEGER, pubname VARCHAR, pubowner INTEGER, puballtables BOOLEAN",
  pg_publication_rel: "oid INTEGER, prpubid INTEGER, prrelid INTEGER, prqual VARCHAR, prattrs SMALLINT[]",
  pg_publication_namespace: "oid INTEGER, pnpubid INTEGER, pnnspid INTEGER",
  pg_auth_members: "oid INTEGER, roleid INTEGER, member INTEGER, grantor INTEGER, admin_option BOOLEAN",
  pg_enum: "oid INTEGER, enumtypid INTEGER, enumsortorder REAL, enumlabel VARCHAR",
  pg_range: "rngtypid INTEGER, rngsubtype INTEGER",
  pg_extension:
    "oid INTEGER, extname VARCHAR, extowner INTEGER, extnamespace INTEGER, extrelocatable BOOLEAN, extversion VARCHAR",
  pg_foreign_table: "ftrelid INTEGER, ftserver INTEGER, ftoptions VARCHAR[]",
  pg_partitioned_table: "partrelid INTEGER, partstrat VARCHAR, partnatts SMALLINT",
  pg_sequence:
    "seqrelid INTEGER, seqtypid INTEGER, seqstart BIGINT, seqincrement BIGINT, seqmax BIGINT, seqmin BIGINT, seqcache BIGINT, seqcycle BOOLEAN",
  pg_depend:
    "classid INTEGER, objid INTEGER, objsubid INTEGER, refclassid INTEGER, refobjid INTEGER, refobjsubid INTEGER, deptype VARCHAR",
  pg_proc: `oid INTEGER, proname VARCHAR, pronamespace INTEGER, proowner INTEGER, prokind VARCHAR, proretset BOOLEAN,
    prorettype INTEGER, proargtypes INTEGER[], proargnames VARCHAR[], prosrc VARCHAR`,
  pg_am: "oid INTEGER, amname VARCHAR, amhandler INTEGER, amtype VARCHAR",
  pg_collation:
    "oid INTEGER, collname VARCHAR, collnamespace INTEGER, collprovider VARCHAR, collcollate VARCHAR, collctype VARCHAR",
  pg_event_trigger: "oid INTEGER, evtname VARCHAR, evtevent VARCHAR",
  pg_matviews: "schemaname VARCHAR, matviewname VARCHAR, matviewowner VARCHAR, definition VARCHAR",
};

const OWNER = "sluice";

/** Functions describing things the lake does not have (sequences, triggers, statistics objects): NULL. */
const UNKNOWN_FUNCTIONS: Record<string, string[]> = {
  pg_get_function_result: ["function_oid"],
  pg_get_function_arguments: ["function_oid"],
  pg_get_function_identity_arguments: ["function_oid"],
  pg_get_serial_sequence: ["relation", "column_name"],
  pg_get_statisticsobjdef_columns: ["statistics_oid"],
  pg_get_partkeydef: ["relation_oid"],
  pg_get_partition_constraintdef: ["relation_oid"],
  pg_get_triggerdef: ["trigger_oid", "pretty := false"],
  pg_get_ruledef: ["rule_oid", "pretty := false"],
  shobj_description: ["object_oid", "catalog_name"],
};

/** The statements that create `sluice_pg` in a DuckDB instance; run once, before clients query. */
export function pgCatalogSetupSql(): string {
  const types = values(
    TYPES.map(([name, oid, length, category, array, element]) => [
      oid,
      name,
      NAMESPACE.pg_catalog,
      10,
      length,
      length > 0 ? "true" : "false",
      "b",
      category,
      ",",
      0,
      element,
      array,
      0,
      -1,
      0,
      TYPE_DISPLAY[name] ?? name,
    ]),
  )
    .replaceAll("'true'", "true")
    .replaceAll("'false'", "false");
  const statements = [
    `CREATE SCHEMA IF NOT EXISTS ${COMPAT_SCHEMA}`,
    `CREATE OR REPLACE VIEW ${COMPAT_SCHEMA}.pg_type AS SELECT *, 0 AS typcollation, false AS typnotnull,
        true AS typisdefined, NULL::VARCHAR AS typdefault, typname || 'in' AS typinput, typname || 'out' AS typoutput,
        typname || 'recv' AS typreceive, typname || 'send' AS typsend, 'i' AS typalign, 'p' AS typstorage,
        NULL::VARCHAR[] AS typacl
      FROM (VALUES
      ${types}) AS t(oid, typname, typnamespace, typowner, typlen, typbyval, typtype, typcategory, typdelim,
        typrelid, typelem, typarray, typbasetype, typtypmod, typndims, display_name)`,
    `CREATE OR REPLACE VIEW ${COMPAT_SCHEMA}.pg_namespace AS SELECT * FROM (VALUES
      ${values(Object.entries(NAMESPACE).map(([name, oid]) => [oid, name, 10, null]))}) AS t(oid, nspname, nspowner, nspacl)`,
    `CREATE OR REPLACE VIEW ${COMPAT_SCHEMA}.pg_class AS
      SELECT oid, relname, ${NAMESPACE.main} AS relnamespace, 0 AS reltype, 0 AS reloftype, 10 AS relowner,
        0 AS relam, 0 AS relfilenode, 0 AS reltablespace, 0 AS relpages, -1::REAL AS reltuples, 0 AS relallvisible,
        0 AS reltoastrelid, false AS relhasindex, false AS relisshared, 'p' AS relpersistence, 'r' AS relkind,
        relnatts::SMALLINT AS relnatts, 0::SMALLINT AS relchecks, false AS relhasrules, false AS relhastriggers,
        false AS relhassubclass, false AS relrowsecurity, false AS relforcerowsecurity, true AS relispopulated,
        'd' AS relreplident, false AS relispartition, 0 AS relrewrite, NULL::VARCHAR[] AS relacl,
        NULL::VARCHAR[] AS reloptions, NULL::VARCHAR AS relpartbound
      FROM (${RELATIONS})`,
    `CREATE OR REPLACE VIEW ${COMPAT_SCHEMA}.pg_attribute AS
      SELECT attrelid, attname, atttypid, 0 AS attstattarget, -1::SMALLINT AS attlen, attnum::SMALLINT AS attnum,
        0 AS attndims, -1 AS attcacheoff, -1 AS atttypmod, false AS attbyval, 'x' AS attstorage, 'i' AS attalign,
        attnotnull, column_default IS NOT NULL AS atthasdef, false AS atthasmissing, '' AS attidentity,
        '' AS attgenerated, false AS attisdropped, true AS attislocal, 0 AS attinhcount, 0 AS attcollation,
        NULL::VARCHAR[] AS attacl, NULL::VARCHAR[] AS attoptions, NULL::VARCHAR[] AS attfdwoptions,
        '' AS attcompression, NULL::VARCHAR AS attmissingval
      FROM (${COLUMNS})`,
    `CREATE OR REPLACE VIEW ${COMPAT_SCHEMA}.pg_description AS
      SELECT oid AS objoid, 1259 AS classoid, 0 AS objsubid, comment AS description FROM (${RELATIONS}) WHERE comment IS NOT NULL
      UNION ALL
      SELECT attrelid, 1259, attnum, comment FROM (${COLUMNS}) WHERE comment IS NOT NULL`,
    `CREATE OR REPLACE VIEW ${COMPAT_SCHEMA}.pg_roles AS SELECT 10 AS oid, '${OWNER}' AS rolname, true AS rolsuper,
      true AS rolinherit, false AS rolcreaterole, false AS rolcreatedb, true AS rolcanlogin, false AS rolreplication,
      -1 AS rolconnlimit, NULL::TIMESTAMPTZ AS rolvaliduntil, false AS rolbypassrls, NULL::VARCHAR[] AS rolconfig`,
    `CREATE OR REPLACE VIEW ${COMPAT_SCHEMA}.pg_user AS SELECT '${OWNER}' AS usename, 10 AS usesysid,
      false AS usecreatedb, true AS usesuper`,
    `CREATE OR REPLACE VIEW ${COMPAT_SCHEMA}.pg_database AS SELECT 1 AS oid, 'sluice' AS datname, 10 AS datdba,
      6 AS encoding, 'c' AS datlocprovider, false AS datistemplate, true AS datallowconn, -1 AS datconnlimit,
      'C' AS datcollate, 'C' AS datctype, NULL::VARCHAR AS daticulocale, NULL::VARCHAR AS daticurules,
      NULL::VARCHAR[] AS datacl`,
    `CREATE OR REPLACE VIEW ${COMPAT_SCHEMA}.pg_tables AS SELECT 'main' AS schemaname, relname AS tablename,
      '${OWNER}' AS tableowner, NULL::VARCHAR AS tablespace, false AS hasindexes, false AS hasrules,
      false AS hastriggers, false AS rowsecurity FROM (${RELATIONS})`,
    `CREATE OR REPLACE VIEW ${COMPAT_SCHEMA}.pg_views AS SELECT 'main' AS schemaname, NULL::VARCHAR AS viewname,
      '${OWNER}' AS viewowner, NULL::VARCHAR AS definition WHERE false`,
    ...Object.entries(EMPTY_RELATIONS).map(
      ([name, columns]) =>
        `CREATE OR REPLACE VIEW ${COMPAT_SCHEMA}.${name} AS SELECT * FROM (SELECT ${columns
          .split(/,\s*(?![^[]*\])/)
          .map((column) => {
            const [columnName, ...type] = column.trim().split(/\s+/);
            return `NULL::${type.join(" ")} AS ${columnName}`;
          })
          .join(", ")}) WHERE false`,
    ),
    ...Object.entries(UNKNOWN_FUNCTIONS).map(
      ([name, parameters]) =>
        `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.${name}(${parameters.join(", ")}) AS NULL::VARCHAR`,
    ),
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.pg_get_userbyid(role_oid) AS '${OWNER}'`,
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.pg_table_is_visible(relation_oid) AS true`,
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.pg_type_is_visible(type_oid) AS true`,
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.pg_function_is_visible(function_oid) AS true`,
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.pg_encoding_to_char(encoding) AS 'UTF8'`,
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.pg_get_indexdef(index_oid, column_number := 0, pretty := false) AS NULL::VARCHAR`,
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.pg_get_constraintdef(constraint_oid, pretty := false) AS NULL::VARCHAR`,
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.pg_get_viewdef(view_oid, pretty := false) AS NULL::VARCHAR`,
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.pg_get_expr(expression, relation_oid, pretty := false) AS expression`,
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.pg_relation_size(relation_oid) AS 0::BIGINT`,
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.pg_total_relation_size(relation_oid) AS 0::BIGINT`,
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.pg_table_size(relation_oid) AS 0::BIGINT`,
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.pg_indexes_size(relation_oid) AS 0::BIGINT`,
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.pg_size_pretty(size) AS format_bytes(size::BIGINT)`,
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.pg_is_in_recovery() AS false`,
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.array_upper(items, dimension) AS len(items)`,
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.array_lower(items, dimension) AS CASE WHEN len(items) > 0 THEN 1 END`,
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.pg_relation_is_publishable(relation_oid) AS false`,
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.pg_backend_pid() AS 0`,
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.has_table_privilege(relation, privilege) AS true`,
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.has_schema_privilege(schema_name, privilege) AS true`,
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.has_database_privilege(database_name, privilege) AS true`,
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.format_type(type_oid, type_modifier) AS
      coalesce((SELECT display_name FROM ${COMPAT_SCHEMA}.pg_type WHERE oid = type_oid), '???')`,
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.obj_description(object_oid, catalog_name := 'pg_class') AS
      (SELECT description FROM ${COMPAT_SCHEMA}.pg_description WHERE objoid = object_oid AND objsubid = 0)`,
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.col_description(relation_oid, column_number) AS
      (SELECT description FROM ${COMPAT_SCHEMA}.pg_description WHERE objoid = relation_oid AND objsubid = column_number)`,
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.regclass_oid(relation_name) AS
      (SELECT oid FROM ${COMPAT_SCHEMA}.pg_class WHERE relname = trim(string_split(relation_name, '.')[-1], '"'))`,
  ];
  return `${statements.join(";\n")};`;
}

/** Names Sluice defines in `sluice_pg`, as clients may write them qualified with pg_catalog or bare. */
const DEFINED = new Set([
  "pg_type",
  "pg_namespace",
  "pg_class",
  "pg_attribute",
  "pg_description",
  "pg_roles",
  "pg_user",
  "pg_database",
  "pg_tables",
  "pg_views",
  ...Object.keys(EMPTY_RELATIONS),
  ...Object.keys(UNKNOWN_FUNCTIONS),
  "pg_get_userbyid",
  "pg_table_is_visible",
  "pg_type_is_visible",
  "pg_function_is_visible",
  "pg_encoding_to_char",
  "pg_get_indexdef",
  "pg_get_constraintdef",
  "pg_get_viewdef",
  "pg_get_expr",
  "pg_relation_size",
  "pg_total_relation_size",
  "pg_table_size",
  "pg_indexes_size",
  "pg_size_pretty",
  "pg_is_in_recovery",
  "array_upper",
  "array_lower",
  "pg_relation_is_publishable",
  "pg_backend_pid",
  "has_table_privilege",
  "has_schema_privilege",
  "has_database_privilege",
  "format_type",
  "obj_description",
  "col_description",
]);

/** PostgreSQL functions DuckDB has under another name (variadic ones, which macros cannot be). */
const DUCKDB_NAMES: Record<string, string> = {
  json_build_object: "json_object",
  json_build_array: "json_array",
  jsonb_build_object: "json_object",
  jsonb_build_array: "json_array",
};

/** `pg_catalog.name` or a bare name (not after a dot or inside an identifier). */
const CATALOG_NAME = /(?<![\w."])(?:"?pg_catalog"?\.)?"?([a-z_][a-z0-9_]*)"?(?![\w"])/gi;

/**
 * A client's statement in DuckDB's terms: pg_catalog names Sluice defines go to `sluice_pg`,
 * PostgreSQL-only syntax becomes DuckDB's. Text inside string literals is left alone.
 */
export function toDuckDbSql(sql: string): string {
  if (
    !/pg_|format_type|_description|_privilege|regclass|regtype|collate|operator\s*\(|json_?b?_build|any\s*\(|~/i.test(
      sql,
    )
  )
    return sql;
  // A literal's regclass is a lookup ('events'::regclass is the table's OID); done first, since
  // the rewriting below sees the code between literals only.
  const lookedUp = sql.replace(
    /('(?:[^']|'')*')\s*::\s*(?:pg_catalog\s*\.\s*)?regclass\b/gi,
    `${COMPAT_SCHEMA}.regclass_oid($1)`,
  );
  return mapOutsideStrings(lookedUp, (code) =>
    code
      .replace(/OPERATOR\s*\(\s*(?:pg_catalog\s*\.\s*)?([~!<>=]+)\s*\)/gi, " $1 ")
      .replace(/\s+COLLATE\s+(?:pg_catalog\s*\.\s*)?"?(?:default|C|POSIX)"?/gi, "")
      .replace(
        /::\s*(?:pg_catalog\s*\.\s*)?(?:name|regproc|regprocedure|regoper|regnamespace|regrole)\b/gi,
        "::VARCHAR",
      )
      .replace(/::\s*(?:pg_catalog\s*\.\s*)?int2vector\b/gi, "::SMALLINT[]")
      .replace(/::\s*(?:pg_catalog\s*\.\s*)?oidvector\b/gi, "::INTEGER[]")
      .replace(/::\s*(?:pg_catalog\s*\.\s*)?regtype\b/gi, "::INTEGER")
      // A relation's OID as text would be its name; the catalogs that store one here are empty.
      .replace(/::\s*(?:pg_catalog\s*\.\s*)?regclass\b/gi, "::VARCHAR")
      .replace(/::\s*pg_catalog\s*\.\s*/gi, "::")
      // `x = ANY(array_column)`: DuckDB reads ANY as a subquery, which outer joins cannot hold.
      .replace(/([\w."]+)\s*=\s*ANY\s*\(\s*([\w."]+)\s*\)/gi, "list_contains($2, $1)")
      // In PostgreSQL a function in FROM with a table alias also names its one column so.
      .replace(
        /(generate_series\s*\((?:[^()]|\([^()]*\))*\))\s+(?:AS\s+)?([a-z_]\w*)(?=\s*(?:,|\)|$|WHERE\b|JOIN\b))/gi,
        "$1 AS $2($2)",
      )
      .replace(CATALOG_NAME, (match, name: string, offset: number, code: string) => {
        if (DEFINED.has(name.toLowerCase())) return `${COMPAT_SCHEMA}.${name.toLowerCase()}`;
        const renamed = DUCKDB_NAMES[name.toLowerCase()];
        if (renamed) return renamed;
        // DuckDB's own functions (array_to_string, ...) are found unqualified.
        return /^\s*\(/.test(code.slice(offset + match.length)) ? name : match;
      }),
  ).replace(/(!?)~(\*?)\s*'((?:[^']|'')*)'/g, (_match, not: string, insensitive: string, pattern: string) => {
    // PostgreSQL's ~ matches anywhere in the text; DuckDB's must match all of it.
    return `${not}~ '(?s${insensitive ? "i" : ""}).*(?:${pattern}).*'`;
  });
}

/** Applies `change` to the parts of `sql` outside string literals and quoted identifiers' contents. */
function mapOutsideStrings(sql: string, change: (code: string) => string): string {
  let result = "";
  let code = "";
  let index = 0;
  while (index < sql.length) {
    const char = sql[index] as string;
    if (char === "'") {
      let end = index + 1;
      while (end < sql.length) {
        if (sql[end] === "'" && sql[end + 1] === "'") end += 2;
        else if (sql[end] === "'") break;
        else end++;
      }
      result += change(code) + sql.slice(index, end + 1);
      code = "";
      index = end + 1;
    } else {
      code += char;
      index++;
    }
  }
  return result + change(code);
}
