/** A worker thread of the prepare pool (pool.ts): prepares each request it is sent. */
import { parentPort, workerData } from "node:worker_threads";
import { asBuffer, ownedBytes, type PrepareResult, type PrepareTask } from "./pool.js";
import { type PrepareSettings, prepare } from "./prepare.js";

const settings = workerData as PrepareSettings;
const port = parentPort;
if (port === null) throw new Error("The prepare worker runs only as a worker thread of the prepare pool.");

port.on("message", ({ id, request }: PrepareTask) => {
  const prepared = prepare({ ...request, body: asBuffer(request.body) }, settings);
  prepared.eventLines = ownedBytes(prepared.eventLines);
  prepared.rejectedLines = ownedBytes(prepared.rejectedLines);
  const transfer = [prepared.eventLines, prepared.rejectedLines]
    .filter((lines) => lines.length > 0)
    .map((lines) => lines.buffer as ArrayBuffer);
  const result: PrepareResult = { id, prepared };
  port.postMessage(result, transfer);
});
