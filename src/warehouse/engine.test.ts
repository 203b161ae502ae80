import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, rm } from "node:fs/promises";
import { tmpdir, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { test } from "node:test";
import { engineResources } from "../config/index.js";
import { createEngine } from "./engine.js";

test("a query past the memory and spill limits fails with DuckDB's reason, and the engine goes on", async () => {
  const dir = await mkdtemp(join(tmpdir(), "sluice-engine-"));
  const engine = await createEngine({
    threads: 2,
    memoryLimit: "100MB",
    tempDir: join(dir, "tmp"),
    sandbox: { readableDirs: [dir], spillLimit: "20MB" },
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

test("unless a limit is set, engines get a share of the RAM and spill into the data dir, not the current folder", async () => {
  const dataDir = await mkdtemp(join(tmpdir(), "sluice-engine-"));
  const setting = async (resources: { memoryLimit: string; tempDir: string }) => {
    const engine = await createEngine({ threads: 1, ...resources });
    const connection = await engine.connect();
    try {
      const [row] = (
        await connection.runAndReadAll(
          "SELECT current_setting('memory_limit'), current_setting('temp_directory')",
        )
      ).getRows() as [string, string][];
      return row as [string, string];
    } finally {
      connection.closeSync();
      engine.closeSync();
    }
  };
  const gib = (text: string) => {
    const match = /^([\d.]+) (MiB|GiB)$/.exec(text);
    assert.ok(match, `memory_limit ${text}`);
    return Number(match[1]) / (match[2] === "MiB" ? 1024 : 1);
  };
  try {
    const unset = { data_dir: dataDir, duckdb_memory_limit: "" };
    const [foreground, foregroundTemp] = await setting(engineResources(unset, "foreground"));
    const [background] = await setting(engineResources(unset, "background"));
    const ram = totalmem() / 2 ** 30;
    assert.ok(Math.abs(gib(foreground) - ram * 0.5) < 0.1, `${foreground} is half of ${ram} GiB`);
    assert.ok(Math.abs(gib(background) - ram * 0.15) < 0.1, `${background} is 15% of ${ram} GiB`);
    assert.match(foregroundTemp, new RegExp(`^${join(dataDir, "tmp")}/${process.pid}-\\d+$`));
    const set = { data_dir: dataDir, duckdb_memory_limit: "300MB" };
    for (const role of ["foreground", "background"] as const) {
      assert.equal(engineResources(set, role).memoryLimit, "300MB", `${role}: the configured limit`);
    }
  } finally {
    await rm(dataDir, { recursive: true, force: true });
  }
});

test("engines spilling at once into one temp folder each get their own, and a gone process's folder is removed", async () => {
  const tempDir = join(await mkdtemp(join(tmpdir(), "sluice-engine-")), "tmp");
  // A folder left by a process that is gone (no process has pid 2^22 + 1 on Linux's default pid_max).
  const stale = join(tempDir, `${2 ** 22 + 1}-1`);
  await mkdir(stale, { recursive: true });
  const engines = await Promise.all(
    [1, 2].map(() => createEngine({ threads: 1, memoryLimit: "60MB", tempDir })),
  );
  try {
    assert.equal(existsSync(stale), false);
    // Past 60 MB each: both spill. In one shared folder they read each other's spill files.
    const answers = await Promise.all(
      engines.map(async (engine) => {
        const connection = await engine.connect();
        try {
          const reader = await connection.runAndReadAll(
            "SELECT count(*)::INTEGER FROM (SELECT DISTINCT hash(range) FROM range(6000000))",
          );
          return reader.getRows();
        } finally {
          connection.closeSync();
        }
      }),
    );
    assert.deepEqual(answers, [[[6000000]], [[6000000]]]);
  } finally {
    for (const engine of engines) engine.closeSync();
    await rm(dirname(tempDir), { recursive: true, force: true });
  }
});
