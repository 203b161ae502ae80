/**
 * The embedded bus: one append-only log per topic in `<dir>/<topic>/`, split
 * into segment files named by the position of their first byte. A record is
 * one JSON object per line, so every segment is plain NDJSON.
 *
 * Appends are group-committed: one writer per topic takes everything pending,
 * writes it with one write and one fdatasync, then acknowledges the whole
 * group. Only durable data is ever read back.
 */
import { isUtf8 } from "node:buffer";
import { type FileHandle, mkdir, open, rm } from "node:fs/promises";
import { join } from "node:path";
import type { Bus, Topic, TopicBatch } from "./index.js";
import { acquireLock, isErrno, releaseLock } from "./lock.js";
import {
  fsyncPath,
  listSegments,
  NEWLINE,
  readAt,
  type Segment,
  type SegmentFile,
  scanLines,
  segmentIndexAt,
  segmentPath,
  validPrefixLength,
  writeAtSync,
} from "./segments.js";

export interface EmbeddedBusOptions {
  /** The bus directory (`<data-dir>/bus`); created when missing. */
  dir: string;
  /** Appends go to a new segment file once the current one reaches this size. Default 64 MiB. */
  segmentBytes?: number;
  /** fdatasync before acknowledging appends; turn off only for tests and benchmarks. Default true. */
  fsync?: boolean;
}

export interface BusStats {
  /** Group commits: one write (and one fdatasync) each. */
  groups: number;
  /** Records and bytes made durable. */
  records: number;
  bytes: number;
  /** fsync calls on files and directories. */
  fsyncs: number;
}

export interface EmbeddedBus extends Bus {
  stats(): BusStats;
}

/** A read position that is released, beyond the end, or not at a record boundary. */
export class BusPositionError extends Error {
  override name = "BusPositionError";
}

const DEFAULT_SEGMENT_BYTES = 64 * 1024 * 1024;
/** Lowercase only, so topic directories cannot collide on case-insensitive file systems (or with LOCK). */
const TOPIC_NAME = /^[a-z0-9][a-z0-9_.-]{0,99}$/;
const EMPTY = Buffer.alloc(0);

export async function openEmbeddedBus(options: EmbeddedBusOptions): Promise<EmbeddedBus> {
  const { dir, segmentBytes = DEFAULT_SEGMENT_BYTES, fsync = true } = options;
  if (!Number.isInteger(segmentBytes) || segmentBytes <= 0) {
    throw new RangeError(`segmentBytes must be a positive integer, got ${segmentBytes}.`);
  }
  await mkdir(dir, { recursive: true });
  await acquireLock(dir);
  return new LogBus(dir, { segmentBytes, disk: new Disk(fsync) });
}

interface TopicSettings {
  segmentBytes: number;
  disk: Disk;
}

/** Syncs files and directories (unless fsync is off) and keeps the counters. */
class Disk {
  readonly stats: BusStats = { groups: 0, records: 0, bytes: 0, fsyncs: 0 };

  constructor(private readonly fsync: boolean) {}

  async syncFile(handle: FileHandle): Promise<void> {
    if (!this.fsync) return;
    await handle.datasync();
    this.stats.fsyncs++;
  }

  async syncDirectory(dir: string): Promise<void> {
    if (!this.fsync) return;
    await fsyncPath(dir);
    this.stats.fsyncs++;
  }
}

class LogBus implements EmbeddedBus {
  private readonly opening = new Map<string, Promise<LogTopic>>();
  private readonly opened: LogTopic[] = [];
  private closing: Promise<void> | null = null;

  constructor(
    private readonly dir: string,
    private readonly settings: TopicSettings,
  ) {}

  topic(name: string): Promise<Topic> {
    if (this.closing) return Promise.reject(new Error(`The bus in ${this.dir} is closed.`));
    if (!TOPIC_NAME.test(name)) {
      return Promise.reject(
        new TypeError(`Invalid topic name "${name}": use lowercase letters, digits, "_", "." and "-".`),
      );
    }
    let topic = this.opening.get(name);
    if (!topic) {
      topic = LogTopic.open(this.dir, name, this.settings);
      this.opening.set(name, topic);
      topic.then(
        (opened) => this.opened.push(opened),
        () => this.opening.delete(name), // let a later call retry
      );
    }
    return topic;
  }

  async roll(name: string): Promise<void> {
    await ((await this.topic(name)) as LogTopic).roll();
  }

  healthy(): boolean {
    return this.opened.every((topic) => topic.healthy());
  }

  stats(): BusStats {
    return { ...this.settings.disk.stats };
  }

  close(): Promise<void> {
    this.closing ??= this.closeTopics();
    return this.closing;
  }

  private async closeTopics(): Promise<void> {
    try {
      const topics = await Promise.allSettled(this.opening.values());
      const closed = await Promise.allSettled(
        topics.flatMap((topic) => (topic.status === "fulfilled" ? [topic.value.close()] : [])),
      );
      const failure = closed.find((result) => result.status === "rejected");
      if (failure) throw failure.reason;
    } finally {
      await releaseLock(this.dir);
    }
  }
}

/** Appends waiting for the next group commit, and the promise they all share. */
interface PendingGroup {
  /** Each append's records, encoded as newline-terminated lines. */
  chunks: Buffer[];
  records: number;
  done: Promise<void>;
  resolve(): void;
  reject(error: Error): void;
}

class LogTopic implements Topic {
  /** Appends waiting for the writer; appends arriving during a write join the next group. */
  private pending: PendingGroup | null = null;
  private writing: Promise<void> | null = null;
  private failure: Error | null = null;
  private closed = false;
  /** The next group commit starts a new segment first (`roll`). */
  private rollRequested = false;

  private constructor(
    readonly name: string,
    private readonly dir: string,
    private readonly settings: TopicSettings,
    /** Never empty; the last one is the active segment, written through `active`. */
    private readonly segments: Segment[],
    private active: FileHandle,
    /** Position after the last durable record. */
    private durableEnd: number,
  ) {}

  /** Opens the topic's log, cutting a torn tail left by a crash. */
  static async open(busDir: string, name: string, settings: TopicSettings): Promise<LogTopic> {
    const { disk } = settings;
    const dir = join(busDir, name);
    if ((await mkdir(dir, { recursive: true })) !== undefined) await disk.syncDirectory(busDir);
    const found = await listSegments(dir);
    const last = found.at(-1);
    if (!last) {
      const active = await createSegment(dir, 0, disk);
      return new LogTopic(name, dir, settings, [{ start: 0, path: segmentPath(dir, 0) }], active, 0);
    }
    for (const [index, segment] of found.slice(1).entries()) {
      const previous = found[index] as SegmentFile;
      if (previous.start + previous.size !== segment.start) {
        throw new Error(
          `Bus topic "${name}" is damaged: ${previous.path} ends at position ` +
            `${previous.start + previous.size} but the next segment starts at ${segment.start}.`,
        );
      }
    }
    // Only the last segment can be torn: a new segment starts after the previous one was synced.
    const active = await open(last.path, "r+");
    try {
      const validSize = await validPrefixLength(active, last.size);
      if (validSize < last.size) {
        await active.truncate(validSize);
        await disk.syncFile(active);
      }
      const segments = found.map(({ start, path }) => ({ start, path }));
      return new LogTopic(name, dir, settings, segments, active, last.start + validSize);
    } catch (error) {
      await active.close();
      throw error;
    }
  }

  append(records: readonly string[]): Promise<void> {
    const refusal = this.refusal();
    if (refusal) return Promise.reject(refusal);
    for (const record of records) {
      const problem = recordProblem(record);
      if (problem) return Promise.reject(new TypeError(`Bus topic "${this.name}": ${problem}`));
    }
    if (records.length === 0) return Promise.resolve();
    return this.enqueue(Buffer.from(`${records.join("\n")}\n`), records.length);
  }

  appendLines(lines: Buffer): Promise<void> {
    const refusal = this.refusal();
    if (refusal) return Promise.reject(refusal);
    const problem = linesProblem(lines);
    if (problem) return Promise.reject(new TypeError(`Bus topic "${this.name}": ${problem}`));
    if (lines.length === 0) return Promise.resolve();
    return this.enqueue(lines, countLines(lines));
  }

  /** Bus.roll: a new segment for the group after the appends made so far, in the writer's order. */
  roll(): Promise<void> {
    const refusal = this.refusal();
    if (refusal) return Promise.reject(refusal);
    this.rollRequested = true;
    return this.enqueue(EMPTY, 0);
  }

  async read(from: number, maxBytes: number): Promise<TopicBatch> {
    const end = this.durableEnd;
    if (!Number.isSafeInteger(from) || from < this.start() || from > end) {
      throw new BusPositionError(
        from < this.start()
          ? `Position ${from} of bus topic "${this.name}" was released; the topic now starts at ${this.start()}.`
          : `Position ${from} is outside bus topic "${this.name}" (${this.start()} to ${end}).`,
      );
    }
    if (from === end) return { lines: EMPTY, count: 0, next: from };
    const index = segmentIndexAt(this.segments, from);
    const segment = this.segments[index] as Segment;
    const segmentEnd = this.segments[index + 1]?.start ?? end;
    return readSegment(this.name, segment, from, Math.max(1, maxBytes), segmentEnd);
  }

  start(): number {
    return (this.segments[0] as Segment).start;
  }

  end(): number {
    return this.durableEnd;
  }

  async release(position: number): Promise<void> {
    // Detach first, so reads and concurrent releases never see a segment being deleted.
    const released: Segment[] = [];
    while (this.segments.length > 1 && (this.segments[1] as Segment).start <= position) {
      released.push(this.segments.shift() as Segment);
    }
    if (released.length === 0) return;
    for (const segment of released) await rm(segment.path, { force: true });
    await this.settings.disk.syncDirectory(this.dir);
  }

  healthy(): boolean {
    return this.failure === null;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.writing;
    await this.active.close();
  }

  /** Why no append is taken now, or null. */
  private refusal(): Error | null {
    if (this.failure) return this.failure;
    if (this.closed) return new Error(`Bus topic "${this.name}" is closed.`);
    return null;
  }

  /** Adds encoded records to the next group commit; resolves once that group is durable. */
  private enqueue(lines: Buffer, records: number): Promise<void> {
    this.pending ??= createPendingGroup();
    this.pending.chunks.push(lines);
    this.pending.records += records;
    this.writing ??= this.writePending();
    return this.pending.done;
  }

  /** The writer loop: one group commit at a time until nothing is pending. Never rejects. */
  private async writePending(): Promise<void> {
    // Yield one event-loop turn so appends from all callbacks of this turn share the first group.
    await new Promise((resolve) => setImmediate(resolve));
    while (this.pending) {
      const group = this.pending;
      this.pending = null;
      try {
        await this.commit(group);
        group.resolve();
      } catch (error) {
        this.failure ??= new Error(
          `Bus topic "${this.name}" failed to write to disk (${(error as Error).message}); ` +
            "it accepts no more appends until the server restarts.",
          { cause: error },
        );
        group.reject(this.failure);
      }
    }
    this.writing = null;
  }

  private async commit(group: PendingGroup): Promise<void> {
    // After a failed write or fsync the file state is unknown: stop rather than risk acknowledging lost data.
    if (this.failure) throw this.failure;
    const data = group.chunks.length === 1 ? (group.chunks[0] as Buffer) : Buffer.concat(group.chunks);
    const written = this.durableEnd - this.activeStart();
    const roll = this.rollRequested;
    this.rollRequested = false;
    if (written >= this.settings.segmentBytes || (roll && written > 0)) await this.rotate();
    writeAtSync(this.active.fd, data, this.durableEnd - this.activeStart());
    await this.settings.disk.syncFile(this.active);
    this.durableEnd += data.length;
    const { stats } = this.settings.disk;
    stats.groups++;
    stats.records += group.records;
    stats.bytes += data.length;
  }

  private async rotate(): Promise<void> {
    const start = this.durableEnd;
    const next = await createSegment(this.dir, start, this.settings.disk);
    const previous = this.active;
    this.active = next;
    this.segments.push({ start, path: segmentPath(this.dir, start) });
    await previous.close();
  }

  private activeStart(): number {
    return (this.segments.at(-1) as Segment).start;
  }
}

/**
 * Reads whole records of a topic's segment from `from`, about `maxBytes` of them (more if one
 * record is bigger), up to `segmentEnd`: the bytes known durable. Shared by the log and by
 * readers in other processes (`reader.ts`).
 */
export async function readSegment(
  topic: string,
  segment: Segment,
  from: number,
  maxBytes: number,
  segmentEnd: number,
): Promise<TopicBatch> {
  const damaged = (problem: string) =>
    new Error(`Bus topic "${topic}" is damaged: ${segment.path} ${problem}.`);
  let handle: FileHandle;
  try {
    handle = await open(segment.path, "r");
  } catch (error) {
    if (!isErrno(error, "ENOENT")) throw error;
    throw new BusPositionError(`Position ${from} of bus topic "${topic}" was released meanwhile.`);
  }
  try {
    // One byte more in front (unless at the segment start) proves `from` is a record boundary.
    const lead = from > segment.start ? 1 : 0;
    let length = Math.min(maxBytes, segmentEnd - from);
    for (;;) {
      const buffer = Buffer.allocUnsafe(lead + length);
      const bytesRead = await readAt(handle, buffer, buffer.length, from - segment.start - lead);
      if (bytesRead < buffer.length) throw damaged("is shorter than its acknowledged data");
      if (lead && buffer[0] !== NEWLINE) {
        throw new BusPositionError(`Position ${from} is not at a record boundary of bus topic "${topic}".`);
      }
      const data = buffer.subarray(lead);
      const lastNewline = data.lastIndexOf(NEWLINE);
      if (lastNewline !== -1) {
        const lines = data.subarray(0, lastNewline + 1);
        return { lines, count: countLines(lines), next: from + lines.length };
      }
      if (from + length === segmentEnd) throw damaged("ends inside a record");
      length = Math.min(2 * length, segmentEnd - from);
    }
  } finally {
    await handle.close();
  }
}

async function createSegment(dir: string, start: number, disk: Disk): Promise<FileHandle> {
  const handle = await open(segmentPath(dir, start), "wx");
  try {
    await disk.syncDirectory(dir);
    return handle;
  } catch (error) {
    await handle.close();
    throw error;
  }
}

function createPendingGroup(): PendingGroup {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const done = new Promise<void>((onResolve, onReject) => {
    resolve = onResolve;
    reject = onReject;
  });
  // Each caller sees a failure through its own await; the shared promise itself must not count as unhandled.
  done.catch(() => {});
  return { chunks: [], records: 0, done, resolve, reject };
}

/**
 * Why a record cannot go on the log, or null. The rules match what recovery
 * accepts as a complete line, so an acknowledged record is never cut.
 */
function recordProblem(record: string): string | null {
  if (record.length === 0) return "a record is empty.";
  if (record.charCodeAt(0) !== 0x7b || record.charCodeAt(record.length - 1) !== 0x7d) {
    return "a record must be one JSON object ({...}).";
  }
  if (record.includes("\n")) return "a record contains a raw newline.";
  if (record.includes("\0")) return "a record contains a NUL character.";
  return null;
}

/** Why encoded records cannot go on the log, or null: the same rules as `recordProblem`, plus valid UTF-8. */
function linesProblem(lines: Buffer): string | null {
  const { validBytes } = scanLines(lines);
  if (validBytes < lines.length) {
    return `the line at byte ${validBytes} is not one JSON object ({...}) ending in "\\n", or contains a NUL character.`;
  }
  if (!isUtf8(lines)) return "the lines are not valid UTF-8.";
  return null;
}

function countLines(lines: Buffer): number {
  let count = 0;
  for (let at = lines.indexOf(NEWLINE); at !== -1; at = lines.indexOf(NEWLINE, at + 1)) count++;
  return count;
}
