/**
 * Test helper for the kill -9 test: appends to topic "events" from many
 * concurrent appenders until killed, and prints the id of every record whose
 * append resolved (was acknowledged), one per line.
 * Usage: node --import tsx append-until-killed.ts <bus-dir> <segment-bytes>
 */
import { openEmbeddedBus } from "../log.js";

const [dir, segmentBytes] = process.argv.slice(2);
if (!dir || !segmentBytes) throw new Error("usage: append-until-killed.ts <bus-dir> <segment-bytes>");

const bus = await openEmbeddedBus({ dir, segmentBytes: Number(segmentBytes) });
const topic = await bus.topic("events");
const padding = "x".repeat(350);
let nextId = 0;

async function appendForever(appender: number): Promise<never> {
  for (;;) {
    // Batches of 1 to 3 records, so groups mix appends of different sizes.
    const ids = Array.from({ length: 1 + (appender % 3) }, () => nextId++);
    await topic.append(ids.map((id) => JSON.stringify({ id, padding })));
    // Writes to a pipe are synchronous on Linux: once written, the parent gets it even after SIGKILL.
    process.stdout.write(`${ids.join("\n")}\n`);
  }
}

await Promise.all(Array.from({ length: 50 }, (_, appender) => appendForever(appender)));
