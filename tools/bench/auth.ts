// `npm run bench -- auth`: the CPU doveauth spends per passdb lookup and per account creation, measured on the
// bundled chatmaild.js (all six services in one process, as deployed) from /proc/<pid>/stat, next to references
// measured in the same run with the same client (reference.ts): a do-nothing server, this repo's dict server
// answering a constant, and the platform's own SHA512-CRYPT. Rows run in interleaved rounds; each figure is the
// median of the rounds with their spread. CPU per operation is the figure to trust on a busy machine; throughput
// and latency also depend on the client and whatever else runs.
import { mkdtempSync, rmSync } from "node:fs";
import { cpus, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { cpuMs, NODE_FLAGS, startChatmaild } from "./chatmaild";
import { pbkdf2Hash } from "../../daemons/doveauth/pbkdf2";
import { MAX_KEPT_ACCOUNTS } from "../../daemons/doveauth/records";
import { accountFor, setPassword } from "../../daemons/doveauth/user";
import { DictConn, newLocalPart, passdb } from "./dictclient";
import { platformSha512Crypt, startConstantDict, startDoNothing, type Reference } from "./reference";
import { median, percentile, summary } from "./stats";

const DOMAIN = "bench.example.org";
const PASSWORD = "benchpassword1";
/** BENCH_ROUNDS and BENCH_RUN_MS shorten or lengthen a run, as for the filtermail bench. */
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const ROUND_MS = Number(process.env.BENCH_RUN_MS ?? 1500);
const LOOKUP_CONNECTIONS = [1, 16, 64];
const ACCOUNTS = 64;
/**
 * The row beyond the kept answers (daemons/doveauth/records.ts): twice as many accounts as are kept, each
 * connection walking its own share, so every lookup reads the password file.
 */
const COLD_ACCOUNTS = 2 * MAX_KEPT_ACCOUNTS;
const COLD_CONNECTIONS = 16;
const CREATE_CONNECTIONS = 16;
const CREATIONS_PER_CONNECTION = 10;
/** Lookups measured while creations run at full rate, next to the creating connections. */
const LOOKUPS_DURING_CREATIONS = 4;
/** The first-login creation limits, lifted so that hashing is what sets the creation rate. */
const UNLIMITED = "account_creations_per_minute = 100000\naccount_creations_per_minute_per_client = 100000\n";

interface Sample {
  ops: number;
  cpuMs: number;
  seconds: number;
  /** Sorted, in microseconds. */
  latencies: number[];
}

/** Each connection sends `line(i)` and waits for the reply, until `ms` passed; the server's CPU is read around it. */
async function drive(
  pid: number,
  conns: DictConn[],
  ms: number,
  line: (conn: number, i: number) => string,
  accept: (reply: string) => boolean,
): Promise<Sample> {
  const latencies: number[] = [];
  const cpu0 = cpuMs(pid);
  const start = performance.now();
  const end = start + ms;
  await Promise.all(
    conns.map(async (c, ci) => {
      for (let i = 0; performance.now() < end; i++) {
        const t0 = performance.now();
        const reply = await c.request(line(ci, i));
        if (!accept(reply)) throw new Error(`unexpected reply: ${reply.slice(0, 40)}`);
        latencies.push((performance.now() - t0) * 1000);
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return { ops: latencies.length, cpuMs: cpuMs(pid) - cpu0, seconds, latencies };
}

/** A fixed number of first logins: `perConn` new addresses on each connection. */
async function create(pid: number, conns: DictConn[], perConn: number): Promise<Sample> {
  const latencies: number[] = [];
  const cpu0 = cpuMs(pid);
  const start = performance.now();
  await Promise.all(
    conns.map(async (c) => {
      for (let i = 0; i < perConn; i++) {
        const t0 = performance.now();
        const reply = await c.request(passdb(`${newLocalPart("c")}@${DOMAIN}`, PASSWORD));
        if (reply[0] !== "O") throw new Error(`creation failed: ${reply}`);
        latencies.push((performance.now() - t0) * 1000);
      }
    }),
  );
  const seconds = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return { ops: latencies.length, cpuMs: cpuMs(pid) - cpu0, seconds, latencies };
}

/** A row's samples over the rounds. */
class Row {
  readonly samples: Sample[] = [];
  constructor(
    readonly workload: string,
    readonly server: string,
    readonly connections: number,
  ) {}
  cpuPerOp(): number[] {
    return this.samples.map((s) => s.cpuMs / s.ops);
  }
  perSecond(): number[] {
    return this.samples.map((s) => s.ops / s.seconds);
  }
  p(pct: number): number[] {
    return this.samples.map((s) => percentile(s.latencies, pct));
  }
}

interface Target {
  name: string;
  pid: number;
  socket: string;
}

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "bench-auth-"));
  const daemons = await startChatmaild(dir, DOMAIN, UNLIMITED);
  const references: Reference[] = [];
  try {
    references.push(await startDoNothing(dir), await startConstantDict(dir));
    const targets: Target[] = [
      { name: "chatmaild (doveauth)", pid: daemons.pid, socket: daemons.socket },
      ...references,
    ];
    const users = Array.from({ length: ACCOUNTS }, () => `${newLocalPart("u")}@${DOMAIN}`);
    const setup = await DictConn.open(daemons.socket);
    for (const u of users)
      if ((await setup.request(passdb(u, PASSWORD)))[0] !== "O") throw new Error(`could not create ${u}`);
    setup.close();
    const lookup = (ci: number, i: number) => passdb(users[(ci * 7 + i) % users.length], PASSWORD);
    const found = (reply: string) => reply[0] === "O";

    // Written straight to disk with one hash: these accounts are only looked up, never created by a login.
    const coldUsers = Array.from({ length: COLD_ACCOUNTS }, () => `${newLocalPart("k")}@${DOMAIN}`);
    const coldHash = await pbkdf2Hash(PASSWORD);
    for (const u of coldUsers) setPassword(accountFor(join(dir, "vmail"), u), coldHash);
    const coldLookup = (ci: number, i: number) =>
      passdb(coldUsers[(i * COLD_CONNECTIONS + ci) % coldUsers.length], PASSWORD);

    // Connections stay open over the rounds, as Dovecot's auth processes keep theirs.
    type LookupRow = { row: Row; target: Target; conns: DictConn[]; line: typeof lookup };
    const lookupRows: LookupRow[] = [];
    for (const n of LOOKUP_CONNECTIONS)
      for (const target of targets)
        lookupRows.push({
          row: new Row("passdb lookup, existing account", target.name, n),
          target,
          conns: await DictConn.openMany(target.socket, n),
          line: lookup,
        });
    lookupRows.push({
      row: new Row(
        `passdb lookup, ${COLD_ACCOUNTS} accounts, more than are kept`,
        targets[0].name,
        COLD_CONNECTIONS,
      ),
      target: targets[0],
      conns: await DictConn.openMany(daemons.socket, COLD_CONNECTIONS),
      line: coldLookup,
    });
    for (const { target, conns, line } of lookupRows) await drive(target.pid, conns, 300, line, found); // JIT warm-up

    const creations = new Row("account creation (first login)", "chatmaild (doveauth)", CREATE_CONNECTIONS);
    const mixedLookups = new Row(
      `passdb lookup while ${CREATE_CONNECTIONS} connections create accounts`,
      "chatmaild (doveauth)",
      LOOKUPS_DURING_CREATIONS,
    );
    const mixedCreations = new Row(
      "account creation, during those lookups",
      "chatmaild (doveauth)",
      CREATE_CONNECTIONS,
    );
    const createConns = await DictConn.openMany(daemons.socket, CREATE_CONNECTIONS);
    const mixedConns = await DictConn.openMany(daemons.socket, LOOKUPS_DURING_CREATIONS);

    for (let round = 0; round < ROUNDS; round++) {
      for (const { row, target, conns, line } of lookupRows)
        row.samples.push(await drive(target.pid, conns, ROUND_MS, line, found));
      creations.samples.push(await create(daemons.pid, createConns, CREATIONS_PER_CONNECTION));
      let stop = false;
      let made = 0;
      const start = performance.now();
      const creating = Promise.all(
        createConns.map(async (c) => {
          while (!stop) {
            const reply = await c.request(passdb(`${newLocalPart("m")}@${DOMAIN}`, PASSWORD));
            if (reply[0] !== "O") throw new Error(`creation failed: ${reply}`);
            made++;
          }
        }),
      );
      const sample = await drive(daemons.pid, mixedConns, ROUND_MS, lookup, found);
      stop = true;
      await creating;
      const seconds = (performance.now() - start) / 1000;
      mixedLookups.samples.push(sample);
      mixedCreations.samples.push({ ops: made, cpuMs: NaN, seconds, latencies: [] });
    }
    for (const { conns } of lookupRows) for (const c of conns) c.close();
    for (const c of [...createConns, ...mixedConns]) c.close();

    const platform = platformSha512Crypt(200);
    report(lookupRows, creations, mixedLookups, mixedCreations, platform);
  } finally {
    for (const r of references) r.stop();
    await daemons.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

function report(
  lookupRows: Array<{ row: Row; target: Target }>,
  creations: Row,
  mixedLookups: Row,
  mixedCreations: Row,
  platform: ReturnType<typeof platformSha512Crypt>,
): void {
  const floor = new Map<number, number>();
  for (const { row, target } of lookupRows)
    if (target.name.startsWith("do-nothing")) floor.set(row.connections, median(row.cpuPerOp()));
  console.log(
    `machine: ${cpus().length} cores, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")} (other work included); Node ${process.versions.node}, flags ${NODE_FLAGS.join(" ")}; ` +
      `${ROUNDS} interleaved rounds of ${ROUND_MS} ms; median (lowest–highest) over the rounds.\n`,
  );
  console.log(
    "| workload | server process | conns | server CPU ms/op | × do-nothing CPU | ops/s | p50 ms | p99 ms |",
  );
  console.log("|---|---|---:|---:|---:|---:|---:|---:|");
  for (const { row } of lookupRows) {
    const cpu = median(row.cpuPerOp());
    const ratio = (cpu / (floor.get(row.connections) ?? NaN)).toFixed(1);
    line(row, summary(row.cpuPerOp(), 4), ratio);
  }
  line(mixedLookups, "-", "-");
  console.log("");
  console.log(
    "| workload | server process | conns | server CPU ms/op | ops/s | p50 ms | p99 ms | rate ÷ platform SHA512-CRYPT rate |",
  );
  console.log("|---|---|---:|---:|---:|---:|---:|---:|");
  const platformRate = platform ? 1000 / platform.cpuMsPerHash : NaN;
  const rates = (row: Row) =>
    summary(
      row.perSecond().map((r) => r / platformRate),
      2,
    );
  const ms = (row: Row, pct: number) =>
    summary(
      row.p(pct).map((us) => us / 1000),
      2,
    );
  console.log(
    `| ${creations.workload} | ${creations.server} | ${creations.connections} | ${summary(creations.cpuPerOp(), 2)} | ${summary(creations.perSecond(), 0)} | ${ms(creations, 50)} | ${ms(creations, 99)} | ${rates(creations)} |`,
  );
  console.log(
    `| ${mixedCreations.workload} | ${mixedCreations.server} | ${mixedCreations.connections} | - | ${summary(mixedCreations.perSecond(), 0)} | - | - | ${rates(mixedCreations)} |`,
  );
  console.log("");
  console.log(
    platform
      ? `platform SHA512-CRYPT (5000 rounds), ${platform.tool}: ${platform.cpuMsPerHash.toFixed(2)} CPU ms per hash, ` +
          `${platformRate.toFixed(0)} hashes/s on one core (Python chatmaild hashed on one thread).`
      : "platform SHA512-CRYPT: neither python3's crypt module nor openssl ran here; no ratio.",
  );
  console.log(
    "Target (issue 18): passdb lookup at 16 connections <= 0.012 CPU ms/op; lookup p99 during creations < 5 ms.",
  );
}

function line(row: Row, cpu: string, ratio: string): void {
  const ms = (pct: number) =>
    summary(
      row.p(pct).map((us) => us / 1000),
      3,
    );
  console.log(
    `| ${row.workload} | ${row.server} | ${row.connections} | ${cpu} | ${ratio} | ${summary(row.perSecond(), 0)} | ${ms(50)} | ${ms(99)} |`,
  );
}
