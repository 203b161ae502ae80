import assert from "node:assert/strict";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { ConfigError, DEFAULTS, loadConfig, writeKeys } from "./index.js";

async function withDataDir(yaml: string | null, run: (dir: string) => void | Promise<void>) {
  const dir = await mkdtemp(join(tmpdir(), "sluice-config-"));
  try {
    if (yaml !== null) await writeFile(join(dir, "sluice.yaml"), yaml);
    await run(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe("configuration", () => {
  test("defaults apply when nothing is set", async () => {
    await withDataDir(null, (dir) => {
      const config = loadConfig({ env: {}, overrides: { data_dir: dir } });
      assert.equal(config.port, DEFAULTS.port);
      assert.equal(config.flush_interval_ms, 250);
      assert.equal(config.data_dir, dir);
    });
  });

  test("sluice.yaml, then SLUICE_<KEY> variables, then flags", async () => {
    await withDataDir(
      "port: 9000\nflush_interval_ms: 500\nfsync: false\nwrite_keys:\n  k2: mobile\n",
      (dir) => {
        const fromFile = loadConfig({ env: {}, overrides: { data_dir: dir } });
        assert.deepEqual([fromFile.port, fromFile.flush_interval_ms, fromFile.fsync], [9000, 500, false]);
        const fromEnv = loadConfig({
          env: { SLUICE_PORT: "9100", SLUICE_FSYNC: "true", SLUICE_WRITE_KEY: "k1" },
          overrides: { data_dir: dir },
        });
        assert.deepEqual([fromEnv.port, fromEnv.flush_interval_ms, fromEnv.fsync], [9100, 500, true]);
        assert.deepEqual(
          [...writeKeys(fromEnv)],
          [
            ["k2", "mobile"],
            ["k1", "default"],
          ],
        );
        const fromFlag = loadConfig({
          env: { SLUICE_PORT: "9100" },
          overrides: { data_dir: dir, port: 9200 },
        });
        assert.equal(fromFlag.port, 9200);
      },
    );
  });

  test("SLUICE_DATA_DIR picks the data dir, and so the config file", async () => {
    await withDataDir("port: 9300\n", (dir) => {
      assert.equal(loadConfig({ env: { SLUICE_DATA_DIR: dir } }).port, 9300);
    });
  });

  test("mistakes are clear errors naming the key", async () => {
    await withDataDir("prot: 9000\n", (dir) => {
      assert.throws(() => loadConfig({ env: {}, overrides: { data_dir: dir } }), /unknown key "prot"/);
    });
    await withDataDir("port: [1\n", (dir) => {
      assert.throws(() => loadConfig({ env: {}, overrides: { data_dir: dir } }), /not valid YAML/);
    });
    await withDataDir(null, (dir) => {
      assert.throws(
        () => loadConfig({ env: { SLUICE_PORT: "eighty" }, overrides: { data_dir: dir } }),
        (error: Error) =>
          error instanceof ConfigError && /SLUICE_PORT must be a non-negative number/.test(error.message),
      );
      assert.throws(
        () => loadConfig({ env: { SLUICE_FSYNC: "maybe" }, overrides: { data_dir: dir } }),
        /true or false/,
      );
      assert.throws(() => loadConfig({ configFile: join(dir, "missing.yaml"), env: {} }), /does not exist/);
    });
  });
});
