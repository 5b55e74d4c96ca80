// The relay as data: a plan is an ordered list of units, each a small record that says what must be true on
// the server. steps.ts turns each unit into the shell script and stdin that the Pulumi components and the
// testbed run over SSH; nothing else interprets units.

/**
 * Units run phase by phase: every unit of a phase waits for all units of the phases before it. `cleanup` holds
 * only the prune unit, which removes what the plan no longer owns once everything else is in place.
 */
export const PHASES = ["preflight", "system", "install", "configure", "activate", "cleanup"] as const;
export type Phase = (typeof PHASES)[number];

interface UnitBase {
  /** Stable id built from what the unit is (`file:/etc/postfix/main.cf`); it becomes the Pulumi resource name. */
  readonly id: string;
  /** When the unit runs; see PHASES. */
  readonly phase: Phase;
  /** Ids of units of the same phase that must run first. */
  readonly after: readonly string[];
}

/**
 * A refusal check: in the preflight phase before anything changes, or in the activate phase right before a
 * service restarts on new files (units.ts validation()).
 */
export interface CheckUnit extends UnitBase {
  readonly kind: "check";
  /** What is checked, for logs and the plan summary. */
  readonly description: string;
  /** sh script that exits non-zero with a message on stderr when the server is not fit. */
  readonly script: string;
  /** Ids of earlier file units whose content the check examines: their hashes are part of its hash, so it runs
   * again whenever one of them changes. */
  readonly covers?: readonly string[];
}

/** A system group and user (created if missing; supplementary groups added). */
export interface UserUnit extends UnitBase {
  readonly kind: "user";
  readonly name: string;
  /** Primary group, created with the same name if missing. */
  readonly group: string;
  readonly home: string;
  /** Supplementary groups, which must exist already. */
  readonly extraGroups: readonly string[];
}

/** Debian packages that must be installed; services they bring are not started by the install. */
export interface PackagesUnit extends UnitBase {
  readonly kind: "packages";
  readonly packages: readonly string[];
  /** debconf answers given before installing, as `package question type value` lines. */
  readonly debconf: readonly string[];
}

/**
 * What becomes of a directory once a later plan no longer has it (the prune unit): removed only when empty,
 * removed with everything in it (pure plan output, like the printable invites), or never (server state, like
 * the mailboxes and the DKIM key).
 */
export type DirectoryRemoval = "when-empty" | "with-contents" | "never";

export interface DirectoryUnit extends UnitBase {
  readonly kind: "directory";
  readonly path: string;
  readonly owner: string;
  readonly group: string;
  /** Octal mode, like "0750". */
  readonly mode: string;
  readonly removal: DirectoryRemoval;
}

/** A file written atomically (temporary file, then rename) with owner, group and mode. */
export interface FileUnit extends UnitBase {
  readonly kind: "file";
  readonly path: string;
  readonly owner: string;
  readonly group: string;
  readonly mode: string;
  /** Text is sent as is (readable in `pulumi preview --diff`); bytes are sent base64-encoded. */
  readonly content: string | Uint8Array;
  /** Content holds a secret (invite tokens): Pulumi masks it and the testbed never logs it; the step's hash,
   * computed from it, is a secret too (Step.secretHash). */
  readonly secret: boolean;
  /** sh commands run after the file is in place, like `postmap`. */
  readonly then?: string;
}

/** One line kept in a file that other software also writes (like /etc/environment): the rest is left alone. */
export interface LineUnit extends UnitBase {
  readonly kind: "line";
  readonly path: string;
  /** The exact line that must be present. */
  readonly line: string;
  /** Lines starting with this prefix are replaced by `line` (an older value of the same setting). */
  readonly replaces: string;
}

/** A numeric kernel limit raised to at least `minimum`, now and in /etc/sysctl.d; a higher value is kept. */
export interface SysctlUnit extends UnitBase {
  readonly kind: "sysctl";
  readonly key: string;
  readonly minimum: number;
}

/** A step that must never run twice, such as generating the DKIM key: skipped while `creates` exists. */
export interface OnceUnit extends UnitBase {
  readonly kind: "once";
  readonly description: string;
  /** Path whose existence means the step is done. */
  readonly creates: string;
  readonly script: string;
  /** sh commands run after the script, also when `creates` existed already (owner and mode of a file that was
   * restored from a backup before the first deploy). */
  readonly then?: string;
}

/** A release archive downloaded, its member checked against sha256, then installed. */
export interface DownloadUnit extends UnitBase {
  readonly kind: "download";
  readonly url: string;
  /** sha256 of the extracted member (the binary), in hex. */
  readonly sha256: string;
  /** Path of the member inside the tar.gz archive, like `./iroh-relay`. */
  readonly member: string;
  readonly path: string;
}

/** A systemd service brought to the wanted state, restarted or reloaded when the units it names changed. */
export interface ServiceUnit extends UnitBase {
  readonly kind: "service";
  /** systemd unit name, like `postfix.service` or `chatmail-expire.timer`. */
  readonly name: string;
  readonly enabled: boolean;
  readonly running: boolean;
  /** Units whose change restarts the service (their hashes are part of this unit's hash). */
  readonly restartOn: readonly string[];
  /** Units whose change only reloads the service. */
  readonly reloadOn: readonly string[];
  /** sh condition that holds once the service serves (its sockets exist); the step waits up to READY_SECONDS
   * for it, so that the deploy ends with a working relay, not one still starting. */
  readonly ready?: string;
}

/**
 * How one thing the plan owns is written in the owned list (the manifest on the server), and what removing it
 * means once a later plan no longer lists it:
 * - `file`: a file the plan writes; removed. A unit file directly in /etc/systemd/system is stopped and disabled
 *   first, unless the new plan still runs or enables a unit of that name.
 * - `dir`: a directory the plan creates; removed only when empty.
 * - `tree`: a directory that holds only plan output; removed with its contents.
 * - `unit`: a systemd unit whose file the plan writes or that it runs or enables. Removes nothing by itself; it
 *   keeps a unit that is still wanted from being stopped when its unit file goes.
 * - `keep`: server state inside or around plan paths (mailboxes, keys, certificates): never removed, and no
 *   entry equal to, inside or above it is removed either.
 */
export type OwnedKind = "file" | "dir" | "tree" | "unit" | "keep";

export interface OwnedEntry {
  readonly kind: OwnedKind;
  /** An absolute path, or a systemd unit name for `unit`. */
  readonly path: string;
}

/** Something a relay deployed by cmdeploy leaves that this relay does not use, removed when present. */
export interface Leftover {
  readonly entry: OwnedEntry;
  /** Why it goes: written next to it in the script, so `pulumi preview --diff` says it. */
  readonly reason: string;
}

/**
 * The last unit: compares the plan's owned list with the one the previous deploy left on the server, removes
 * what is no longer owned, removes cmdeploy's leftovers, then stores the new list. Its hash follows the owned
 * list only, so it runs exactly when the set of owned things changes.
 */
export interface PruneUnit extends UnitBase {
  readonly kind: "prune";
  /** Everything the plan owns, sorted and without duplicates; its text is the step's stdin. */
  readonly owned: readonly OwnedEntry[];
  readonly leftovers: readonly Leftover[];
}

export type Unit =
  | CheckUnit
  | UserUnit
  | PackagesUnit
  | DirectoryUnit
  | FileUnit
  | LineUnit
  | SysctlUnit
  | OnceUnit
  | DownloadUnit
  | ServiceUnit
  | PruneUnit;

/** A unit ready to run: what goes over SSH, and a hash that changes exactly when the unit must run again. */
export interface Step {
  readonly id: string;
  readonly kind: Unit["kind"];
  readonly phase: Phase;
  /** Ids of all units this step waits for (phases and `after` resolved). */
  readonly dependsOn: readonly string[];
  /** sh script, run with `sh -s`-like semantics by the remote shell. Never holds a secret, nor the hash of a
   * step with `secretHash`. */
  readonly script: string;
  /** Data fed to the script on standard input ("" for none). May hold a secret: see `secret`. */
  readonly stdin: string;
  /** The stdin holds a secret: it is sent masked, and the step's output is neither logged nor stored in clear. */
  readonly secret: boolean;
  /**
   * The hash is computed from secret content: the step's own (`secret`) or that of a unit whose hash is part of
   * this one (a service restarted by a secret file, a check of one). Every other input of such content is
   * public (the stack's config, this repository), so the hash would let a short secret be guessed offline: it
   * stays out of the script and the server's run log, and Pulumi keeps it as a secret. Always true when `secret`.
   */
  readonly secretHash: boolean;
  /** sha256 (hex) over script, stdin and the hashes of the units it depends on by content (a service's
   * restartOn and reloadOn, a check's covers). */
  readonly hash: string;
  /** The files this step writes, for the plan summary and `pulumi preview --diff`. */
  readonly files: readonly string[];
}

export interface Plan {
  readonly units: readonly Unit[];
  readonly steps: readonly Step[];
  /** Problems the operator should see that do not stop the deploy (printed by render and the Pulumi program). */
  readonly warnings: readonly string[];
}
