// The testbed's Debian root filesystem: debootstrap of the stack's release (bookworm for serverOs debian-12,
// trixie for debian-13; minbase) plus systemd, sshd and every Debian package the plan installs, built once and
// cached under a key made from the release and that package list. The container has no route to a mirror, so the
// deploy's packages steps must find everything installed already.
import { createHash } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
  chmodSync,
} from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import type { RelayConfig } from "../../core/config";
import type { Plan } from "../../core/plan";
import { run } from "./proc";

/**
 * Root filesystems kept in the cache per release: each is ~400 MB, and every change of the plan's packages makes a
 * new one. Per release, so that runs on Debian 13 do not push out the Debian 12 one (CI runs both).
 */
const KEEP_ROOTFS = 3;

/** Bump when the build below changes in a way the package list does not show. */
export const ROOTFS_FORMAT = 1;

/** What a booted, SSH-reachable Debian server has before any deploy (a fresh VPS image has these too). */
export const BASE_PACKAGES = [
  "ca-certificates",
  "curl",
  "dbus",
  "iproute2",
  "nodejs",
  "openssh-server",
  "systemd",
  "systemd-sysv",
];

/** The Debian release (suite codename) of each serverOs. */
export const SUITES = { "debian-12": "bookworm", "debian-13": "trixie" } as const satisfies Record<
  RelayConfig["serverOs"],
  string
>;
export type Suite = (typeof SUITES)[keyof typeof SUITES];

/** The release whose apt sources this machine has: the mirror and update sources of every other are derived. */
const HOST_SUITE: Suite = "bookworm";
/** HOST_SUITE as a suite name (also in bookworm-updates), not inside another word such as cloud-sdk-bookworm. */
const hostSuite = (flags = "") => new RegExp(`(?<![\\w/-])${HOST_SUITE}\\b`, flags);

export interface RootfsSpec {
  readonly suite: Suite;
  /** Sorted, unique Debian package names. */
  readonly packages: readonly string[];
  /** debconf answers from the plan's packages units, sorted. */
  readonly debconf: readonly string[];
}

/** The packages and debconf answers of every packages unit in the given plans, plus the base set. */
export function rootfsSpec(suite: Suite, plans: readonly Plan[]): RootfsSpec {
  const packages = new Set(BASE_PACKAGES);
  const debconf = new Set<string>();
  for (const plan of plans) {
    for (const unit of plan.units) {
      if (unit.kind !== "packages") continue;
      unit.packages.forEach((p) => packages.add(p));
      unit.debconf.forEach((d) => debconf.add(d));
    }
  }
  return { suite, packages: [...packages].sort(), debconf: [...debconf].sort() };
}

export function rootfsKey(spec: RootfsSpec): string {
  // bookworm's key leaves the suite out, so the caches built before trixie existed stay valid.
  const release = spec.suite === HOST_SUITE ? {} : { suite: spec.suite };
  const text = JSON.stringify({
    format: ROOTFS_FORMAT,
    ...release,
    packages: spec.packages,
    debconf: spec.debconf,
  });
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

export function cacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(base, "chatmail-relay");
}

/** The bookworm mirror this machine's apt uses (deb822 .sources first, then sources.list); it serves trixie too. */
export function debianMirror(): string {
  for (const [, text] of hostSources()) {
    for (const stanza of text.split(/\n\s*\n/)) {
      const field = (name: string) => stanza.match(new RegExp(`^${name}:\\s*(.+)$`, "mi"))?.[1].trim();
      const suites = field("Suites")?.split(/\s+/) ?? [];
      const uri = field("URIs")?.split(/\s+/)[0];
      if (uri && suites.includes(HOST_SUITE)) return uri;
    }
    for (const line of text.split("\n")) {
      const m = line.match(new RegExp(`^deb\\s+(?:\\[[^\\]]*\\]\\s+)?(\\S+)\\s+${HOST_SUITE}\\s`));
      if (m) return m[1];
    }
  }
  throw new Error(
    `no ${HOST_SUITE} mirror in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list; add one`,
  );
}

/** The bookworm apt sources of this machine (file name under /etc/apt, text). */
function hostSources(): Map<string, string> {
  const out = new Map<string, string>();
  const dir = "/etc/apt/sources.list.d";
  if (existsSync(dir)) {
    for (const f of readdirSync(dir).sort()) {
      const text = readFileSync(join(dir, f), "utf8");
      if ((f.endsWith(".sources") || f.endsWith(".list")) && hostSuite().test(text))
        out.set(`sources.list.d/${f}`, text);
    }
  }
  if (existsSync("/etc/apt/sources.list")) {
    const text = readFileSync("/etc/apt/sources.list", "utf8");
    if (text.split("\n").some((l) => /^deb\s/.test(l) && hostSuite().test(l))) out.set("sources.list", text);
  }
  return out;
}

/**
 * The rootfs's apt sources: this machine's, with the release renamed, so the rootfs gets the same mirror, updates
 * and security fixes (bookworm-security becomes trixie-security, which the same mirrors serve).
 */
export function rootfsSources(suite: Suite, host = hostSources()): Map<string, string> {
  return new Map([...host].map(([name, text]) => [name, text.replace(hostSuite("g"), suite)]));
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The bare debootstrap with BASE_PACKAGES, cached on its own: plan changes then cost only the apt step. */
async function ensureBase(suite: Suite, log: (s: string) => void): Promise<{ dir: string; built: boolean }> {
  const release = suite === HOST_SUITE ? {} : { suite };
  const key = createHash("sha256")
    .update(JSON.stringify({ format: ROOTFS_FORMAT, ...release, base: BASE_PACKAGES }))
    .digest("hex")
    .slice(0, 16);
  const dir = join(cacheDir(), `base-${key}`);
  if (existsSync(join(dir, "etc/chatmail-testbed-base"))) return { dir, built: false };
  await buildAtomically(dir, async (tmp) => {
    const mirror = debianMirror();
    log(`debootstrap ${suite} from ${mirror}`);
    const base = BASE_PACKAGES.filter((p) => p !== "nodejs");
    await run("debootstrap", ["--variant=minbase", `--include=${base.join(",")}`, suite, tmp, mirror], {
      timeoutMs: 15 * 60_000,
    });
    const sources = rootfsSources(suite);
    if (sources.size > 0) {
      rmSync(join(tmp, "etc/apt/sources.list"), { force: true });
      for (const [name, text] of sources) writeFileSync(join(tmp, "etc/apt", name), text);
    }
    writeFileSync(join(tmp, "etc/chatmail-testbed-base"), "");
  });
  return { dir, built: true };
}

/** Builds into a temporary sibling and renames, so an interrupted build never looks finished. */
async function buildAtomically(dir: string, fill: (tmp: string) => Promise<void>): Promise<void> {
  mkdirSync(cacheDir(), { recursive: true });
  const tmp = `${dir}.build-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  try {
    await fill(tmp);
    // Another run may have finished the same build meanwhile; its copy is as good as ours.
    if (existsSync(dir)) rmSync(tmp, { recursive: true, force: true });
    else renameSync(tmp, dir);
  } catch (e) {
    await unmountUnder(tmp);
    rmSync(tmp, { recursive: true, force: true });
    throw e;
  }
}

/** Removes this process's unfinished builds (after Ctrl-C or a kill during the build), mounts first. */
export async function abandonBuilds(): Promise<void> {
  const root = cacheDir();
  if (!existsSync(root)) return;
  for (const name of readdirSync(root).filter((n) => n.endsWith(`.build-${process.pid}`))) {
    await unmountUnder(join(root, name));
    rmSync(join(root, name), { recursive: true, force: true });
  }
}

/** Unmounts what an interrupted debootstrap or chroot left mounted below dir (proc, sys), deepest first. */
async function unmountUnder(dir: string): Promise<void> {
  const mounts = readFileSync("/proc/mounts", "utf8")
    .split("\n")
    .map((l) => l.split(" ")[1])
    .filter((m): m is string => m !== undefined && m.startsWith(dir + "/"))
    .sort()
    .reverse();
  for (const m of mounts) await run("umount", ["-l", m], { allowFail: true });
}

async function installPackages(dir: string, spec: RootfsSpec, log: (s: string) => void): Promise<void> {
  // Package scripts must not start daemons: in a chroot they would run in the host's network namespace.
  const policy = join(dir, "usr/sbin/policy-rc.d");
  writeFileSync(policy, "#!/bin/sh\nexit 101\n");
  chmodSync(policy, 0o755);
  const extra = spec.packages.filter((p) => !BASE_PACKAGES.includes(p) || p === "nodejs");
  log(`installing ${extra.length} packages: ${extra.join(" ")}`);
  const script = [
    "set -eu",
    "mount -t proc proc /proc",
    "export DEBIAN_FRONTEND=noninteractive",
    ...spec.debconf.map((d) => `echo ${q(d)} | debconf-set-selections`),
    "apt-get update -q",
    // The same flags as the plan's packages steps, so the server ends up as a real deploy would leave it.
    `apt-get install -y -q --no-install-recommends ${extra.map(q).join(" ")}`,
    "apt-get clean",
    "rm -rf /var/lib/apt/lists/*",
  ].join("\n");
  // A private mount namespace, so the chroot's /proc disappears with the process.
  await run("unshare", ["--mount", "--fork", "chroot", dir, "sh", "-c", script], { timeoutMs: 20 * 60_000 });
  rmSync(policy);
  writeFileSync(join(dir, "etc/hostname"), "chat\n");
  // An empty machine-id makes systemd generate one at each boot, as on a freshly imaged server.
  writeFileSync(join(dir, "etc/machine-id"), "");
  writeFileSync(
    join(dir, "etc/chatmail-testbed-rootfs"),
    JSON.stringify({ format: ROOTFS_FORMAT, ...spec }) + "\n",
  );
}

/** Returns the cached rootfs for this spec, building it (and the debootstrap base) first when missing. */
export async function ensureRootfs(
  spec: RootfsSpec,
  log: (s: string) => void,
): Promise<{ dir: string; built: "no" | "packages" | "all" }> {
  const dir = join(cacheDir(), `rootfs-${rootfsKey(spec)}`);
  const marker = join(dir, "etc/chatmail-testbed-rootfs");
  if (existsSync(marker)) {
    const now = new Date();
    utimesSync(marker, now, now);
    pruneRootfs();
    return { dir, built: "no" };
  }
  const { dir: base, built: baseBuilt } = await ensureBase(spec.suite, log);
  await buildAtomically(dir, async (tmp) => {
    await run("cp", ["-a", base, tmp]);
    await installPackages(tmp, spec, log);
  });
  pruneRootfs();
  return { dir, built: baseBuilt ? "all" : "packages" };
}

/** Deletes all but the KEEP_ROOTFS most recently used root filesystems of each release (use time = the marker's mtime). */
function pruneRootfs(): void {
  const root = cacheDir();
  const bySuite = new Map<string, Array<{ n: string; t: number }>>();
  for (const n of readdirSync(root).filter((n) => /^rootfs-[0-9a-f]+$/.test(n))) {
    const marker = join(root, n, "etc/chatmail-testbed-rootfs");
    if (!existsSync(marker)) continue;
    // Markers written before the suite was recorded are bookworm's.
    const suite = (JSON.parse(readFileSync(marker, "utf8")) as { suite?: string }).suite ?? HOST_SUITE;
    bySuite.set(suite, [...(bySuite.get(suite) ?? []), { n, t: statSync(marker).mtimeMs }]);
  }
  for (const used of bySuite.values()) {
    used.sort((a, b) => b.t - a.t);
    for (const { n } of used.slice(KEEP_ROOTFS)) rmSync(join(root, n), { recursive: true, force: true });
  }
}
