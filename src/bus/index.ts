/**
 * The bus: a durable, ordered log per topic. `append` resolves only once the
 * records are on disk (fsync), so a 2xx sent after it survives `kill -9`.
 * Embedded default: a segmented file log in `<data-dir>/bus/<topic>/`;
 * a NATS JetStream implementation will sit behind the same interface.
 *
 * Positions are opaque, monotonically increasing numbers (byte offsets in the
 * embedded log, stream sequences in JetStream). A consumer stores the `next`
 * position it has processed (in the catalog, transactionally with its output).
 */
export interface Topic {
  readonly name: string;
  /** Appends records (each one JSON text without newlines); resolves once durable. */
  append(records: readonly string[]): Promise<void>;
  /**
   * Appends records already encoded the way `read` returns them: UTF-8, each record one JSON
   * object on a line ending in "\n". Same checks and durability as `append`; it lets a producer
   * encode off the main thread. The buffer must not change until the promise settles.
   */
  appendLines(lines: Buffer): Promise<void>;
  /**
   * Reads whole records from `from` (a position previously returned as `next`, or `start()`),
   * up to about `maxBytes`. `lines` holds complete newline-terminated records only.
   */
  read(from: number, maxBytes: number): Promise<TopicBatch>;
  /** The first position still retained. */
  start(): number;
  /** The position after the last durable record. */
  end(): number;
  /** Drops retained data wholly before `position` (whole segments only); consumers are past it. */
  release(position: number): Promise<void>;
}

export interface TopicBatch {
  /** Newline-delimited JSON records, each terminated by "\n". Empty when nothing new. */
  lines: Buffer;
  count: number;
  /** The position after the last record in `lines`. */
  next: number;
}

export interface Bus {
  topic(name: string): Promise<Topic>;
  /**
   * Starts a new segment of topic `name` after the records appended so far, so that
   * `Topic.release` can drop them once every consumer is past them: forget and retention use it,
   * so that records the lake no longer holds do not wait on disk until their segment fills up.
   * Nothing happens when the newest segment is empty.
   */
  roll(name: string): Promise<void>;
  /** False once a write failed (disk full, I/O error); /healthz reports it. */
  healthy(): boolean;
  close(): Promise<void>;
}

export { BusLockedError, busOwnerPid } from "./lock.js";
export {
  BusPositionError,
  type BusStats,
  type EmbeddedBus,
  type EmbeddedBusOptions,
  openEmbeddedBus,
} from "./log.js";
export { fsyncPath } from "./segments.js";
