/**
 * Remembers which (source, messageId) pairs arrived recently, so a client's resend is
 * acknowledged without being stored twice.
 *
 * An id is remembered from its receipt for at least `windowMs` and at most `windowMs + bucketMs`:
 * ids are tagged with the time bucket they arrived in, and a bucket is forgotten whole once all of
 * it is older than the window.
 *
 * Memory is also capped at `maxIds`: past it the oldest bucket's ids are dropped early (even the
 * current one's, when it alone holds that many), trading dedupe reach for staying alive.
 *
 * Ids are kept as 96-bit fingerprints in one typed-array hash table, not as strings in Maps:
 * millions of strings made every major garbage collection walk them (25-30 ms pauses at 2M ids,
 * and 100 ms stalls as a Map grew), which a collector acknowledging within milliseconds cannot
 * afford. An id costs 23-32 bytes (110-160 MB at the default cap), and a check about 0.3 µs. Two different ids share a fingerprint with a probability of
 * about n²/2^96 (1e-11 at a billion ids in the window); the seeds are random per process.
 */
export interface DeduperOptions {
  /** How long an id is remembered; default 24 hours. */
  windowMs?: number;
  /** Expiry granularity; default 1/24 of the window. */
  bucketMs?: number;
  /** Most ids kept; default 5 million. */
  maxIds?: number;
}

const HOUR_MS = 3_600_000;

/**
 * A slot is four int32s: the fingerprint's three lanes and its epoch. Lane 0 of a fingerprint is
 * odd, so 0 marks a never-used slot and 2 a deleted one. An epoch is a group of ids dropped
 * together: one per time bucket, and a new one for the same bucket whenever the cap drops the
 * current one (so deduplication goes on). A slot of a dropped epoch counts as deleted, where it
 * lies; inserts reuse deleted slots.
 */
const LANES = 4;
const EMPTY = 0;
const DELETED = 2;
const MIN_SLOTS = 1024;
/** A rebuild starts past this share of slots used; linear probing stays short below it. */
const MAX_LOAD = 0.7;
/** Slots of the old table moved to the new one per call while a rebuild is under way. */
const MIGRATE_PER_CALL = 256;

type Fingerprint = [number, number, number];

/** The random seeds of a Deduper's fingerprints, which whoever computes fingerprints for it needs. */
export type DedupeSeeds = readonly [number, number, number];

/** Fingerprints per event, as `fingerprintsOf` lays them out. */
export const FINGERPRINT_LANES = 3;

/**
 * The fingerprints of a source's ids, three int32s each, in an array that can cross to another
 * thread cheaply (the collector's workers compute them, the main thread dedupes with them).
 */
export function fingerprintsOf(seeds: DedupeSeeds, source: string, ids: readonly string[]): Int32Array {
  const fingerprints = new Int32Array(ids.length * FINGERPRINT_LANES);
  const one: Fingerprint = [0, 0, 0];
  for (let index = 0; index < ids.length; index++) {
    fingerprintInto(seeds, source, ids[index] as string, one);
    fingerprints.set(one, index * FINGERPRINT_LANES);
  }
  return fingerprints;
}

interface Epoch {
  bucket: number;
  /** Live ids in it. */
  count: number;
}

export class Deduper {
  private readonly windowMs: number;
  private readonly bucketMs: number;
  private readonly maxIds: number;
  private table = new Int32Array(MIN_SLOTS * LANES);
  /** Non-empty slots of `table`: live, deleted or of a dropped epoch. */
  private used = 0;
  /**
   * The table being emptied into `table`, a few slots per call, so that growing never stalls
   * on moving millions of ids at once; null when no rebuild is under way.
   */
  private draining: Int32Array | null = null;
  private drained = 0;
  private readonly epochs = new Map<number, Epoch>();
  /** Time bucket → the epoch its new ids go to. */
  private readonly epochOfBucket = new Map<number, number>();
  /** Epoch → 1 once dropped. */
  private dropped = new Uint8Array(64);
  private nextEpoch = 0;
  private count = 0;
  /** Buckets before this one have been expired. */
  private firstLiveBucket = Number.NEGATIVE_INFINITY;
  readonly seeds: DedupeSeeds = [randomInt32(), randomInt32(), randomInt32()];
  /** Reused by every call, so fingerprinting allocates nothing. */
  private readonly fingerprint: Fingerprint = [0, 0, 0];

  constructor(options: DeduperOptions = {}) {
    this.windowMs = options.windowMs ?? 24 * HOUR_MS;
    this.bucketMs = options.bucketMs ?? Math.max(1, Math.floor(this.windowMs / 24));
    this.maxIds = options.maxIds ?? 5_000_000;
  }

  /** Whether the id was already seen within the window; if not, it is remembered from `nowMs` on. */
  seen(source: string, id: string, nowMs: number): boolean {
    return this.seenFingerprint(this.fingerprintOf(source, id), nowMs);
  }

  /** `seen` of the id whose fingerprint is number `index` of `fingerprints` (see `fingerprintsOf`). */
  seenAt(fingerprints: Int32Array, index: number, nowMs: number): boolean {
    return this.seenFingerprint(this.load(fingerprints, index), nowMs);
  }

  /** Undoes `seen` for an id whose event could not be stored, so its resend is stored. */
  forget(source: string, id: string): void {
    this.forgetFingerprint(this.fingerprintOf(source, id));
  }

  /** `forget` of the id whose fingerprint is number `index` of `fingerprints`. */
  forgetAt(fingerprints: Int32Array, index: number): void {
    this.forgetFingerprint(this.load(fingerprints, index));
  }

  /** Remembers an id received at `receivedAtMs` (e.g. read back from storage at startup). */
  remember(source: string, id: string, receivedAtMs: number): void {
    this.expire(receivedAtMs);
    const bucket = this.bucketAt(receivedAtMs);
    if (bucket < this.firstLiveBucket) return;
    const fingerprint = this.fingerprintOf(source, id);
    const slot = this.find(fingerprint);
    if (slot < 0) {
      this.insert(fingerprint, bucket);
      return;
    }
    // Kept in the newest bucket it was received in: an older sighting would expire too soon.
    const tag = slot * LANES + 3;
    const known = this.table[tag] as number;
    if ((this.epochs.get(known) as Epoch).bucket < bucket) {
      const epoch = this.epochFor(bucket);
      this.table[tag] = epoch;
      this.countIn(known, -1);
      this.countIn(epoch, 1);
    }
  }

  /** How many ids are remembered. */
  get size(): number {
    return this.count;
  }

  private seenFingerprint(fingerprint: Fingerprint, nowMs: number): boolean {
    this.expire(nowMs);
    if (this.find(fingerprint) >= 0) return true;
    this.insert(fingerprint, this.bucketAt(nowMs));
    return false;
  }

  private forgetFingerprint(fingerprint: Fingerprint): void {
    const slot = this.find(fingerprint);
    if (slot < 0) return;
    this.table[slot * LANES] = DELETED;
    this.count--;
    this.countIn(this.table[slot * LANES + 3] as number, -1);
  }

  private load(fingerprints: Int32Array, index: number): Fingerprint {
    const fingerprint = this.fingerprint;
    const at = index * FINGERPRINT_LANES;
    fingerprint[0] = fingerprints[at] as number;
    fingerprint[1] = fingerprints[at + 1] as number;
    fingerprint[2] = fingerprints[at + 2] as number;
    return fingerprint;
  }

  private fingerprintOf(source: string, id: string): Fingerprint {
    return fingerprintInto(this.seeds, source, id, this.fingerprint);
  }

  private bucketAt(ms: number): number {
    return Math.floor(ms / this.bucketMs);
  }

  /** The epoch new ids of the bucket go to. */
  private epochFor(bucket: number): number {
    let epoch = this.epochOfBucket.get(bucket);
    if (epoch === undefined) {
      epoch = this.nextEpoch++;
      if (epoch === this.dropped.length) {
        const grown = new Uint8Array(this.dropped.length * 2);
        grown.set(this.dropped);
        this.dropped = grown;
      }
      this.epochs.set(epoch, { bucket, count: 0 });
      this.epochOfBucket.set(bucket, epoch);
    }
    return epoch;
  }

  /** The slot of `table` holding the fingerprint as a live id, or -1; moves it there first if it is still in the draining table. */
  private find(fingerprint: Fingerprint): number {
    this.drainSome();
    const slot = findIn(this.table, fingerprint, this.dropped);
    if (slot >= 0 || this.draining === null) return slot;
    const old = findIn(this.draining, fingerprint, this.dropped);
    if (old < 0) return -1;
    this.draining[old * LANES] = DELETED;
    return this.place(fingerprint, this.draining[old * LANES + 3] as number);
  }

  private insert(fingerprint: Fingerprint, bucket: number): void {
    const epoch = this.epochFor(bucket);
    this.place(fingerprint, epoch);
    this.count++;
    this.countIn(epoch, 1);
    if (this.count > this.maxIds) this.dropOldestEpoch();
  }

  /** Writes a fingerprint known to be absent into `table`, reusing a dead slot; returns its slot. */
  private place(fingerprint: Fingerprint, epoch: number): number {
    const { table, dropped } = this;
    const slots = table.length / LANES;
    let slot = (fingerprint[1] >>> 0) % slots;
    for (;;) {
      const first = table[slot * LANES] as number;
      if (first === EMPTY) {
        this.used++;
        break;
      }
      if (first === DELETED || dropped[table[slot * LANES + 3] as number] === 1) break;
      slot = slot + 1 === slots ? 0 : slot + 1;
    }
    const at = slot * LANES;
    table[at] = fingerprint[0];
    table[at + 1] = fingerprint[1];
    table[at + 2] = fingerprint[2];
    table[at + 3] = epoch;
    if (this.used > slots * MAX_LOAD && this.draining === null) this.startRebuild();
    return slot;
  }

  /**
   * Swaps in an empty table with two slots per live id, into which the old one is moved a few
   * slots per call. The ids added meanwhile (at most one per call, so at most 1/256 of the old
   * table's slots) keep it under MAX_LOAD: 1/2 + 16/256 of its slots at most.
   */
  private startRebuild(): void {
    const oldSlots = this.table.length / LANES;
    const slots = Math.max(MIN_SLOTS, 2 * this.count, Math.ceil(oldSlots / 16));
    this.draining = this.table;
    this.drained = 0;
    this.table = new Int32Array(slots * LANES);
    this.used = 0;
  }

  private drainSome(): void {
    const old = this.draining;
    if (old === null) return;
    const end = Math.min(old.length / LANES, this.drained + MIGRATE_PER_CALL);
    const fingerprint: Fingerprint = [0, 0, 0];
    for (let slot = this.drained; slot < end; slot++) {
      const at = slot * LANES;
      const first = old[at] as number;
      if (first === EMPTY || first === DELETED || this.dropped[old[at + 3] as number] === 1) continue;
      fingerprint[0] = first;
      fingerprint[1] = old[at + 1] as number;
      fingerprint[2] = old[at + 2] as number;
      this.place(fingerprint, old[at + 3] as number);
    }
    this.drained = end;
    if (end === old.length / LANES) this.draining = null;
  }

  private countIn(epoch: number, delta: number): void {
    (this.epochs.get(epoch) as Epoch).count += delta;
  }

  /** Drops the buckets wholly older than the window ending at `nowMs`. */
  private expire(nowMs: number): void {
    const firstLive = this.bucketAt(nowMs - this.windowMs);
    if (firstLive <= this.firstLiveBucket) return;
    this.firstLiveBucket = firstLive;
    for (const [epoch, { bucket }] of this.epochs) if (bucket < firstLive) this.drop(epoch);
  }

  /** The cap: drops the epoch of the oldest bucket; new ids of that bucket start a new epoch. */
  private dropOldestEpoch(): void {
    let oldest: number | undefined;
    let oldestBucket = Number.POSITIVE_INFINITY;
    for (const [epoch, { bucket }] of this.epochs) {
      if (bucket < oldestBucket) {
        oldest = epoch;
        oldestBucket = bucket;
      }
    }
    if (oldest !== undefined) this.drop(oldest);
  }

  /** Its slots become dead where they lie: lookups skip them, inserts reuse them. */
  private drop(epoch: number): void {
    const { bucket, count } = this.epochs.get(epoch) as Epoch;
    this.count -= count;
    this.epochs.delete(epoch);
    if (this.epochOfBucket.get(bucket) === epoch) this.epochOfBucket.delete(bucket);
    this.dropped[epoch] = 1;
  }
}

/**
 * Three independently seeded multiplicative hashes over the source, a separator and the id,
 * each finished with murmur3's avalanche, into `out`.
 */
function fingerprintInto(seeds: DedupeSeeds, source: string, id: string, out: Fingerprint): Fingerprint {
  let [a, b, c] = seeds;
  for (let i = 0; i < source.length; i++) {
    const code = source.charCodeAt(i);
    a = Math.imul(a ^ code, 0x9e3779b1);
    b = Math.imul(b ^ code, 0x85ebca77);
    c = Math.imul(c ^ code, 0xc2b2ae3d);
  }
  // The separator: ("ab", "c") and ("a", "bc") must differ.
  a = Math.imul(a ^ 0xffff_ffff, 0x9e3779b1);
  b = Math.imul(b ^ 0xffff_ffff, 0x85ebca77);
  c = Math.imul(c ^ 0xffff_ffff, 0xc2b2ae3d);
  for (let i = 0; i < id.length; i++) {
    const code = id.charCodeAt(i);
    a = Math.imul(a ^ code, 0x9e3779b1);
    b = Math.imul(b ^ code, 0x85ebca77);
    c = Math.imul(c ^ code, 0xc2b2ae3d);
  }
  out[0] = avalanche(a ^ id.length) | 1;
  out[1] = avalanche(b);
  out[2] = avalanche(c);
  return out;
}

function randomInt32(): number {
  return (Math.random() * 0x1_0000_0000) | 0;
}

/** The slot of `table` holding the fingerprint in a live epoch, or -1. */
function findIn(table: Int32Array, fingerprint: Fingerprint, dropped: Uint8Array): number {
  const [a, b, c] = fingerprint;
  const slots = table.length / LANES;
  for (let slot = (b >>> 0) % slots; ; slot = slot + 1 === slots ? 0 : slot + 1) {
    const at = slot * LANES;
    const first = table[at] as number;
    if (first === EMPTY) return -1;
    if (first === a && table[at + 1] === b && table[at + 2] === c && dropped[table[at + 3] as number] === 0) {
      return slot;
    }
  }
}

function avalanche(hash: number): number {
  let h = hash ^ (hash >>> 16);
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}
