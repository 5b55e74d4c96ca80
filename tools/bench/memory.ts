// `npm run bench -- memory`: resident memory of chatmaild.js as deployed (all six services in one process, the
// unit's node flags): just started, idle, at its peak under mail, lookups and account creations together, and
// under abuse cases that each get a fresh process and a ceiling on how much they may add. Targets (issue 13 and
// 18): idle <= 45 MiB, peak under load <= 100 MiB, so that a 1 GB server keeps room for Postfix and Dovecot.
// Idle is measured IDLE_MS after the start, once V8's memory reducer has run (it shrinks the young generation
// that starting up grew, and drops bytecode no longer run), as `systemctl status` shows it on a quiet relay;
// next to it, in the same run, a node with the same flags that loads the same built-in modules, listens on one
// port and does nothing else.
import { spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as openpgp from "openpgp";
import { writeDaemonBundle } from "../../components/assets";
import { stuffedSlices } from "../../daemons/smtp/data";
import { dictPipeliner, idleConnections, longPasswordLogins, smtpPipeliner } from "./abuse";
import { memoryMb, NODE_FLAGS, peakDuring, startChatmaild, type Chatmaild } from "./chatmaild";
import { DictConn, newLocalPart, passdb } from "./dictclient";
import { encryptedMessage, load, SENDER, startSink } from "./filtermail";

const LOAD_MS = 5000;
const ABUSE_MS = 5000;
const MAIL_CLIENTS = 50;
const LOOKUP_CONNECTIONS = 16;
const CREATE_CONNECTIONS = 4;
const ACCOUNTS = 64;
const IDLE_CONNECTIONS = 1000;
/** Just under the dict server's 64 KiB line limit, so that the login reaches doveauth (which must refuse it). */
const LONG_PASSWORD_CHARS = 60_000;
const PASSWORD = "benchpassword1";
const SETTLE_MS = 2000;
/** V8's memory reducer starts ~8 s after activity stops; 15 s leaves it time to finish. */
const IDLE_MS = 15_000;
const IDLE_TARGET_MB = 45;
const PEAK_TARGET_MB = 100;
/** What each abuse case may add to the idle process: a few connections' buffers, not the attacker's volume. */
const ABUSE_CEILING_MB = 16;
/** 2000 idle connections at a few KiB each (socket, parser state, timers). */
const IDLE_CONNECTIONS_CEILING_MB = 24;

const domain = SENDER.split("@")[1];
// One sender sends everything and every creation is let through: the limits are not what is measured here.
const unlimited = (sinkPort: number) =>
  `postfix_reinject_port = ${sinkPort}\nmax_user_send_per_minute = 100000000\nmax_user_send_burst_size = 100000000\n` +
  "account_creations_per_minute = 100000\naccount_creations_per_minute_per_client = 100000\n";

interface Row {
  what: string;
  mb: number;
  /** RssAnon at the end of the case. */
  anon: number;
  limit: string;
  /** Undefined: a figure with no limit. */
  ok?: boolean;
  note?: string;
}

/** A fresh chatmaild in its own directory, settled; `work` gets it and the RSS it idles at. */
async function withChatmaild<T>(
  base: string,
  bundle: string,
  iniLines: string,
  work: (d: Chatmaild, idleMb: number) => Promise<T>,
): Promise<T> {
  const dir = join(base, `run-${newLocalPart("d")}`);
  mkdirSync(dir);
  const d = await startChatmaild(dir, domain, iniLines, undefined, bundle);
  try {
    await new Promise((r) => setTimeout(r, SETTLE_MS));
    return await work(d, memoryMb(d.pid).rss);
  } finally {
    await d.stop();
  }
}

async function createAccounts(socket: string, count: number): Promise<string[]> {
  const users = Array.from({ length: count }, () => `${newLocalPart("a")}@${domain}`);
  const c = await DictConn.open(socket);
  for (const u of users)
    if ((await c.request(passdb(u, PASSWORD)))[0] !== "O") throw new Error(`could not create ${u}`);
  c.close();
  return users;
}

/** Lookups of existing accounts on `connections` connections for `ms`. */
async function lookups(socket: string, users: string[], connections: number, ms: number): Promise<void> {
  const conns = await DictConn.openMany(socket, connections);
  const end = performance.now() + ms;
  await Promise.all(
    conns.map(async (c, ci) => {
      for (let i = ci; performance.now() < end; i++)
        await c.request(passdb(users[i % users.length], PASSWORD));
    }),
  );
  for (const c of conns) c.close();
}

/** First logins of new addresses on `connections` connections for `ms`. */
async function creations(socket: string, connections: number, ms: number): Promise<number> {
  const conns = await DictConn.openMany(socket, connections);
  const end = performance.now() + ms;
  let made = 0;
  await Promise.all(
    conns.map(async (c) => {
      while (performance.now() < end)
        if ((await c.request(passdb(`${newLocalPart("n")}@${domain}`, PASSWORD)))[0] === "O") made++;
    }),
  );
  for (const c of conns) c.close();
  return made;
}

/** The node: built-in modules the bundle requires, read from the bundle itself. */
function builtinsOf(bundle: string): string[] {
  const names = [...readFileSync(bundle, "utf8").matchAll(/require\("(node:[a-z_/]+)"\)/g)].map((m) => m[1]);
  return [...new Set(names)].sort();
}

/**
 * A node with the unit's flags that loads `modules`, listens on one loopback port (listening loads node's cluster
 * and child_process modules) and does nothing else: the floor under chatmaild's idle.
 */
function startBareNode(modules: string[]): { pid: number; stop(): void } {
  const code =
    `${modules.map((m) => `require(${JSON.stringify(m)})`).join(";")};` +
    'require("node:net").createServer().listen(0, "127.0.0.1");';
  const child = spawn(process.execPath, [...NODE_FLAGS, "-e", code], { stdio: "ignore" });
  return { pid: child.pid as number, stop: () => child.kill() };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const growth = (
  what: string,
  idle: number,
  peak: number,
  anon: number,
  ceiling: number,
  note?: string,
): Row => ({
  what,
  mb: peak,
  anon,
  limit: `idle ${idle.toFixed(1)} + ${ceiling}`,
  ok: peak - idle <= ceiling,
  note,
});

export async function run(): Promise<void> {
  const base = mkdtempSync(join(tmpdir(), "bench-memory-"));
  const bundle = writeDaemonBundle(join(base, "chatmaild.js"));
  const sink = await startSink();
  const ini = unlimited(sink.port);
  const rows: Row[] = [];
  try {
    const { privateKey } = await openpgp.generateKey({ userIDs: [{ email: SENDER }], format: "object" });
    const wire = stuffedSlices(await encryptedMessage(privateKey, 73_000));

    const builtins = builtinsOf(bundle);
    const bare = startBareNode(builtins);
    await withChatmaild(base, bundle, ini, async (d, started) => {
      const bareStarted = memoryMb(bare.pid);
      rows.push({
        what: `just started (${SETTLE_MS / 1000} s)`,
        mb: started,
        anon: memoryMb(d.pid).anon,
        limit: "-",
        note: `bare node (same modules, one listener): ${bareStarted.rss.toFixed(1)} (anonymous ${bareStarted.anon.toFixed(1)})`,
      });
      await sleep(IDLE_MS - SETTLE_MS);
      const idle = memoryMb(d.pid);
      const bareIdle = memoryMb(bare.pid);
      bare.stop();
      rows.push({
        what: `idle (${IDLE_MS / 1000} s after the start)`,
        mb: idle.rss,
        anon: idle.anon,
        limit: `<= ${IDLE_TARGET_MB}`,
        ok: idle.rss <= IDLE_TARGET_MB,
        note:
          `bare node (same modules, one listener): ${bareIdle.rss.toFixed(1)} (anonymous ${bareIdle.anon.toFixed(1)}); ` +
          `modules: ${builtins.map((m) => m.slice(5)).join(", ")}`,
      });
      const users = await createAccounts(d.socket, ACCOUNTS);
      let perSecond = 0;
      let made = 0;
      const peak = await peakDuring(d.pid, () =>
        Promise.all([
          load(d.filtermailSmtpPort, wire, MAIL_CLIENTS, LOAD_MS, false).then(
            (r) => (perSecond = r.perSecond),
          ),
          lookups(d.socket, users, LOOKUP_CONNECTIONS, LOAD_MS),
          creations(d.socket, CREATE_CONNECTIONS, LOAD_MS).then((n) => (made = n)),
        ]),
      );
      const hwm = memoryMb(d.pid).peak;
      rows.push({
        what: `${MAIL_CLIENTS} clients of 100 KB mail + ${LOOKUP_CONNECTIONS} lookup + ${CREATE_CONNECTIONS} creating connections`,
        mb: Math.max(peak, hwm),
        anon: memoryMb(d.pid).anon,
        limit: `<= ${PEAK_TARGET_MB}`,
        ok: Math.max(peak, hwm) <= PEAK_TARGET_MB,
        note: `${perSecond.toFixed(0)} msg/s, ${made} accounts created; VmHWM ${hwm.toFixed(1)}`,
      });
      // What a relay that has worked sits at: code V8 optimised, OpenSSL and the compilers it paged in stay.
      await sleep(IDLE_MS);
      const after = memoryMb(d.pid);
      rows.push({
        what: `idle again, ${IDLE_MS / 1000} s after that load`,
        mb: after.rss,
        anon: after.anon,
        limit: "-",
      });
    });

    await withChatmaild(base, bundle, ini, async (d, idle) => {
      let sent = 0;
      const peak = await peakDuring(
        d.pid,
        async () => (sent = await smtpPipeliner(d.filtermailSmtpPort, ABUSE_MS)),
      );
      rows.push(
        growth(
          "SMTP client pipelining NOOPs, never reading",
          idle,
          peak,
          memoryMb(d.pid).anon,
          ABUSE_CEILING_MB,
          `${(sent / 2 ** 20).toFixed(0)} MiB of NOOP written`,
        ),
      );
    });

    await withChatmaild(base, bundle, ini, async (d, idle) => {
      const [user] = await createAccounts(d.socket, 1);
      let sent = 0;
      const peak = await peakDuring(
        d.pid,
        async () => (sent = await dictPipeliner(d.socket, passdb(user, PASSWORD), ABUSE_MS)),
      );
      rows.push(
        growth(
          "dict client pipelining lookups, never reading",
          idle,
          peak,
          memoryMb(d.pid).anon,
          ABUSE_CEILING_MB,
          `${(sent / 2 ** 20).toFixed(0)} MiB of requests written`,
        ),
      );
    });

    await withChatmaild(base, bundle, ini, async (d, idle) => {
      let close = () => {};
      const peak = await peakDuring(d.pid, async () => {
        const dict = await idleConnections(IDLE_CONNECTIONS, { path: d.socket });
        const smtp = await idleConnections(IDLE_CONNECTIONS, {
          port: d.filtermailSmtpPort,
          host: "127.0.0.1",
        });
        close = () => {
          dict();
          smtp();
        };
        await new Promise((r) => setTimeout(r, SETTLE_MS));
      });
      close();
      rows.push(
        growth(
          `${IDLE_CONNECTIONS} idle dict + ${IDLE_CONNECTIONS} idle SMTP connections`,
          idle,
          peak,
          memoryMb(d.pid).anon,
          IDLE_CONNECTIONS_CEILING_MB,
        ),
      );
    });

    await withChatmaild(base, bundle, ini, async (d, idle) => {
      let replies = new Map<string, number>();
      const peak = await peakDuring(
        d.pid,
        async () =>
          (replies = await longPasswordLogins(
            d.socket,
            domain,
            LONG_PASSWORD_CHARS,
            LOOKUP_CONNECTIONS,
            ABUSE_MS,
          )),
      );
      const answered = [...replies].map(([r, n]) => `${n} × ${r}`).join(", ");
      rows.push(
        growth(
          `first logins with ${LONG_PASSWORD_CHARS / 1000} kB passwords, ${LOOKUP_CONNECTIONS} connections`,
          idle,
          peak,
          memoryMb(d.pid).anon,
          ABUSE_CEILING_MB,
          `answers: ${answered}`,
        ),
      );
    });
  } finally {
    sink.proc.kill();
    rmSync(base, { recursive: true, force: true });
  }

  console.log("## Resident memory of chatmaild.js (one process, all six services)\n");
  console.log("| case | RSS MiB (highest sample) | limit MiB | | anonymous MiB at the end | notes |");
  console.log("|---|---:|---|---|---:|---|");
  for (const r of rows)
    console.log(
      `| ${r.what} | ${r.mb.toFixed(1)} | ${r.limit} | ${r.ok === undefined ? "" : r.ok ? "ok" : "over"} | ${r.anon.toFixed(1)} | ${r.note ?? ""} |`,
    );
  console.log(
    `\nnode flags: ${NODE_FLAGS.join(" ")}; Node ${process.versions.node}; loads run ${LOAD_MS / 1000} s, ` +
      `abuse cases ${ABUSE_MS / 1000} s, each abuse case in a fresh process; RSS sampled every 50 ms. RSS counts the ` +
      "node binary's own pages (file-backed, shared, ~30 MiB here); anonymous memory is the process's own.",
  );
}
