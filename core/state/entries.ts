// What a relay's state is: the files a new server cannot make again and that users or other relays depend on,
// grouped into the three parts that backup, restore and move carry (docs/continuity.md). The list follows the
// code that writes each file: the DKIM key (plan part opendkim), the ACME state or the self-signed certificate
// (plan part tls), the accounts (daemons/doveauth/user.ts, daemons/metadata/tokens.ts and notifier.ts,
// core/server.ts) and the mailboxes (Dovecot's Maildir; its indexes live in memory, INDEX=MEMORY in
// core/plan/parts/dovecot.ts, so no index file is state). Pure: paths only, no I/O.
import type { RelayConfig } from "../config";
import { PATHS } from "../plan/facts";
import { NOCREATE_FILE, PENDING_NOTIFICATIONS_DIR } from "../server";

/** The parts, in the order an archive holds them and a restore places them. */
export const PARTS = ["keys", "accounts", "mailboxes"] as const;
export type Part = (typeof PARTS)[number];

/**
 * Where an entry's path is relative to: the file system root, or the relay's mailboxesDir (so an archive can be
 * restored onto a relay whose mailboxesDir differs).
 */
export type Place = "root" | "mail";

/**
 * How an entry is archived:
 * - `file`: the one file (or symbolic link);
 * - `folder`: the folder alone, for its owner and mode (what is in it is listed separately);
 * - `tree`: the folder and everything in it;
 * - `account-file`: one file of the given name in every account folder;
 * - `account-folder`: every account folder alone;
 * - `account-rest`: everything in every account folder that no `account-file` entry names.
 */
export type EntryKind = "file" | "folder" | "tree" | "account-file" | "account-folder" | "account-rest";

export interface StateEntry {
  readonly part: Part;
  readonly place: Place;
  /** Path relative to the place, without a leading slash; account kinds name the file inside an account folder
   * (`password`), or are empty. */
  readonly path: string;
  readonly kind: EntryKind;
  /** What it is and who depends on it, for docs/continuity.md and the tests. */
  readonly what: string;
}

/** An account folder is a folder of mailboxesDir whose name holds an `@` (daemons/doveauth/user.ts). */
export const ACCOUNT_GLOB = "*@*";

/** The ACME state that acmetool keeps in /var/lib/acme (Debian's acmetool package). */
const ACME_DIR = "var/lib/acme";
const ACME_TREES: ReadonlyArray<readonly [string, string]> = [
  ["accounts", "the ACME account (its URI is pinned in the CAA record) and its key"],
  ["keys", "the private keys of the certificates"],
  ["certs", "the certificates obtained"],
  ["live", "links from each name to the certificate in use"],
  ["desired", "what acmetool keeps obtaining (the plan writes it too)"],
  ["conf", "acmetool's target and answers (the plan writes them too)"],
];

const rel = (absolute: string) => absolute.replace(/^\/+/, "");

/** The relay's state for `config`: every entry of every part. */
export function relayState(config: RelayConfig): StateEntry[] {
  const keys: StateEntry[] = [
    {
      part: "keys",
      place: "root",
      path: rel(PATHS.dkimKeyDir),
      kind: "folder",
      what: "OpenDKIM's key folder (owner opendkim, mode 0700)",
    },
    {
      part: "keys",
      place: "root",
      path: rel(PATHS.dkimPrivateKey),
      kind: "file",
      what: "the DKIM private key: its public half is the DKIM record, which other relays cache",
    },
  ];
  if (config.tlsMode === "acme") {
    keys.push({
      part: "keys",
      place: "root",
      path: ACME_DIR,
      kind: "folder",
      what: "acmetool's state folder",
    });
    for (const [name, what] of ACME_TREES)
      keys.push({ part: "keys", place: "root", path: `${ACME_DIR}/${name}`, kind: "tree", what });
  }
  if (config.tlsMode === "self-signed") {
    keys.push(
      {
        part: "keys",
        place: "root",
        path: rel(PATHS.selfSignedCert),
        kind: "file",
        what: "the self-signed certificate that clients accepted",
      },
      {
        part: "keys",
        place: "root",
        path: rel(PATHS.selfSignedKey),
        kind: "file",
        what: "the self-signed certificate's private key",
      },
    );
  }
  const accounts: StateEntry[] = [
    {
      part: "accounts",
      place: "mail",
      path: "",
      kind: "account-folder",
      what: "each account's folder (Dovecot's home), for its owner and mode",
    },
    {
      part: "accounts",
      place: "mail",
      path: "password",
      kind: "account-file",
      what: "the password hash; the file is the account, its mtime the last login (read by the expiry)",
    },
    {
      part: "accounts",
      place: "mail",
      path: "enforceE2EEincoming",
      kind: "account-file",
      what: "the marker that makes the account refuse incoming cleartext mail",
    },
    {
      part: "accounts",
      place: "mail",
      path: "metadata.json",
      kind: "account-file",
      what: "the push device tokens of the account's devices",
    },
    {
      part: "accounts",
      place: "mail",
      path: PENDING_NOTIFICATIONS_DIR,
      kind: "tree",
      what: "push notifications not yet delivered to the notification server",
    },
    {
      part: "accounts",
      place: "root",
      path: rel(NOCREATE_FILE),
      kind: "file",
      what: "the operator's switch that stops account creation, when present",
    },
  ];
  const mailboxes: StateEntry[] = [
    {
      part: "mailboxes",
      place: "mail",
      path: "",
      kind: "account-rest",
      what: "the Maildir of each account: messages, folders, Dovecot's uidlist, keywords and quota files",
    },
  ];
  return [...keys, ...accounts, ...mailboxes];
}

/** The file names every account folder may hold that belong to the accounts part. */
export function accountFileNames(entries: readonly StateEntry[]): string[] {
  return entries.filter((e) => e.kind === "account-file").map((e) => e.path);
}

/** Parts by name from a comma-separated list (`keys,accounts`); throws an Error naming the unknown one. */
export function parseParts(text: string): Part[] {
  const names = text
    .split(",")
    .map((s) => s.trim())
    .filter((s) => s !== "");
  if (names.length === 0) throw new Error(`'${text}' names no part (use ${PARTS.join(", ")})`);
  for (const n of names)
    if (!(PARTS as readonly string[]).includes(n))
      throw new Error(`unknown part '${n}' (use ${PARTS.join(", ")})`);
  return PARTS.filter((p) => names.includes(p));
}

/** Parts in archive order, without duplicates. */
export const orderedParts = (parts: readonly Part[]): Part[] => PARTS.filter((p) => parts.includes(p));
