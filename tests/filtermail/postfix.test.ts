// filtermail behind a real Postfix (Debian's package) that runs the relay's own main.cf and master.cf, as the
// plan renders them, started without systemd in a temp dir on loopback high ports: smtpd with
// smtpd_proxy_filter -> filtermail -> reinjection smtpd -> queue -> smtp client -> a recording sink that stands
// for the next hop. What differs from the server is listed in mainCfOverrides and testMasterCf; Dovecot's SASL
// service has a stand-in, so submission takes STARTTLS and AUTH as on the server. Fails (does not skip) when
// postfix is not installed.
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { planRelay } from "../../core/plan";
import type { FiltermailService } from "../../daemons/filtermail/index";
import { readShowq } from "../../daemons/metrics/system";
import { reply } from "../../daemons/smtp/reply";
import { configFor, testAssets, testCertificate, text as planned, writeTree } from "../plan/helpers";
import { closedPort, RawClient, startFilter, startSink, type Sink } from "./harness";
import { sample } from "./samples";

const ALICE = "alice@chat.example.org";
const BOB = "bob@chat.example.org";
const RATE_LIMITED = "ratelimited@chat.example.org";
// How long to wait for Postfix to start listening or to deliver from its queue before failing.
const DEADLINE_MS = 30_000;

let root: string;
let sink: Sink;
let sasl: Server | undefined;
const services: FiltermailService[] = [];
const ports: Record<string, number> = {};

function postfix(...args: string[]): string {
  try {
    return execFileSync("/usr/sbin/postfix", ["-c", join(root, "etc/postfix"), ...args], {
      encoding: "utf8",
      stdio: "pipe",
    });
  } catch (err) {
    const { stderr } = err as { stderr?: string };
    throw new Error(`postfix ${args.join(" ")} failed:\n${stderr ?? ""}\npostfix log:\n${maillog()}`);
  }
}

async function waitFor<T>(what: string, probe: () => T | undefined | Promise<T | undefined>): Promise<T> {
  const until = Date.now() + DEADLINE_MS;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until)
      throw new Error(`${what}: not within ${DEADLINE_MS} ms; postfix log:\n${maillog()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function maillog(): string {
  const f = join(root, "postfix.log");
  return existsSync(f) ? readFileSync(f, "utf8") : "(no log)";
}

async function canConnect(port: number): Promise<true | undefined> {
  try {
    const c = await RawClient.connect(port);
    const greeting = await c.next();
    c.close();
    return greeting.startsWith("220") ? true : undefined;
  } catch {
    return undefined;
  }
}

// What differs from the server's Postfix, all of it (the rest is the files `pulumi up` installs):
// - main.cf: the settings of mainCfOverrides;
// - both files: /etc/postfix/ (the lookup tables) is root/etc/postfix/;
// - master.cf (testMasterCf): the public listeners on loopback ports, chroot off, an added broken submission.
// The relay config gives the filter and reinjection ports and a test certificate, so those lines stay as
// rendered; Dovecot's SASL socket has a stand-in (startSaslStandIn).

/**
 * main.cf settings that must differ on the test machine: each replaces the rendered line of that name (or is
 * added, for the Debian defaults that main.cf does not set).
 */
function mainCfOverrides(): Record<string, string> {
  return {
    // Paths: a queue, data directory and log of the test's own instead of Debian's under /var.
    queue_directory: `${root}/spool`,
    data_directory: `${root}/data`,
    maillog_file: `${root}/postfix.log`,
    maillog_file_prefixes: root,
    // The next hops: the recording sink stands for Dovecot's LMTP socket (mail for the relay's domain) and for
    // other relays (found by MX lookup on the server, which the test machine cannot do), and offers no TLS.
    virtual_transport: `smtp:[127.0.0.1]:${sink.port}`,
    default_transport: `smtp:[127.0.0.1]:${sink.port}`,
    smtp_tls_security_level: "may",
    // No OpenDKIM runs here: mail passes its missing milter socket instead of being deferred.
    milter_default_action: "accept",
  };
}

/** The public listeners of master.cf (ports 25, 587, 465 on the server), moved to free loopback ports. */
function listeners(): Record<string, string> {
  return {
    smtp: `127.0.0.1:${ports.mx}`,
    submission: `127.0.0.1:${ports.submission}`,
    smtps: `127.0.0.1:${ports.smtps}`,
  };
}

/** A master.cf service line split into its fields, or undefined for comments and `-o` continuation lines. */
const serviceFields = (line: string) => (/^[^\s#]/.test(line) ? line.split(/\s+/) : undefined);

/**
 * The relay's master.cf with the overrides the test machine needs: the public listeners on loopback ports,
 * chroot off for every service (the test's queue directory is no chroot jail with copies of /etc and the
 * libraries), and a second submission service whose filter cannot reinject.
 */
function testMasterCf(rendered: string, brokenFilterPort: number): string {
  const moved = listeners();
  const lines = rendered.split("\n").map((line) => {
    const fields = serviceFields(line);
    if (!fields) return line;
    if (fields[1] === "inet" && fields[0] in moved) fields[0] = moved[fields[0]];
    fields[4] = "n";
    return fields.join(" ");
  });
  const serviceAt = (address: string) => lines.findIndex((l) => l.startsWith(`${address} inet `));
  for (const [name, address] of Object.entries(moved))
    expect(serviceAt(address), `master.cf has no ${name} inet service`).toBeGreaterThanOrEqual(0);
  // The submission service as rendered, on another port and with the broken filter.
  const start = serviceAt(moved.submission);
  let end = start + 1;
  while (end < lines.length && /^\s/.test(lines[end])) end++;
  const submission = lines.slice(start, end).join("\n");
  const broken = submission
    .replace(moved.submission, `127.0.0.1:${ports.submissionBroken}`)
    .replace(/smtpd_proxy_filter=\S+/, `smtpd_proxy_filter=127.0.0.1:${brokenFilterPort}`)
    .replace("syslog_name=postfix/submission", "syslog_name=postfix/submission_broken");
  expect(broken).toContain(`smtpd_proxy_filter=127.0.0.1:${brokenFilterPort}`);
  return `${lines.join("\n")}${broken}\n`;
}

function testMainCf(rendered: string): string {
  const overrides = mainCfOverrides();
  const kept = rendered.split("\n").filter((line) => !(line.split(/\s*=/)[0] in overrides));
  return [
    ...kept,
    "# Test machine overrides (tests/filtermail/postfix.test.ts):",
    ...Object.entries(overrides).map(([k, v]) => `${k} = ${v}`),
    "",
  ].join("\n");
}

/**
 * Dovecot's SASL service as Postfix's submission services use it (private/auth in the queue directory), standing
 * in for Dovecot: it accepts every PLAIN login and names the login as the user, which reject_sender_login_mismatch
 * then compares with the envelope sender.
 */
async function startSaslStandIn(path: string): Promise<Server> {
  const server = createServer((conn) => {
    conn.write(
      `VERSION\t1\t2\nMECH\tPLAIN\tplaintext\nSPID\t${process.pid}\nCUID\t1\nCOOKIE\t${"0".repeat(32)}\nDONE\n`,
    );
    let buffer = "";
    conn.on("data", (chunk) => {
      buffer += chunk.toString("utf8");
      let nl: number;
      while ((nl = buffer.indexOf("\n")) >= 0) {
        const [command, id, , ...params] = buffer.slice(0, nl).split("\t");
        buffer = buffer.slice(nl + 1);
        if (command !== "AUTH") continue;
        // Postfix sends the PLAIN response with the AUTH command (the client gave it with AUTH PLAIN).
        const resp = params.find((p) => p.startsWith("resp="));
        if (!resp) {
          conn.write(`FAIL\t${id}\n`);
          continue;
        }
        const [, login] = Buffer.from(resp.slice(5), "base64").toString("utf8").split("\0");
        conn.write(`OK\t${id}\tuser=${login}\n`);
      }
    });
    conn.on("error", () => undefined);
  });
  await new Promise<void>((r) => server.listen(path, r));
  chmodSync(path, 0o666);
  return server;
}

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "fm-postfix-"));
  chmodSync(root, 0o755);
  mkdirSync(join(root, "vmail", BOB), { recursive: true });
  writeFileSync(join(root, "vmail", BOB, "enforceE2EEincoming"), "");
  // Mail for deferred...@ is deferred, so that it stays in the queue (the metrics' queue test).
  sink = await startSink((e) =>
    e.rcptTos.some((r) => r.startsWith("deferred"))
      ? reply(450, "4.2.0 deferred for the test")
      : reply(250, "2.0.0 Ok: queued as SINK"),
  );
  for (const name of [
    "submission",
    "submissionBroken",
    "smtps",
    "mx",
    "filter",
    "filterIncoming",
    "reinject",
    "reinjectIncoming",
  ]) {
    // The kernel may hand out the same free port twice in a row; the relay's config wants them distinct.
    let port: number;
    do port = await closedPort();
    while (Object.values(ports).includes(port));
    ports[name] = port;
  }

  // One relay config for the plan and the filters: the plan wires Postfix to the filters' and the reinjection
  // ports exactly as on the server.
  const { cert, key } = testCertificate(root);
  const config = configFor({
    mailboxes_dir: join(root, "vmail"),
    max_user_send_burst_size: "3",
    filtermail_smtp_port: String(ports.filter),
    filtermail_smtp_port_incoming: String(ports.filterIncoming),
    postfix_reinject_port: String(ports.reinject),
    postfix_reinject_port_incoming: String(ports.reinjectIncoming),
    tls_external_cert_and_key: `${cert} ${key}`,
  });
  const quiet = { deadlineMs: 60_000 };
  const outgoing = await startFilter(config, "outgoing", { ...quiet, listenPort: config.filtermailSmtpPort });
  const incoming = await startFilter(config, "incoming", {
    ...quiet,
    listenPort: config.filtermailSmtpPortIncoming,
  });
  // A filter whose reinjection target is down, to see what the client is told.
  const broken = await startFilter(config, "outgoing", { ...quiet, downstreamPort: await closedPort() });
  services.push(outgoing.service, incoming.service, broken.service);

  // The relay's Postfix files as the plan renders them, under root/etc/postfix instead of /etc/postfix.
  const plan = planRelay(config, testAssets());
  writeTree(plan, root, (p) => p.startsWith("/etc/postfix/"));
  const etc = (text: string) => text.split("/etc/postfix/").join(`${root}/etc/postfix/`);
  writeFileSync(join(root, "etc/postfix/main.cf"), testMainCf(etc(planned(plan, "/etc/postfix/main.cf"))));
  writeFileSync(
    join(root, "etc/postfix/master.cf"),
    testMasterCf(etc(planned(plan, "/etc/postfix/master.cf")), broken.service.port),
  );
  mkdirSync(join(root, "spool/private"), { recursive: true });
  mkdirSync(join(root, "data"));
  // Owned by postfix, as Postfix's own startup check wants them (it refuses to start otherwise).
  execFileSync("chown", ["postfix", join(root, "data"), join(root, "spool/private")]);
  sasl = await startSaslStandIn(join(root, "spool/private/auth"));
  postfix("check");
  postfix("start");
  await waitFor("postfix submission listener", () => canConnect(ports.submission));
}, 60_000);

afterAll(async () => {
  try {
    if (root) postfix("stop");
  } catch {
    // Not started: nothing to stop.
  }
  for (const s of services) await s.close();
  await sink?.close();
  await new Promise((r) => (sasl ? sasl.close(r) : r(undefined)));
  if (root) rmSync(root, { recursive: true, force: true });
});

function queue(): string {
  return execFileSync("/usr/sbin/postqueue", ["-c", join(root, "etc/postfix"), "-j"], {
    encoding: "utf8",
  }).trim();
}

/** The sink's count once mail queued by earlier tests has been delivered, so a test counts only its own. */
async function settledDeliveries(): Promise<number> {
  await waitFor("an empty Postfix queue", () => (queue() === "" ? true : undefined));
  return sink.delivered.length;
}

/** Sends one message; on the submission ports (not MX) as a client does: STARTTLS, then login as `from`. */
async function submit(port: number, from: string, to: string[], message: Buffer): Promise<string> {
  const c = await RawClient.connect(port);
  try {
    if (port === ports.mx) return await c.sendMail(from, to, message);
    const greeting = await c.next();
    if (!greeting.startsWith("220")) return greeting;
    await c.command("EHLO client.test");
    const tls = await c.startTls();
    if (!tls.startsWith("220")) return tls;
    await c.command("EHLO client.test");
    const auth = await c.authPlain(from, "any password");
    if (!auth.startsWith("235")) return auth;
    return await c.transaction(from, to, message);
  } finally {
    c.close();
  }
}

describe("filtermail behind Postfix", () => {
  it("delivers an encrypted message submitted through Postfix and the filter", async () => {
    const before = sink.delivered.length;
    const answer = await submit(
      ports.submission,
      ALICE,
      ["carol@other.example"],
      sample("encrypted", ALICE, "carol@other.example", "postfix-e2e"),
    );
    // The filter reinjects with BDAT (one recipient), to which Postfix's answer names the size.
    expect(answer).toMatch(/^250 2\.0\.0 Ok: \d+ bytes queued as /);
    const d = await waitFor("delivery to the sink", () => sink.delivered[before]);
    expect(d.envelope.mailFrom).toBe(ALICE);
    expect(d.envelope.rcptTos).toEqual(["carol@other.example"]);
    expect(d.message.toString()).toContain("-----BEGIN PGP MESSAGE-----");
    expect(maillog()).toMatch(/postfix\/reinject\/smtpd\[\d+\]: connect from \S+\[127\.0\.0\.1\]/);
  });

  it("gives the client the filter's 523 for unencrypted mail and queues nothing", async () => {
    const before = await settledDeliveries();
    const dave = "dave@chat.example.org";
    expect(await submit(ports.submission, dave, [BOB], sample("plain", dave, BOB))).toBe(
      "523 Encryption Needed: Invalid Unencrypted Mail",
    );
    expect(await submit(ports.submission, dave, [BOB], sample("mdn", dave, BOB))).toBe(
      "523 Encryption Needed: Invalid Unencrypted Mail",
    );
    expect(sink.delivered.length).toBe(before);
  });

  it("gives the client 500 for a From header that is not the envelope sender", async () => {
    // Each test sends as its own sender: the burst of 3 per sender is shared by the whole file.
    const erin = "erin@chat.example.org";
    const answer = await submit(
      ports.submission,
      erin,
      [BOB],
      sample("encrypted", "forged@c3.testrun.org", BOB),
    );
    expect(answer).toMatch(/^500 /);
  });

  it("answers the rate limit at RCPT time with 450 4.7.1 after the burst", async () => {
    const answers: string[] = [];
    for (let i = 0; i < 4; i++)
      answers.push(
        await submit(ports.submission, RATE_LIMITED, [BOB], sample("encrypted", RATE_LIMITED, BOB)),
      );
    expect(answers.slice(0, 3).every((a) => a.startsWith("250"))).toBe(true);
    expect(answers[3]).toBe(`450 4.7.1: Too much mail from ${RATE_LIMITED}`);
  });

  it("gives the client a 4xx when the filter cannot reinject, and nothing is queued or lost", async () => {
    const before = await settledDeliveries();
    const answer = await submit(ports.submissionBroken, ALICE, [BOB], sample("encrypted", ALICE, BOB));
    expect(answer).toBe("451 Local error");
    expect(queue()).toBe("");
    expect(sink.delivered.length).toBe(before);
  });

  it("lets a bounce and encrypted mail in on the incoming side, reinjected from 127.0.0.2", async () => {
    const before = await settledDeliveries();
    expect(await submit(ports.mx, "", [BOB], sample("mailer-daemon", "x", BOB))).toMatch(/^250/);
    expect(
      await submit(ports.mx, "carol@other.example", [BOB], sample("encrypted", "carol@other.example", BOB)),
    ).toMatch(/^250/);
    await waitFor("two incoming deliveries", () => (sink.delivered.length >= before + 2 ? true : undefined));
    expect(maillog()).toMatch(/postfix\/reinject_incoming\/smtpd\[\d+\]: connect from \S+\[127\.0\.0\.2\]/);
  });

  it("lets chatmaild's metrics read the queue from Postfix's showq socket as postqueue -j lists it", async () => {
    await settledDeliveries();
    const showq = join(root, "spool/public/showq");
    expect(await readShowq(showq)).toEqual({ messages: 0, oldest: undefined });
    const frank = "frank@chat.example.org";
    for (const to of ["deferred@other.example", "deferred2@other.example"]) {
      const answer = await submit(ports.submission, frank, [to], sample("encrypted", frank, to));
      expect(answer).toMatch(/^250 /);
    }
    try {
      const listed = await waitFor("two deferred messages in the queue", () => {
        const lines = queue().split("\n").filter(Boolean);
        const parsed = lines.map((l) => JSON.parse(l) as { queue_name: string; arrival_time: number });
        return parsed.length === 2 && parsed.every((m) => m.queue_name === "deferred") ? parsed : undefined;
      });
      expect(await readShowq(showq)).toEqual({
        messages: 2,
        oldest: Math.min(...listed.map((m) => m.arrival_time)),
      });
    } finally {
      execFileSync("/usr/sbin/postsuper", ["-c", join(root, "etc/postfix"), "-d", "ALL"], {
        stdio: "ignore",
      });
    }
  });

  it("refuses cleartext on the incoming side for a recipient who enforces encryption", async () => {
    expect(
      await submit(ports.mx, "carol@other.example", [BOB], sample("plain", "carol@other.example", BOB)),
    ).toBe("523 Encryption Needed: Invalid Unencrypted Mail");
  });
});
