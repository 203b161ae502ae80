/**
 * DuckDB types as PostgreSQL types: the OID a client sees, and each value in text or
 * binary format. Lists of the types below are PostgreSQL arrays; types PostgreSQL has no
 * match for (structs, maps, unions, nested lists) are sent as text in DuckDB's own notation.
 */
import {
  DuckDBArrayValue,
  DuckDBBlobValue,
  type DuckDBDateValue,
  DuckDBIntervalValue,
  type DuckDBListType,
  DuckDBListValue,
  DuckDBTimestampMillisecondsValue,
  DuckDBTimestampNanosecondsValue,
  DuckDBTimestampSecondsValue,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
  type DuckDBTimeValue,
  type DuckDBType,
  DuckDBTypeId,
  type DuckDBUUIDValue,
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

/** The array type of each element type, as PostgreSQL numbers them (pg_type.typarray). */
export const ARRAY_OID = new Map<number, number>([
  [OID.bool, 1000],
  [OID.bytea, 1001],
  [OID.int2, 1005],
  [OID.int4, 1007],
  [OID.text, 1009],
  [OID.varchar, 1015],
  [OID.int8, 1016],
  [OID.float4, 1021],
  [OID.float8, 1022],
  [OID.json, 199],
  [OID.timestamp, 1115],
  [OID.date, 1182],
  [OID.time, 1183],
  [OID.timestamptz, 1185],
  [OID.interval, 1187],
  [OID.numeric, 1231],
  [OID.uuid, 2951],
]);

const ELEMENT_OID = new Map([...ARRAY_OID].map(([element, array]) => [array, element]));

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
  if (type.typeId === DuckDBTypeId.LIST || type.typeId === DuckDBTypeId.ARRAY) {
    return ARRAY_OID.get(pgTypeOid((type as DuckDBListType).valueType)) ?? OID.text;
  }
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
  OID.numeric,
  OID.text,
  OID.varchar,
  OID.json,
  OID.bytea,
  OID.date,
  OID.time,
  OID.timestamp,
  OID.timestamptz,
  OID.interval,
  OID.uuid,
]);

export const canSendBinary = (oid: number): boolean =>
  BINARY_OIDS.has(oid) || BINARY_OIDS.has(ELEMENT_OID.get(oid) ?? 0);

/**
 * PostgreSQL's text format of a value of the column type `oid`: DuckDB's rendering, except
 * booleans (t/f), floats (PostgreSQL's shortest form, special values spelled its way), intervals
 * and arrays.
 */
export function encodeText(value: DuckDBValue, oid: number): string | null {
  if (value === null) return null;
  if (typeof value === "string") return value;
  if (typeof value === "boolean") return value ? "t" : "f";
  if (typeof value === "number") return formatFloat(value, oid);
  if (value instanceof DuckDBIntervalValue) return intervalText(value);
  const element = ELEMENT_OID.get(oid);
  if (element !== undefined && (value instanceof DuckDBListValue || value instanceof DuckDBArrayValue)) {
    return `{${value.items.map((item) => arrayElementText(encodeText(item, element))).join(",")}}`;
  }
  return valueText(value) ?? "";
}

/** An interval as PostgreSQL writes it (IntervalStyle postgres): `1 year 2 mons -3 days +04:05:06.5`. */
function intervalText({ months, days, micros }: DuckDBIntervalValue): string {
  const unit = (count: number, name: string, plural: string) => `${count} ${count === 1 ? name : plural}`;
  const parts: string[] = [];
  const years = Math.trunc(months / 12);
  if (years !== 0) parts.push(unit(years, "year", "years"));
  if (months % 12 !== 0) parts.push(unit(months % 12, "mon", "mons"));
  if (days !== 0) parts.push(unit(days, "day", "days"));
  if (micros !== 0n || parts.length === 0) {
    const negative = micros < 0n;
    const size = negative ? -micros : micros;
    const two = (part: bigint) => String(part).padStart(2, "0");
    const fraction = String(size % 1_000_000n)
      .padStart(6, "0")
      .replace(/0+$/, "");
    const sign = negative ? "-" : parts.length > 0 && (months < 0 || days < 0) ? "+" : "";
    parts.push(
      `${sign}${two(size / 3_600_000_000n)}:${two((size / 60_000_000n) % 60n)}:${two((size / 1_000_000n) % 60n)}${fraction ? `.${fraction}` : ""}`,
    );
  }
  return parts.join(" ");
}

/** An element inside an array literal: quoted when PostgreSQL's array parser would misread it. */
function arrayElementText(text: string | null): string {
  if (text === null) return "NULL";
  if (text !== "" && !/[{}",\\\s]/.test(text) && text.toUpperCase() !== "NULL") return text;
  return `"${text.replace(/[\\"]/g, "\\$&")}"`;
}

/** Microseconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch. */
const PG_EPOCH_MICROS = 946_684_800_000_000n;
const PG_EPOCH_DAYS = 10_957;

/** PostgreSQL's binary format of a value of the column type `oid` (one `canSendBinary` allows). */
export function encodeBinary(value: DuckDBValue, oid: number): Buffer | null {
  if (value === null) return null;
  switch (oid) {
    case OID.bool:
      return Buffer.from([value ? 1 : 0]);
    case OID.int2:
      return fixed(2, (out) => out.writeInt16BE(Number(value)));
    case OID.int4:
      return fixed(4, (out) => out.writeInt32BE(Number(value)));
    case OID.int8:
      return fixed(8, (out) => out.writeBigInt64BE(BigInt(value as number | bigint)));
    case OID.float4:
      return fixed(4, (out) => out.writeFloatBE(Number(value)));
    case OID.float8:
      return fixed(8, (out) => out.writeDoubleBE(Number(value)));
    case OID.numeric:
      return numericBinary(valueText(value) ?? "");
    case OID.bytea:
      return value instanceof DuckDBBlobValue ? Buffer.from(value.bytes) : Buffer.from(String(value));
    case OID.date:
      return fixed(4, (out) => out.writeInt32BE((value as DuckDBDateValue).days - PG_EPOCH_DAYS));
    case OID.time:
      return fixed(8, (out) => out.writeBigInt64BE((value as DuckDBTimeValue).micros));
    case OID.timestamp:
    case OID.timestamptz:
      return fixed(8, (out) => out.writeBigInt64BE(timestampMicros(value) - PG_EPOCH_MICROS));
    case OID.interval: {
      const interval = value as DuckDBIntervalValue;
      return fixed(16, (out) => {
        out.writeBigInt64BE(interval.micros, 0);
        out.writeInt32BE(interval.days, 8);
        out.writeInt32BE(interval.months, 12);
      });
    }
    case OID.uuid:
      return Buffer.from((value as DuckDBUUIDValue).toUint128().toString(16).padStart(32, "0"), "hex");
  }
  const element = ELEMENT_OID.get(oid);
  if (element !== undefined && (value instanceof DuckDBListValue || value instanceof DuckDBArrayValue)) {
    return arrayBinary(value.items, element);
  }
  const text = encodeText(value, oid);
  return text === null ? null : Buffer.from(text, "utf8");
}

const fixed = (size: number, write: (out: Buffer) => void): Buffer => {
  const out = Buffer.alloc(size);
  write(out);
  return out;
};

function timestampMicros(value: DuckDBValue): bigint {
  if (value instanceof DuckDBTimestampValue || value instanceof DuckDBTimestampTZValue) return value.micros;
  if (value instanceof DuckDBTimestampSecondsValue) return value.seconds * 1_000_000n;
  if (value instanceof DuckDBTimestampMillisecondsValue) return value.millis * 1_000n;
  if (value instanceof DuckDBTimestampNanosecondsValue) return value.nanos / 1_000n;
  throw new Error(`${String(value)} is not a timestamp`);
}

/** A one-dimensional array: dimensions, whether it holds NULLs, element type, then each element. */
function arrayBinary(items: readonly DuckDBValue[], element: number): Buffer {
  const header = Buffer.alloc(items.length === 0 ? 12 : 20);
  header.writeInt32BE(items.length === 0 ? 0 : 1, 0);
  header.writeInt32BE(items.includes(null) ? 1 : 0, 4);
  header.writeInt32BE(element, 8);
  if (items.length > 0) {
    header.writeInt32BE(items.length, 12);
    header.writeInt32BE(1, 16);
  }
  const parts: Buffer[] = [header];
  for (const item of items) {
    const data = encodeBinary(item, element);
    parts.push(fixed(4, (out) => out.writeInt32BE(data === null ? -1 : data.length)));
    if (data !== null) parts.push(data);
  }
  return Buffer.concat(parts);
}

/**
 * PostgreSQL's binary numeric, from a decimal's text: digits in base 10000 around the decimal
 * point (weight = the power of 10000 of the first), sign, and the number of decimal places.
 */
function numericBinary(text: string): Buffer {
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (!match) throw new Error(`${text} is not a number`);
  const [, minus, whole = "", fraction = ""] = match;
  const integer = whole.replace(/^0+/, "");
  const groups = (
    integer.padStart(Math.ceil(integer.length / 4) * 4, "0") +
    fraction.padEnd(Math.ceil(fraction.length / 4) * 4, "0")
  )
    .match(/\d{4}/g)
    ?.map(Number) ?? [0];
  let weight = Math.ceil(integer.length / 4) - 1;
  let start = 0;
  while (start < groups.length && groups[start] === 0) {
    start++;
    weight--;
  }
  let end = groups.length;
  while (end > start && groups[end - 1] === 0) end--;
  const digits = groups.slice(start, end);
  const out = Buffer.alloc(8 + 2 * digits.length);
  out.writeInt16BE(digits.length, 0);
  out.writeInt16BE(digits.length === 0 ? 0 : weight, 2);
  out.writeUInt16BE(minus && digits.length > 0 ? 0x4000 : 0, 4);
  out.writeInt16BE(fraction.length, 6);
  for (const [index, digit] of digits.entries()) out.writeInt16BE(digit, 8 + 2 * index);
  return out;
}

/**
 * A parameter a client sent in binary, as the text or bytes DuckDB casts to the statement's type.
 * `oid` is the type the client declared or, when it left it open, the one the statement expects.
 */
export function decodeBinaryParameter(data: Buffer, oid: number): string | Buffer {
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
      return formatFloat(data.readFloatBE(0), OID.float4);
    case OID.float8:
      return formatFloat(data.readDoubleBE(0), OID.float8);
    case OID.numeric:
      return numericText(data);
    case OID.date:
      return new Date((data.readInt32BE(0) + PG_EPOCH_DAYS) * 86_400_000).toISOString().slice(0, 10);
    case OID.timestamp:
    case OID.timestamptz: {
      const micros = data.readBigInt64BE(0) + PG_EPOCH_MICROS;
      const iso = new Date(Number(micros / 1000n)).toISOString();
      const fraction = String(((micros % 1_000_000n) + 1_000_000n) % 1_000_000n).padStart(6, "0");
      return `${iso.slice(0, 19)}.${fraction}${oid === OID.timestamptz ? "+00" : ""}`;
    }
    case OID.uuid:
      return data.toString("hex").replace(/^(.{8})(.{4})(.{4})(.{4})/, "$1-$2-$3-$4-");
    case OID.bytea:
      return data;
    case OID.text:
    case OID.varchar:
    case OID.json:
      return data.toString("utf8");
    default:
      throw new Error(`binary parameters of type OID ${oid} are not supported; send them as text`);
  }
}

/** The text of a binary numeric (see `numericBinary`). */
function numericText(data: Buffer): string {
  const count = data.readInt16BE(0);
  const weight = data.readInt16BE(2);
  const sign = data.readUInt16BE(4);
  const scale = data.readInt16BE(6);
  if (sign === 0xc000) return "NaN";
  let digits = "";
  for (let index = 0; index < count; index++)
    digits += String(data.readInt16BE(8 + 2 * index)).padStart(4, "0");
  // The digits stand for digits × 10000^(weight - count + 1): place the decimal point accordingly.
  const pointAt = 4 * (weight + 1);
  const padded = pointAt > digits.length ? digits.padEnd(pointAt, "0") : digits;
  const integer = pointAt <= 0 ? "0" : padded.slice(0, pointAt).replace(/^0+(?=\d)/, "");
  const fraction = (pointAt < 0 ? "0".repeat(-pointAt) + padded : padded.slice(Math.max(pointAt, 0)))
    .padEnd(scale, "0")
    .slice(0, scale);
  return `${sign === 0x4000 ? "-" : ""}${integer}${scale > 0 ? `.${fraction}` : ""}`;
}

/** PostgreSQL's spelling of floats: the shortest text that reads back as the same float4 or float8. */
function formatFloat(value: number, oid: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Number.POSITIVE_INFINITY) return "Infinity";
  if (value === Number.NEGATIVE_INFINITY) return "-Infinity";
  if (oid === OID.float4) {
    for (let precision = 1; precision < 9; precision++) {
      const shorter = Number(value.toPrecision(precision));
      if (Math.fround(shorter) === value) return String(shorter);
    }
  }
  return String(value);
}
