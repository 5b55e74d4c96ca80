// Turns units into steps: the exact sh script and stdin that run on the server. The Pulumi components send
// these as remote commands and the testbed sends the very same bytes over SSH, so both deploy identically.
// Every script appends one line to RUN_LOG, which lets tests see which units ran.
import { sysctlFile } from "./facts";
import { MANIFEST, pruneScript, pruneStdin } from "./prune";
import { q, sha256 } from "./sh";
import {
  PHASES,
  type CheckUnit,
  type DirectoryUnit,
  type DownloadUnit,
  type FileUnit,
  type LineUnit,
  type OnceUnit,
  type PackagesUnit,
  type Phase,
  type Plan,
  type PruneUnit,
  type ServiceUnit,
  type Step,
  type SysctlUnit,
  type Unit,
  type UserUnit,
} from "./types";

export { q, sha256 };

/**
 * One line per executed step: `<time> <unit id> <hash>`, or `<time> <unit id> secret` for a step whose hash is
 * derived from a secret (Step.secretHash).
 */
export const RUN_LOG = "/var/lib/chatmail-deploy/runs.log";

/** The word the run log shows instead of a secret hash. */
export const SECRET_HASH_WORD = "secret";

/** The lock every service step holds while it talks to systemctl (see serviceBody). */
export const SERVICE_LOCK = "/run/lock/chatmail-deploy-services.lock";

/** How long a service step waits for its service's `ready` condition. */
export const READY_SECONDS = 30;

/** What one unit compiles to, before compileSteps adds the shell options and the run-log line. */
interface Body {
  readonly script: string;
  readonly stdin: string;
}

/** A body whose script takes no input: its lines joined, stdin empty. */
const scriptOnly = (...lines: string[]): Body => ({ script: lines.join("\n"), stdin: "" });

/** The check's own script, as written in units.ts. */
function checkBody(unit: CheckUnit): Body {
  return scriptOnly(unit.script);
}

/** Creates the primary group and the system user when missing, then adds the supplementary groups. */
function userBody(unit: UserUnit): Body {
  return scriptOnly(
    `getent group ${q(unit.group)} >/dev/null || groupadd --system ${q(unit.group)}`,
    `id -u ${q(unit.name)} >/dev/null 2>&1 || useradd --system --gid ${q(unit.group)} --home-dir ${q(unit.home)} --no-create-home --shell /usr/sbin/nologin ${q(unit.name)}`,
    ...unit.extraGroups.map((g) => `usermod --append --groups ${q(g)} ${q(unit.name)}`),
  );
}

/** Installs the packages not yet installed (nothing when all are), without starting their services. */
function packagesBody(unit: PackagesUnit): Body {
  return scriptOnly(
    "missing=",
    `for p in ${unit.packages.map(q).join(" ")}; do`,
    `  dpkg-query -W -f='\${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing="$missing $p"`,
    "done",
    '[ -z "$missing" ] && exit 0',
    "export DEBIAN_FRONTEND=noninteractive",
    ...unit.debconf.map((line) => `echo ${q(line)} | debconf-set-selections`),
    "# Installing must not start services with the packages' default configuration.",
    "printf '#!/bin/sh\\nexit 101\\n' >/usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d",
    "trap 'rm -f /usr/sbin/policy-rc.d' EXIT",
    "apt-get update -q",
    "apt-get install -y -q --no-install-recommends $missing",
  );
}

/** Creates the directory, or sets owner, group and mode of the one that is there. */
function directoryBody(unit: DirectoryUnit): Body {
  return scriptOnly(`install -d -o ${q(unit.owner)} -g ${q(unit.group)} -m ${unit.mode} ${q(unit.path)}`);
}

const isText = (c: string | Uint8Array): c is string => typeof c === "string";

/**
 * Writes stdin to a temporary file next to the target, sets owner, group and mode, and renames it into place,
 * then runs the unit's `then`. Text goes as is; bytes go base64-encoded.
 */
function fileBody(unit: FileUnit): Body {
  const dir = unit.path.slice(0, unit.path.lastIndexOf("/")) || "/";
  const name = unit.path.slice(unit.path.lastIndexOf("/") + 1);
  const text = isText(unit.content);
  const script = [
    `mkdir -p ${q(dir)}`,
    `tmp=$(mktemp ${q(`${dir}/.${name}.XXXXXX`)})`,
    `trap 'rm -f "$tmp"' EXIT`,
    text ? 'cat >"$tmp"' : 'base64 -d >"$tmp"',
    `chown ${q(`${unit.owner}:${unit.group}`)} "$tmp"`,
    `chmod ${unit.mode} "$tmp"`,
    `mv -f "$tmp" ${q(unit.path)}`,
    ...(unit.then ? [unit.then] : []),
  ].join("\n");
  const stdin = text ? unit.content : Buffer.from(unit.content).toString("base64") + "\n";
  return { script, stdin };
}

/** Keeps one exact line in a file, dropping the lines that start with the unit's prefix; the rest stays. */
function lineBody(unit: LineUnit): Body {
  return scriptOnly(
    `touch ${q(unit.path)}`,
    `grep -qxF ${q(unit.line)} ${q(unit.path)} && exit 0`,
    // Only lines starting with the prefix go; the prefix is a literal, so awk's index() and not a regex.
    `tmp=$(mktemp ${q(`${unit.path}.XXXXXX`)})`,
    `trap 'rm -f "$tmp"' EXIT`,
    `awk -v p=${q(unit.replaces)} 'index($0, p) != 1' ${q(unit.path)} >"$tmp"`,
    `echo ${q(unit.line)} >>"$tmp"`,
    `chmod --reference=${q(unit.path)} "$tmp" && chown --reference=${q(unit.path)} "$tmp"`,
    `mv -f "$tmp" ${q(unit.path)}`,
  );
}

/** Raises a kernel limit to its minimum, now and in its /etc/sysctl.d file. */
function sysctlBody(unit: SysctlUnit): Body {
  return scriptOnly(
    // A host tuned higher keeps its value: this only ever raises the limit.
    `current=$(sysctl -n ${q(unit.key)} 2>/dev/null || echo 0)`,
    `[ "$current" -ge ${unit.minimum} ] && exit 0`,
    `echo ${q(`${unit.key} = ${unit.minimum}`)} >${q(sysctlFile(unit.key))}`,
    "# Containers often have a read-only /proc/sys; the file still applies at the next boot.",
    `sysctl -q -w ${q(`${unit.key}=${unit.minimum}`)} || echo ${q(`warning: could not set ${unit.key} now`)} >&2`,
  );
}

/** Runs the unit's script unless the path it creates exists, then the unit's `then` in either case. */
function onceBody(unit: OnceUnit): Body {
  if (unit.then === undefined) return scriptOnly(`[ -e ${q(unit.creates)} ] && exit 0`, unit.script);
  return scriptOnly(`if [ ! -e ${q(unit.creates)} ]; then`, unit.script, "fi", unit.then);
}

/**
 * Downloads the archive, extracts the member and installs it only when its sha256 is the expected one; an
 * installed file that already matches means nothing to do.
 */
function downloadBody(unit: DownloadUnit): Body {
  return scriptOnly(
    `dest=${q(unit.path)}`,
    `want=${unit.sha256}`,
    `if [ -f "$dest" ] && [ "$(sha256sum <"$dest" | cut -d' ' -f1)" = "$want" ]; then exit 0; fi`,
    "work=$(mktemp -d)",
    `trap 'rm -rf "$work"' EXIT`,
    `curl -fsSL --retry 3 -o "$work/archive" ${q(unit.url)}`,
    `tar -xzf "$work/archive" -C "$work" ${q(unit.member)}`,
    `got=$(sha256sum <"$work/"${q(unit.member)} | cut -d' ' -f1)`,
    `if [ "$got" != "$want" ]; then`,
    `  echo "$dest: sha256 of ${unit.member} in ${unit.url} is $got, expected $want; the installed file is left unchanged" >&2`,
    "  exit 1",
    "fi",
    `install -m 0755 "$work/"${q(unit.member)} "$dest.new"`,
    'mv -f "$dest.new" "$dest"',
  );
}

/** The systemctl command that brings a service to its wanted run state. */
function serviceRunCommand(unit: ServiceUnit): string {
  const n = q(unit.name);
  // A unit that does not exist (a package not installed) is stopped already; one that is still active after the
  // stop fails the step, so that a service meant to be off (acceptMail false) never runs unnoticed.
  if (!unit.running) {
    return [
      `systemctl stop ${n} 2>/dev/null || true`,
      `if systemctl is-active --quiet ${n}; then echo ${q(`${unit.name} is still active after systemctl stop`)} >&2; exit 1; fi`,
    ].join("\n");
  }
  // A failed restart is tried once more a second later: systemd can lose the race for a unit's cgroup when a unit
  // starts right after it stopped (status=219/CGROUP, seen in containers); a service that cannot start fails twice.
  const restart = `{ systemctl restart ${n} || { sleep 1; systemctl restart ${n}; }; }`;
  // Restart covers the first start too; a service with only reload triggers is reloaded when running.
  if (unit.restartOn.length > 0 || unit.reloadOn.length === 0) return restart;
  return `systemctl is-active --quiet ${n} && systemctl reload ${n} || ${restart}`;
}

/** Polls the service's `ready` condition every 0.1 s, failing the step after READY_SECONDS. */
function serviceReadyWait(unit: ServiceUnit): string[] {
  if (!unit.running || !unit.ready) return [];
  return [
    `i=0; until ${unit.ready}; do`,
    `  i=$((i + 1)); [ "$i" -le ${READY_SECONDS * 10} ] || { echo ${q(`${unit.name} did not get ready within ${READY_SECONDS} s`)} >&2; exit 1; }`,
    "  sleep 0.1",
    "done",
  ];
}

/** Enables or disables the service, starts, restarts, reloads or stops it, then waits until it is ready. */
function serviceBody(unit: ServiceUnit): Body {
  const n = q(unit.name);
  return scriptOnly(
    // One service step at a time on the server: the engine runs a phase's steps in parallel, and concurrent
    // `systemctl daemon-reload` and restarts raced (a unit's cgroup went away under its own restart). The lock
    // is released when the script exits.
    `exec 9>${SERVICE_LOCK} && flock 9`,
    "systemctl daemon-reload",
    unit.enabled ? `systemctl enable ${n}` : `systemctl disable ${n} 2>/dev/null || true`,
    serviceRunCommand(unit),
    ...serviceReadyWait(unit),
  );
}

/** The prune script of prune.ts, with the owned list on stdin. */
function pruneBody(unit: PruneUnit): Body {
  return { script: pruneScript(unit), stdin: pruneStdin(unit) };
}

/** The body builder of each unit kind. */
const BODIES: { readonly [K in Unit["kind"]]: (unit: Extract<Unit, { kind: K }>) => Body } = {
  check: checkBody,
  user: userBody,
  packages: packagesBody,
  directory: directoryBody,
  file: fileBody,
  line: lineBody,
  sysctl: sysctlBody,
  once: onceBody,
  download: downloadBody,
  service: serviceBody,
  prune: pruneBody,
};

/** The script and stdin of one unit, by its kind. */
function body(unit: Unit): Body {
  // TypeScript cannot tie the table's entry to the unit's kind by itself; BODIES' type guarantees the match.
  return (BODIES[unit.kind] as (unit: Unit) => Body)(unit);
}

function filesOf(unit: Unit): string[] {
  if (unit.kind === "file" || unit.kind === "download" || unit.kind === "line") return [unit.path];
  if (unit.kind === "directory") return [unit.path + "/"];
  if (unit.kind === "once") return [unit.creates];
  if (unit.kind === "sysctl") return [sysctlFile(unit.key)];
  if (unit.kind === "prune") return [MANIFEST];
  return [];
}

/** Ids of the units whose hashes are part of this unit's hash: it must run again when one of them changes. */
function contentInputs(unit: Unit): readonly string[] {
  if (unit.kind === "service") return [...unit.restartOn, ...unit.reloadOn];
  if (unit.kind === "check") return unit.covers ?? [];
  return [];
}

/** Compiles units into steps; throws on a dangling reference or a duplicate id (a bug in the plan code). */
export function compileSteps(units: readonly Unit[]): Step[] {
  const byId = new Map<string, Unit>();
  for (const u of units) {
    if (byId.has(u.id)) throw new Error(`plan: duplicate unit id ${u.id}`);
    byId.set(u.id, u);
  }
  const hashes = new Map<string, string>();
  const secretHashes = new Set<string>();
  const steps: Step[] = [];
  const earlier = new Map<Phase, string[]>(PHASES.map((p) => [p, []]));
  for (const unit of units) {
    const inputs = contentInputs(unit);
    for (const ref of [...unit.after, ...inputs]) {
      if (!hashes.has(ref))
        throw new Error(`plan: ${unit.id} refers to ${ref}, which is not an earlier unit`);
    }
    const { script: core, stdin } = body(unit);
    const secret = unit.kind === "file" && unit.secret;
    // A hash over secret content, directly or through the hash of a unit it depends on, is itself a secret.
    const secretHash = secret || inputs.some((r) => secretHashes.has(r));
    const hash = sha256(JSON.stringify([unit.kind, core, sha256(stdin), inputs.map((r) => hashes.get(r))]));
    hashes.set(unit.id, hash);
    if (secretHash) secretHashes.add(unit.id);
    // The run-log line comes first: a step that exits early (nothing to do) still counts as run.
    const script = [
      "set -eu",
      `mkdir -p ${RUN_LOG.slice(0, RUN_LOG.lastIndexOf("/"))}`,
      `echo "$(date -u +%Y-%m-%dT%H:%M:%SZ) ${unit.id} ${secretHash ? SECRET_HASH_WORD : hash}" >>${RUN_LOG}`,
      core,
      "",
    ].join("\n");
    const phaseIndex = PHASES.indexOf(unit.phase);
    const previousPhase = PHASES.slice(0, phaseIndex)
      .reverse()
      .find((p) => earlier.get(p)!.length > 0);
    const dependsOn = [...(previousPhase ? earlier.get(previousPhase)! : []), ...unit.after];
    steps.push({
      id: unit.id,
      kind: unit.kind,
      phase: unit.phase,
      dependsOn: [...new Set(dependsOn)],
      script,
      stdin,
      secret,
      secretHash,
      hash,
      files: filesOf(unit),
    });
    earlier.get(unit.phase)!.push(unit.id);
  }
  return steps;
}

/** Orders units by phase (keeping the parts' order within a phase) and compiles them. */
export function planOf(units: readonly Unit[], warnings: readonly string[] = []): Plan {
  const ordered = PHASES.flatMap((phase) => units.filter((u) => u.phase === phase));
  return { units: ordered, steps: compileSteps(ordered), warnings };
}
