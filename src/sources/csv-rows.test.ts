import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { endsQuoted, lastRowEnd } from "./csv-rows.js";

describe("row ends in CSV text arriving in chunks", () => {
  const text = '1,"a\nb",x\n2,"say ""hi""\n",\n3,,""\n';

  test("a newline inside quotes is not a row end, wherever the chunk starts", () => {
    assert.equal(lastRowEnd(Buffer.from(text), false), text.length);
    assert.equal(lastRowEnd(Buffer.from('1,"a\nb'), false), 0);
    // The chunk starts inside "a\nb": its first newline ends row 1.
    assert.equal(lastRowEnd(Buffer.from('b",x\n2,"c\nd'), true), 5);
    assert.equal(lastRowEnd(Buffer.from("no newline"), false), 0);
  });

  test("cutting every chunk at its last row end gives whole rows, whatever the chunk size", () => {
    const bytes = Buffer.from(text.repeat(50));
    for (let size = 1; size <= 40; size++) {
      const rows: string[] = [];
      let pending = Buffer.alloc(0);
      let quoted = false;
      for (let at = 0; at < bytes.length; at += size) {
        const chunk = bytes.subarray(at, at + size);
        const end = lastRowEnd(chunk, quoted);
        quoted = endsQuoted(chunk, quoted);
        if (end > 0) {
          rows.push(Buffer.concat([pending, chunk.subarray(0, end)]).toString());
          pending = Buffer.from(chunk.subarray(end));
        } else pending = Buffer.concat([pending, chunk]);
      }
      assert.equal(pending.length, 0, `chunks of ${size}`);
      assert.equal(rows.join(""), text.repeat(50), `chunks of ${size}`);
      assert.ok(
        rows.every((part) => part.endsWith("\n") && !endsQuoted(Buffer.from(part), false)),
        `chunks of ${size}: every part is whole rows`,
      );
    }
  });
});
