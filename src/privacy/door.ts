/**
 * The policy at the collector's door. The main thread holds the policy in shared memory
 * (`PolicyCell`, see collect/shared-settings.ts); every thread that prepares requests (the
 * collector's workers and the main thread itself) reads it through `doorPolicy`, which costs one
 * atomic load per request and recompiles only when the policy changed. A change therefore applies
 * to every request prepared after it, on every thread, including workers started later.
 */
import type { CanonicalEvent } from "../collect/model.js";
import { type SharedHandle, SharedSettings, sharedReader } from "../collect/shared-settings.js";
import { compileRules } from "./obfuscate.js";
import { effectiveRules, type PiiPolicy } from "./policy.js";
import { compileScrubber, type PayloadScrubber } from "./quarantine.js";

/** The plain data the collector's settings carry to its workers: shared memory, not copied. */
export type PrivacyHandle = SharedHandle;

/** What the door applies. */
export interface DoorSettings {
  policy: PiiPolicy;
  /** The HMAC key of `hash`. */
  secret: string;
  /** Keep the unobfuscated event in `events_raw` too. */
  rawZone: boolean;
}

/** The door's settings in shared memory (see shared-settings.ts). */
export class PolicyCell extends SharedSettings<DoorSettings> {
  constructor(settings: DoorSettings) {
    super(settings, { capacityBytes: 1024 * 1024, what: "the PII policy and its secret" });
  }
}

/** A source's compiled policy. */
export interface SourcePrivacy {
  /** Obfuscates an accepted event in place (nested objects copy-on-write); null when nothing applies. */
  apply: ((event: CanonicalEvent) => void) | null;
  /** Obfuscates a quarantined payload (or reason) text. */
  scrub: PayloadScrubber;
}

/** The policy as one thread sees it now. */
export class DoorPolicy {
  readonly rawZone: boolean;
  readonly #settings: DoorSettings;
  readonly #bySource = new Map<string, SourcePrivacy>();

  constructor(settings: DoorSettings) {
    this.#settings = settings;
    this.rawZone = settings.rawZone;
  }

  forSource(source: string): SourcePrivacy {
    let compiled = this.#bySource.get(source);
    if (compiled === undefined) {
      const rules = effectiveRules(this.#settings.policy, source);
      compiled = {
        apply: compileRules(rules, this.#settings.secret),
        scrub: compileScrubber(rules, this.#settings.secret),
      };
      this.#bySource.set(source, compiled);
    }
    return compiled;
  }
}

/** The current policy of a cell, from any thread; recompiled only after a change. */
export const doorPolicy: (handle: PrivacyHandle) => DoorPolicy = sharedReader(
  (settings: DoorSettings) => new DoorPolicy(settings),
);
