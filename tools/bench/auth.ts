// `npm run bench -- auth`: throughput and latency of doveauth as Dovecot uses it, measured on the bundled
// chatmaild.js running every daemon (doveauth, lastlogin, metadata, newaccount, both filtermail directions) in one
// process: first-login creations/s at 16 connections, passdb lookups/s with p50/p99 for existing accounts at 1, 16
// and 64 connections, and the process's resident memory idle and at peak. Prints a Markdown table.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect, createServer, type Socket } from "node:net";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { writeDaemonBundle } from "../../components/assets";
import { CHATMAILD_NODE_FLAGS, SERVICES, type ServiceName } from "../../core/server";
import { WORKER_IDLE_MS } from "../../daemons/doveauth/hashpool";

const DOMAIN = "bench.example.org";
const LOOKUP_SECONDS = 5;
const CREATE_CONNECTIONS = 16;
const CREATES_PER_CONNECTION = 40;
const PASSWORD = "benchpassword1";
/** Python chatmaild on these machines (issue 4): lookups/s at 1 and 16 connections, creations/s at 16. */
const REFERENCE = { lookups1: 7300, lookups16: 4000, creations16: 160 };

export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

/** VmRSS and VmHWM (peak) of a process in MB. */
export function memoryMb(pid: number): { rss: number; peak: number } {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = (key: string) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? NaN);
  return { rss: kb("VmRSS") / 1024, peak: kb("VmHWM") / 1024 };
}

/** Runs `work` while sampling a process's RSS every `intervalMs`; returns the highest sample in MB. */
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

/** CPU seconds (user + system, all threads) a process has used so far. */
function cpuSeconds(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in USER_HZ (100 on Linux)
}

/** One dict connection that sends a request and waits for its one-line reply. */
export class Conn {
  private pending: ((line: string) => void) | undefined;
  private buf = "";
  constructor(private readonly sock: Socket) {
    sock.setEncoding("latin1");
    sock.on("data", (d: string) => {
      this.buf += d;
      const nl = this.buf.indexOf("\n");
      if (nl !== -1 && this.pending) {
        const line = this.buf.slice(0, nl);
        this.buf = this.buf.slice(nl + 1);
        const p = this.pending;
        this.pending = undefined;
        p(line);
      }
    });
  }
  static open(path: string): Promise<Conn> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      s.once("error", reject);
      s.once("connect", () => resolve(new Conn(s)));
    });
  }
  request(line: string): Promise<string> {
    return new Promise((resolve) => {
      this.pending = resolve;
      this.sock.write(`${line}\n`);
    });
  }
  close(): void {
    this.sock.destroy();
  }
}

export const passdb = (user: string) => `Lshared/passdb/${PASSWORD}"${user}\t${user}`;
const percentile = (sorted: number[], p: number) =>
  sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))];

/** The bundled chatmaild.js (the bundle the relay ships), by default running all six services in one process as
 * chatmaild.service runs it. */
export interface Chatmaild {
  child: ChildProcess;
  socket: string;
  /** Where the outgoing filter listens. */
  filtermailSmtpPort: number;
  stop(): Promise<void>;
}

/** Starts the bundle in `dir` with a chatmail.ini of its own plus `iniLines`; resolves once `services` started. */
export async function startChatmaild(
  dir: string,
  domain: string,
  iniLines = "",
  services: readonly ServiceName[] = SERVICES,
): Promise<Chatmaild> {
  const mailboxesDir = join(dir, "vmail");
  mkdirSync(mailboxesDir);
  const socket = join(dir, "doveauth.socket");
  const ini = join(dir, "chatmail.ini");
  const filtermailSmtpPort = await freePort();
  writeFileSync(
    ini,
    `[params]\nmail_domain = ${domain}\nmailboxes_dir = ${mailboxesDir}\nmax_load_1m = 99999\nmin_available_memory = 0\n` +
      `min_free_disk_space = 0\nfiltermail_smtp_port = ${filtermailSmtpPort}\nfiltermail_smtp_port_incoming = ${await freePort()}\n` +
      `new_account_port = ${await freePort()}\n${iniLines}`,
  );
  const bundle = writeDaemonBundle(join(dir, "chatmaild.js"));
  const child = spawn(
    process.execPath,
    [
      ...CHATMAILD_NODE_FLAGS,
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
  return { child, socket, filtermailSmtpPort, stop };
}

/** A Node process that answers every line with "O" and does nothing else. */
const ECHO_SERVER = `
const path = process.argv[1];
require("node:net").createServer((s) => s.on("data", (d) => {
  let n = 0; for (const b of d) if (b === 10) n++;
  s.write("O\\n".repeat(n));
})).listen(path, () => console.log("ready"));
`;

/**
 * The ceiling: the same client against another process that only answers. At one connection a lookup is a round
 * trip between two processes, so this bounds any daemon on this machine.
 */
async function echoCeiling(dir: string, connections: number): Promise<number> {
  const path = join(dir, `echo-${connections}.socket`);
  const echo = spawn(process.execPath, ["-e", ECHO_SERVER, path], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise((r) => echo.stdout!.once("data", r));
  try {
    const cs = await Promise.all(Array.from({ length: connections }, () => Conn.open(path)));
    let done = 0;
    const end = Date.now() + LOOKUP_SECONDS * 1000;
    await Promise.all(
      cs.map(async (c) => {
        while (Date.now() < end) {
          await c.request("Lx");
          done++;
        }
      }),
    );
    for (const c of cs) c.close();
    return done / LOOKUP_SECONDS;
  } finally {
    echo.kill();
  }
}

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "bench-auth-"));
  const { child, socket, stop } = await startChatmaild(dir, DOMAIN);
  try {
    await new Promise((r) => setTimeout(r, 2000));
    const idle = memoryMb(child.pid as number);
    const rows: string[][] = [];

    // First-login creations: distinct new addresses, 16 connections in parallel.
    const conns = await Promise.all(Array.from({ length: CREATE_CONNECTIONS }, () => Conn.open(socket)));
    const users: string[] = [];
    let cpu0 = cpuSeconds(child.pid as number);
    let start = process.hrtime.bigint();
    await Promise.all(
      conns.map(async (c, ci) => {
        for (let i = 0; i < CREATES_PER_CONNECTION; i++) {
          const user = `b${String(ci).padStart(3, "0")}${String(i).padStart(5, "0")}@${DOMAIN}`;
          const reply = await c.request(passdb(user));
          if (reply[0] !== "O") throw new Error(`creation of ${user} failed: ${reply}`);
          users.push(user);
        }
      }),
    );
    const createSecs = Number(process.hrtime.bigint() - start) / 1e9;
    const creationsPerSec = users.length / createSecs;
    const createCpu = (100 * (cpuSeconds(child.pid as number) - cpu0)) / createSecs;
    for (const c of conns) c.close();
    rows.push([
      "first-login creations",
      String(CREATE_CONNECTIONS),
      creationsPerSec.toFixed(0),
      "-",
      "-",
      createCpu.toFixed(0),
      `${REFERENCE.creations16} (x${(creationsPerSec / REFERENCE.creations16).toFixed(1)})`,
    ]);

    // One unmeasured second of lookups, so the measured rows see the JIT-compiled lookup path.
    const warm = await Conn.open(socket);
    for (let i = 0, end = Date.now() + 1000; Date.now() < end; i++)
      await warm.request(passdb(users[i % users.length]));
    warm.close();

    let underLoad = 0;
    const ceiling = new Map<number, number>();
    for (const n of [1, 16]) ceiling.set(n, await echoCeiling(dir, n));
    for (const n of [1, 16, 64]) {
      const cs = await Promise.all(Array.from({ length: n }, () => Conn.open(socket)));
      const latencies: number[] = [];
      const deadline = process.hrtime.bigint() + BigInt(LOOKUP_SECONDS * 1e9);
      cpu0 = cpuSeconds(child.pid as number);
      start = process.hrtime.bigint();
      const sampler = setInterval(
        () => (underLoad = Math.max(underLoad, memoryMb(child.pid as number).rss)),
        250,
      );
      await Promise.all(
        cs.map(async (c, ci) => {
          for (let i = ci; process.hrtime.bigint() < deadline; i++) {
            const t0 = process.hrtime.bigint();
            const reply = await c.request(passdb(users[i % users.length]));
            latencies.push(Number(process.hrtime.bigint() - t0) / 1000);
            if (reply[0] !== "O") throw new Error(`lookup failed: ${reply}`);
          }
        }),
      );
      clearInterval(sampler);
      const secs = Number(process.hrtime.bigint() - start) / 1e9;
      for (const c of cs) c.close();
      latencies.sort((a, b) => a - b);
      const perSec = latencies.length / secs;
      const ref = n === 1 ? REFERENCE.lookups1 : n === 16 ? REFERENCE.lookups16 : undefined;
      rows.push([
        "passdb lookup, existing account",
        String(n),
        perSec.toFixed(0),
        percentile(latencies, 50).toFixed(0),
        percentile(latencies, 99).toFixed(0),
        ((100 * (cpuSeconds(child.pid as number) - cpu0)) / secs).toFixed(0),
        ref ? `${ref} (x${(perSec / ref).toFixed(1)})` : "-",
      ]);
    }
    for (const [n, perSec] of ceiling) {
      rows.push([
        "ceiling: a Node server that only answers, same client",
        String(n),
        perSec.toFixed(0),
        "-",
        "-",
        "-",
        "-",
      ]);
    }
    const mem = memoryMb(child.pid as number);
    // Hash workers exit after WORKER_IDLE_MS without work; then the process is back to its idle footprint.
    await new Promise((r) => setTimeout(r, WORKER_IDLE_MS + 3000));
    const after = memoryMb(child.pid as number);
    console.log(
      `machine: ${cpus().length} cores, load average ${loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")} (other work included)`,
    );
    console.log("");
    console.log(
      "| workload | connections | per second | p50 µs | p99 µs | daemon CPU % | Python reference per second (ratio) |",
    );
    console.log("|---|---:|---:|---:|---:|---:|---|");
    for (const r of rows) console.log(`| ${r.join(" | ")} |`);
    console.log("");
    console.log("| chatmaild.js, all six services in one process | RSS MB |");
    console.log("|---|---:|");
    console.log(`| idle after start | ${idle.rss.toFixed(1)} |`);
    console.log(`| highest sampled during lookups | ${underLoad.toFixed(1)} |`);
    console.log(`| peak (VmHWM, includes creation with hash workers) | ${mem.peak.toFixed(1)} |`);
    console.log(`| idle again, hash workers retired | ${after.rss.toFixed(1)} |`);
    console.log("");
    console.log(
      `node flags: ${CHATMAILD_NODE_FLAGS.join(" ")}; lookups run ${LOOKUP_SECONDS} s per row; ${CREATE_CONNECTIONS * CREATES_PER_CONNECTION} creations.`,
    );
  } finally {
    await stop();
    rmSync(dir, { recursive: true, force: true });
  }
}
