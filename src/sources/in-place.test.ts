import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { scanFile } from "./formats.js";
import { tempSources } from "./test-support.js";

type Sources = Awaited<ReturnType<typeof tempSources>>;

/** More rows than the first-rows sample CSV types are inferred from (100,000). */
const ROWS = 150_000;
/** A row past the sample, where the files below change what their columns hold. */
const LATE = 140_000;

/** A CSV file of ROWS rows: `header`, then `row(i)` for i = 1..ROWS. */
const csv = (header: string, row: (i: number) => string): string => {
  const lines = [header];
  for (let i = 1; i <= ROWS; i++) lines.push(row(i));
  return `${lines.join("\n")}\n`;
};

describe("loading large CSV files in place: types from every value, not only the first rows", () => {
  let sources: Sources;
  before(async () => {
    sources = await tempSources();
  });
  after(async () => {
    await sources.close();
  });

  test("a value past the sample that widens a column gives the type inferred from every value", async () => {
    const outcome = await sources.load(
      "late.csv",
      csv("id,qty,note,big,day", (i) =>
        [
          i,
          i === LATE ? "1.5" : i,
          // Empty in the sample: its type comes from the later values.
          i >= LATE ? "2026-11-05" : "",
          // Integers too long for BIGINT are text, unless a fraction comes along.
          i === LATE ? "1.25" : "12345678901234567890",
          i === LATE ? "2026-11-05 10:00:00" : "2026-11-05",
        ].join(","),
      ),
      { table: "late" },
    );
    assert.equal(outcome.run.status, "loaded", outcome.message);
    assert.equal(outcome.run.rows, ROWS);
    assert.deepEqual(await sources.types("late"), {
      id: "INTEGER",
      qty: "DECIMAL(18,1)",
      note: "DATE",
      big: "DOUBLE",
      day: "TIMESTAMP",
    });
    assert.deepEqual(
      await sources.rows(
        `SELECT id, qty::VARCHAR, note::VARCHAR, big::VARCHAR, day::VARCHAR FROM late WHERE id IN (1, ${LATE}) ORDER BY id`,
      ),
      [
        [1, "1.0", null, "1.2345678901234567e+19", "2026-11-05 00:00:00"],
        [LATE, "1.5", "2026-11-05", "1.25", "2026-11-05 10:00:00"],
      ],
    );
    assert.equal(await lakeFiles("late"), 1);
  });

  test("values of the sample's types keep them, text stays text, and rows keep the file's order", async () => {
    const outcome = await sources.load(
      "steady.csv",
      csv("id,code,paid", (i) => `${i},${i === LATE ? "007" : i},${i % 2 === 0 ? "yes" : "no"}`),
      { table: "steady" },
    );
    assert.equal(outcome.run.status, "loaded", outcome.message);
    assert.deepEqual(await sources.types("steady"), { id: "INTEGER", code: "VARCHAR", paid: "BOOLEAN" });
    // The lake file holds the rows in the file's order.
    const connection = await sources.engine.connect();
    const lake = join(sources.dataDir, "lake", "steady", "*.parquet");
    const order = await connection.runAndReadAll(
      `SELECT bool_and(id = file_row_number + 1), count(*) FROM read_parquet('${lake}', file_row_number = true)`,
    );
    connection.closeSync();
    assert.deepEqual(order.getRowsJson(), [[true, String(ROWS)]]);
  });

  test("values with spaces around are trimmed, in the sample and past it", async () => {
    const outcome = await sources.load(
      "padded.csv",
      csv("id,qty,day", (i) => (i === 7 || i === LATE ? `${i}, ${i} , 2026-11-05` : `${i},${i},2026-11-05`)),
      { table: "padded" },
    );
    assert.equal(outcome.run.status, "loaded", outcome.message);
    assert.deepEqual(await sources.types("padded"), { id: "INTEGER", qty: "INTEGER", day: "DATE" });
    assert.deepEqual(
      await sources.rows(`SELECT qty, day::VARCHAR FROM padded WHERE id IN (7, ${LATE}) ORDER BY id`),
      [
        [7, "2026-11-05"],
        [LATE, "2026-11-05"],
      ],
    );
  });

  test("a value past the sample that the table's column cannot hold rejects the file, naming its row", async () => {
    const before = await sources.rows("SELECT count(*) FROM steady");
    const outcome = await sources.load(
      "bad.csv",
      csv("id,code,paid", (i) => `${ROWS + i},${i},${i === LATE ? "maybe" : "yes"}`),
      { table: "steady" },
    );
    assert.equal(outcome.run.status, "failed");
    assert.equal(
      outcome.message,
      `bad.csv rejected: column "paid" is BOOLEAN in table steady, but row ${LATE} has "maybe", which is not a boolean (true/false/yes/no)`,
    );
    assert.deepEqual(await sources.rows("SELECT count(*) FROM steady"), before);
    // The write that stopped at the value left no file behind.
    assert.equal(await lakeFiles("steady"), 1);
  });

  test("the file's encoding is found across read chunks: a character cut at a chunk's end is UTF-8", async () => {
    // "é" is two bytes: with one byte of padding, one of them straddles the 1 MiB chunk boundary.
    const text = `a${"é".repeat(1 << 20)}\n`;
    assert.equal((await scanFile(await sources.file("accents.csv", text))).encoding, "utf-8");
    const cut = await sources.file("cut.csv", Buffer.concat([Buffer.from(text), Buffer.from([0xc3])]));
    assert.equal((await scanFile(cut)).encoding, "windows-1252");
  });

  async function lakeFiles(table: string): Promise<number> {
    return (await readdir(join(sources.dataDir, "lake", table))).filter((name) => name.endsWith(".parquet"))
      .length;
  }
});
