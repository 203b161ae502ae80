import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { createEngine } from "./engine.js";

test("a query past the memory and spill limits fails with DuckDB's reason, and the engine goes on", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-engine-"));
  const engine = await createEngine({
    threads: 2,
    memoryLimit: "100MB",
    sandbox: { readableDirs: [dir], tempDir: join(dir, "tmp"), spillLimit: "20MB" },
  });
  const connection = await engine.connect();
  try {
    await assert.rejects(
      connection.run("SELECT count(DISTINCT range::VARCHAR || 'x') FROM range(20000000)"),
      /Out of Memory Error/,
    );
    assert.deepEqual((await connection.runAndReadAll("SELECT 42")).getRows(), [[42]]);
    // The limits are locked like the rest of the sandbox.
    await assert.rejects(
      connection.run("SET max_temp_directory_size = '1TB'"),
      /configuration has been locked/,
    );
  } finally {
    connection.closeSync();
    engine.closeSync();
    await rm(dir, { recursive: true, force: true });
  }
});
