import assert from "node:assert/strict";
import { test } from "node:test";
import { formatIsoMillis, parseIsoMillis } from "./iso-time.js";

// Years 1 to 9999, the range the collector accepts.
const MIN_MS = -62135596800000;
const MAX_MS = 253402300799999;

/** Instants spread over the whole range, plus the edges and some calendar corners. */
function instants(): number[] {
  const random = Array.from({ length: 200_000 }, () =>
    Math.floor(MIN_MS + Math.random() * (MAX_MS - MIN_MS)),
  );
  const corners = [
    "1970-01-01",
    "1900-02-28",
    "2000-02-29",
    "2024-02-29",
    "2100-03-01",
    "1600-12-31",
  ].flatMap((day) => [Date.parse(`${day}T00:00:00.000Z`), Date.parse(`${day}T23:59:59.999Z`)]);
  return [...random, ...corners, MIN_MS, MAX_MS, 0, -1, 1];
}

test("formatIsoMillis writes what toISOString writes", () => {
  for (const ms of instants()) assert.equal(formatIsoMillis(ms), new Date(ms).toISOString(), String(ms));
});

test("parseIsoMillis reads the canonical form as Date.parse does, up to day 28", () => {
  for (const ms of instants()) {
    const text = new Date(ms).toISOString();
    const day = Number(text.slice(8, 10));
    assert.equal(parseIsoMillis(text), day <= 28 ? ms : undefined, text);
  }
});

test("parseIsoMillis leaves every other form to Date.parse", () => {
  for (const text of [
    "2024-05-01T12:00:00Z",
    "2024-05-01T12:00:00.000+00:00",
    "2024-05-01T12:00:00.0000",
    "2024-05-01",
    "2024-05-01T24:00:00.000Z",
    "2024-13-01T00:00:00.000Z",
    "2024-00-01T00:00:00.000Z",
    "2024-05-00T00:00:00.000Z",
    "2024-05-01T12:60:00.000Z",
    "2024-05-01T12:00:60.000Z",
    "2024-05-01t12:00:00.000Z",
    "2024-05-01T12:00:00.000z",
    "2024-05-01T12:00:00,000Z",
    "+02024-05-01T12:00:00.00Z",
    "2O24-05-01T12:00:00.000Z",
    "2024-05-01T1 :00:00.000Z",
    "2024-05-01T12:00:00.0-0Z",
    "",
  ]) {
    assert.equal(parseIsoMillis(text), undefined, text);
  }
});
