export { type DoorSettings, doorPolicy, PolicyCell, type PrivacyHandle } from "./door.js";
export { piiToken } from "./obfuscate.js";
export { DEFAULT_RULES, type PiiPolicy, PolicyError, parsePolicy } from "./policy.js";
export { RAW_TABLE, retentionRules, type TableRetention } from "./retention.js";
export { privacyRoutes } from "./routes.js";
export { type BusEnd, busEndsOf, busEndsOnDisk, type PolicyView, Privacy } from "./service.js";
export { queryAccess, startPrivacy, withRawZone } from "./start.js";
export { type DeletionRecord, doorSettings, piiSecret } from "./store.js";
