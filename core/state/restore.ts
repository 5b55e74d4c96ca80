// The restore script: reads an archive (manifest.ts) on stdin and puts the chosen parts of it in place on the
// server. Nothing is changed until the whole stream is in: it is extracted into a staging folder next to the
// mailboxes (the same file system, so that putting it in place is a rename), and only when tar succeeded, the
// stream ends with the tool's commit member and the manifest names this relay are the entries moved into place.
// A damaged, cut or foreign stream therefore changes nothing but the users below.
//
// Before extracting it creates the owners the plan creates (vmail, opendkim), by the plan's own user steps, so
// that tar maps the owner names in the archive to this server's ids; afterwards it sets owner and mode of the
// DKIM key and of the account folders as the plan has them. While entries move into place it stops Postfix,
// Dovecot and chatmaild if they run, and starts again those it stopped. Existing files of the same name are
// replaced; other files stay; an existing folder keeps its owner and mode.
//
// Keys are refused on a server that was deployed already (the deploy's manifest exists) unless forced: the deploy
// read the DKIM key and the ACME account back into DNS, so other keys would leave the DKIM and CAA records wrong.
// `root=` prefixes every server path: empty on a server, a temporary folder in the tests.
import type { RelayConfig } from "../config";
import { PATHS, USERS } from "../plan/facts";
import { MANIFEST } from "../plan/prune";
import { q } from "../plan/sh";
import { RUN_LOG } from "../plan/steps";
import type { DirectoryUnit, Plan } from "../plan/types";
import { orderedParts, type Part } from "./entries";
import { COMMIT_MEMBER, MANIFEST_MEMBER } from "./manifest";

/** Exit code of a refusal (keys onto a deployed server). */
export const REFUSED_EXIT = 3;

/** Services stopped while entries move into place, in stopping order (started again in reverse). */
export const MAIL_SERVICES = ["postfix.service", "dovecot.service", "chatmaild.service"] as const;

/** The mode the DKIM private key must have (the plan's DKIM key unit sets the same). */
const DKIM_KEY_MODE = "0600";

/**
 * The body of one of the plan's steps without the run-log lines every step starts with (steps.ts, compileSteps):
 * the restore creates users exactly as the deploy does, but it is no deploy step and writes no run-log line.
 */
export function stepBody(plan: Pick<Plan, "steps">, id: string): string {
  const step = plan.steps.find((s) => s.id === id);
  if (!step) throw new Error(`state: the plan has no step ${id}`);
  const lines = step.script.split("\n");
  const runLogDir = RUN_LOG.slice(0, RUN_LOG.lastIndexOf("/"));
  if (lines[0] !== "set -eu" || lines[1] !== `mkdir -p ${runLogDir}` || !lines[2]?.endsWith(`>>${RUN_LOG}`))
    throw new Error(`state: step ${id} does not start with the run-log lines of compileSteps`);
  return lines.slice(3).join("\n").trim();
}

function directoryUnit(plan: Pick<Plan, "units">, path: string): DirectoryUnit {
  const unit = plan.units.find((u): u is DirectoryUnit => u.kind === "directory" && u.path === path);
  if (!unit) throw new Error(`state: the plan has no directory unit for ${path}`);
  return unit;
}

/** Which users the restored parts need: opendkim owns the keys, vmail the accounts and mailboxes. */
function usersFor(parts: readonly Part[]): string[] {
  const users: string[] = [];
  if (parts.includes("keys")) users.push(USERS.opendkim);
  if (parts.includes("accounts") || parts.includes("mailboxes")) users.push(USERS.vmail);
  return users;
}

/** The refusal's message: what would go wrong, and the three ways on. */
export const KEYS_REFUSAL =
  "restore: refused: this server was deployed already (the deploy manifest exists) and the archive's keys would " +
  "replace the DKIM key and the ACME account that its DNS records were made from, leaving the DKIM and CAA " +
  "records wrong. To keep the old DKIM key on a deployed server, set it as the stack's dkimPrivateKey option " +
  "(npm run --silent restore -- dkim-key --in FILE --key-file KEYFILE | pulumi config set --secret dkimPrivateKey) and " +
  "run pulumi up; restore accounts and mailboxes with --parts accounts,mailboxes; or replace the keys anyway " +
  "with --force and then make pulumi up read them back (pulumi up --replace with the URNs of the relay's " +
  "read-dkim-public-key and read-acme-account commands, see docs/continuity.md). Nothing was changed.";

/**
 * The script that restores `parts` of an archive onto the server of `config`; `plan` is that relay's plan (its
 * user steps and directory units). `force` allows keys onto a deployed server.
 */
export function restoreScript(opts: {
  config: RelayConfig;
  plan: Pick<Plan, "units" | "steps">;
  parts: readonly Part[];
  force: boolean;
}): string {
  const { config, plan } = opts;
  const parts = orderedParts(opts.parts);
  if (parts.length === 0) throw new Error("state: restore of no part");
  const users = usersFor(parts);
  const userSteps = users.map((u) => stepBody(plan, `user:${u}`)).join("\n");
  const mailDir = directoryUnit(plan, config.mailboxesDir);
  const dkimDir = directoryUnit(plan, PATHS.dkimKeyDir);
  const dkimKey = `"$root"${q(PATHS.dkimPrivateKey)}`;
  const stopOrder = MAIL_SERVICES.join(" ");
  return `
root=
domain=${q(config.mailDomain)}
parts=${q(parts.join(" "))}
force=${opts.force ? 1 : 0}
mb="$root"${q(config.mailboxesDir)}
deployed="$root"${q(MANIFEST)}
umask 022
say() { echo "restore: $*" >&2; }
has() { case " $parts " in *" $1 "*) return 0 ;; esac; return 1; }
if has keys && [ -e "$deployed" ] && [ "$force" != 1 ]; then
  echo ${q(KEYS_REFUSAL)} >&2
  exit ${REFUSED_EXIT}
fi
# The owners, created as the deploy creates them, so that tar gives their files this server's ids.
# (A subshell of its own, not an if condition, so that set -e applies in it.)
(
  set -eu
${userSteps}
)
if [ $? -ne 0 ]; then
  say "could not create the users ${users.join(" and ")}; nothing else was changed"
  exit 1
fi
# The staging folder: next to the mailboxes, below the nearest folder that exists.
d=$(dirname "$mb")
while [ ! -d "$d" ]; do d=$(dirname "$d"); done
stage=$(mktemp -d "$d/.chatmail-restore.XXXXXX") || { say "cannot make a staging folder in $d"; exit 1; }
x=$stage/x
stopped=
cleanup() {
  for s in $stopped; do systemctl start "$s" || say "could not start $s again"; done
  rm -rf "$stage"
}
trap cleanup EXIT
trap 'exit 1' HUP INT TERM
mkdir "$x"
# As root, tar gives each file the owner named in the archive (by name where this server knows it) and its mode.
if ! tar --extract --file=- --ignore-zeros --same-permissions --directory="$x"; then
  say "the archive stream is damaged or cut short (tar failed); nothing was changed"
  exit 1
fi
if [ ! -f "$x/${COMMIT_MEMBER}" ]; then
  say "the archive stream ended before its end mark: an interrupted transfer, a damaged backup or a failed archive on the other server; nothing was changed"
  exit 1
fi
got=$(sed -n 's/.*"mailDomain":"\\([^"]*\\)".*/\\1/p' "$x/${MANIFEST_MEMBER}" 2>/dev/null)
if [ "$got" != "$domain" ]; then
  say "the archive is of \${got:-an unknown relay}, this relay is $domain; nothing was changed"
  exit 1
fi
# What is placed: the files per part, and the account folders whose owner is set afterwards.
summary=
for p in $parts; do
  n=0
  [ ! -d "$x/$p" ] || n=$(find "$x/$p" ! -type d | wc -l)
  summary="$summary\${summary:+,} $p: $n files"
done
: >"$stage/folders"
for p in accounts mailboxes; do
  has "$p" && [ -d "$x/$p/mail" ] || continue
  (cd "$x/$p/mail" && find . -mindepth 1 -maxdepth 1 -type d -printf '%P\\n') >>"$stage/folders"
done
LC_ALL=C sort -u "$stage/folders" >"$stage/accounts"
# From here on the placing runs to its end: a dropped connection (HUP, a closed stdout) must not leave the
# services stopped.
trap '' HUP PIPE
for s in ${stopOrder}; do
  if systemctl is-active --quiet "$s" 2>/dev/null; then
    systemctl stop "$s" || { say "could not stop $s; nothing was changed"; exit 1; }
    stopped="$s $stopped"
  fi
done
: >"$stage/replaced"
: >"$stage/failed"
# A folder whose target is no folder yet moves as a whole; into an existing folder (or a link to one) its entries
# move one by one (find descends), the folder keeping its owner and mode. Files and links replace files and links
# of the same name.
folder='t=$2/\${4#"$1"/}
if [ -d "$t" ]; then exit 1; fi
if [ -e "$t" ] || [ -L "$t" ]; then echo "$t: not a folder on the server" >>"$3/failed"; exit 0; fi
mv -T "$4" "$t" || echo "$t" >>"$3/failed"
exit 0'
files='src=$1 dst=$2 st=$3
shift 3
for f; do
  t=$dst/\${f#"$src"/}
  if [ -d "$t" ] && [ ! -L "$t" ]; then echo "$t: a folder on the server" >>"$st/failed"; continue; fi
  if [ -e "$t" ] || [ -L "$t" ]; then echo "$t" >>"$st/replaced"; fi
  mv -f -T "$f" "$t" || echo "$t" >>"$st/failed"
done'
place() {
  [ -d "$1" ] || return 0
  find "$1" -mindepth 1 \\( -type d -exec sh -c "$folder" sh "$1" "$2" "$stage" {} \\; -prune -o -type d \\) -o -exec sh -c "$files" sh "$1" "$2" "$stage" {} +
}
for p in $parts; do
  place "$x/$p/root" "$root"
  if [ -d "$x/$p/mail" ]; then
    mkdir -p "$mb"
    chown ${q(`${mailDir.owner}:${mailDir.group}`)} "$mb" && chmod ${mailDir.mode} "$mb" || echo "$mb: owner and mode" >>"$stage/failed"
    place "$x/$p/mail" "$mb"
  fi
done
# Owners and modes as the plan has them, for this server's users.
if has keys && [ -e ${dkimKey} ]; then
  chown ${q(`${dkimDir.owner}:${dkimDir.group}`)} "$root"${q(PATHS.dkimKeyDir)} ${dkimKey} &&
    chmod ${dkimDir.mode} "$root"${q(PATHS.dkimKeyDir)} && chmod ${DKIM_KEY_MODE} ${dkimKey} ||
    echo "${PATHS.dkimPrivateKey}: owner and mode" >>"$stage/failed"
  # Services that read keys and certificates take the restored ones (a forced restore on a running relay).
  systemctl try-restart opendkim.service nginx.service 2>/dev/null || true
fi
while IFS= read -r a; do
  [ -z "$a" ] || chown -R ${q(`${USERS.vmail}:${USERS.vmail}`)} "$mb/$a" || echo "$mb/$a: owner" >>"$stage/failed"
done <"$stage/accounts"
failed=$(wc -l <"$stage/failed")
replaced=$(wc -l <"$stage/replaced")
restarted=
[ -z "$stopped" ] || restarted="; stopped and started again:$(for s in $stopped; do printf ' %s' "$s"; done)"
if [ "$failed" -gt 0 ]; then
  say "placed$summary, but $failed entries could not be placed or owned, first: $(head -n 1 "$stage/failed")"
  exit 1
fi
echo "restore: placed$summary ($replaced replaced existing files)$restarted"
`.trim();
}
