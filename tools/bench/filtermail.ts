// `npm run bench -- filtermail`: throughput, latency and CPU cost of the outgoing filter in front of a fast SMTP
// sink, next to the sink alone (the ceiling), for 4 KB and 100 KB OpenPGP-encrypted messages at 1, 10 and 50
// concurrent clients; plus the filter's resident memory idle, at peak, and while passing one 30 MB message.
// The filter is the daemon bundle the relay ships, running filtermail-outgoing alone with the unit's node flags;
// the sink (tools/smtp-sink.ts) is a process of its own too; this process only generates load. Clients keep their
// connection and send MAIL, RCPT, DATA one step at a time; one row per size opens a fresh connection per message,
// as Postfix's smtpd_proxy_filter client does.
// Honest figures on a shared machine: every ratio compares the filter with the sink alone measured by the same
// client in the same round; rows repeat in interleaved rounds (sink and filter alternate which goes first) and
// print the median with the spread; the filter's CPU milliseconds per message (all its threads, from /proc)
// depend much less on other load than messages per second do.
// BENCH_ROUNDS and BENCH_RUN_MS shorten or lengthen a run.
import { fork, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import * as net from "node:net";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import * as openpgp from "openpgp";
import { stuffedSlices } from "../../daemons/smtp/data";
import { ReplyReader } from "../../daemons/smtp/reply-reader";
import { cpuMs, memoryMb, peakDuring, startChatmaild } from "./chatmaild";
import { median, summary } from "./stats";

// Seven rounds: on two cores shared by three processes, the median of five still moved from 39 to 47 % between
// back-to-back runs of the same code (docs/benchmarks.md, 'What the figures mean').
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 7);
const RUN_MS = Number(process.env.BENCH_RUN_MS ?? 1500);
const WARMUP_MS = 300;
const CONCURRENCY = [1, 10, 50];
export const SENDER = "bench@chat.example.org";
const RECIPIENT = "bob@chat.example.org";
/** RSS samples of the filter while a load runs. */
const SAMPLE_MS = 10;

export interface Sink {
  proc: ChildProcess;
  port: number;
}

/** Forks tools/smtp-sink.ts (through this process's TypeScript loader); resolves with its port. */
export async function startSink(): Promise<Sink> {
  const proc = fork(join(__dirname, "..", "smtp-sink.ts"), [], {
    stdio: ["ignore", "ignore", "inherit", "ipc"],
  });
  const { port } = await new Promise<{ port: number }>((resolve, reject) => {
    proc.once("message", (m) => resolve(m as { port: number }));
    proc.once("exit", (code) => reject(new Error(`the SMTP sink exited with ${code}`)));
  });
  return { proc, port };
}

/** A load-generating SMTP client: one connection, any number of transactions in sequence. */
class BenchClient {
  private readonly reader = new ReplyReader();
  private waiting: ((code: number) => void) | undefined;

  private constructor(private readonly socket: net.Socket) {
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => {
      for (const r of this.reader.push(chunk)) {
        const w = this.waiting;
        this.waiting = undefined;
        w?.(r.code);
      }
    });
    socket.on("error", () => this.waiting?.(0));
  }

  static async open(port: number): Promise<BenchClient> {
    const c = new BenchClient(net.connect({ host: "127.0.0.1", port }));
    if ((await c.next()) !== 220 || (await c.command("EHLO bench\r\n")) !== 250)
      throw new Error("no SMTP session");
    return c;
  }

  /** MAIL, RCPT, DATA and the message, one step after the other as Postfix's proxy client does. */
  async send(wire: Buffer[]): Promise<number> {
    for (const cmd of [`MAIL FROM:<${SENDER}>\r\n`, `RCPT TO:<${RECIPIENT}>\r\n`]) {
      const code = await this.command(cmd);
      if (code !== 250) return code;
    }
    const data = await this.command("DATA\r\n");
    if (data !== 354) return data;
    const done = this.next();
    this.socket.cork();
    for (const b of wire) this.socket.write(b);
    this.socket.uncork();
    return done;
  }

  close(): void {
    this.socket.end("QUIT\r\n");
  }

  private command(line: string): Promise<number> {
    const p = this.next();
    this.socket.write(line);
    return p;
  }

  private next(): Promise<number> {
    return new Promise((resolve) => (this.waiting = resolve));
  }
}

/** One message on a fresh connection (what Postfix's smtpd_proxy_filter client does per transaction). */
async function transaction(port: number, wire: Buffer[]): Promise<number> {
  const c = await BenchClient.open(port);
  try {
    return await c.send(wire);
  } finally {
    c.close();
  }
}

interface LoadResult {
  /** Messages accepted (250). */
  messages: number;
  perSecond: number;
  p50: number;
  p99: number;
  failures: number;
}

/** `clients` concurrent senders for `ms`; each keeps one connection, or opens a fresh one per message. */
export async function load(
  port: number,
  wire: Buffer[],
  clients: number,
  ms: number,
  fresh: boolean,
): Promise<LoadResult> {
  const latencies: number[] = [];
  let failures = 0;
  const start = performance.now();
  const end = start + ms;
  await Promise.all(
    Array.from({ length: clients }, async () => {
      const conn = fresh ? undefined : await BenchClient.open(port);
      while (performance.now() < end) {
        const t0 = performance.now();
        const code = conn ? await conn.send(wire) : await transaction(port, wire);
        if (code === 250) latencies.push(performance.now() - t0);
        else failures++;
      }
      conn?.close();
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN;
  return {
    messages: latencies.length,
    perSecond: latencies.length / elapsed,
    p50: pct(0.5),
    p99: pct(0.99),
    failures,
  };
}

/** A Delta Chat-like PGP/MIME message whose armored payload holds `payloadBytes` random bytes, encrypted. */
export async function encryptedMessage(key: openpgp.PrivateKey, payloadBytes: number): Promise<Buffer> {
  const armored = await openpgp.encrypt({
    message: await openpgp.createMessage({ binary: new Uint8Array(randomBytes(payloadBytes)) }),
    encryptionKeys: key.toPublic(),
  });
  const head = [
    `From: <${SENDER}>`,
    `To: <${RECIPIENT}>`,
    "Subject: [...]",
    "Date: Sun, 15 Oct 2023 16:43:21 +0000",
    "Message-ID: <bench@chat.example.org>",
    "Chat-Version: 1.0",
    "MIME-Version: 1.0",
    'Content-Type: multipart/encrypted; protocol="application/pgp-encrypted";',
    '\tboundary="YFrteb74qSXmggbOxZL9dRnhymywAi"',
    "",
    "",
    "--YFrteb74qSXmggbOxZL9dRnhymywAi",
    "Content-Description: PGP/MIME version identification",
    "Content-Type: application/pgp-encrypted",
    "",
    "Version: 1",
    "",
    "--YFrteb74qSXmggbOxZL9dRnhymywAi",
    "Content-Description: OpenPGP encrypted message",
    'Content-Disposition: inline; filename="encrypted.asc";',
    'Content-Type: application/octet-stream; name="encrypted.asc"',
    "",
    armored.replace(/\r?\n/g, "\r\n"),
    "--YFrteb74qSXmggbOxZL9dRnhymywAi--",
    "",
  ];
  return Buffer.from(head.join("\r\n"));
}

/** One measured load against `port` after a warm-up, with the CPU milliseconds `pid` spent per message. */
async function measure(port: number, pid: number, wire: Buffer[], clients: number, fresh: boolean) {
  await load(port, wire, clients, WARMUP_MS, fresh);
  const cpuBefore = cpuMs(pid);
  const r = await load(port, wire, clients, RUN_MS, fresh);
  return { ...r, cpuPerMessage: (cpuMs(pid) - cpuBefore) / Math.max(1, r.messages) };
}

type Measured = Awaited<ReturnType<typeof measure>>;

interface Cell {
  label: string;
  wire: Buffer[];
  clients: number;
  fresh: boolean;
  sink: Measured[];
  filter: Measured[];
}

const mb = (megabytes: number) => `${megabytes.toFixed(1)} MB`;
const fmt = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "-");
const med = (ms: Measured[], key: "perSecond" | "p50" | "p99" | "cpuPerMessage", digits: number) =>
  fmt(median(ms.map((m) => m[key])), digits);

function row(c: Cell): string {
  const ratios = c.filter.map((f, i) => (100 * f.perSecond) / c.sink[i].perSecond);
  const failures = [...c.sink, ...c.filter].reduce((n, m) => n + m.failures, 0);
  return (
    `| ${c.label} | ${c.clients}${c.fresh ? " (new connection per message)" : ""} ` +
    `| ${med(c.sink, "perSecond", 0)} | ${med(c.filter, "perSecond", 0)} | ${summary(ratios, 0)} % ` +
    `| ${med(c.filter, "cpuPerMessage", 3)} | ${med(c.sink, "cpuPerMessage", 3)} ` +
    `| ${med(c.filter, "p50", 2)} / ${med(c.filter, "p99", 2)} | ${med(c.sink, "p50", 2)} / ${med(c.sink, "p99", 2)} | ${failures} |`
  );
}

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "bench-filtermail-"));
  let sink: Sink | undefined;
  let filter: Awaited<ReturnType<typeof startChatmaild>> | undefined;
  try {
    sink = await startSink();
    const sinkPid = sink.proc.pid as number;
    // One sender sends everything: the rate limit is not what is measured.
    filter = await startChatmaild(
      dir,
      SENDER.split("@")[1],
      `postfix_reinject_port = ${sink.port}\nmax_user_send_per_minute = 1000000000\nmax_user_send_burst_size = 1000000000\n`,
      ["filtermail-outgoing"],
    );
    const pid = filter.pid;
    const filterPort = filter.filtermailSmtpPort;
    const idle = memoryMb(pid).rss;

    const { privateKey } = await openpgp.generateKey({ userIDs: [{ email: SENDER }], format: "object" });
    const cells: Cell[] = [];
    for (const [label, payload] of [
      ["4 KB", 2200],
      ["100 KB", 73_000],
    ] as const) {
      const message = await encryptedMessage(privateKey, payload);
      const wire = stuffedSlices(message);
      // Check the message really passes before measuring anything.
      const probe = await transaction(filterPort, wire);
      if (probe !== 250) throw new Error(`the ${label} bench message was refused with ${probe}`);
      const sized = `${label} (${(message.length / 1024).toFixed(1)} KiB)`;
      for (const clients of CONCURRENCY)
        cells.push({ label: sized, wire, clients, fresh: false, sink: [], filter: [] });
      cells.push({ label: sized, wire, clients: 10, fresh: true, sink: [], filter: [] });
    }
    const peak = await peakDuring(
      pid,
      async () => {
        for (let round = 0; round < ROUNDS; round++) {
          for (const c of cells) {
            const runSink = async () =>
              c.sink.push(await measure(sink!.port, sinkPid, c.wire, c.clients, c.fresh));
            const runFilter = async () =>
              c.filter.push(await measure(filterPort, pid, c.wire, c.clients, c.fresh));
            // Alternate which goes first, so a slow drift of the machine's load does not favour one side.
            if (round % 2 === 0) {
              await runSink();
              await runFilter();
            } else {
              await runFilter();
              await runSink();
            }
          }
        }
      },
      SAMPLE_MS,
    );

    // One 30 MB message: the filter keeps it once, so its memory grows by about that much, not a multiple.
    const big = await encryptedMessage(privateKey, 22_000_000);
    const before = memoryMb(pid).rss;
    let code = 0;
    const bigPeak = await peakDuring(
      pid,
      async () => (code = await transaction(filterPort, stuffedSlices(big))),
      SAMPLE_MS,
    );

    console.log("## filtermail (outgoing) vs. SMTP sink alone\n");
    console.log(
      "| message | clients | sink alone msg/s | filtermail msg/s | filtermail of sink, median (spread) " +
        "| filtermail CPU ms/msg | sink alone CPU ms/msg | filtermail p50 / p99 ms | sink alone p50 / p99 ms | failures |",
    );
    console.log("|---|---|---|---|---|---|---|---|---|---|");
    for (const c of cells) console.log(row(c));
    console.log("\n| filtermail resident memory | value |");
    console.log("|---|---|");
    console.log(`| idle after start | ${mb(idle)} |`);
    console.log(`| peak during the runs above | ${mb(peak)} |`);
    console.log(
      `| one ${mb(big.length / 1024 / 1024)} message (answer ${code}): before / peak | ${mb(before)} / ${mb(bigPeak)} |`,
    );
    console.log(
      `\nMedians of ${ROUNDS} interleaved rounds of ${RUN_MS / 1000} s per cell after ${WARMUP_MS / 1000} s warm-up; ` +
        `CPU per message counts every thread of the process (10 ms resolution); load generator, filter and sink ` +
        `share this machine's ${cpus().length} cores; Node ${process.versions.node}.`,
    );
  } finally {
    await filter?.stop();
    sink?.proc.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}
