/**
 * Remembers which (source, messageId) pairs arrived recently, so a client's resend is
 * acknowledged without being stored twice.
 *
 * An id is remembered from its receipt for at least `windowMs` and at most `windowMs + bucketMs`:
 * ids are grouped in time buckets by received time and a bucket is forgotten whole once all of it is
 * older than the window. One Map per source from id to bucket makes each check a single lookup;
 * per-bucket lists make expiry a walk over the expired ids only.
 *
 * Memory is also capped at `maxIds`: past it the oldest bucket is dropped early (even the current
 * one, when it alone holds that many), trading dedupe reach for staying alive. An id costs about
 * 100 bytes (40 of bookkeeping plus the id string itself).
 */
export interface DeduperOptions {
  /** How long an id is remembered; default 24 hours. */
  windowMs?: number;
  /** Expiry granularity; default 1/24 of the window. */
  bucketMs?: number;
  /** Most ids kept; default 5 million (a JavaScript Map holds at most 2^24 entries). */
  maxIds?: number;
}

const HOUR_MS = 3_600_000;
const SHARD_BITS = 8;

/**
 * id → time bucket, split over 256 Maps by a hash of the id. A single Map grows by rehashing all
 * its entries at once, which stalls the event loop for 75 ms at 1M ids and 270 ms at 2M; a shard
 * grows in steps 256 times smaller.
 */
class BucketOfId {
  private readonly shards = Array.from({ length: 1 << SHARD_BITS }, () => new Map<string, number>());

  get(id: string): number | undefined {
    return this.shardOf(id).get(id);
  }

  /** Adds the id unless it is there already; true when it was added. */
  setIfAbsent(id: string, bucket: number): boolean {
    const shard = this.shardOf(id);
    if (shard.has(id)) return false;
    shard.set(id, bucket);
    return true;
  }

  /** Sets the id's bucket; true when the id is new. */
  set(id: string, bucket: number): boolean {
    const shard = this.shardOf(id);
    const before = shard.size;
    shard.set(id, bucket);
    return shard.size > before;
  }

  delete(id: string): boolean {
    return this.shardOf(id).delete(id);
  }

  private shardOf(id: string): Map<string, number> {
    // FNV-1a; the top bits of the product mix every character.
    let hash = 0x811c9dc5;
    for (let i = 0; i < id.length; i++) hash = Math.imul(hash ^ id.charCodeAt(i), 0x01000193);
    return this.shards[hash >>> (32 - SHARD_BITS)] as Map<string, number>;
  }
}

/** One source's ids, each with the time bucket it arrived in. */
class SourceIds {
  readonly bucketOf = new BucketOfId();
  /** bucket → ids added in it (some may since have been forgotten or re-added later). */
  readonly addedIn = new Map<number, string[]>();
}

export class Deduper {
  private readonly windowMs: number;
  private readonly bucketMs: number;
  private readonly maxIds: number;
  private readonly sources = new Map<string, SourceIds>();
  private count = 0;
  /** Buckets before this one have been expired. */
  private firstLiveBucket = Number.NEGATIVE_INFINITY;

  constructor(options: DeduperOptions = {}) {
    this.windowMs = options.windowMs ?? 24 * HOUR_MS;
    this.bucketMs = options.bucketMs ?? Math.max(1, Math.floor(this.windowMs / 24));
    this.maxIds = options.maxIds ?? 5_000_000;
  }

  /** Whether the id was already seen within the window; if not, it is remembered from `nowMs` on. */
  seen(source: string, id: string, nowMs: number): boolean {
    this.expire(nowMs);
    const ids = this.idsOf(source);
    const bucket = this.bucketAt(nowMs);
    if (!ids.bucketOf.setIfAbsent(id, bucket)) return true;
    this.count++;
    this.listInBucket(ids, id, bucket);
    return false;
  }

  /** Undoes `seen` for an id whose event could not be stored, so its resend is stored. */
  forget(source: string, id: string): void {
    if (this.sources.get(source)?.bucketOf.delete(id)) this.count--;
  }

  /** Remembers an id received at `receivedAtMs` (e.g. read back from storage at startup). */
  remember(source: string, id: string, receivedAtMs: number): void {
    this.expire(receivedAtMs);
    const bucket = this.bucketAt(receivedAtMs);
    if (bucket < this.firstLiveBucket) return;
    const ids = this.idsOf(source);
    const known = ids.bucketOf.get(id);
    if (known === undefined || known < bucket) this.add(ids, id, bucket);
  }

  /** How many ids are remembered. */
  get size(): number {
    return this.count;
  }

  private idsOf(source: string): SourceIds {
    let ids = this.sources.get(source);
    if (ids === undefined) {
      ids = new SourceIds();
      this.sources.set(source, ids);
    }
    return ids;
  }

  private bucketAt(ms: number): number {
    return Math.floor(ms / this.bucketMs);
  }

  private add(ids: SourceIds, id: string, bucket: number): void {
    if (ids.bucketOf.set(id, bucket)) this.count++;
    this.listInBucket(ids, id, bucket);
  }

  /** Lists an id just added under its bucket, for expiry, and keeps to the cap. */
  private listInBucket(ids: SourceIds, id: string, bucket: number): void {
    const added = ids.addedIn.get(bucket);
    if (added === undefined) ids.addedIn.set(bucket, [id]);
    else added.push(id);
    if (this.count > this.maxIds) this.dropOldestBucket();
  }

  /** Drops the buckets wholly older than the window ending at `nowMs`. */
  private expire(nowMs: number): void {
    const firstLive = this.bucketAt(nowMs - this.windowMs);
    if (firstLive <= this.firstLiveBucket) return;
    this.firstLiveBucket = firstLive;
    for (const ids of this.sources.values()) {
      for (const bucket of ids.addedIn.keys()) {
        if (bucket < firstLive) this.drop(ids, bucket);
      }
    }
  }

  private dropOldestBucket(): void {
    let oldest = Number.POSITIVE_INFINITY;
    for (const ids of this.sources.values()) oldest = Math.min(oldest, ...ids.addedIn.keys());
    for (const ids of this.sources.values()) this.drop(ids, oldest);
    this.firstLiveBucket = Math.max(this.firstLiveBucket, oldest + 1);
  }

  private drop(ids: SourceIds, bucket: number): void {
    for (const id of ids.addedIn.get(bucket) ?? []) {
      if (ids.bucketOf.get(id) === bucket && ids.bucketOf.delete(id)) this.count--;
    }
    ids.addedIn.delete(bucket);
  }
}
