import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { brotliCompressSync, deflateRawSync, deflateSync, gzipSync } from "node:zlib";
import { batchItemSpans, decodeBody } from "./body.js";

describe("decodeBody", () => {
  it("passes plain bodies through and refuses ones over the limit with 413", () => {
    const body = Buffer.from('{"a":1}');
    assert.equal(decodeBody(body, undefined, 100), body);
    assert.equal(decodeBody(body, "identity", 100), body);
    const tooLarge = decodeBody(Buffer.alloc(200, "x"), undefined, 100);
    assert.ok(!Buffer.isBuffer(tooLarge));
    assert.equal(tooLarge.status, 413);
    assert.equal(tooLarge.payload, "x".repeat(100));
  });

  it("inflates gzip", () => {
    const decoded = decodeBody(gzipSync('{"a":1}'), " GZIP ", 100);
    assert.ok(Buffer.isBuffer(decoded));
    assert.equal(decoded.toString(), '{"a":1}');
  });

  it("refuses invalid gzip with 400 and keeps the body in base64", () => {
    const problem = decodeBody(Buffer.from("not gzip at all"), "gzip", 100);
    assert.ok(!Buffer.isBuffer(problem));
    assert.equal(problem.status, 400);
    assert.match(problem.reason, /not valid gzip/);
    assert.equal(Buffer.from(problem.payload, "base64").toString(), "not gzip at all");
  });

  it("stops inflating a gzip bomb at the limit", () => {
    // 300 gzip members of 1 MB of zeros each: 300 MB decoded from about 300 KB.
    const bomb = Buffer.concat(new Array(300).fill(gzipSync(Buffer.alloc(1_000_000))));
    const before = process.memoryUsage().arrayBuffers;
    const problem = decodeBody(bomb, "gzip", 512_000);
    assert.ok(!Buffer.isBuffer(problem));
    assert.equal(problem.status, 413);
    assert.ok(process.memoryUsage().arrayBuffers - before < 50_000_000);
    assert.ok(problem.payload.length <= 512_000);
  });

  it("decodes deflate (zlib-wrapped or raw) and br, and stops each at the limit", () => {
    const json = '{"a":1}';
    for (const [encoded, encoding] of [
      [deflateSync(json), "deflate"],
      [deflateRawSync(json), "deflate"],
      [brotliCompressSync(json), "br"],
    ] as const) {
      const decoded = decodeBody(encoded, encoding, 100);
      assert.ok(Buffer.isBuffer(decoded), encoding);
      assert.equal(decoded.toString(), json);
    }
    const bomb = brotliCompressSync(Buffer.alloc(50_000_000));
    const problem = decodeBody(bomb, "br", 512_000);
    assert.ok(!Buffer.isBuffer(problem));
    assert.equal(problem.status, 413);
    assert.match(problem.reason, /once br-decoded/);
    const invalid = decodeBody(Buffer.from("not brotli"), "br", 100);
    assert.ok(!Buffer.isBuffer(invalid));
    assert.equal(invalid.status, 400);
  });

  it("refuses other encodings with 415", () => {
    const problem = decodeBody(Buffer.from("x"), "zstd", 100);
    assert.ok(!Buffer.isBuffer(problem));
    assert.equal(problem.status, 415);
  });
});

/** A small deterministic generator (mulberry32). */
function randomGenerator(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const TRICKY_STRINGS = [
  "batch",
  'q"uote',
  "back\\slash",
  "ends in a backslash\\",
  '\\"\\\\"',
  "[",
  "]",
  "{",
  "}",
  ",",
  "é✓😀",
  "\n\t",
  "\u0000",
  "",
];

function randomValue(random: () => number, depth: number): unknown {
  const pick = Math.floor(random() * (depth > 3 ? 4 : 6));
  if (pick === 0) return Math.round(random() * 1e6) / 100;
  if (pick === 1) return TRICKY_STRINGS[Math.floor(random() * TRICKY_STRINGS.length)];
  if (pick === 2) return [true, false, null][Math.floor(random() * 3)];
  if (pick === 3) return -1e21;
  if (pick === 4)
    return Array.from({ length: Math.floor(random() * 4) }, () => randomValue(random, depth + 1));
  const object: Record<string, unknown> = {};
  for (let i = Math.floor(random() * 4); i > 0; i--) {
    object[TRICKY_STRINGS[Math.floor(random() * TRICKY_STRINGS.length)] as string] = randomValue(
      random,
      depth + 1,
    );
  }
  return object;
}

/** JSON text with random whitespace between tokens. */
function render(value: unknown, random: () => number): string {
  const space = () => [" ", "", "\n ", "\t", "\r\n"][Math.floor(random() * 5)] as string;
  if (Array.isArray(value))
    return `[${space()}${value.map((item) => render(item, random)).join(`${space()},${space()}`)}${space()}]`;
  if (typeof value === "object" && value !== null) {
    const members = Object.entries(value).map(
      ([key, item]) => `${JSON.stringify(key)}${space()}:${space()}${render(item, random)}`,
    );
    return `{${space()}${members.join(`,${space()}`)}${space()}}`;
  }
  return JSON.stringify(value);
}

describe("batchItemSpans", () => {
  it("finds each item of the top-level batch, whatever the spacing and content", () => {
    const random = randomGenerator(7);
    for (let round = 0; round < 500; round++) {
      const items = Array.from({ length: Math.floor(random() * 6) }, () => randomValue(random, 1));
      const body = { writeKey: "k", context: { batch: [1, 2] }, batch: items, sentAt: "batch" };
      const json = Buffer.from(render(body, random));
      const spans = batchItemSpans(json);
      assert.ok(spans !== undefined);
      assert.equal(spans.length, items.length * 2);
      items.forEach((item, index) => {
        const text = json.toString("utf8", spans[2 * index], spans[2 * index + 1]);
        assert.deepEqual(JSON.parse(text), item);
        assert.equal(text.trim(), text);
      });
    }
  });

  it("follows JSON.parse for a repeated batch key, and gives up on an escaped one", () => {
    const spans = batchItemSpans(Buffer.from('{"batch":[1,2,3],"batch":[ {"a":1} ]}'));
    assert.deepEqual(spans, [27, 34]);
    assert.equal(batchItemSpans(Buffer.from('{"b\\u0061tch":[1]}')), undefined);
    assert.equal(batchItemSpans(Buffer.from('{"x":"batch","y":[1]}')), undefined);
  });
});
