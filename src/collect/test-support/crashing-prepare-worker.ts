/**
 * A prepare worker that dies, losing every request it holds, instead of answering when a request
 * has an event id containing CRASH.
 */
import { parentPort, type TransferListItem } from "node:worker_threads";
import type { PrepareResults } from "../pool.js";

const port = parentPort;
if (port === null) throw new Error("crashing-prepare-worker.ts runs as a worker thread.");
const answer = port.postMessage.bind(port);
port.postMessage = (answers: PrepareResults, transfer?: readonly TransferListItem[]) => {
  if (answers.results.some(({ prepared }) => Buffer.from(prepared.eventLines).includes("CRASH"))) {
    process.exit(1);
  }
  answer(answers, transfer);
};
await import("../prepare-worker.js");
