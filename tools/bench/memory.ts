// `npm run bench -- memory`: resident memory of the relay's daemons as deployed (chatmaild.js running all six
// services in one process, with the units' node flags), idle and under the auth and filtermail benchmark loads,
// alone and together. The budget (issue 4): under 100 MB idle, under 160 MB under load, so that a 1 GB server
// keeps room for Postfix and Dovecot.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as openpgp from "openpgp";
import { stuffedSlices } from "../../daemons/smtp/data";
import { CHATMAILD_NODE_FLAGS } from "../../core/server";
import { Conn, memoryMb, passdb, peakDuring, startChatmaild } from "./auth";
import { encryptedMessage, load, SENDER, startSink } from "./filtermail";

const SECONDS = 5;
const LOOKUP_CONNECTIONS = 16;
const MAIL_CLIENTS = 50;
const ACCOUNTS = 64;

export async function run(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "bench-memory-"));
  const sink = await startSink();
  const domain = SENDER.split("@")[1];
  // One sender sends everything: the rate limit is not what is measured.
  const daemons = await startChatmaild(
    dir,
    domain,
    `postfix_reinject_port = ${sink.port}\nmax_user_send_per_minute = 100000000\nmax_user_send_burst_size = 100000000\n`,
  );
  const pid = daemons.child.pid as number;
  try {
    await new Promise((r) => setTimeout(r, 2000));
    const idle = memoryMb(pid).rss;

    const users = Array.from({ length: ACCOUNTS }, (_, i) => `m${String(i).padStart(8, "0")}@${domain}`);
    const setup = await Conn.open(daemons.socket);
    for (const u of users) await setup.request(passdb(u));
    setup.close();
    const lookups = async () => {
      const conns = await Promise.all(
        Array.from({ length: LOOKUP_CONNECTIONS }, () => Conn.open(daemons.socket)),
      );
      const end = Date.now() + SECONDS * 1000;
      await Promise.all(
        conns.map(async (c, ci) => {
          for (let i = ci; Date.now() < end; i++) await c.request(passdb(users[i % users.length]));
        }),
      );
      for (const c of conns) c.close();
    };

    const { privateKey } = await openpgp.generateKey({ userIDs: [{ email: SENDER }], format: "object" });
    const wire = stuffedSlices(await encryptedMessage(privateKey, 73_000));
    const mail = () => load(daemons.filtermailSmtpPort, wire, MAIL_CLIENTS, SECONDS * 1000, false);

    const afterAuth = await peakDuring(pid, lookups);
    let mailResult = await mail();
    const afterMail = await peakDuring(pid, async () => (mailResult = await mail()));
    const both = await peakDuring(pid, () => Promise.all([lookups(), mail()]));
    const hwm = memoryMb(pid).peak;

    console.log("## Memory of the relay's daemons (one chatmaild.js process, all six services)\n");
    console.log("| state | RSS MB | budget |");
    console.log("|---|---:|---|");
    console.log(`| idle after start | ${idle.toFixed(1)} | < 100 |`);
    console.log(`| ${LOOKUP_CONNECTIONS} connections of passdb lookups | ${afterAuth.toFixed(1)} | < 160 |`);
    console.log(
      `| ${MAIL_CLIENTS} clients sending 100 KB encrypted mail (${mailResult.perSecond.toFixed(0)} msg/s) | ${afterMail.toFixed(1)} | < 160 |`,
    );
    console.log(`| both at once | ${both.toFixed(1)} | < 160 |`);
    console.log(`| peak over the whole run (VmHWM) | ${hwm.toFixed(1)} | < 160 |`);
    console.log(
      `\nnode flags: ${CHATMAILD_NODE_FLAGS.join(" ")}; ${SECONDS} s per load; Node ${process.versions.node}.`,
    );
  } finally {
    await daemons.stop();
    sink.proc.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}
