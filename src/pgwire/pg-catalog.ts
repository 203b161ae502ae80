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
import { sqlString } from "../warehouse/index.js";
import { parameterValue, serverParameters } from "./statements.js";
import { ARRAY_OID, OID } from "./types.js";

export const COMPAT_SCHEMA = "sluice_pg";

/** Our namespace OIDs: PostgreSQL's own for pg_catalog and public; `main` holds the lake tables. */
const NAMESPACE = { pg_catalog: 11, main: 2200, information_schema: 13000 } as const;

/** pg_type's base types: name, OID, length, category. */
const BASE_TYPES: [string, number, number, string][] = [
  ["bool", OID.bool, 1, "B"],
  ["bytea", OID.bytea, -1, "U"],
  ["name", 19, 64, "S"],
  ["int8", OID.int8, 8, "N"],
  ["int2", OID.int2, 2, "N"],
  ["int4", OID.int4, 4, "N"],
  ["text", OID.text, -1, "S"],
  ["oid", 26, 4, "N"],
  ["json", OID.json, -1, "U"],
  ["float4", OID.float4, 4, "N"],
  ["float8", OID.float8, 8, "N"],
  ["varchar", OID.varchar, -1, "S"],
  ["date", OID.date, 4, "D"],
  ["time", OID.time, 8, "D"],
  ["timestamp", OID.timestamp, 8, "D"],
  ["timestamptz", OID.timestamptz, 8, "D"],
  ["interval", OID.interval, 16, "T"],
  ["timetz", OID.timetz, 12, "D"],
  ["numeric", OID.numeric, -1, "N"],
  ["uuid", OID.uuid, 16, "U"],
];

/** pg_type rows: name, OID, length, category, array type OID (0 for array types), element OID. */
const TYPES: [string, number, number, string, number, number][] = [
  ...BASE_TYPES.map(([name, oid, length, category]): [string, number, number, string, number, number] => [
    name,
    oid,
    length,
    category,
    ARRAY_OID.get(oid) ?? 0,
    0,
  ]),
  ...BASE_TYPES.filter(([, oid]) => ARRAY_OID.has(oid)).map(
    ([name, oid]): [string, number, number, string, number, number] => [
      `_${name}`,
      ARRAY_OID.get(oid) as number,
      -1,
      "A",
      0,
      oid,
    ],
  ),
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
};

/** format_type's name of a type: an array's is its element's with []. */
const displayName = (name: string): string =>
  name.startsWith("_") ? `${displayName(name.slice(1))}[]` : (TYPE_DISPLAY[name] ?? name);

/** DuckDB's type names (duckdb_columns().data_type, `{}` for the name) → PostgreSQL type OIDs, as the wire sends them. */
const DUCKDB_TYPES: [string, number][] = [
  ["{} = 'BOOLEAN'", OID.bool],
  ["{} IN ('TINYINT', 'SMALLINT', 'UTINYINT')", OID.int2],
  ["{} IN ('INTEGER', 'USMALLINT')", OID.int4],
  ["{} IN ('BIGINT', 'UINTEGER')", OID.int8],
  ["{} IN ('UBIGINT', 'HUGEINT', 'UHUGEINT') OR {} LIKE 'DECIMAL%'", OID.numeric],
  ["{} = 'FLOAT'", OID.float4],
  ["{} = 'DOUBLE'", OID.float8],
  ["{} = 'DATE'", OID.date],
  ["{} = 'TIME'", OID.time],
  ["{} = 'TIMESTAMP WITH TIME ZONE'", OID.timestamptz],
  ["{} LIKE 'TIMESTAMP%'", OID.timestamp],
  ["{} = 'INTERVAL'", OID.interval],
  ["{} = 'UUID'", OID.uuid],
  ["{} = 'BLOB'", OID.bytea],
  ["{} = 'JSON'", OID.json],
  ["{} = 'VARCHAR'", OID.varchar],
];

const typeCase = (name: string, oidOf: (oid: number) => number): string =>
  `CASE ${DUCKDB_TYPES.map(([test, oid]) => `WHEN ${test.replaceAll("{}", name)} THEN ${oidOf(oid)}`).join(" ")} ELSE ${OID.text} END`;

/** A column's type OID: a list of a known type is that type's array. */
const DUCKDB_TYPE_OID = `CASE WHEN data_type LIKE '%[]' THEN ${typeCase(
  "data_type[:-3]",
  (oid) => ARRAY_OID.get(oid) ?? OID.text,
)} ELSE ${typeCase("data_type", (oid) => oid)} END`;

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
  pg_stat_user_tables:
    "relid INTEGER, schemaname VARCHAR, relname VARCHAR, seq_scan BIGINT, n_live_tup BIGINT, n_dead_tup BIGINT, last_analyze TIMESTAMPTZ",
};

const OWNER = "sluice";

/** PostgreSQL's OIDs of the system catalogs tools name with ::regclass (`classoid = 'pg_class'::regclass`). */
const SYSTEM_RELATION_OIDS: Record<string, number> = {
  pg_type: 1247,
  pg_attribute: 1249,
  pg_proc: 1255,
  pg_class: 1259,
  pg_database: 1262,
  pg_namespace: 2615,
  pg_constraint: 2606,
  pg_description: 2609,
  pg_index: 2610,
  pg_trigger: 2620,
};

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

/** A type's I/O function, as pg_type names it (int4in; array_in for every array type). */
const typeFunction = (kind: string): string =>
  `CASE WHEN typcategory = 'A' THEN 'array_${kind}' ELSE typname || '${kind}' END`;

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
      displayName(name),
    ]),
  )
    .replaceAll("'true'", "true")
    .replaceAll("'false'", "false");
  const statements = [
    `CREATE SCHEMA IF NOT EXISTS ${COMPAT_SCHEMA}`,
    `CREATE OR REPLACE VIEW ${COMPAT_SCHEMA}.pg_type AS SELECT *, 0 AS typcollation, false AS typnotnull,
        true AS typisdefined, NULL::VARCHAR AS typdefault, ${typeFunction("in")} AS typinput,
        ${typeFunction("out")} AS typoutput, ${typeFunction("recv")} AS typreceive, ${typeFunction("send")} AS typsend, 'i' AS typalign, 'p' AS typstorage,
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
    `CREATE OR REPLACE VIEW ${COMPAT_SCHEMA}.pg_settings AS SELECT name, setting, NULL::VARCHAR AS unit,
        'Sluice' AS category, '' AS short_desc, 'user' AS context, 'string' AS vartype, 'default' AS source,
        setting AS boot_val, setting AS reset_val
      FROM (VALUES ${values(serverParameters())}) AS t(name, setting)`,
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
    // Each element of an array with its position; only JDBC's key queries call it, over the empty pg_index.
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}._pg_expandarray(items) AS {'x': items[1], 'n': 1}`,
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.system_relation_oid(relation_name) AS CASE relation_name
      ${Object.entries(SYSTEM_RELATION_OIDS)
        .map(([name, oid]) => `WHEN '${name}' THEN ${oid}`)
        .join(" ")} END`,
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
    // A lake table's OID, or a system catalog's as PostgreSQL numbers it (pg_description.classoid).
    `CREATE OR REPLACE MACRO ${COMPAT_SCHEMA}.regclass_oid(relation_name) AS coalesce(
      (SELECT oid FROM ${COMPAT_SCHEMA}.pg_class WHERE relname = trim(string_split(relation_name, '.')[-1], '"')),
      ${COMPAT_SCHEMA}.system_relation_oid(trim(string_split(relation_name, '.')[-1], '"')))`,
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
  "pg_settings",
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

/** Who a statement runs for, for the functions that name them (current_user). */
export interface SessionNames {
  user: string;
}

/** What PostgreSQL's session functions answer here: the database is `sluice`, the user who logged in. */
const sessionFunctions = (session: SessionNames): Record<string, string> => ({
  current_user: sqlString(session.user),
  session_user: sqlString(session.user),
  current_role: sqlString(session.user),
  current_catalog: "'sluice'",
});

/**
 * A client's statement in DuckDB's terms: pg_catalog names Sluice defines go to `sluice_pg`,
 * PostgreSQL-only syntax becomes DuckDB's, and the session's names and parameters are PostgreSQL's
 * (current_database() is `sluice`, current_setting('DateStyle') what SHOW says). Text inside string
 * literals is left alone.
 */
export function toDuckDbSql(sql: string, session: SessionNames): string {
  if (
    !/pg_|format_type|_description|_privilege|regclass|regtype|collate|operator\s*\(|json_?b?_build|any\s*\(|~|current_|session_user|::\s*bytea/i.test(
      sql,
    )
  )
    return sql;
  const names = sessionFunctions(session);
  // Rewrites that read a literal come first, since the rewriting below sees the code between
  // literals only: a literal's regclass is a lookup ('events'::regclass is the table's OID),
  // a known parameter's current_setting its value, PostgreSQL's hex bytea its bytes.
  const lookedUp = sql
    .replace(
      /('(?:[^']|'')*')\s*::\s*(?:pg_catalog\s*\.\s*)?regclass\b/gi,
      `${COMPAT_SCHEMA}.regclass_oid($1)`,
    )
    .replace(
      /(?<![\w.])(?:pg_catalog\s*\.\s*)?current_setting\s*\(\s*'([^']*)'\s*(?:,\s*\w+\s*)?\)/gi,
      (match, name: string) => {
        const value = parameterValue(name);
        return value === undefined ? match : sqlString(value);
      },
    )
    .replace(/'\\x([0-9a-f]*)'\s*::\s*(?:pg_catalog\s*\.\s*)?bytea\b/gi, "unhex('$1')")
    // A function named as regproc is compared by name: pg_type.typinput holds names here.
    .replace(/'(?:pg_catalog\.)?(\w+)'\s*::\s*(?:pg_catalog\s*\.\s*)?regproc\b/gi, "'$1'");
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
      .replace(/\binformation_schema\s*\.\s*_pg_expandarray\b/gi, `${COMPAT_SCHEMA}._pg_expandarray`)
      // `x = ANY(array_column)`: DuckDB reads ANY as a subquery, which outer joins cannot hold.
      .replace(/([\w."]+)\s*=\s*ANY\s*\(\s*([\w."]+)\s*\)/gi, "list_contains($2, $1)")
      // In PostgreSQL a function in FROM with a table alias also names its one column so.
      .replace(
        /(generate_series\s*\((?:[^()]|\([^()]*\))*\))\s+(?:AS\s+)?([a-z_]\w*)(?=\s*(?:,|\)|$|WHERE\b|JOIN\b))/gi,
        "$1 AS $2($2)",
      )
      .replace(/(?<![\w."])(?:pg_catalog\s*\.\s*)?current_database\s*\(\s*\)/gi, "'sluice'")
      .replace(CATALOG_NAME, (match, name: string, offset: number, code: string) => {
        const lower = name.toLowerCase();
        const isCall = /^\s*\(/.test(code.slice(offset + match.length));
        if (DEFINED.has(lower)) return `${COMPAT_SCHEMA}.${lower}`;
        // A session name (a keyword in PostgreSQL, so neither quoted nor called): PostgreSQL's answer.
        const answer = names[lower];
        if (answer !== undefined && !isCall && !match.includes('"')) return answer;
        const renamed = DUCKDB_NAMES[lower];
        if (renamed) return renamed;
        // DuckDB's own functions (array_to_string, ...) are found unqualified.
        return isCall ? name : match;
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
