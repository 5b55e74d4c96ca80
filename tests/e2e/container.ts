// Boots the cached rootfs as a real Debian server: systemd as PID 1 under systemd-nspawn, inside the test's
// network namespace, on an overlay so the cache stays pristine. Only the root SSH key is added before boot.
import { spawn, type ChildProcess } from "node:child_process";
import {
  chmodSync,
  createWriteStream,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import { connect } from "node:net";
import type { Netns } from "./netns";
import { run, waitFor } from "./proc";

const REBOOT_DOWN_MS = 150_000;

export interface Container {
  /** PID of systemd-nspawn on the host. */
  readonly nspawnPid: number;
  /** PID of the container's systemd, as the host sees it (for nsenter). */
  readonly initPid: number;
  /** `systemctl is-system-running` once booted: running or degraded. */
  readonly state: string;
  /** Reboots the server (systemctl reboot) and waits until it is up again with sshd answering. */
  reboot(): Promise<void>;
  /** Runs a command inside the container (all its namespaces) without SSH. */
  enter(args: readonly string[]): Promise<string>;
  stop(): Promise<void>;
}

export interface BootOptions {
  readonly rootfs: string;
  /** Per-run scratch directory; the overlay's upper and merged dirs and the console log go here. */
  readonly runDir: string;
  readonly netns: Netns;
  readonly authorizedKey: string;
  readonly log: (s: string) => void;
}

const BOOT_DEADLINE_MS = 90_000;

function children(pid: number): number[] {
  const out: number[] = [];
  const taskDir = `/proc/${pid}/task`;
  if (!existsSync(taskDir)) return out;
  for (const tid of readdirSync(taskDir)) {
    try {
      const text = readFileSync(`${taskDir}/${tid}/children`, "utf8").trim();
      if (text) out.push(...text.split(/\s+/).map(Number));
    } catch {
      // The task ended while we looked.
    }
  }
  return out;
}

/** The container's init: the first descendant of systemd-nspawn that runs systemd. */
function findInit(nspawnPid: number): number | undefined {
  const queue = children(nspawnPid);
  while (queue.length > 0) {
    const pid = queue.shift()!;
    try {
      if (readFileSync(`/proc/${pid}/comm`, "utf8").trim() === "systemd") return pid;
    } catch {
      continue;
    }
    queue.push(...children(pid));
  }
  return undefined;
}

const alive = (pid: number) => existsSync(`/proc/${pid}`);

function tcpOpen(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port, timeout: 1000 });
    sock.once("connect", () => {
      sock.destroy();
      resolve(true);
    });
    sock.once("error", () => resolve(false));
    sock.once("timeout", () => {
      sock.destroy();
      resolve(false);
    });
  });
}

export async function bootContainer(opts: BootOptions): Promise<Container> {
  const upper = join(opts.runDir, "upper");
  const work = join(opts.runDir, "work");
  const merged = join(opts.runDir, "root");
  for (const d of [upper, work, merged]) mkdirSync(d, { recursive: true });
  await run("mount", [
    "-t",
    "overlay",
    "overlay",
    "-o",
    `lowerdir=${opts.rootfs},upperdir=${upper},workdir=${work}`,
    merged,
  ]);
  const consoleLog = join(opts.runDir, "console.log");

  let child: ChildProcess | undefined;
  let initPid = 0;
  let state = "";
  const nspawnAlive = () => child?.pid !== undefined && child.exitCode === null && child.signalCode === null;

  const kill = async () => {
    if (!nspawnAlive()) return;
    // SIGTERM makes nspawn ask systemd for an orderly poweroff; SIGKILL of the container's PID 1 ends
    // everything in its PID namespace if that takes too long.
    child!.kill("SIGTERM");
    const exited = await waitFor("systemd-nspawn exit", 20_000, async () =>
      nspawnAlive() ? undefined : true,
    ).catch(() => false);
    if (!exited) {
      opts.log("container did not power off within 20 s; killing it");
      if (initPid && alive(initPid)) process.kill(initPid, "SIGKILL");
      if (nspawnAlive()) child!.kill("SIGKILL");
      await waitFor("systemd-nspawn exit after SIGKILL", 10_000, async () =>
        nspawnAlive() ? undefined : true,
      );
    }
  };

  const stop = async () => {
    await kill();
    await run("umount", [merged], { allowFail: true });
    if (readFileSync("/proc/mounts", "utf8").includes(` ${merged} `))
      await run("umount", ["-l", merged], { allowFail: true });
    rmSync(upper, { recursive: true, force: true });
    rmSync(work, { recursive: true, force: true });
  };

  const enter = async (args: readonly string[]) =>
    (await run("nsenter", ["-t", String(initPid), "-a", ...args], { timeoutMs: 60_000 })).stdout.trim();

  /** Starts nspawn on the overlay and waits until systemd reports the boot finished and sshd answers. */
  const start = async () => {
    const console = createWriteStream(consoleLog, { flags: "a" });
    child = spawn(
      "systemd-nspawn",
      [
        "-D",
        merged,
        "-b",
        "--console=pipe",
        // Without these two, nspawn wants the host's system bus, which this machine (PID 1 is not systemd) lacks.
        "--register=no",
        "--keep-unit",
        `--network-namespace-path=${opts.netns.path}`,
        `--machine=${opts.netns.name}`,
        "--hostname=chat",
      ],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    child.stdout!.pipe(console);
    child.stderr!.pipe(console);
    const nspawnPid = child.pid!;
    initPid = await waitFor("container systemd started", 30_000, async () => {
      if (!nspawnAlive()) throw new Error(`systemd-nspawn exited; see ${consoleLog}`);
      return findInit(nspawnPid);
    });
    state = await waitFor(
      "systemctl is-system-running = running or degraded",
      BOOT_DEADLINE_MS,
      async () => {
        if (!nspawnAlive()) throw new Error(`systemd-nspawn exited; see ${consoleLog}`);
        const r = await run("nsenter", ["-t", String(initPid), "-a", "systemctl", "is-system-running"], {
          allowFail: true,
          timeoutMs: 10_000,
        });
        const s = r.stdout.trim();
        return s === "running" || s === "degraded" ? s : undefined;
      },
      500,
    );
    if (state === "degraded") {
      const failed = await enter(["systemctl", "--failed", "--no-legend", "--plain"]);
      opts.log(`booted degraded; failed units:\n${failed}`);
    }
    await waitFor(`sshd at ${opts.netns.containerAddr}:22`, 30_000, async () =>
      (await tcpOpen(opts.netns.containerAddr, 22)) ? true : undefined,
    );
  };

  try {
    const sshDir = join(merged, "root/.ssh");
    mkdirSync(sshDir, { recursive: true });
    chmodSync(sshDir, 0o700);
    writeFileSync(join(sshDir, "authorized_keys"), opts.authorizedKey.trim() + "\n", { mode: 0o600 });
    await start();
  } catch (e) {
    await stop();
    throw e;
  }
  return {
    get nspawnPid() {
      return child!.pid!;
    },
    get initPid() {
      return initPid;
    },
    get state() {
      return state;
    },
    enter,
    async reboot() {
      // nspawn ends when the container reboots (exit status 133; only a service manager restarts it), so the
      // testbed boots the same overlay again: everything written to the server survives, as on a real reboot.
      const exited = new Promise<number | null>((resolve) => child!.once("exit", (code) => resolve(code)));
      await enter(["systemctl", "reboot"]).catch(() => "");
      // Longer than systemd's own 90 s stop timeout: a stop that hangs in these containers (postfix@- once did,
      // amid "Failed to kill control group" errors) is killed by systemd, and the reboot goes on.
      const code = await Promise.race([
        exited,
        new Promise<"timeout">((r) => setTimeout(() => r("timeout"), REBOOT_DOWN_MS)),
      ]);
      if (code === "timeout")
        throw new Error(
          `the container did not go down within ${REBOOT_DOWN_MS / 1000} s of systemctl reboot`,
        );
      if (code !== 133) opts.log(`systemd-nspawn exited with ${code} on reboot (133 expected)`);
      await start();
    },
    stop,
  };
}
