// The testbed's Debian 12 root filesystem: debootstrap bookworm (minbase) plus systemd, sshd and every Debian
// package the plan installs, built once and cached under a key made from that package list. The container has
// no route to a mirror, so the deploy's packages steps must find everything installed already.
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
import type { Plan } from "../../core/plan";
import { run } from "./proc";

/** Root filesystems kept in the cache: each is ~400 MB, and every change of the plan's packages makes a new one. */
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

export interface RootfsSpec {
  /** Sorted, unique Debian package names. */
  readonly packages: readonly string[];
  /** debconf answers from the plan's packages units, sorted. */
  readonly debconf: readonly string[];
}

/** The packages and debconf answers of every packages unit in the given plans, plus the base set. */
export function rootfsSpec(plans: readonly Plan[]): RootfsSpec {
  const packages = new Set(BASE_PACKAGES);
  const debconf = new Set<string>();
  for (const plan of plans) {
    for (const unit of plan.units) {
      if (unit.kind !== "packages") continue;
      unit.packages.forEach((p) => packages.add(p));
      unit.debconf.forEach((d) => debconf.add(d));
    }
  }
  return { packages: [...packages].sort(), debconf: [...debconf].sort() };
}

export function rootfsKey(spec: RootfsSpec): string {
  const text = JSON.stringify({ format: ROOTFS_FORMAT, packages: spec.packages, debconf: spec.debconf });
  return createHash("sha256").update(text).digest("hex").slice(0, 16);
}

export function cacheDir(): string {
  const base = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
  return join(base, "chatmail-relay");
}

/** The bookworm mirror this machine's apt uses (deb822 .sources first, then sources.list). */
export function debianMirror(): string {
  const dir = "/etc/apt/sources.list.d";
  const texts = existsSync(dir)
    ? readdirSync(dir)
        .filter((f) => f.endsWith(".sources"))
        .sort()
        .map((f) => readFileSync(join(dir, f), "utf8"))
    : [];
  for (const text of texts) {
    for (const stanza of text.split(/\n\s*\n/)) {
      const field = (name: string) => stanza.match(new RegExp(`^${name}:\\s*(.+)$`, "mi"))?.[1].trim();
      const suites = field("Suites")?.split(/\s+/) ?? [];
      const uri = field("URIs")?.split(/\s+/)[0];
      if (uri && suites.includes("bookworm")) return uri;
    }
  }
  if (existsSync("/etc/apt/sources.list")) {
    for (const line of readFileSync("/etc/apt/sources.list", "utf8").split("\n")) {
      const m = line.match(/^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s/);
      if (m) return m[1];
    }
  }
  throw new Error(
    "no bookworm mirror in /etc/apt/sources.list.d/*.sources or /etc/apt/sources.list; add one",
  );
}

/** The bookworm apt sources of this machine, so the rootfs gets the same updates and security fixes. */
function hostSources(): Map<string, string> {
  const out = new Map<string, string>();
  const dir = "/etc/apt/sources.list.d";
  if (existsSync(dir)) {
    for (const f of readdirSync(dir).sort()) {
      const text = readFileSync(join(dir, f), "utf8");
      if ((f.endsWith(".sources") || f.endsWith(".list")) && /\bbookworm\b/.test(text))
        out.set(`sources.list.d/${f}`, text);
    }
  }
  if (existsSync("/etc/apt/sources.list")) {
    const text = readFileSync("/etc/apt/sources.list", "utf8");
    if (/^deb\s.*\bbookworm\b/m.test(text)) out.set("sources.list", text);
  }
  return out;
}

const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** The bare debootstrap with BASE_PACKAGES, cached on its own: plan changes then cost only the apt step. */
async function ensureBase(log: (s: string) => void): Promise<{ dir: string; built: boolean }> {
  const key = createHash("sha256")
    .update(JSON.stringify({ format: ROOTFS_FORMAT, base: BASE_PACKAGES }))
    .digest("hex")
    .slice(0, 16);
  const dir = join(cacheDir(), `base-${key}`);
  if (existsSync(join(dir, "etc/chatmail-testbed-base"))) return { dir, built: false };
  await buildAtomically(dir, async (tmp) => {
    const mirror = debianMirror();
    log(`debootstrap bookworm from ${mirror}`);
    const base = BASE_PACKAGES.filter((p) => p !== "nodejs");
    await run("debootstrap", ["--variant=minbase", `--include=${base.join(",")}`, "bookworm", tmp, mirror], {
      timeoutMs: 15 * 60_000,
    });
    const sources = hostSources();
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
  const { dir: base, built: baseBuilt } = await ensureBase(log);
  await buildAtomically(dir, async (tmp) => {
    await run("cp", ["-a", base, tmp]);
    await installPackages(tmp, spec, log);
  });
  pruneRootfs();
  return { dir, built: baseBuilt ? "all" : "packages" };
}

/** Deletes all but the KEEP_ROOTFS most recently used root filesystems (use time = the marker's mtime). */
function pruneRootfs(): void {
  const root = cacheDir();
  const used = readdirSync(root)
    .filter((n) => /^rootfs-[0-9a-f]+$/.test(n) && existsSync(join(root, n, "etc/chatmail-testbed-rootfs")))
    .map((n) => ({ n, t: statSync(join(root, n, "etc/chatmail-testbed-rootfs")).mtimeMs }))
    .sort((a, b) => b.t - a.t);
  for (const { n } of used.slice(KEEP_ROOTFS)) rmSync(join(root, n), { recursive: true, force: true });
}
