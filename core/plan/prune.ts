// Removal of what the plan no longer owns. Every other unit only adds or changes things, so a file, unit or
// directory dropped from the plan (mtail switched off, an invite token taken back, iroh-relay moved elsewhere)
// would stay on the server forever. The prune unit runs last: it lists everything the plan owns, compares that
// list with the one the previous deploy left in MANIFEST, removes what left it, and stores the new list. It also
// removes what a relay deployed by cmdeploy leaves that this relay does not use (CMDEPLOY_LEFTOVERS).
//
// Its hash covers the owned list only (the leftovers are derived from it), so an unchanged plan, or one that
// only changes contents, runs nothing here. Nothing outside an entry of the previous list or of the leftovers is
// ever touched, and `keep` entries (mailboxes, DKIM key, ACME state, certificates) are never removed, nor
// anything inside or above them.
import type { RelayConfig } from "../config";
import { PATHS, sysctlFile, tlsPaths } from "./facts";
import { REPLACED_UNITS } from "./parts/daemons";
import { CMDEPLOY_TURN_UNIT } from "./parts/turn";
import { q } from "./sh";
import type { Leftover, OwnedEntry, OwnedKind, PruneUnit, Unit } from "./types";

/** The owned list of the last deploy, one `<kind> <path or unit name>` line per entry (see OwnedKind). */
export const MANIFEST = "/var/lib/chatmail-deploy/owned";

const SYSTEMD_DIR = "/etc/systemd/system";

/**
 * Server state the plan never removes, whatever a list says: accounts and their password files, the DKIM key,
 * the ACME account, keys and certificates, the operator's kill switch and this deploy's own records.
 */
function statePaths(config: RelayConfig): string[] {
  const tls = tlsPaths(config);
  return [
    "/home/vmail",
    config.mailboxesDir,
    PATHS.dkimKeyDir,
    "/var/lib/acme/accounts",
    "/var/lib/acme/certs",
    "/var/lib/acme/keys",
    "/var/lib/acme/live",
    PATHS.selfSignedCert,
    PATHS.selfSignedKey,
    tls.cert,
    tls.key,
    PATHS.nocreateFile,
    MANIFEST.slice(0, MANIFEST.lastIndexOf("/")),
  ];
}

const unitFile = (name: string): OwnedEntry => ({ kind: "file", path: `${SYSTEMD_DIR}/${name}` });

/**
 * What a relay deployed by cmdeploy (1.7.0, and the units later versions added) leaves that this relay does not
 * use, each with the reason it goes. Units whose names this plan uses itself (iroh-relay,
 * acmetool-redirector, chatmail-expire, chatmail-fsreport) are not here: the plan owns their files. mtail.service
 * is, because the plan has one only with mtailAddress set; prune() drops a leftover the plan owns.
 */
export const CMDEPLOY_LEFTOVERS: readonly Leftover[] = [
  ...REPLACED_UNITS.map((name) => ({
    entry: unitFile(name),
    reason: `cmdeploy's unit of a Python daemon; chatmaild.service does its work, and the virtualenv it runs is gone`,
  })),
  {
    entry: { kind: "file", path: "/etc/cron.d/chatmail-metrics" },
    reason: "runs the virtualenv's chatmail-metrics every 5 minutes and publishes the result at /metrics",
  },
  {
    entry: { kind: "file", path: "/var/www/html/metrics" },
    reason: "the public metrics page that cron job wrote",
  },
  {
    entry: { kind: "file", path: "/etc/cron.d/expunge" },
    reason:
      "cmdeploy's expiry by find and the virtualenv's delete_inactive_users; chatmail-expire.timer expires mail",
  },
  {
    entry: { kind: "file", path: "/etc/cron.d/acmetool" },
    reason:
      "cmdeploy's daily reconcile; Debian's acmetool.timer and the chatmail-reload hook renew certificates",
  },
  {
    entry: { kind: "file", path: "/usr/lib/cgi-bin/newemail.py" },
    reason: "cmdeploy's /new CGI, run by the virtualenv's Python; nginx passes /new to chatmaild",
  },
  {
    entry: { kind: "tree", path: "/usr/local/lib/chatmaild/venv" },
    reason: "the Python virtualenv of cmdeploy's chatmaild daemons",
  },
  {
    entry: { kind: "tree", path: "/usr/local/lib/chatmaild/dist" },
    reason: "the chatmaild source archive that virtualenv was installed from",
  },
  {
    entry: { kind: "file", path: "/etc/mtail/delivered_mail.mtail" },
    reason: "cmdeploy's mtail program; mtail reads every program in /etc/mtail, so it would count twice",
  },
  {
    entry: { kind: "file", path: "/usr/local/bin/mtail" },
    reason: "cmdeploy's mtail binary; this relay runs Debian's /usr/bin/mtail",
  },
  {
    entry: unitFile("mtail.service"),
    reason: "cmdeploy's unit for that binary; with mtailAddress set the plan writes its own",
  },
  {
    entry: { kind: "file", path: "/usr/lib/acme/hooks/nginx" },
    reason: "cmdeploy's renewal hook; /etc/acme/hooks/chatmail-reload reloads nginx and the mail services",
  },
  {
    entry: unitFile(CMDEPLOY_TURN_UNIT),
    reason: "cmdeploy's unit for chatmail-turn (1.8.0 and later); coturn.service is the TURN server here",
  },
  {
    entry: { kind: "file", path: "/usr/local/bin/chatmail-turn" },
    reason: "cmdeploy's TURN server binary, run by that unit",
  },
  {
    entry: { kind: "file", path: `${SYSTEMD_DIR}/opendkim.service.d/10-prevent-memory-leak.conf` },
    reason: "cmdeploy's OpenDKIM restart drop-in; the plan's 10-chatmail.conf does the same",
  },
];

const line = (e: OwnedEntry) => `${e.kind} ${e.path}`;
const byLine = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** A path the script can compare and remove safely: absolute, normalised, on one line. */
function checkEntry(e: OwnedEntry): void {
  const ok =
    e.kind === "unit"
      ? /^[A-Za-z0-9@._:-]+$/.test(e.path)
      : /^\/[^\n]*[^/\n]$/.test(e.path) && !/(^|\/)\.{1,2}(\/|$)|\/\//.test(e.path);
  if (!ok)
    throw new Error(`plan: cannot own ${JSON.stringify(line(e))}: not a plain absolute path or unit name`);
}

/** Is `path` one of `keep`, inside one, or above one? The script applies the same rule on the server. */
export function isKept(path: string, keep: readonly string[]): boolean {
  return keep.some((k) => `${path}/`.startsWith(`${k}/`) || `${k}/`.startsWith(`${path}/`));
}

/** Everything the units put on the server, as owned-list entries, sorted and without duplicates. */
export function ownedEntries(units: readonly Unit[], config: RelayConfig): OwnedEntry[] {
  const entries: OwnedEntry[] = statePaths(config).map((path) => ({ kind: "keep", path }));
  const add = (kind: OwnedKind, path: string) => entries.push({ kind, path });
  for (const u of units) {
    switch (u.kind) {
      case "file": {
        add("file", u.path);
        const name = u.path.startsWith(`${SYSTEMD_DIR}/`) ? u.path.slice(SYSTEMD_DIR.length + 1) : "";
        if (name !== "" && !name.includes("/")) add("unit", name);
        break;
      }
      case "download":
        add("file", u.path);
        break;
      case "sysctl":
        add("file", sysctlFile(u.key));
        break;
      case "directory":
        add(u.removal === "never" ? "keep" : u.removal === "with-contents" ? "tree" : "dir", u.path);
        break;
      case "once":
        // What a create-once step makes is state (the DKIM key, a certificate clients accepted).
        add("keep", u.creates);
        break;
      case "service":
        // A unit the plan runs or enables must not be stopped when a unit file of that name leaves the list.
        if (u.running || u.enabled) add("unit", u.name);
        break;
      // Packages, users, lines in shared files and checks own nothing that could be removed.
      case "check":
      case "user":
      case "packages":
      case "line":
      case "prune":
        break;
    }
  }
  for (const e of entries) checkEntry(e);
  const unique = new Map(entries.map((e) => [line(e), e]));
  return [...unique.keys()].sort(byLine).map((k) => unique.get(k)!);
}

/** The prune unit for a plan's units: the last unit of every plan. */
export function prune(units: readonly Unit[], config: RelayConfig): PruneUnit {
  const owned = ownedEntries(units, config);
  const ownedLines = new Set(owned.map(line));
  const keep = owned.filter((e) => e.kind === "keep").map((e) => e.path);
  // A unit name the plan uses itself is never a leftover, whatever the list says.
  const usedUnits = new Set(owned.filter((e) => e.kind === "unit").map((e) => `${SYSTEMD_DIR}/${e.path}`));
  const leftovers = CMDEPLOY_LEFTOVERS.filter(
    (l) => !ownedLines.has(line(l.entry)) && !usedUnits.has(l.entry.path),
  );
  for (const l of leftovers) {
    checkEntry(l.entry);
    if (isKept(l.entry.path, keep)) throw new Error(`plan: leftover ${l.entry.path} is server state`);
  }
  return { kind: "prune", id: "prune:unowned", phase: "cleanup", after: [], owned, leftovers };
}

/** Comment lines that say why each leftover goes; entries with the same reason share a line. */
function reasons(leftovers: readonly Leftover[]): string {
  const byReason = new Map<string, string[]>();
  for (const l of leftovers) byReason.set(l.reason, [...(byReason.get(l.reason) ?? []), l.entry.path]);
  return [...byReason].map(([reason, paths]) => `#   ${paths.join(", ")}: ${reason}`).join("\n");
}

/** The step's stdin: the owned list, which becomes the new MANIFEST byte for byte. */
export const pruneStdin = (unit: PruneUnit) => unit.owned.map((e) => `${line(e)}\n`).join("");

/**
 * The step's script. `root=` prefixes every server path (empty on a server; tests point it at a directory).
 * Removed entries are printed on stdout, refusals on stderr.
 */
export function pruneScript(unit: PruneUnit): string {
  const leftovers = unit.leftovers.map((l) => line(l.entry));
  return `
root=
manifest="$root"${q(MANIFEST)}
work=$(mktemp -d)
tmp=
trap 'rm -rf "$work"; [ -z "$tmp" ] || rm -f "$tmp"' EXIT
cat >"$work/new"
LC_ALL=C sort -u "$work/new" >"$work/owned"
# A fresh server has no list yet: then nothing of the plan's own is removed, only the leftovers below.
if [ -f "$manifest" ]; then LC_ALL=C sort -u "$manifest" >"$work/old"; else : >"$work/old"; fi
# What a relay deployed by cmdeploy leaves that this relay does not use, removed when present:
${reasons(unit.leftovers)}
${leftovers.length === 0 ? ': >"$work/leftovers"' : `cat >"$work/leftovers" <<'LEFTOVERS'\n${leftovers.join("\n")}\nLEFTOVERS`}
# What goes: entries of the previous list missing from this one, and the leftovers; never an owned entry.
LC_ALL=C comm -23 "$work/old" "$work/owned" | cat - "$work/leftovers" | LC_ALL=C sort -u |
  LC_ALL=C comm -23 - "$work/owned" >"$work/gone"
sed -n 's/^keep //p' "$work/old" "$work/owned" >"$work/keep"
# Server state (a keep entry), anything inside it and any directory above it stay.
kept() {
  while IFS= read -r k; do
    case "$1/" in "$k"/*) return 0 ;; esac
    case "$k/" in "$1"/*) return 0 ;; esac
  done <"$work/keep"
  return 1
}
plain() {
  case "$1" in
    */ | *//* | */./* | */../* | */. | */..) return 1 ;;
    /?*) return 0 ;;
  esac
  return 1
}
reload=
: >"$work/dirs"
while IFS= read -r entry; do
  kind=\${entry%% *}
  path=\${entry#* }
  # unit and keep entries remove nothing by themselves.
  case $kind in file | tree | dir) ;; *) continue ;; esac
  if ! plain "$path"; then
    echo "prune: left alone, not a plain absolute path: $entry" >&2
    continue
  fi
  if kept "$path"; then
    echo "prune: left alone, server state: $entry" >&2
    continue
  fi
  target=$root$path
  [ -e "$target" ] || [ -L "$target" ] || continue
  case $kind in
    file)
      if [ -d "$target" ] && [ ! -L "$target" ]; then
        echo "prune: left alone, a directory where a file was: $path" >&2
        continue
      fi
      case $path in
        ${SYSTEMD_DIR}/*/*) reload=1 ;;
        ${SYSTEMD_DIR}/*)
          name=\${path#${SYSTEMD_DIR}/}
          # A unit the plan still runs or enables (now from its package's unit file) keeps running.
          if ! grep -qxF "unit $name" "$work/owned"; then
            systemctl disable --now "$name" </dev/null >/dev/null 2>&1 ||
              echo "prune: could not stop and disable $name" >&2
          fi
          reload=1
          ;;
      esac
      rm -f "$target"
      ;;
    tree) rm -rf "$target" ;;
    dir)
      echo "$path" >>"$work/dirs"
      continue
      ;;
  esac
  echo "removed $entry"
done <"$work/gone"
# Directories last, deepest first, each only when nothing is left in it.
LC_ALL=C sort -r "$work/dirs" | while IFS= read -r path; do
  if rmdir "$root$path" 2>/dev/null; then echo "removed dir $path"; fi
done
[ -z "$reload" ] || systemctl daemon-reload
# The new list replaces the old one in one rename; after a failure above the old one stays for the next run.
mkdir -p "$(dirname "$manifest")"
tmp=$(mktemp "$manifest.XXXXXX")
cat "$work/new" >"$tmp"
chmod 0644 "$tmp"
mv -f "$tmp" "$manifest"
tmp=
`.trim();
}
