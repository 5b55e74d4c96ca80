// A relay's state and the scripts that carry it between servers: backup, restore and move (docs/continuity.md).
// Pure: the tools in tools/state/ run the scripts over SSH and encrypt what they carry.
export {
  PARTS,
  parseParts,
  orderedParts,
  relayState,
  accountFileNames,
  type Part,
  type Place,
  type StateEntry,
  type EntryKind,
} from "./entries";
export {
  ARCHIVE_FORMAT,
  ARCHIVE_FORMAT_VERSION,
  COMMIT_MEMBER,
  MANIFEST_MEMBER,
  manifestText,
  memberInfo,
  parseManifest,
  type ArchiveManifest,
  type MemberInfo,
} from "./manifest";
export { archiveScript } from "./archive";
export { KEYS_REFUSAL, MAIL_SERVICES, REFUSED_EXIT, restoreScript, stepBody } from "./restore";
export { QUEUE_CLASSIFIER, QUEUE_POLL_SECONDS, STOPPED_SERVICES, stopMailScript } from "./stopMail";
