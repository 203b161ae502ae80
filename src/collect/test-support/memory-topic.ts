import type { Topic, TopicBatch } from "../../bus/index.js";

/** An in-memory topic whose appends can be held back or made to fail. */
export class MemoryTopic implements Topic {
  readonly records: string[] = [];
  appends = 0;
  failing = false;
  /** While set, appends wait for it: an fsync in progress. */
  gate: Promise<void> | undefined;

  constructor(readonly name: string) {}

  async append(records: readonly string[]): Promise<void> {
    this.appends++;
    await this.gate;
    if (this.failing) throw new Error("disk full");
    this.records.push(...records);
  }

  appendLines(lines: Buffer): Promise<void> {
    return this.append(lines.toString("utf8").slice(0, -1).split("\n"));
  }

  async read(from: number): Promise<TopicBatch> {
    const lines = this.records.slice(from).map((record) => `${record}\n`);
    return { lines: Buffer.from(lines.join("")), count: lines.length, next: this.records.length };
  }

  start(): number {
    return 0;
  }

  end(): number {
    return this.records.length;
  }

  async release(): Promise<void> {}
}
