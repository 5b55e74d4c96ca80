// The daemons under measurement, as separate processes: the bundled chatmaild.js (the file the relay ships, run
// with the unit's node flags) and what /proc says about any process: resident memory and CPU time, all threads.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { writeDaemonBundle } from "../../components/assets";
import { CHATMAILD_NODE_FLAGS, SERVICES, type ServiceName } from "../../core/server";

// Ports handed out by this process: the kernel may offer a port again once its probe closed, and chatmaild
// refuses a configuration in which two of its ports are the same.
const handedOut = new Set<number>();

/** A loopback port that is free now and was not handed out before by this process. */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    if (!handedOut.has(port)) {
      handedOut.add(port);
      return port;
    }
  }
}

/**
 * VmRSS, VmHWM (peak) and RssAnon of a process in MiB. RSS includes the pages of the node binary itself (~30 MiB
 * here, file-backed, shared with every other node process and reclaimable); RssAnon is the process's own memory.
 */
export function memoryMb(pid: number): { rss: number; peak: number; anon: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rss: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024, anon: kb("RssAnon") / 1024 };
}

/**
 * The node flags the daemons run with: the unit's, plus any in BENCH_NODE_FLAGS (space-separated), to try a flag
 * before it goes into the unit.
 */
export const NODE_FLAGS: readonly string[] = [
  ...CHATMAILD_NODE_FLAGS,
  ...(process.env.BENCH_NODE_FLAGS ?? "").split(" ").filter((f) => f !== ""),
];

/** Runs `work` while sampling a process's RSS every `intervalMs`; returns the highest sample in MiB. */
export async function peakDuring(
  pid: number,
  work: () => Promise<unknown>,
  intervalMs = 50,
): Promise<number> {
  let peak = memoryMb(pid).rss;
  const sampler = setInterval(() => (peak = Math.max(peak, memoryMb(pid).rss)), intervalMs);
  try {
    await work();
  } finally {
    clearInterval(sampler);
  }
  return Math.max(peak, memoryMb(pid).rss);
}

/** CPU milliseconds (user + system, every thread) a process has used so far; 10 ms steps (USER_HZ 100). */
export function cpuMs(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10; // utime, stime
}

/** The bundled chatmaild.js running some or all of its services, as chatmaild.service runs it. */
export interface Chatmaild {
  child: ChildProcess;
  pid: number;
  /** doveauth's dict socket. */
  socket: string;
  /** Where the outgoing filter listens. */
  filtermailSmtpPort: number;
  stop(): Promise<void>;
}

/**
 * Starts the bundle in `dir` (a fresh directory) with a chatmail.ini of its own plus `iniLines`; resolves once
 * `services` started. `bundle` is a chatmaild.js already written, to spare rebuilding it for every start.
 */
export async function startChatmaild(
  dir: string,
  domain: string,
  iniLines = "",
  services: readonly ServiceName[] = SERVICES,
  bundle = writeDaemonBundle(join(dir, "chatmaild.js")),
): Promise<Chatmaild> {
  const mailboxesDir = join(dir, "vmail");
  mkdirSync(mailboxesDir, { recursive: true });
  const socket = join(dir, "doveauth.socket");
  const ini = join(dir, "chatmail.ini");
  const filtermailSmtpPort = await freePort();
  writeFileSync(
    ini,
    `[params]\nmail_domain = ${domain}\nmailboxes_dir = ${mailboxesDir}\nmax_load_1m = 99999\nmin_available_memory = 0\n` +
      `min_free_disk_space = 0\nfiltermail_smtp_port = ${filtermailSmtpPort}\nfiltermail_smtp_port_incoming = ${await freePort()}\n` +
      `new_account_port = ${await freePort()}\n${iniLines}`,
  );
  const child = spawn(
    process.execPath,
    [
      ...NODE_FLAGS,
      bundle,
      ini,
      ...services,
      "--doveauth-socket",
      socket,
      "--metadata-socket",
      join(dir, "m.socket"),
      "--lastlogin-socket",
      join(dir, "l.socket"),
      "--nocreate-file",
      join(dir, "nocreate"),
      // The metrics listener as on a relay (on by default), but on a free port.
      "--metrics-port",
      "0",
    ],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  let log = "";
  child.stderr?.on("data", (d) => (log += d));
  const stop = async () => {
    child.kill("SIGTERM");
    if (child.exitCode === null) await new Promise((r) => child.once("exit", r));
  };
  while ((log.match(/ started/g) ?? []).length < services.length) {
    if (child.exitCode !== null) throw new Error(`chatmaild exited: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { child, pid: child.pid as number, socket, filtermailSmtpPort, stop };
}
