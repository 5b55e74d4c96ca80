// The archive script: run on a relay's server, it writes the chosen parts of the relay's state as a tar stream
// on stdout (layout: manifest.ts). It only reads, so it runs while the relay serves: a file that changes or goes
// while tar reads it is copied as it was at some moment or left out, which tar reports with exit code 1 and the
// script accepts; only a real error (exit 2 and above) fails it, and then the tool never marks the stream
// complete. Owner names, modes and mtimes are kept (GNU tar's format). `root=` prefixes every server path: empty
// on a server, a temporary folder in the tests.
import type { RelayConfig } from "../config";
import { q } from "../plan/sh";
import {
  accountFileNames,
  ACCOUNT_GLOB,
  orderedParts,
  relayState,
  type Part,
  type StateEntry,
} from "./entries";
import { MANIFEST_MEMBER } from "./manifest";

/** The find(1) regex of an account file `name` of any account folder, relative to mailboxesDir (`./a@b/name`). */
const accountFileRegex = (names: readonly string[]) =>
  `\\./[^/]*@[^/]*/\\(${names.map((n) => n.replace(/[.[\]*^$\\]/g, "\\$&")).join("\\|")}\\)`;

/**
 * Lines that list the entries of one part and place, then archive the list. `entries` is the whole state: the
 * mailboxes part leaves out the account files whichever parts are archived.
 */
function section(part: Part, place: "root" | "mail", entries: readonly StateEntry[]): string[] {
  const mine = entries.filter((e) => e.part === part && e.place === place);
  if (mine.length === 0) return [];
  const out = [`# ${part}, below ${place === "root" ? "/" : "mailboxesDir"}`];
  out.push(place === "root" ? 'base="$root/"' : 'base="$mb"', ': >"$work/list"');
  const names = accountFileNames(mine);
  let rest = false;
  for (const e of mine) {
    switch (e.kind) {
      case "file":
      case "folder":
        out.push(`one ${q(e.path)}`);
        break;
      case "tree":
        out.push(`tree ${q(e.path)}`);
        break;
      case "account-folder":
        out.push(
          `[ ! -d "$mb" ] || (cd "$mb" && find . -mindepth 1 -maxdepth 1 -type d -name '${ACCOUNT_GLOB}' -printf '%P\\0') >>"$work/list" || status=2`,
        );
        break;
      case "account-file":
        // All account files in one find, below.
        break;
      case "account-rest":
        rest = true;
        break;
    }
  }
  if (names.length > 0)
    out.push(
      `[ ! -d "$mb" ] || (cd "$mb" && find . -mindepth 2 -maxdepth 2 ! -type d -regex ${q(accountFileRegex(names))} -printf '%P\\0') >>"$work/list" || status=2`,
    );
  if (!rest) {
    out.push(`flush ${part}/${place}`);
    return out;
  }
  // Everything in the account folders but the files of the accounts part: tar walks each folder itself; the
  // anchored patterns without slash-matching wildcards exclude exactly <account>/<name>, nothing deeper.
  const excludes = accountFileNames(entries).map((n) => `--exclude=${q(`${ACCOUNT_GLOB}/${n}`)}`);
  out.push(
    `[ ! -d "$mb" ] || (cd "$mb" && find . -mindepth 1 -maxdepth 1 -type d -name '${ACCOUNT_GLOB}' -printf '%P\\0') >>"$work/list" || status=2`,
    `[ ! -s "$work/list" ] || pack --directory="$base" --anchored --no-wildcards-match-slash ${excludes.join(" ")} --transform=${q(`s,^,${part}/${place}/,S`)} --null --verbatim-files-from --files-from="$work/list"`,
  );
  return out;
}

/**
 * The script for `parts` of the relay `config` describes; `manifest` (manifestText) becomes the archive's first
 * member. Prints the tar stream on stdout, messages on stderr; exits 0 when every part was archived.
 */
export function archiveScript(opts: {
  config: RelayConfig;
  parts: readonly Part[];
  manifest: string;
}): string {
  const entries = relayState(opts.config);
  const parts = orderedParts(opts.parts);
  const body = parts.flatMap((p) => [...section(p, "root", entries), ...section(p, "mail", entries)]);
  return `
root=
mb="$root"${q(opts.config.mailboxesDir)}
umask 077
work=$(mktemp -d) || exit 2
trap 'rm -rf "$work"' EXIT
status=0
# One tar archive after the other on stdout. tar exits 1 when a file changed or went while it was read (the relay
# keeps running): no error here; 2 and above are.
pack() {
  tar --create --file=- --format=gnu --ignore-failed-read --warning=no-file-changed --warning=no-file-removed "$@"
  rc=$?
  if [ "$rc" -gt 1 ]; then
    echo "archive: tar exited $rc" >&2
    status=2
  fi
}
# An entry alone (a file, a link or a folder without its contents), when it exists.
one() {
  if [ -e "$base/$1" ] || [ -L "$base/$1" ]; then printf '%s\\0' "$1" >>"$work/list"; fi
}
# A folder and everything in it, when it exists.
tree() {
  if [ -d "$base/$1" ]; then (cd "$base" && find "$1" -print0) >>"$work/list" || status=2; fi
}
# Archives the listed entries, each named <part>/<place>/<path>.
flush() {
  [ ! -s "$work/list" ] || pack --directory="$base" --no-recursion --transform="s,^,$1/,S" --null --verbatim-files-from --files-from="$work/list"
}
printf '%s\\n' ${q(opts.manifest)} >"$work/${MANIFEST_MEMBER}"
pack --directory="$work" --owner=root --group=root ${MANIFEST_MEMBER}
${body.join("\n")}
exit "$status"
`.trim();
}
