/**
 * A topic of the embedded log read from another process than the one that writes it
 * (the lake process reads what the server appends). Only the writer knows which bytes
 * are durable, so it sends the durable end (`setEnd`) and deletes released segments
 * itself (`onRelease`); the reader only ever reads up to that end.
 */
import { join } from "node:path";
import type { Topic, TopicBatch } from "./index.js";
import { BusPositionError, readSegment } from "./log.js";
import { listSegments, segmentIndexAt } from "./segments.js";

const EMPTY = Buffer.alloc(0);

export class TopicReader implements Topic {
  readonly #dir: string;
  #start = 0;
  #end = 0;

  /** Opens a reader positioned on the topic's current first segment; the end is set by the writer. */
  static async open(
    busDir: string,
    name: string,
    onRelease: (position: number) => void,
  ): Promise<TopicReader> {
    const reader = new TopicReader(busDir, name, onRelease);
    const segments = await listSegments(reader.#dir);
    reader.#start = segments[0]?.start ?? 0;
    return reader;
  }

  private constructor(
    busDir: string,
    readonly name: string,
    private readonly onRelease: (position: number) => void,
  ) {
    this.#dir = join(busDir, name);
  }

  /** What the writer made durable; never moves back. */
  setEnd(end: number): void {
    this.#end = Math.max(this.#end, end);
  }

  append(): Promise<void> {
    return Promise.reject(new Error(`Bus topic "${this.name}" is read-only in this process.`));
  }

  appendLines(): Promise<void> {
    return this.append();
  }

  async read(from: number, maxBytes: number): Promise<TopicBatch> {
    const end = this.#end;
    if (!Number.isSafeInteger(from) || from < this.#start || from > end) {
      throw new BusPositionError(
        `Position ${from} is outside bus topic "${this.name}" (${this.#start} to ${end}).`,
      );
    }
    if (from === end) return { lines: EMPTY, count: 0, next: from };
    // Listed on every read: the writer rotates to new segments and deletes released ones.
    const segments = await listSegments(this.#dir);
    const index = segmentIndexAt(segments, from);
    const segment = segments[index];
    if (segment === undefined || segment.start > from) {
      throw new BusPositionError(`Position ${from} of bus topic "${this.name}" is no longer retained.`);
    }
    const segmentEnd = Math.min(segments[index + 1]?.start ?? end, end);
    return readSegment(this.name, segment, from, Math.max(1, maxBytes), segmentEnd);
  }

  start(): number {
    return this.#start;
  }

  end(): number {
    return this.#end;
  }

  async release(position: number): Promise<void> {
    this.onRelease(position);
  }
}
