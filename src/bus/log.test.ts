import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { appendFile, mkdir, mkdtemp, readdir, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import { BusLockedError, BusPositionError, busOwnerPid, openEmbeddedBus, type Topic } from "./index.js";

const tempDirs: string[] = [];
after(() => Promise.all(tempDirs.map((dir) => rm(dir, { recursive: true, force: true }))));

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), "sluice-bus-"));
  tempDirs.push(dir);
  return dir;
}

function record(id: number | string, paddingLength = 80): string {
  return JSON.stringify({ id, padding: "x".repeat(paddingLength) });
}

function records(from: number, count: number): string[] {
  return Array.from({ length: count }, (_, index) => record(from + index));
}

/** Reads from `from` to the end in batches of about `maxBytes`, checking every batch holds whole records. */
async function readAll(topic: Topic, maxBytes = 1 << 20, from = topic.start()): Promise<string[]> {
  const lines: string[] = [];
  let position = from;
  while (position < topic.end()) {
    const batch = await topic.read(position, maxBytes);
    assert.ok(batch.count > 0, "a read before the end returns at least one record");
    const text = batch.lines.toString("utf8");
    assert.ok(text.endsWith("\n"), "a batch ends with a whole record");
    const batchLines = text.slice(0, -1).split("\n");
    assert.equal(batchLines.length, batch.count);
    for (const line of batchLines) JSON.parse(line);
    assert.equal(batch.next, position + batch.lines.length);
    lines.push(...batchLines);
    position = batch.next;
  }
  return lines;
}

async function segmentFiles(dir: string): Promise<string[]> {
  return (await readdir(join(dir, "events"))).sort();
}

test("append then read returns exactly the records in order, never split", async () => {
  const dir = await tempDir();
  const bus = await openEmbeddedBus({ dir });
  const topic = await bus.topic("events");
  await topic.append(records(0, 10));
  await Promise.all([topic.append(records(10, 5)), topic.append(records(15, 5))]);
  await topic.append([record("big", 5000)]);
  const expected = [...records(0, 20), record("big", 5000)];

  assert.equal(topic.end(), Buffer.byteLength(`${expected.join("\n")}\n`));
  assert.deepEqual(await readAll(topic), expected);
  // Batches smaller than one record still return one whole record each.
  for (const maxBytes of [1, 50, 250, 1000]) assert.deepEqual(await readAll(topic, maxBytes), expected);

  const atEnd = await topic.read(topic.end(), 1000);
  assert.deepEqual(atEnd, { lines: Buffer.alloc(0), count: 0, next: topic.end() });
  await assert.rejects(topic.read(3, 1000), /not at a record boundary/);
  await assert.rejects(topic.read(topic.end() + 1, 1000), BusPositionError);
  await bus.close();
});

test("records that are not one JSON object line are rejected and nothing is written", async () => {
  const dir = await tempDir();
  const bus = await openEmbeddedBus({ dir });
  const topic = await bus.topic("events");
  for (const bad of ["", '{"a":\n1}', "[1,2]", '"text"', '{"a":"\0"}']) {
    await assert.rejects(topic.append([record(1), bad]), TypeError);
  }
  assert.equal(topic.end(), 0);
  await bus.close();
});

test("appendLines takes encoded records, checked like append, and groups them with appends in order", async () => {
  const dir = await tempDir();
  const bus = await openEmbeddedBus({ dir });
  const topic = await bus.topic("events");
  const encoded = (from: number, count: number) => Buffer.from(`${records(from, count).join("\n")}\n`);
  for (const bad of ["{}", "{}\n\n", '{"a":\n1}\n', "[1]\n", '{"a":"\0"}\n', "{}\n{"]) {
    await assert.rejects(topic.appendLines(Buffer.concat([encoded(0, 1), Buffer.from(bad)])), TypeError);
  }
  await assert.rejects(topic.appendLines(Buffer.from([0x7b, 0xff, 0x7d, 0x0a])), /UTF-8/);
  assert.equal(topic.end(), 0);
  await topic.appendLines(Buffer.alloc(0));

  const before = bus.stats();
  await Promise.all([
    topic.append(records(0, 3)),
    topic.appendLines(encoded(3, 4)),
    topic.append(records(7, 1)),
  ]);
  const after = bus.stats();
  assert.equal(after.records - before.records, 8);
  assert.equal(after.groups - before.groups, 1);
  assert.deepEqual(await readAll(topic), records(0, 8));
  await bus.close();
  await assert.rejects(topic.appendLines(encoded(8, 1)), /closed/);
});

test("1,000 concurrent appends share far fewer fsyncs", async () => {
  const dir = await tempDir();
  const bus = await openEmbeddedBus({ dir });
  const topic = await bus.topic("events");
  const before = bus.stats();
  await Promise.all(Array.from({ length: 1000 }, (_, id) => topic.append([record(id)])));
  const after = bus.stats();

  assert.equal(after.records - before.records, 1000);
  assert.ok(after.fsyncs - before.fsyncs <= 20, `${after.fsyncs - before.fsyncs} fsyncs for 1,000 appends`);
  assert.deepEqual(await readAll(topic), records(0, 1000));
  await bus.close();
});

test("segments rotate, are read across exactly once, and release old data", async () => {
  const dir = await tempDir();
  let bus = await openEmbeddedBus({ dir, segmentBytes: 1000 });
  let topic = await bus.topic("events");
  for (let id = 0; id < 200; id += 5) await topic.append(records(id, 5));

  const files = await segmentFiles(dir);
  assert.ok(files.length >= 10, `${files.length} segments`);
  assert.equal(files[0], "00000000000000000000.log");
  for (const file of files) assert.match(file, /^\d{20}\.log$/);
  for (const maxBytes of [100, 300, 5000]) assert.deepEqual(await readAll(topic, maxBytes), records(0, 200));

  const middle = topic.end() / 2;
  await topic.release(middle);
  const start = topic.start();
  assert.ok(start > 0 && start <= middle, `start ${start} moved up to ${middle}`);
  assert.equal(
    files.length - (await segmentFiles(dir)).length,
    files.indexOf(`${String(start).padStart(20, "0")}.log`),
  );
  await assert.rejects(topic.read(0, 1000), /was released; the topic now starts at/);
  const kept = await readAll(topic);
  assert.deepEqual(kept, records(200 - kept.length, kept.length));

  // Releasing everything keeps the active segment, and positions continue after a reopen.
  await topic.release(topic.end());
  assert.equal((await segmentFiles(dir)).length, 1);
  const end = topic.end();
  await bus.close();
  bus = await openEmbeddedBus({ dir, segmentBytes: 1000 });
  topic = await bus.topic("events");
  assert.equal(topic.end(), end);
  await topic.append([record(200)]);
  assert.deepEqual(await readAll(topic, 1000, end), [record(200)]);
  await bus.close();
});

test("roll starts a new segment after what was appended, so release can drop it before the segment fills", async () => {
  const dir = await tempDir();
  const bus = await openEmbeddedBus({ dir });
  const topic = await bus.topic("events");
  await bus.roll("events");
  assert.deepEqual(await segmentFiles(dir), ["00000000000000000000.log"], "an empty segment is kept");

  await topic.append(records(0, 5));
  const rolled = Promise.all([bus.roll("events"), topic.append(records(5, 3))]);
  await rolled;
  const files = await segmentFiles(dir);
  assert.equal(files.length, 2);
  assert.deepEqual(await readAll(topic), records(0, 8), "records read across the roll exactly once");

  // A consumer past the first five records: their segment goes, the rest stays readable.
  const firstFive = Buffer.byteLength(`${records(0, 5).join("\n")}\n`);
  await topic.release(firstFive);
  assert.deepEqual(await segmentFiles(dir), files.slice(1));
  assert.equal(topic.start(), firstFive);
  assert.deepEqual(await readAll(topic), records(5, 3));
  await bus.close();

  // Reopened, the topic goes on after the roll.
  const reopened = await openEmbeddedBus({ dir });
  const again = await reopened.topic("events");
  await again.append(records(8, 1));
  assert.deepEqual(await readAll(again), records(5, 4));
  await reopened.close();
});

test("a reader following the tail during appends and rotation sees every record once", async () => {
  const dir = await tempDir();
  const bus = await openEmbeddedBus({ dir, segmentBytes: 2000 });
  const topic = await bus.topic("events");
  const appending = (async () => {
    for (let id = 0; id < 500; id += 10) await topic.append(records(id, 10));
  })();
  const seen: string[] = [];
  for (let position = 0; seen.length < 500; ) {
    const batch = await topic.read(position, 700);
    if (batch.count === 0) await new Promise((resolve) => setImmediate(resolve));
    else seen.push(...batch.lines.toString("utf8").slice(0, -1).split("\n"));
    position = batch.next;
  }
  await appending;
  assert.deepEqual(seen, records(0, 500));
  await bus.close();
});

test("close() writes pending appends before releasing the directory", async () => {
  const dir = await tempDir();
  const bus = await openEmbeddedBus({ dir });
  const topic = await bus.topic("events");
  const appended = topic.append(records(0, 3));
  await bus.close();
  await appended;
  await assert.rejects(topic.append(records(3, 1)), /closed/);

  const reopened = await openEmbeddedBus({ dir });
  assert.deepEqual(await readAll(await reopened.topic("events")), records(0, 3));
  await reopened.close();
});

test("reopening cuts a torn tail and keeps every acknowledged record", async () => {
  const torn = Buffer.from('{"id":"torn","padd');
  const zeros = Buffer.alloc(4096);
  const validLineAfterZeros = Buffer.from('{"id":"after-zeros"}\n');
  for (const tail of [torn, Buffer.concat([torn, zeros]), Buffer.concat([zeros, validLineAfterZeros])]) {
    const dir = await tempDir();
    let bus = await openEmbeddedBus({ dir, segmentBytes: 2000 });
    let topic = await bus.topic("events");
    for (let id = 0; id < 50; id += 10) await topic.append(records(id, 10));
    const end = topic.end();
    await bus.close();
    const lastSegment = join(dir, "events", (await segmentFiles(dir)).at(-1) as string);
    const sizeBefore = (await stat(lastSegment)).size;
    await appendFile(lastSegment, tail);

    bus = await openEmbeddedBus({ dir, segmentBytes: 2000 });
    topic = await bus.topic("events");
    assert.equal((await stat(lastSegment)).size, sizeBefore);
    assert.equal(topic.end(), end);
    assert.deepEqual(await readAll(topic), records(0, 50));
    await topic.append([record(50)]);
    assert.deepEqual(await readAll(topic, 1000, end), [record(50)]);
    await bus.close();
  }
});

test("every append acknowledged before kill -9 is in the log exactly once", async () => {
  const dir = await tempDir();
  const script = fileURLToPath(new URL("./test-support/append-until-killed.ts", import.meta.url));
  const child = spawn(process.execPath, ["--import", "tsx", script, dir, "65536"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  let output = "";
  child.stdout.setEncoding("utf8");
  child.stdout.on("data", (chunk: string) => {
    output += chunk;
  });
  const closed = once(child, "close");
  await Promise.race([
    once(child.stdout, "data"),
    closed.then(([code]) => assert.fail(`the appending process exited early (code ${code})`)),
  ]);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  child.kill("SIGKILL");
  await closed; // the process is reaped and its whole stdout read
  const acknowledged = output.split("\n").slice(0, -1).map(Number); // the last piece may be cut

  const bus = await openEmbeddedBus({ dir }); // takes over the dead process's lock
  const topic = await bus.topic("events");
  const ids = (await readAll(topic)).map((line) => (JSON.parse(line) as { id: number }).id);
  const logged = new Set(ids);
  assert.equal(logged.size, ids.length, "no record is in the log twice");
  const missing = acknowledged.filter((id) => !logged.has(id));
  assert.deepEqual(missing, [], "every acknowledged record survived");
  assert.ok(acknowledged.length > 1000, `only ${acknowledged.length} appends were acknowledged`);
  await bus.close();
});

test("one process owns a bus directory", async () => {
  const dir = await tempDir();
  const bus = await openEmbeddedBus({ dir });
  assert.equal(busOwnerPid(dir), process.pid);
  await assert.rejects(openEmbeddedBus({ dir }), BusLockedError);
  await bus.close();
  assert.equal(busOwnerPid(dir), null);

  // Another live process (here: the test runner that started us) holds the lock.
  await writeFile(join(dir, "LOCK"), `${process.ppid}\n`);
  assert.equal(busOwnerPid(dir), process.ppid);
  await assert.rejects(openEmbeddedBus({ dir }), new RegExp(`in use by process ${process.ppid}`));

  // A lock left by a process that is gone is taken over.
  await writeFile(join(dir, "LOCK"), "2147483646\n");
  assert.equal(busOwnerPid(dir), null);
  const reopened = await openEmbeddedBus({ dir });
  assert.equal(busOwnerPid(dir), process.pid);
  await reopened.close();
});

test("a failed write rejects the append, marks the bus unhealthy and stops further appends", async () => {
  const dir = await tempDir();
  const bus = await openEmbeddedBus({ dir, segmentBytes: 100 });
  const topic = await bus.topic("events");
  await topic.append([record(0)]);
  assert.equal(bus.healthy(), true);
  // The next append must start a new segment; a directory in its place makes creating it fail.
  await mkdir(join(dir, "events", `${String(topic.end()).padStart(20, "0")}.log`));

  await assert.rejects(topic.append([record(1)]), /failed to write to disk/);
  assert.equal(bus.healthy(), false);
  await assert.rejects(topic.append([record(2)]), /accepts no more appends/);
  assert.deepEqual(await readAll(topic), [record(0)]);
  await bus.close();
  assert.equal(busOwnerPid(dir), null);
});
