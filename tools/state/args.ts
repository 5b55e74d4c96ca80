// The command lines of backup, restore and move. Every mistake is a UsageError whose message names the flag it
// is about; the commands print it on one line and exit 2 (as fleet does, tools/fleet/args.ts).
import { parseArgs } from "node:util";
import { parseParts, type Part } from "../../core/state";

export class UsageError extends Error {}

/** How long move finish waits for the old server's queue to hold no mail for the relay. */
export const DEFAULT_STOP_TIMEOUT = 600;

interface Common {
  /** The Pulumi project folder. */
  readonly cwd: string;
  /** known_hosts file for every server (default: ssh's own, new hosts accepted on first use). */
  readonly knownHosts?: string;
}

export interface BackupOptions extends Common {
  readonly stack: string;
  readonly out: string;
  readonly keyFile: string;
  readonly mailboxes: boolean;
  readonly host?: string;
  readonly sshKey?: string;
}

export type RestoreOptions =
  | (Common & {
      readonly command: "restore";
      readonly stack: string;
      readonly in: string;
      readonly keyFile: string;
      /** Unset: every part the archive holds. */
      readonly parts?: Part[];
      readonly force: boolean;
      readonly host?: string;
      readonly sshKey?: string;
    })
  | { readonly command: "dkim-key"; readonly in: string; readonly keyFile: string };

export type MoveOptions =
  | (Common & {
      readonly command: "prepare";
      readonly stack: string;
      readonly to: string;
      readonly toSshKey?: string;
    })
  | (Common & {
      readonly command: "finish";
      readonly stack: string;
      readonly from: string;
      readonly fromSshKey?: string;
      readonly timeout: number;
    });

const COMMON_USAGE = `  --cwd DIR             the Pulumi project folder (default: this checkout)
  --known-hosts FILE    verify every server's SSH host key against this file (default: ssh's own; the stack's
                        sshHostKey, when set, for the stack's server)
`;

export const BACKUP_USAGE = `Usage: npm run backup -- --stack NAME --out FILE --key-file KEYFILE [options]

Writes the relay's keys and accounts (and with --mailboxes its mailboxes) to FILE, encrypted with the
passphrase in KEYFILE (at least 16 characters, mode 0600). docs/continuity.md describes what is in it.

  --stack NAME          the relay of this stack
  --out FILE            the backup file (written to FILE.tmp, then renamed; mode 0600)
  --key-file KEYFILE    the file holding the passphrase
  --mailboxes           also the mailboxes (every message)
  --host ADDR           the server's address, instead of the stack's
  --ssh-key FILE        the SSH private key, instead of the stack's sshPrivateKey
${COMMON_USAGE}`;

export const RESTORE_USAGE = `Usage: npm run restore -- --stack NAME --in FILE --key-file KEYFILE [options]
       npm run --silent restore -- dkim-key --in FILE --key-file KEYFILE | pulumi config set --secret dkimPrivateKey

Puts a backup back onto the stack's server. Keys are refused on a server that was deployed already, unless
--force. dkim-key prints the backup's DKIM private key (never to a terminal).

  --stack NAME          the relay of this stack
  --in FILE             the backup file
  --key-file KEYFILE    the file holding the passphrase
  --parts LIST          which parts, comma-separated: keys, accounts, mailboxes (default: all the backup holds)
  --force               restore keys onto a server that was deployed already (then let pulumi up read them
                        back: docs/continuity.md)
  --host ADDR           the server's address, instead of the stack's
  --ssh-key FILE        the SSH private key, instead of the stack's sshPrivateKey
${COMMON_USAGE}`;

export const MOVE_USAGE = `Usage: npm run move -- prepare --stack NAME --to NEWADDR [--to-ssh-key FILE]
       npm run move -- finish --stack NAME --from OLDADDR [--from-ssh-key FILE] [--timeout SECONDS]

Moves the relay to a new server (hostProvider existing). prepare copies the keys from the stack's server to the
new one; then point the stack at it (hostAddress, acceptMail false) and pulumi up. finish stops the old server
accepting mail, waits for its queue, and copies the accounts and mailboxes to the stack's (new) server.

  --stack NAME          the relay of this stack
  --to NEWADDR          prepare: the new server
  --to-ssh-key FILE     prepare: its SSH private key (default: the stack's sshPrivateKey)
  --from OLDADDR        finish: the old server
  --from-ssh-key FILE   finish: its SSH private key (default: the stack's sshPrivateKey)
  --timeout SECONDS     finish: how long to wait for mail to the relay to leave the old queue (default ${DEFAULT_STOP_TIMEOUT})
${COMMON_USAGE}`;

type Spec = Record<string, { type: "string" | "boolean"; short?: string }>;

const COMMON: Spec = {
  cwd: { type: "string" },
  "known-hosts": { type: "string" },
  help: { type: "boolean", short: "h" },
};

function parse(argv: readonly string[], options: Spec) {
  try {
    return parseArgs({
      args: [...argv],
      options: { ...COMMON, ...options },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    // node's messages name the option ("Unknown option '--foo'. To specify a positional ..."); the hint after it
    // is left out.
    throw new UsageError((e as Error).message.split(/\.\s+To specify|\n/)[0].trim());
  }
}

type Values = Record<string, string | boolean | undefined>;

function str(values: Values, name: string, what: string): string | undefined {
  const v = values[name];
  if (v === undefined) return undefined;
  if (typeof v !== "string" || v.trim() === "")
    throw new UsageError(`--${name} '${String(v)}' names no ${what}`);
  return v;
}

function required(values: Values, name: string, what: string): string {
  const v = str(values, name, what);
  if (v === undefined) throw new UsageError(`--${name} ${what.toUpperCase().replace(/ /g, "")} is required`);
  return v;
}

function common(values: Values, defaultCwd: string): Common {
  const knownHosts = str(values, "known-hosts", "file");
  return { cwd: str(values, "cwd", "folder") ?? defaultCwd, ...(knownHosts ? { knownHosts } : {}) };
}

function noPositionals(positionals: readonly string[], command: string): void {
  if (positionals.length > 0) throw new UsageError(`unexpected argument '${positionals[0]}' for ${command}`);
}

function notWith(values: Values, names: readonly string[], command: string): void {
  for (const n of names)
    if (values[n] !== undefined) throw new UsageError(`--${n} has no use with ${command}`);
}

export function parseBackupArgs(argv: readonly string[], defaultCwd: string): BackupOptions | "help" {
  const { values, positionals } = parse(argv, {
    stack: { type: "string" },
    out: { type: "string" },
    "key-file": { type: "string" },
    mailboxes: { type: "boolean" },
    host: { type: "string" },
    "ssh-key": { type: "string" },
  });
  if (values.help) return "help";
  noPositionals(positionals, "backup");
  const host = str(values, "host", "address");
  const sshKey = str(values, "ssh-key", "file");
  return {
    ...common(values, defaultCwd),
    stack: required(values, "stack", "name"),
    out: required(values, "out", "file"),
    keyFile: required(values, "key-file", "key file"),
    mailboxes: values.mailboxes === true,
    ...(host ? { host } : {}),
    ...(sshKey ? { sshKey } : {}),
  };
}

export function parseRestoreArgs(argv: readonly string[], defaultCwd: string): RestoreOptions | "help" {
  const { values, positionals } = parse(argv, {
    stack: { type: "string" },
    in: { type: "string" },
    "key-file": { type: "string" },
    parts: { type: "string" },
    force: { type: "boolean" },
    host: { type: "string" },
    "ssh-key": { type: "string" },
  });
  if (values.help) return "help";
  const [command, ...rest] = positionals;
  if (command !== undefined && command !== "dkim-key")
    throw new UsageError(`unknown command '${command}' (restore takes none, or dkim-key)`);
  if (command === "dkim-key") {
    noPositionals(rest, "dkim-key");
    notWith(values, ["stack", "parts", "force", "host", "ssh-key"], "dkim-key");
    return { command, in: required(values, "in", "file"), keyFile: required(values, "key-file", "key file") };
  }
  let parts: Part[] | undefined;
  const partsText = str(values, "parts", "part");
  if (partsText !== undefined) {
    try {
      parts = parseParts(partsText);
    } catch (e) {
      throw new UsageError(`--parts ${(e as Error).message}`);
    }
  }
  const host = str(values, "host", "address");
  const sshKey = str(values, "ssh-key", "file");
  return {
    command: "restore",
    ...common(values, defaultCwd),
    stack: required(values, "stack", "name"),
    in: required(values, "in", "file"),
    keyFile: required(values, "key-file", "key file"),
    ...(parts ? { parts } : {}),
    force: values.force === true,
    ...(host ? { host } : {}),
    ...(sshKey ? { sshKey } : {}),
  };
}

export function parseMoveArgs(argv: readonly string[], defaultCwd: string): MoveOptions | "help" {
  const { values, positionals } = parse(argv, {
    stack: { type: "string" },
    to: { type: "string" },
    "to-ssh-key": { type: "string" },
    from: { type: "string" },
    "from-ssh-key": { type: "string" },
    timeout: { type: "string" },
  });
  if (values.help) return "help";
  const [command, ...rest] = positionals;
  if (command === undefined) throw new UsageError("no command given (use prepare, finish)");
  if (command !== "prepare" && command !== "finish")
    throw new UsageError(`unknown command '${command}' (use prepare, finish)`);
  noPositionals(rest, command);
  const base = { ...common(values, defaultCwd), stack: required(values, "stack", "name") };
  if (command === "prepare") {
    notWith(values, ["from", "from-ssh-key", "timeout"], "prepare");
    const toSshKey = str(values, "to-ssh-key", "file");
    return { command, ...base, to: required(values, "to", "address"), ...(toSshKey ? { toSshKey } : {}) };
  }
  notWith(values, ["to", "to-ssh-key"], "finish");
  const fromSshKey = str(values, "from-ssh-key", "file");
  let timeout = DEFAULT_STOP_TIMEOUT;
  if (values.timeout !== undefined) {
    const t = String(values.timeout);
    timeout = /^\s*\d+\s*$/.test(t) ? Number(t) : NaN;
    if (!Number.isSafeInteger(timeout))
      throw new UsageError(`--timeout '${t}' is not a whole number of seconds`);
  }
  return {
    command,
    ...base,
    from: required(values, "from", "address"),
    ...(fromSshKey ? { fromSshKey } : {}),
    timeout,
  };
}
