/**
 * Statements BI tools and drivers send when they connect and when they browse a database, as
 * they send them (pgjdbc 42.7's DatabaseMetaData, which DBeaver, Metabase and Tableau use;
 * DBeaver's and Metabase's own; SQLAlchemy's, which Superset uses), each with what it must answer.
 * Test data: the server holds the tables `events` and `events_rejected`; the login is "analyst".
 * Unquoted aliases are folded to lower case (TABLE_SCHEM is table_schem), as PostgreSQL folds them;
 * JDBC reads labels in any case.
 */
import assert from "node:assert/strict";

type Rows = Record<string, unknown>[];

const includes = (rows: Rows, expected: Record<string, unknown>, tool: string) =>
  assert.ok(
    rows.some((row) => Object.entries(expected).every(([key, value]) => row[key] === value)),
    `${tool}: no row like ${JSON.stringify(expected)} in ${JSON.stringify(rows).slice(0, 500)}`,
  );

const answers = (expected: Rows) => (rows: Rows, tool: string) => assert.deepEqual(rows, expected, tool);

const runs = () => {};

export const BI_QUERIES: [string, string, (rows: Rows, tool: string) => void][] = [
  ["JDBC start-up", "SET extra_float_digits = 3", runs],
  ["JDBC start-up", "SET application_name = 'PostgreSQL JDBC Driver'", runs],
  [
    "JDBC isolation level",
    "SHOW TRANSACTION ISOLATION LEVEL",
    answers([{ transaction_isolation: "repeatable read" }]),
  ],
  [
    "JDBC/DBeaver schema and user",
    "SELECT current_schema() AS schema, session_user AS who",
    answers([{ schema: "main", who: "analyst" }]),
  ],
  [
    "Tableau",
    "SELECT current_database() AS db, current_user AS who",
    answers([{ db: "sluice", who: "analyst" }]),
  ],
  ["Metabase time zone", "SHOW TIMEZONE", answers([{ TimeZone: "UTC" }])],
  [
    "Metabase/JDBC current_setting",
    "SELECT current_setting('TimeZone') AS tz, current_setting('server_version_num', true) AS num",
    answers([{ tz: "UTC", num: "160000" }]),
  ],
  [
    "SQLAlchemy version",
    "select pg_catalog.version()",
    (rows, tool) => assert.match(String(rows[0]?.version), /^PostgreSQL 16/, tool),
  ],
  ["SQLAlchemy", "show standard_conforming_strings", answers([{ standard_conforming_strings: "on" }])],
  [
    "SQLAlchemy hstore",
    "SELECT t.oid, typarray FROM pg_type t JOIN pg_namespace ns ON typnamespace = ns.oid WHERE typname = 'hstore'",
    answers([]),
  ],
  [
    "pg_type",
    "select * from pg_catalog.pg_type",
    (rows, tool) => includes(rows, { typname: "int4", oid: 23, typarray: 1007 }, tool),
  ],
  [
    "DBeaver settings",
    "select setting from pg_catalog.pg_settings where name='standard_conforming_strings'",
    answers([{ setting: "on" }]),
  ],
  [
    "DBeaver database",
    "SELECT db.oid, db.* FROM pg_catalog.pg_database db WHERE datname = 'sluice'",
    (rows, tool) => includes(rows, { datname: "sluice" }, tool),
  ],
  [
    "DBeaver schemas",
    "SELECT n.oid, n.*, d.description FROM pg_catalog.pg_namespace n LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid = n.oid AND d.objsubid = 0 AND d.classoid = 'pg_namespace'::regclass ORDER BY nspname",
    (rows, tool) => includes(rows, { nspname: "main" }, tool),
  ],
  [
    "DBeaver tables",
    "SELECT c.oid, c.*, d.description, pg_catalog.pg_get_expr(c.relpartbound, c.oid) AS partition_expr, pg_catalog.pg_get_partkeydef(c.oid) AS partition_key FROM pg_catalog.pg_class c LEFT OUTER JOIN pg_catalog.pg_description d ON d.objoid = c.oid AND d.objsubid = 0 AND d.classoid = 'pg_class'::regclass WHERE c.relnamespace = 2200 AND c.relkind not in ('i','I','c')",
    (rows, tool) => includes(rows, { relname: "events", relkind: "r" }, tool),
  ],
  [
    "DBeaver columns",
    "SELECT c.relname, a.*, pg_catalog.pg_get_expr(ad.adbin, ad.adrelid, true) AS def_value, dsc.description, dep.objid FROM pg_catalog.pg_attribute a INNER JOIN pg_catalog.pg_class c ON (a.attrelid = c.oid) LEFT OUTER JOIN pg_catalog.pg_attrdef ad ON (a.attrelid = ad.adrelid AND a.attnum = ad.adnum) LEFT OUTER JOIN pg_catalog.pg_description dsc ON (c.oid = dsc.objoid AND a.attnum = dsc.objsubid) LEFT OUTER JOIN pg_depend dep ON dep.refobjid = a.attrelid AND dep.deptype = 'i' AND dep.refobjsubid = a.attnum AND dep.classid = dep.refclassid WHERE NOT a.attisdropped AND c.relkind not in ('i','I','c') AND c.oid = 'events'::regclass ORDER BY a.attnum",
    (rows, tool) => includes(rows, { attname: "ts", atttypid: 1184 }, tool),
  ],
  [
    "JDBC getSchemas",
    "SELECT nspname AS TABLE_SCHEM, NULL AS TABLE_CATALOG FROM pg_catalog.pg_namespace WHERE nspname <> 'pg_toast' AND (nspname !~ '^pg_temp_' OR nspname = (pg_catalog.current_schemas(true))[1]) AND (nspname !~ '^pg_toast_temp_' OR nspname = replace((pg_catalog.current_schemas(true))[1], 'pg_temp_', 'pg_toast_temp_')) ORDER BY TABLE_SCHEM",
    (rows, tool) => includes(rows, { table_schem: "main" }, tool),
  ],
  [
    "JDBC getTables",
    "SELECT NULL AS TABLE_CAT, n.nspname AS TABLE_SCHEM, c.relname AS TABLE_NAME, CASE n.nspname ~ '^pg_' OR n.nspname = 'information_schema' WHEN true THEN CASE WHEN n.nspname = 'pg_catalog' OR n.nspname = 'information_schema' THEN CASE c.relkind WHEN 'r' THEN 'SYSTEM TABLE' WHEN 'v' THEN 'SYSTEM VIEW' WHEN 'i' THEN 'SYSTEM INDEX' ELSE NULL END WHEN n.nspname = 'pg_toast' THEN CASE c.relkind WHEN 'r' THEN 'SYSTEM TOAST TABLE' WHEN 'i' THEN 'SYSTEM TOAST INDEX' ELSE NULL END ELSE CASE c.relkind WHEN 'r' THEN 'TEMPORARY TABLE' WHEN 'p' THEN 'TEMPORARY TABLE' WHEN 'i' THEN 'TEMPORARY INDEX' WHEN 'S' THEN 'TEMPORARY SEQUENCE' WHEN 'v' THEN 'TEMPORARY VIEW' ELSE NULL END END WHEN false THEN CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'PARTITIONED TABLE' WHEN 'i' THEN 'INDEX' WHEN 'S' THEN 'SEQUENCE' WHEN 'v' THEN 'VIEW' WHEN 'c' THEN 'TYPE' WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE NULL END ELSE NULL END AS TABLE_TYPE, d.description AS REMARKS, '' as TYPE_CAT, '' as TYPE_SCHEM, '' as TYPE_NAME, '' AS SELF_REFERENCING_COL_NAME, '' AS REF_GENERATION FROM pg_catalog.pg_namespace n, pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_description d ON (c.oid = d.objoid AND d.objsubid = 0 and d.classoid = 'pg_class'::regclass) WHERE c.relnamespace = n.oid AND c.relname LIKE E'%' AND (false OR ( c.relkind IN ('r','p') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' ) ) ORDER BY TABLE_TYPE,TABLE_SCHEM,TABLE_NAME",
    (rows, tool) => includes(rows, { table_name: "events", table_type: "TABLE", table_schem: "main" }, tool),
  ],
  [
    "JDBC getColumns",
    "SELECT * FROM (SELECT n.nspname,c.relname,a.attname,a.atttypid,a.attnotnull OR (t.typtype = 'd' AND t.typnotnull) AS attnotnull,a.atttypmod,a.attlen,t.typtypmod,row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum) AS attnum, nullif(a.attidentity, '') as attidentity,nullif(a.attgenerated, '') as attgenerated,pg_catalog.pg_get_expr(def.adbin, def.adrelid) AS adsrc,dsc.description,t.typbasetype,t.typtype FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_class c ON (c.relnamespace = n.oid) JOIN pg_catalog.pg_attribute a ON (a.attrelid=c.oid) JOIN pg_catalog.pg_type t ON (a.atttypid = t.oid) LEFT JOIN pg_catalog.pg_attrdef def ON (a.attrelid=def.adrelid AND a.attnum = def.adnum) LEFT JOIN pg_catalog.pg_description dsc ON (c.oid=dsc.objoid AND a.attnum = dsc.objsubid) LEFT JOIN pg_catalog.pg_class dc ON (dc.oid=dsc.classoid AND dc.relname='pg_class') LEFT JOIN pg_catalog.pg_namespace dn ON (dc.relnamespace=dn.oid AND dn.nspname='pg_catalog') WHERE c.relkind in ('r','p','v','f','m') and a.attnum > 0 AND NOT a.attisdropped AND n.nspname LIKE 'main' AND c.relname LIKE 'events') c WHERE true ORDER BY nspname,c.relname,attnum",
    (rows, tool) => includes(rows, { attname: "ts", atttypid: 1184, typtype: "b" }, tool),
  ],
  [
    "JDBC getPrimaryKeys",
    "SELECT NULL AS TABLE_CAT, n.nspname AS TABLE_SCHEM, ct.relname AS TABLE_NAME, a.attname AS COLUMN_NAME, (information_schema._pg_expandarray(i.indkey)).n AS KEY_SEQ, ci.relname AS PK_NAME, information_schema._pg_expandarray(i.indkey) AS KEYS, a.attnum AS A_ATTNUM FROM pg_catalog.pg_class ct JOIN pg_catalog.pg_attribute a ON (ct.oid = a.attrelid) JOIN pg_catalog.pg_namespace n ON (ct.relnamespace = n.oid) JOIN pg_catalog.pg_index i ON ( a.attrelid = i.indrelid) JOIN pg_catalog.pg_class ci ON (ci.oid = i.indexrelid) WHERE true AND ct.relname = E'events' AND i.indisprimary",
    answers([]),
  ],
  [
    "JDBC type of an OID",
    "SELECT typinput='pg_catalog.array_in'::regproc as is_array, typtype, typname, pg_type.oid FROM pg_catalog.pg_type LEFT JOIN (select ns.oid as nspoid, ns.nspname, r.r from pg_namespace as ns join ( select s.r, (current_schemas(false))[s.r] as nspname from generate_series(1, array_upper(current_schemas(false), 1)) as s(r) ) as r using ( nspname ) ) as sp ON sp.nspoid = typnamespace WHERE pg_type.oid = 1007 ORDER BY sp.r, pg_type.oid DESC LIMIT 1",
    answers([{ is_array: true, typtype: "b", typname: "_int4", oid: 1007 }]),
  ],
  [
    "Metabase tables",
    "SELECT n.nspname AS schema, c.relname AS name, CASE c.relkind WHEN 'r' THEN 'TABLE' WHEN 'p' THEN 'PARTITIONED TABLE' WHEN 'v' THEN 'VIEW' WHEN 'f' THEN 'FOREIGN TABLE' WHEN 'm' THEN 'MATERIALIZED VIEW' ELSE NULL END AS type, d.description AS description, stat.n_live_tup AS estimated_row_count FROM pg_catalog.pg_class AS c INNER JOIN pg_catalog.pg_namespace AS n ON c.relnamespace = n.oid LEFT JOIN pg_catalog.pg_description AS d ON (c.oid = d.objoid) AND (d.objsubid = 0) AND (d.classoid = 'pg_class'::regclass) LEFT JOIN pg_stat_user_tables AS stat ON (n.nspname = stat.schemaname) AND (c.relname = stat.relname) WHERE (c.relnamespace = n.oid) AND (c.relkind IN ('r', 'p', 'v', 'f', 'm')) AND (n.nspname !~ '^information_schema|catalog_history|pg_') AND (n.nspname <> 'information_schema') AND has_schema_privilege(n.nspname, 'usage') AND has_table_privilege(c.oid, 'select') ORDER BY type ASC, schema ASC, name ASC",
    (rows, tool) => includes(rows, { schema: "main", name: "events", type: "TABLE" }, tool),
  ],
  [
    "information_schema",
    "SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2",
    (rows, tool) => includes(rows, { table_schema: "main", table_name: "events_rejected" }, tool),
  ],
  [
    "information_schema columns",
    "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'events' AND column_name = 'ts'",
    answers([{ column_name: "ts", data_type: "TIMESTAMP WITH TIME ZONE" }]),
  ],
];
