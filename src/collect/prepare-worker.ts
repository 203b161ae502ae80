/** A worker thread of the prepare pool (pool.ts): prepares the requests of each message it is sent. */
import { parentPort, workerData } from "node:worker_threads";
import { asBuffer, ownedBytes, type PrepareResults, type PrepareTasks } from "./pool.js";
import { type PrepareSettings, prepare } from "./prepare.js";

const settings = workerData as PrepareSettings;
const port = parentPort;
if (port === null) throw new Error("The prepare worker runs only as a worker thread of the prepare pool.");

port.on("message", ({ tasks }: PrepareTasks) => {
  const answer: PrepareResults = { results: [] };
  const transfer: ArrayBuffer[] = [];
  for (const { id, request } of tasks) {
    const prepared = prepare({ ...request, body: asBuffer(request.body) }, settings);
    prepared.eventLines = ownedBytes(prepared.eventLines);
    prepared.rejectedLines = ownedBytes(prepared.rejectedLines);
    for (const lines of [prepared.eventLines, prepared.rejectedLines]) {
      if (lines.length > 0) transfer.push(lines.buffer as ArrayBuffer);
    }
    answer.results.push({ id, prepared });
  }
  port.postMessage(answer, transfer);
});
