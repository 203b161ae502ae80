/**
 * PostgreSQL frontend/backend protocol 3.0 framing: reading what clients send and
 * encoding what the server answers (https://www.postgresql.org/docs/current/protocol-message-formats.html).
 */

export const PROTOCOL_3 = 196_608;
export const SSL_REQUEST = 80_877_103;
export const GSSENC_REQUEST = 80_877_104;
export const CANCEL_REQUEST = 80_877_102;

/** Reads the fields of one message body. */
export class MessageReader {
  #offset = 0;

  constructor(private readonly data: Buffer) {}

  int16(): number {
    const value = this.data.readInt16BE(this.#offset);
    this.#offset += 2;
    return value;
  }

  int32(): number {
    const value = this.data.readInt32BE(this.#offset);
    this.#offset += 4;
    return value;
  }

  byte(): number {
    return this.data[this.#offset++] as number;
  }

  /** A NUL-terminated UTF-8 string. */
  cstring(): string {
    const end = this.data.indexOf(0, this.#offset);
    if (end === -1) throw new ProtocolError("a string in the message is not NUL-terminated");
    const value = this.data.toString("utf8", this.#offset, end);
    this.#offset = end + 1;
    return value;
  }

  bytes(length: number): Buffer {
    if (this.#offset + length > this.data.length)
      throw new ProtocolError("a message is shorter than it says");
    const value = this.data.subarray(this.#offset, this.#offset + length);
    this.#offset += length;
    return value;
  }

  rest(): Buffer {
    return this.data.subarray(this.#offset);
  }
}

/** A client broke the protocol: the connection is closed after telling it why. */
export class ProtocolError extends Error {}

/** Builds one backend message: type byte, length, body. */
export class MessageWriter {
  readonly #parts: Buffer[] = [];
  #length = 0;

  constructor(private readonly type: string) {}

  int16(value: number): this {
    const part = Buffer.allocUnsafe(2);
    part.writeInt16BE(value);
    return this.#push(part);
  }

  int32(value: number): this {
    const part = Buffer.allocUnsafe(4);
    part.writeInt32BE(value);
    return this.#push(part);
  }

  cstring(value: string): this {
    return this.#push(Buffer.from(`${value}\0`, "utf8"));
  }

  bytes(value: Buffer): this {
    return this.#push(value);
  }

  end(): Buffer {
    const header = Buffer.allocUnsafe(5);
    header.write(this.type, 0, "latin1");
    header.writeInt32BE(this.#length + 4, 1);
    return Buffer.concat([header, ...this.#parts], 5 + this.#length);
  }

  #push(part: Buffer): this {
    this.#parts.push(part);
    this.#length += part.length;
    return this;
  }
}

/** Splits a byte stream into messages; the startup phase has no type byte. */
export class MessageSplitter {
  #pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): void {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
  }

  /** The next startup-phase packet (length-prefixed, no type), or null until it has arrived. */
  nextStartup(): Buffer | null {
    if (this.#pending.length < 4) return null;
    const length = this.#pending.readInt32BE(0);
    if (length < 8 || length > 10_000) throw new ProtocolError(`invalid startup packet length ${length}`);
    return this.#take(length, 4);
  }

  /** The next typed message, or null until it has arrived. */
  next(maxBytes: number): { type: string; body: Buffer } | null {
    if (this.#pending.length < 5) return null;
    const length = this.#pending.readInt32BE(1);
    if (length < 4 || length > maxBytes) throw new ProtocolError(`invalid message length ${length}`);
    const type = String.fromCharCode(this.#pending[0] as number);
    const body = this.#take(length + 1, 5);
    return body === null ? null : { type, body };
  }

  #take(total: number, headerBytes: number): Buffer | null {
    if (this.#pending.length < total) return null;
    const body = this.#pending.subarray(headerBytes, total);
    this.#pending = this.#pending.subarray(total);
    return body;
  }
}

export const authenticationOk = (): Buffer => new MessageWriter("R").int32(0).end();

export const parameterStatus = (name: string, value: string): Buffer =>
  new MessageWriter("S").cstring(name).cstring(value).end();

export const backendKeyData = (processId: number, secret: number): Buffer =>
  new MessageWriter("K").int32(processId).int32(secret).end();

export type TransactionStatus = "I" | "T" | "E";

export const readyForQuery = (status: TransactionStatus): Buffer =>
  new MessageWriter("Z").bytes(Buffer.from(status, "latin1")).end();

export const commandComplete = (tag: string): Buffer => new MessageWriter("C").cstring(tag).end();

/** CopyOutResponse: textual COPY data (text or CSV) of `columns` columns follows. */
export const copyOutResponse = (columns: number): Buffer => {
  const writer = new MessageWriter("H").bytes(Buffer.from([0])).int16(columns);
  for (let index = 0; index < columns; index++) writer.int16(0);
  return writer.end();
};

/** CopyData messages, one per line (as PostgreSQL sends them; psycopg reads a row per message). */
export const copyData = (lines: readonly string[]): Buffer => {
  const messages: Buffer[] = [];
  for (const line of lines) {
    const body = Buffer.from(line, "utf8");
    const header = Buffer.allocUnsafe(5);
    header.write("d", 0, "latin1");
    header.writeInt32BE(body.length + 4, 1);
    messages.push(header, body);
  }
  return Buffer.concat(messages);
};

export const copyDone = (): Buffer => new MessageWriter("c").end();

export const emptyQueryResponse = (): Buffer => new MessageWriter("I").end();
export const parseComplete = (): Buffer => new MessageWriter("1").end();
export const bindComplete = (): Buffer => new MessageWriter("2").end();
export const closeComplete = (): Buffer => new MessageWriter("3").end();
export const noData = (): Buffer => new MessageWriter("n").end();
export const portalSuspended = (): Buffer => new MessageWriter("s").end();

export const parameterDescription = (typeOids: number[]): Buffer => {
  const message = new MessageWriter("t").int16(typeOids.length);
  for (const oid of typeOids) message.int32(oid);
  return message.end();
};

export interface FieldDescription {
  name: string;
  typeOid: number;
  /** Size in bytes, or -1 for variable length. */
  typeSize: number;
  /** 0 text, 1 binary. */
  format: number;
}

export const rowDescription = (fields: FieldDescription[]): Buffer => {
  const message = new MessageWriter("T").int16(fields.length);
  for (const field of fields) {
    message.cstring(field.name).int32(0).int16(0).int32(field.typeOid).int16(field.typeSize).int32(-1);
    message.int16(field.format);
  }
  return message.end();
};

/**
 * DataRow messages, many rows into one buffer: a value is text (written as UTF-8), bytes
 * (binary format), or null for SQL NULL.
 */
export class DataRows {
  #buffer = Buffer.allocUnsafe(64 * 1024);
  #length = 0;

  row(values: readonly (string | Buffer | null)[]): void {
    const start = this.#length;
    this.#reserve(7);
    this.#buffer.write("D", start, "latin1");
    this.#buffer.writeInt16BE(values.length, start + 5);
    this.#length += 7;
    for (const value of values) {
      if (value === null) {
        this.#reserve(4);
        this.#length = this.#buffer.writeInt32BE(-1, this.#length);
        continue;
      }
      const size = typeof value === "string" ? Buffer.byteLength(value, "utf8") : value.length;
      this.#reserve(4 + size);
      this.#length = this.#buffer.writeInt32BE(size, this.#length);
      if (typeof value === "string") this.#buffer.write(value, this.#length, "utf8");
      else value.copy(this.#buffer, this.#length);
      this.#length += size;
    }
    this.#buffer.writeInt32BE(this.#length - start - 1, start + 1);
  }

  /** The messages written so far. */
  messages(): Buffer {
    return this.#buffer.subarray(0, this.#length);
  }

  #reserve(bytes: number): void {
    if (this.#length + bytes <= this.#buffer.length) return;
    const larger = Buffer.allocUnsafe(Math.max(this.#buffer.length * 2, this.#length + bytes));
    this.#buffer.copy(larger, 0, 0, this.#length);
    this.#buffer = larger;
  }
}

export interface ErrorFields {
  severity: "ERROR" | "FATAL";
  /** SQLSTATE, e.g. 42601. */
  code: string;
  message: string;
  detail?: string;
  hint?: string;
}

export const errorResponse = (error: ErrorFields): Buffer => {
  const message = new MessageWriter("E");
  const field = (code: string, value: string) => message.bytes(Buffer.from(code, "latin1")).cstring(value);
  field("S", error.severity);
  field("V", error.severity);
  field("C", error.code);
  field("M", error.message);
  if (error.detail) field("D", error.detail);
  if (error.hint) field("H", error.hint);
  return message.bytes(Buffer.from([0])).end();
};

export const noticeResponse = (text: string): Buffer => {
  const message = new MessageWriter("N");
  const field = (code: string, value: string) => message.bytes(Buffer.from(code, "latin1")).cstring(value);
  field("S", "WARNING");
  field("V", "WARNING");
  field("C", "01000");
  field("M", text);
  return message.bytes(Buffer.from([0])).end();
};
