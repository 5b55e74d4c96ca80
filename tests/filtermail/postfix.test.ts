// filtermail behind a real Postfix (Debian's package), started without systemd in a temp dir on loopback high
// ports: smtpd with smtpd_proxy_filter -> filtermail -> reinjection smtpd -> queue -> smtp client -> a
// recording sink that stands for the next hop. Fails (does not skip) when postfix is not installed.
import { execFileSync } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { FiltermailService } from "../../daemons/filtermail/index";
import { closedPort, RawClient, startFilter, startSink, testConfig, type Sink } from "./harness";
import { sample } from "./samples";

const ALICE = "alice@chat.example.org";
const BOB = "bob@chat.example.org";
const RATE_LIMITED = "ratelimited@chat.example.org";
// How long to wait for Postfix to start listening or to deliver from its queue before failing.
const DEADLINE_MS = 30_000;

let root: string;
let sink: Sink;
const services: FiltermailService[] = [];
const ports: Record<string, number> = {};

function postfix(...args: string[]): string {
  return execFileSync("/usr/sbin/postfix", ["-c", join(root, "etc"), ...args], {
    encoding: "utf8",
    stdio: "pipe",
  });
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

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), "fm-postfix-"));
  chmodSync(root, 0o755);
  mkdirSync(join(root, "etc"));
  mkdirSync(join(root, "vmail", BOB), { recursive: true });
  writeFileSync(join(root, "vmail", BOB, "enforceE2EEincoming"), "");
  sink = await startSink();
  for (const name of ["submission", "submissionBroken", "mx", "reinject", "reinjectIncoming"])
    ports[name] = await closedPort();

  const config = {
    ...testConfig("max_user_send_burst_size = 3\n"),
    mailboxesDir: join(root, "vmail"),
  };
  const quiet = { idleTimeoutMs: 60_000 };
  const outgoing = await startFilter(config, "outgoing", { ...quiet, downstreamPort: ports.reinject });
  const incoming = await startFilter(config, "incoming", {
    ...quiet,
    downstreamPort: ports.reinjectIncoming,
  });
  // A filter whose reinjection target is down, to see what the client is told.
  const broken = await startFilter(config, "outgoing", { ...quiet, downstreamPort: await closedPort() });
  services.push(outgoing.service, incoming.service, broken.service);

  writeFileSync(
    join(root, "etc", "main.cf"),
    [
      "compatibility_level = 3.6",
      `queue_directory = ${root}/spool`,
      `data_directory = ${root}/data`,
      `maillog_file = ${root}/postfix.log`,
      `maillog_file_prefixes = ${root}`,
      "myhostname = chat.example.org",
      "mydomain = chat.example.org",
      "myorigin = chat.example.org",
      "mydestination =",
      "inet_interfaces = 127.0.0.1",
      "inet_protocols = ipv4",
      "mynetworks = 127.0.0.0/8",
      "alias_maps =",
      "alias_database =",
      "local_recipient_maps =",
      "relay_domains = chat.example.org",
      "smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination",
      "smtputf8_enable = yes",
      `message_size_limit = ${config.maxMessageSize}`,
      // Every mail leaves through the smtp client to the recording sink.
      `default_transport = smtp:[127.0.0.1]:${sink.port}`,
      `relay_transport = smtp:[127.0.0.1]:${sink.port}`,
      "smtp_tls_security_level = none",
      "smtp_dns_support_level = disabled",
      "",
    ].join("\n"),
  );
  const proxied = (addrPort: number, filterPort: number, name: string) =>
    `127.0.0.1:${addrPort} inet n - n - - smtpd\n  -o syslog_name=postfix/${name}\n  -o smtpd_proxy_filter=127.0.0.1:${filterPort}\n`;
  writeFileSync(
    join(root, "etc", "master.cf"),
    [
      proxied(ports.submission, outgoing.service.port, "submission"),
      proxied(ports.submissionBroken, broken.service.port, "submission_broken"),
      proxied(ports.mx, incoming.service.port, "smtpd_incoming"),
      `127.0.0.1:${ports.reinject} inet n - n - 10 smtpd\n  -o syslog_name=postfix/reinject\n`,
      `127.0.0.1:${ports.reinjectIncoming} inet n - n - 10 smtpd\n  -o syslog_name=postfix/reinject_incoming\n`,
      "pickup unix n - n 60 1 pickup",
      "cleanup unix n - n - 0 cleanup",
      "qmgr unix n - n 300 1 qmgr",
      "rewrite unix - - n - - trivial-rewrite",
      "bounce unix - - n - 0 bounce",
      "defer unix - - n - 0 bounce",
      "trace unix - - n - 0 bounce",
      "verify unix - - n - 1 verify",
      "flush unix n - n 1000? 0 flush",
      "proxymap unix - - n - - proxymap",
      "smtp unix - - n - - smtp",
      "relay unix - - n - - smtp",
      "showq unix n - n - - showq",
      "error unix - - n - - error",
      "retry unix - - n - - error",
      "discard unix - - n - - discard",
      "local unix - n n - - local",
      "anvil unix - - n - 1 anvil",
      "scache unix - - n - 1 scache",
      "postlog unix-dgram n - n - 1 postlogd",
      "",
    ].join("\n"),
  );
  mkdirSync(join(root, "spool"));
  mkdirSync(join(root, "data"));
  execFileSync("chown", ["postfix", join(root, "data")]);
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
  if (root) rmSync(root, { recursive: true, force: true });
});

function queue(): string {
  return execFileSync("/usr/sbin/postqueue", ["-c", join(root, "etc"), "-j"], { encoding: "utf8" }).trim();
}

/** The sink's count once mail queued by earlier tests has been delivered, so a test counts only its own. */
async function settledDeliveries(): Promise<number> {
  await waitFor("an empty Postfix queue", () => (queue() === "" ? true : undefined));
  return sink.delivered.length;
}

async function submit(port: number, from: string, to: string[], message: Buffer): Promise<string> {
  const c = await RawClient.connect(port);
  try {
    return await c.sendMail(from, to, message);
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
    expect(answer).toMatch(/^250 2\.0\.0 Ok: queued as /);
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

  it("refuses cleartext on the incoming side for a recipient who enforces encryption", async () => {
    expect(
      await submit(ports.mx, "carol@other.example", [BOB], sample("plain", "carol@other.example", BOB)),
    ).toBe("523 Encryption Needed: Invalid Unencrypted Mail");
  });
});
