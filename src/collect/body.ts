/** Reading raw request bodies: bounded decoding (gzip, deflate, br), and locating batch items in the raw JSON. */
import { brotliDecompressSync, gunzipSync, inflateRawSync, inflateSync } from "node:zlib";

/** Why a body cannot be read at all; the request is refused as a whole. */
export interface BodyProblem {
  status: 400 | 413 | 415;
  reason: string;
  /** What to quarantine: the body as text, or in base64 when it could not be decoded. */
  payload: string;
  /** The payload is base64 of bytes the collector could not read. */
  opaque?: boolean;
}

/** The Content-Encodings a collector reads, by name: each decodes at most `maxOutputLength` bytes. */
const DECODERS: Record<
  string,
  (body: Buffer, options: { maxOutputLength: number; chunkSize: number }) => Buffer
> = {
  gzip: gunzipSync,
  "x-gzip": gunzipSync,
  // HTTP's deflate is zlib-wrapped; some clients send the raw stream, which has no header to check.
  deflate: (body, options) =>
    (body[0] !== undefined && (body[0] & 0x0f) === 8 ? inflateSync : inflateRawSync)(body, options),
  br: brotliDecompressSync,
};

/**
 * The body after undoing its Content-Encoding (none, gzip, deflate or br), at most `maxBytes` long.
 * Decoding stops as soon as the output passes `maxBytes`, so a compression bomb costs no more memory than that.
 */
export function decodeBody(
  body: Buffer,
  contentEncoding: string | undefined,
  maxBytes: number,
): Buffer | BodyProblem {
  const encoding = contentEncoding?.trim().toLowerCase() ?? "";
  if (encoding === "" || encoding === "identity") {
    if (body.length <= maxBytes) return body;
    return {
      status: 413,
      reason: `The request body is ${body.length} bytes; the limit is ${maxBytes} bytes.`,
      payload: textPrefix(body, maxBytes),
    };
  }
  const decode = DECODERS[encoding];
  if (decode === undefined) {
    return {
      status: 415,
      reason: `Content-Encoding "${contentEncoding}" is not supported; send gzip, deflate, br or no encoding. The payload is the body in base64.`,
      payload: base64Prefix(body, maxBytes),
      opaque: true,
    };
  }
  try {
    // 64 KiB output chunks (default 16) inflate a typical batch in one or two steps.
    return decode(body, { maxOutputLength: maxBytes, chunkSize: 64 * 1024 });
  } catch (error) {
    const tooLarge = (error as { code?: unknown }).code === "ERR_BUFFER_TOO_LARGE";
    return {
      status: tooLarge ? 413 : 400,
      reason: tooLarge
        ? `The request body is larger than ${maxBytes} bytes once ${encoding}-decoded. The payload is the encoded body in base64.`
        : `The request body is not valid ${encoding} (${(error as Error).message}). The payload is the body in base64.`,
      payload: base64Prefix(body, maxBytes),
      opaque: true,
    };
  }
}

/** The body decoded (as `decodeBody`) and parsed as JSON, or why it cannot be. */
export function decodeJsonBody(
  body: Buffer,
  contentEncoding: string | undefined,
  maxBytes: number,
): { decoded: Buffer; text: string; value: unknown } | BodyProblem {
  const decoded = decodeBody(body, contentEncoding, maxBytes);
  if (!Buffer.isBuffer(decoded)) return decoded;
  const text = decoded.toString("utf8");
  try {
    return { decoded, text, value: JSON.parse(text) };
  } catch (error) {
    return { status: 400, reason: invalidJsonReason(error), payload: text };
  }
}

/**
 * Why JSON.parse refused a body, without the text V8 quotes from around the error: it may be
 * personal data, and the reason is stored in the quarantine as it is.
 */
export function invalidJsonReason(error: unknown): string {
  const message = (error as Error).message.replace(
    /, (?:\.\.\.)?"[\s\S]*"(?:\.\.\.)? is not valid JSON$/,
    "",
  );
  return `The request body is not valid JSON (${message}).`;
}

/** The UTF-8 text of bytes[start, end), cut to at most `maxBytes` bytes without splitting a character. */
export function textPrefix(bytes: Buffer, maxBytes: number, start = 0, end = bytes.length): string {
  let cut = Math.min(end, start + maxBytes);
  if (cut < end) while (cut > start && ((bytes[cut] as number) & 0xc0) === 0x80) cut--;
  return bytes.toString("utf8", start, cut);
}

/** Base64 of as much of `bytes` as fits in `maxChars` characters. */
function base64Prefix(bytes: Buffer, maxChars: number): string {
  return bytes.toString("base64", 0, Math.floor(maxChars / 4) * 3);
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;

/**
 * Where each item of the top-level `batch` array sits in `json`, as [start0, end0, start1, end1, ...]
 * byte offsets, so an item's size is its size as sent, without serialising it again.
 * `json` must be a JSON object that JSON.parse accepted. Undefined when no `batch` array is found,
 * e.g. when the key is spelt with escapes; the caller then measures items another way.
 */
export function batchItemSpans(json: Buffer): number[] | undefined {
  let spans: number[] | undefined;
  let depth = 0;
  let expectingKey = false; // at depth 1, whether the next string is a key
  let keyIsBatch = false;
  let current: number[] | undefined; // spans of the batch array being scanned
  let itemStart = -1;
  let itemEnd = -1;
  for (let i = 0; i < json.length; i++) {
    const byte = json[i] as number;
    if (byte === 0x20 || byte === 0x0a || byte === 0x0d || byte === 0x09) continue;
    if (current !== undefined && depth === 2) {
      // Between or at the start of batch items.
      if (byte === COMMA || byte === CLOSE_BRACKET) {
        if (itemStart >= 0) current.push(itemStart, itemEnd);
        itemStart = -1;
        if (byte === CLOSE_BRACKET) {
          depth = 1;
          spans = current;
          current = undefined;
        }
        continue;
      }
      if (itemStart < 0) itemStart = i;
    }
    if (byte === QUOTE) {
      const start = i;
      i = closingQuote(json, i);
      if (depth === 1 && expectingKey) {
        keyIsBatch = isBatchKey(json, start, i);
        expectingKey = false;
      }
    } else if (byte === OPEN_BRACE || byte === OPEN_BRACKET) {
      depth++;
      if (depth === 1) expectingKey = byte === OPEN_BRACE;
      else if (depth === 2 && keyIsBatch && byte === OPEN_BRACKET) current = [];
    } else if (byte === CLOSE_BRACE || byte === CLOSE_BRACKET) {
      depth--;
    } else if (byte === COMMA && depth === 1) {
      expectingKey = true;
    }
    if (itemStart >= 0) itemEnd = i + 1;
  }
  return spans;
}

/**
 * The index of the quote closing the string that opens at `start` (json.length if none). Strings
 * are most of a body's bytes, so they are skipped with indexOf rather than byte by byte.
 */
function closingQuote(json: Buffer, start: number): number {
  let quote = json.indexOf(QUOTE, start + 1);
  while (quote !== -1 && isEscaped(json, quote)) quote = json.indexOf(QUOTE, quote + 1);
  return quote === -1 ? json.length : quote;
}

/** Whether the character at `at` follows an odd number of backslashes. */
function isEscaped(json: Buffer, at: number): boolean {
  let backslashes = 0;
  while (json[at - backslashes - 1] === BACKSLASH) backslashes++;
  return backslashes % 2 === 1;
}

function isBatchKey(json: Buffer, start: number, end: number): boolean {
  return (
    end - start === 6 &&
    json[start + 1] === 0x62 && // b
    json[start + 2] === 0x61 && // a
    json[start + 3] === 0x74 && // t
    json[start + 4] === 0x63 && // c
    json[start + 5] === 0x68 // h
  );
}
