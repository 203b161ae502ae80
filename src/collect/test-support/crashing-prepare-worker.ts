/**
 * A prepare worker that dies, losing every request it holds, instead of answering a request with
 * an event id containing CRASH.
 */
import { parentPort, type TransferListItem } from "node:worker_threads";
import type { PrepareResult } from "../pool.js";

const port = parentPort;
if (port === null) throw new Error("crashing-prepare-worker.ts runs as a worker thread.");
const answer = port.postMessage.bind(port);
port.postMessage = (result: PrepareResult, transfer?: readonly TransferListItem[]) => {
  if (Buffer.from(result.prepared.eventLines).includes("CRASH")) process.exit(1);
  answer(result, transfer);
};
await import("../prepare-worker.js");
