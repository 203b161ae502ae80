/**
 * DuckDB types as PostgreSQL types: the OID a client sees, and each value in text or
 * binary format. Types PostgreSQL has no match for (lists, structs, maps, unions) are
 * sent as text in DuckDB's own notation.
 */
import {
  DuckDBBlobValue,
  DuckDBDateValue,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
  type DuckDBType,
  DuckDBTypeId,
  type DuckDBValue,
} from "@duckdb/node-api";
import { valueText } from "../warehouse/index.js";

export const OID = {
  bool: 16,
  bytea: 17,
  int8: 20,
  int2: 21,
  int4: 23,
  text: 25,
  json: 114,
  float4: 700,
  float8: 701,
  varchar: 1043,
  date: 1082,
  time: 1083,
  timestamp: 1114,
  timestamptz: 1184,
  interval: 1186,
  timetz: 1266,
  numeric: 1700,
  uuid: 2950,
} as const;

/** Type sizes in bytes, as pg_type.typlen: -1 for variable length. */
const SIZES = new Map<number, number>([
  [OID.bool, 1],
  [OID.int2, 2],
  [OID.int4, 4],
  [OID.int8, 8],
  [OID.float4, 4],
  [OID.float8, 8],
  [OID.date, 4],
  [OID.time, 8],
  [OID.timestamp, 8],
  [OID.timestamptz, 8],
  [OID.interval, 16],
  [OID.timetz, 12],
  [OID.uuid, 16],
]);

export function pgTypeOid(type: DuckDBType): number {
  if (type.alias === "JSON") return OID.json;
  return pgTypeOidOfId(type.typeId);
}

export function pgTypeOidOfId(typeId: DuckDBTypeId): number {
  switch (typeId) {
    case DuckDBTypeId.BOOLEAN:
      return OID.bool;
    case DuckDBTypeId.TINYINT:
    case DuckDBTypeId.SMALLINT:
    case DuckDBTypeId.UTINYINT:
      return OID.int2;
    case DuckDBTypeId.INTEGER:
    case DuckDBTypeId.USMALLINT:
      return OID.int4;
    case DuckDBTypeId.BIGINT:
    case DuckDBTypeId.UINTEGER:
      return OID.int8;
    case DuckDBTypeId.UBIGINT:
    case DuckDBTypeId.HUGEINT:
    case DuckDBTypeId.UHUGEINT:
    case DuckDBTypeId.DECIMAL:
    case DuckDBTypeId.BIGNUM:
      return OID.numeric;
    case DuckDBTypeId.FLOAT:
      return OID.float4;
    case DuckDBTypeId.DOUBLE:
      return OID.float8;
    case DuckDBTypeId.BLOB:
      return OID.bytea;
    case DuckDBTypeId.DATE:
      return OID.date;
    case DuckDBTypeId.TIME:
      return OID.time;
    case DuckDBTypeId.TIME_TZ:
      return OID.timetz;
    case DuckDBTypeId.TIMESTAMP:
    case DuckDBTypeId.TIMESTAMP_S:
    case DuckDBTypeId.TIMESTAMP_MS:
    case DuckDBTypeId.TIMESTAMP_NS:
      return OID.timestamp;
    case DuckDBTypeId.TIMESTAMP_TZ:
      return OID.timestamptz;
    case DuckDBTypeId.INTERVAL:
      return OID.interval;
    case DuckDBTypeId.UUID:
      return OID.uuid;
    default:
      return OID.text;
  }
}

export const typeSize = (oid: number): number => SIZES.get(oid) ?? -1;

/** Which result columns a client may get in binary: the rest always goes as text. */
const BINARY_OIDS = new Set<number>([
  OID.bool,
  OID.int2,
  OID.int4,
  OID.int8,
  OID.float4,
  OID.float8,
  OID.text,
  OID.varchar,
  OID.json,
  OID.bytea,
  OID.date,
  OID.timestamp,
  OID.timestamptz,
]);

export const canSendBinary = (oid: number): boolean => BINARY_OIDS.has(oid);

/** PostgreSQL's text format: DuckDB's rendering, except booleans (t/f) and special floats. */
export function encodeText(value: DuckDBValue): Buffer | null {
  if (value === null) return null;
  if (typeof value === "boolean") return Buffer.from(value ? "t" : "f");
  if (typeof value === "number") return Buffer.from(formatFloat(value));
  return Buffer.from(valueText(value) ?? "", "utf8");
}

/** Microseconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch. */
const PG_EPOCH_MICROS = 946_684_800_000_000n;
const PG_EPOCH_DAYS = 10_957;

export function encodeBinary(value: DuckDBValue, oid: number): Buffer | null {
  if (value === null) return null;
  const buffer = (size: number) => Buffer.alloc(size);
  switch (oid) {
    case OID.bool:
      return Buffer.from([value ? 1 : 0]);
    case OID.int2: {
      const out = buffer(2);
      out.writeInt16BE(Number(value));
      return out;
    }
    case OID.int4: {
      const out = buffer(4);
      out.writeInt32BE(Number(value));
      return out;
    }
    case OID.int8: {
      const out = buffer(8);
      out.writeBigInt64BE(BigInt(value as number | bigint));
      return out;
    }
    case OID.float4: {
      const out = buffer(4);
      out.writeFloatBE(Number(value));
      return out;
    }
    case OID.float8: {
      const out = buffer(8);
      out.writeDoubleBE(Number(value));
      return out;
    }
    case OID.bytea:
      return value instanceof DuckDBBlobValue ? Buffer.from(value.bytes) : Buffer.from(String(value));
    case OID.date: {
      const out = buffer(4);
      out.writeInt32BE(value instanceof DuckDBDateValue ? value.days - PG_EPOCH_DAYS : 0);
      return out;
    }
    case OID.timestamp:
    case OID.timestamptz: {
      const out = buffer(8);
      const micros =
        value instanceof DuckDBTimestampValue || value instanceof DuckDBTimestampTZValue ? value.micros : 0n;
      out.writeBigInt64BE(micros - PG_EPOCH_MICROS);
      return out;
    }
    default:
      return encodeText(value);
  }
}

/** Parses a parameter sent in binary, for the types clients send that way. */
export function decodeBinaryParameter(data: Buffer, oid: number): string {
  switch (oid) {
    case OID.bool:
      return data[0] ? "true" : "false";
    case OID.int2:
      return String(data.readInt16BE(0));
    case OID.int4:
      return String(data.readInt32BE(0));
    case OID.int8:
      return data.readBigInt64BE(0).toString();
    case OID.float4:
      return formatFloat(data.readFloatBE(0));
    case OID.float8:
      return formatFloat(data.readDoubleBE(0));
    case OID.text:
    case OID.varchar:
    case OID.json:
    case 0:
      return data.toString("utf8");
    default:
      throw new Error(`binary parameters of type OID ${oid} are not supported; send them as text`);
  }
}

/** PostgreSQL's spelling of the special floats. */
function formatFloat(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "Infinity";
  if (value === Number.NEGATIVE_INFINITY) return "-Infinity";
  return String(value);
}
