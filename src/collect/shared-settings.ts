/**
 * Settings the main thread may change while the collector runs (the PII policy, event schemas),
 * read by every thread that prepares requests. They live in shared memory as JSON behind a
 * seqlock: [version, length] then the text. The version is odd while the one writer writes; a
 * reader that saw it change during its read reads again. A reader compiles what it needs once per
 * version, so a request costs one atomic load; workers started later are handed the same memory.
 */

/** What crosses to worker threads: the shared memory, not a copy. */
export interface SharedHandle {
  memory: SharedArrayBuffer;
}

const HEADER_BYTES = 8;

export class SharedSettings<T> {
  readonly handle: SharedHandle;
  readonly #header: Int32Array;
  readonly #bytes: Uint8Array;
  readonly #what: string;

  /** `what` names the settings in the error when they outgrow `capacityBytes`. */
  constructor(value: T, options: { capacityBytes: number; what: string }) {
    const memory = new SharedArrayBuffer(HEADER_BYTES + options.capacityBytes);
    this.handle = { memory };
    this.#header = new Int32Array(memory, 0, 2);
    this.#bytes = new Uint8Array(memory, HEADER_BYTES);
    this.#what = options.what;
    this.set(value);
  }

  set(value: T): void {
    const encoded = Buffer.from(JSON.stringify(value));
    if (encoded.length > this.#bytes.length) {
      throw new Error(`${this.#what} take ${encoded.length} bytes; at most ${this.#bytes.length} bytes fit`);
    }
    Atomics.add(this.#header, 0, 1);
    this.#bytes.set(encoded);
    Atomics.store(this.#header, 1, encoded.length);
    Atomics.add(this.#header, 0, 1);
  }

  get(): T {
    return readShared<T>(this.handle).value;
  }
}

function readShared<T>(handle: SharedHandle): { version: number; value: T } {
  const header = new Int32Array(handle.memory, 0, 2);
  for (;;) {
    const version = Atomics.load(header, 0);
    if (version % 2 === 1) continue;
    const length = Atomics.load(header, 1);
    const text = Buffer.from(new Uint8Array(handle.memory, HEADER_BYTES, length)).toString("utf8");
    if (Atomics.load(header, 0) !== version) continue;
    return { version, value: JSON.parse(text) as T };
  }
}

/** Per thread: the settings of a handle, compiled by `compile` once per version. */
export function sharedReader<T, Compiled>(
  compile: (value: T) => Compiled,
): (handle: SharedHandle) => Compiled {
  const cache = new WeakMap<SharedArrayBuffer, { header: Int32Array; version: number; compiled: Compiled }>();
  return (handle) => {
    const cached = cache.get(handle.memory);
    if (cached !== undefined && cached.version === Atomics.load(cached.header, 0)) return cached.compiled;
    const { version, value } = readShared<T>(handle);
    const compiled = compile(value);
    cache.set(handle.memory, { header: new Int32Array(handle.memory, 0, 2), version, compiled });
    return compiled;
  };
}
