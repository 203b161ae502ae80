/**
 * Query results as an Arrow IPC stream (`application/vnd.apache.arrow.stream`): what pandas,
 * Polars and DuckDB clients read fastest, with the types kept.
 *
 * The stream is written batch by batch as DuckDB yields rows, so a large result never sits in
 * memory whole. Each batch is serialized on its own with apache-arrow's writer and cut out of
 * that writer's stream; the schema message goes first, once, and the end-of-stream marker last.
 *
 * Types: booleans, integers, floats, dates and timestamps (µs, UTC for TIMESTAMPTZ) map to
 * Arrow's; DECIMAL and HUGEINT become float64; text, JSON, UUID and everything else (lists,
 * structs, intervals) are utf8 in the same notation as the CSV format.
 */

import {
  DuckDBDateValue,
  DuckDBDecimalValue,
  DuckDBTimestampTZValue,
  DuckDBTimestampValue,
  DuckDBTypeId,
  type DuckDBValue,
} from "@duckdb/node-api";
import {
  Bool as ArrowBool,
  type Data,
  type DataType,
  DateDay,
  Field,
  Float32,
  Float64,
  Int8,
  Int16,
  Int32,
  Int64,
  makeData,
  RecordBatch,
  RecordBatchStreamWriter,
  Schema,
  Struct,
  Table,
  TimestampMicrosecond,
  Uint8,
  Uint16,
  Uint32,
  Uint64,
  Utf8,
  vectorFromArray,
} from "apache-arrow";
import { valueText } from "./text.js";
import type { ResultColumn } from "./warehouse.js";

export const ARROW_STREAM_TYPE = "application/vnd.apache.arrow.stream";

/** How one column's DuckDB values become an Arrow column. */
interface ColumnCodec {
  type: DataType;
  /** The column's values as apache-arrow's builders take them (null for NULL). */
  convert(value: DuckDBValue): unknown;
  /** Timestamps are built straight from DuckDB's microseconds: the builders take milliseconds. */
  micros?: true;
}

const same = (value: DuckDBValue): unknown => value;

function codecFor(column: ResultColumn): ColumnCodec {
  if (column.type.alias === "JSON") return { type: new Utf8(), convert: text };
  switch (column.type.typeId) {
    case DuckDBTypeId.BOOLEAN:
      return { type: new ArrowBool(), convert: same };
    case DuckDBTypeId.TINYINT:
      return { type: new Int8(), convert: same };
    case DuckDBTypeId.SMALLINT:
      return { type: new Int16(), convert: same };
    case DuckDBTypeId.INTEGER:
      return { type: new Int32(), convert: same };
    case DuckDBTypeId.BIGINT:
      return { type: new Int64(), convert: same };
    case DuckDBTypeId.UTINYINT:
      return { type: new Uint8(), convert: same };
    case DuckDBTypeId.USMALLINT:
      return { type: new Uint16(), convert: same };
    case DuckDBTypeId.UINTEGER:
      return { type: new Uint32(), convert: same };
    case DuckDBTypeId.UBIGINT:
      return { type: new Uint64(), convert: same };
    case DuckDBTypeId.FLOAT:
      return { type: new Float32(), convert: same };
    case DuckDBTypeId.DOUBLE:
      return { type: new Float64(), convert: same };
    case DuckDBTypeId.HUGEINT:
    case DuckDBTypeId.UHUGEINT:
      return { type: new Float64(), convert: (value) => (value === null ? null : Number(value)) };
    case DuckDBTypeId.DECIMAL:
      return {
        type: new Float64(),
        convert: (value) => (value instanceof DuckDBDecimalValue ? value.toDouble() : value),
      };
    case DuckDBTypeId.DATE:
      return {
        type: new DateDay(),
        convert: (value) => (value instanceof DuckDBDateValue ? value.days * 86_400_000 : null),
      };
    case DuckDBTypeId.TIMESTAMP:
      return {
        type: new TimestampMicrosecond(),
        convert: (value) => (value instanceof DuckDBTimestampValue ? value.micros : null),
        micros: true,
      };
    case DuckDBTypeId.TIMESTAMP_TZ:
      return {
        type: new TimestampMicrosecond("UTC"),
        convert: (value) => (value instanceof DuckDBTimestampTZValue ? value.micros : null),
        micros: true,
      };
    default:
      return { type: new Utf8(), convert: text };
  }
}

function text(value: DuckDBValue): string | null {
  return value === null ? null : valueText(value);
}

/** Writes a result as an Arrow IPC stream: `header()`, then `batch(rows)` per chunk, then `end()`. */
export class ArrowStreamEncoder {
  readonly #schema: Schema;
  readonly #codecs: ColumnCodec[];
  readonly #header: Uint8Array;
  readonly #end: Uint8Array;

  constructor(columns: ResultColumn[]) {
    this.#codecs = columns.map(codecFor);
    this.#schema = new Schema(
      columns.map((column, index) => new Field(column.name, (this.#codecs[index] as ColumnCodec).type, true)),
    );
    const empty = serialize(this.#schema, null);
    // An empty stream is the schema message and the 8-byte end-of-stream marker.
    this.#header = empty.subarray(0, empty.length - 8);
    this.#end = empty.subarray(empty.length - 8);
  }

  header(): Uint8Array {
    return this.#header;
  }

  batch(rows: DuckDBValue[][]): Uint8Array {
    if (rows.length === 0) return new Uint8Array(0);
    const children = this.#codecs.map((codec, index): Data => {
      const values = rows.map((row) => codec.convert(row[index] ?? null));
      return codec.micros
        ? microsData(codec.type as TimestampMicrosecond, values as (bigint | null)[])
        : (vectorFromArray(values, codec.type).data[0] as Data);
    });
    const data = makeData({
      type: new Struct(this.#schema.fields),
      length: rows.length,
      nullCount: 0,
      children,
    });
    const stream = serialize(this.#schema, new RecordBatch(this.#schema, data));
    return stream.subarray(this.#header.length, stream.length - this.#end.length);
  }

  end(): Uint8Array {
    return this.#end;
  }
}

/** A whole IPC stream of the schema and at most one batch. */
function serialize(schema: Schema, batch: RecordBatch | null): Uint8Array {
  const writer = new RecordBatchStreamWriter();
  if (batch) writer.write(batch);
  else {
    writer.reset(undefined, schema);
    writer.write(new Table(schema));
  }
  writer.finish();
  return writer.toUint8Array(true);
}

/** A timestamp column from microseconds since the epoch, with its validity bitmap. */
function microsData(type: TimestampMicrosecond, micros: (bigint | null)[]) {
  const values = new BigInt64Array(micros.length);
  const validity = new Uint8Array(Math.ceil(micros.length / 8));
  let nullCount = 0;
  for (let index = 0; index < micros.length; index++) {
    const value = micros[index];
    if (value === null || value === undefined) {
      nullCount++;
      continue;
    }
    values[index] = value;
    validity[index >> 3] = (validity[index >> 3] as number) | (1 << (index & 7));
  }
  return makeData({ type, length: micros.length, nullCount, nullBitmap: validity, data: values });
}
