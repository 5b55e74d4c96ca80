// The federation suite: DNS answers come from the test's knot loaded with the project's record set, certificates
// from the test's ACME server, and mail goes relay to relay over port 25 with verified TLS and DKIM.
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { connect as tlsConnect, type PeerCertificate } from "node:tls";
import { createTransport } from "nodemailer";
import * as openpgp from "openpgp";
import type { RelayConfig } from "../../../core/config";
import {
  mtaStsId,
  mtaStsPolicy,
  rdata,
  relayRecords,
  type DnsFacts,
  type DnsRecord,
} from "../../../core/dns";
import type { Plan } from "../../../core/plan";
import { DKIM_SELECTOR, READ_BACK } from "../../../core/plan/facts";
import { certificateNames } from "../../../core/plan/parts/tls";
import type { Container } from "../container";
import type { Netns } from "../netns";
import { run, waitFor } from "../proc";
import type { Ssh } from "../ssh";
import { https, imapLogin, newCredentials, submit, type Account } from "../suite/clients";
import { encryptedMessage, receive } from "../suite/mail";
import type { E2eTest, SuiteContext } from "../suite/types";
import { checkGroup, type CheckEnv } from "./check";
import { fleetGroup } from "./fleet";
import type { RelaySpec } from "./relays";
import { ipv6Of } from "./net";
import { ACME_NAME, ACME_PORT } from "./pebble";

export interface Relay {
  readonly spec: RelaySpec;
  readonly config: RelayConfig;
  readonly plan: Plan;
  /** What the DNS zone was built from (read back from the server after the deploy). */
  readonly facts: DnsFacts;
  readonly netns: Netns;
  readonly ssh: Ssh;
  readonly container: Container;
  /** The single-relay suite's view of this relay, for its client helpers (certificates verify against Pebble's root). */
  readonly ctx: SuiteContext;
}

export interface FedContext {
  readonly relays: readonly Relay[];
  readonly pebbleRoot: string;
  /** PEM the relays trust (Pebble's listener CA and issuing root); `npm run check` trusts it too. */
  readonly trusted: string;
  readonly checkEnv: CheckEnv;
  time(label: string, seconds: number): void;
}

const DELIVERY_DEADLINE_MS = 60_000;

/** Answers for NAME/TYPE from the relay's own unbound (127.0.0.1 in its namespace), in kdig's short form. */
async function lookup(via: Relay, name: string, type: string): Promise<string[]> {
  const r = await run("ip", [
    "netns",
    "exec",
    via.netns.name,
    "kdig",
    "+short",
    "+timeout=3",
    "+retry=1",
    "@127.0.0.1",
    name,
    type,
  ]);
  return r.stdout
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith(";"));
}

/** A record's answer as kdig +short prints it: the zone-file form, but TXT strings joined. */
function expected(r: DnsRecord): string {
  return r.type === "TXT" ? r.strings.join("") : rdata(r);
}

/** kdig prints TXT as quoted strings separated by spaces; the value is their concatenation. */
const normalize = (type: string, answer: string) =>
  type === "TXT" ? [...answer.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => m[1]).join("") : answer;

function headerBlock(source: string): string {
  return source.split(/\r?\n\r?\n/)[0].replace(/\r?\n[ \t]+/g, " ");
}

async function account(relay: Relay): Promise<Account> {
  const acc = newCredentials(relay.ctx);
  // The first login creates the account, as Delta Chat's setup does.
  await (await imapLogin(relay.ctx, acc)).logout();
  return acc;
}

/** The certificate a relay presents on port 443 for `name`, verified against Pebble's root. */
function peerCertificate(relay: Relay, name: string, ca: string): Promise<PeerCertificate> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect(
      { host: relay.spec.addr, port: 443, servername: name, ca, minVersion: "TLSv1.2" },
      () => {
        const cert = socket.getPeerCertificate();
        socket.end();
        resolve(cert);
      },
    );
    socket.once("error", (e) => reject(new Error(`TLS to ${name} (${relay.spec.addr}:443): ${e.message}`)));
    socket.setTimeout(10_000, () => socket.destroy(new Error(`TLS to ${name}: no handshake within 10 s`)));
  });
}

/** Sends an encrypted message from a fresh account at `from` to a fresh account at `to` and returns what arrived. */
async function encryptedAcross(from: Relay, to: Relay) {
  const sender = await account(from);
  const recipient = await account(to);
  const { privateKey, publicKey } = await openpgp.generateKey({
    type: "curve25519",
    userIDs: [{ email: recipient.addr }],
    format: "object",
  });
  const text = `federated ${from.spec.domain} -> ${to.spec.domain} ${randomUUID()}`;
  const { messageId, raw } = await encryptedMessage(
    sender,
    recipient.addr,
    from.spec.domain,
    text,
    publicKey,
  );
  await submit(from.ctx, sender, 587, { from: sender.addr, to: [recipient.addr] }, raw);
  const source = await receive(to.ctx, recipient, messageId);
  const armored = source.match(/-----BEGIN PGP MESSAGE-----[\s\S]*?-----END PGP MESSAGE-----/)?.[0];
  if (!armored) throw new Error("the delivered message has no PGP payload");
  const { data } = await openpgp.decrypt({
    message: await openpgp.readMessage({ armoredMessage: armored }),
    decryptionKeys: privateKey,
  });
  if (data !== text) throw new Error(`decrypted text differs: ${JSON.stringify(data)}`);
  await checkDelivery(from, to, recipient.addr);
}

/**
 * Proves from both servers' logs (the receiving relay strips trace headers before delivery) that the sending
 * relay's Postfix delivered to the receiving relay's port 25 (with smtp_tls_security_level verify, checked in the
 * test, nothing is sent without a verified certificate) and that the receiving OpenDKIM verified the signature of
 * the sender's domain for that very queue entry.
 */
async function checkDelivery(from: Relay, to: Relay, rcpt: string) {
  // Over either address family: both relays publish A and AAAA, and Postfix picks one.
  const relay = `to=<${rcpt}>, relay=${to.spec.domain}[`;
  const addrs = [to.spec.addr, ipv6Of(to.spec.addr)].map((a) => `${relay}${a}]:25,`);
  const queued = await waitFor(`${from.spec.domain} logs the delivery to ${rcpt}`, 15_000, async () => {
    const lines = (
      await from.ssh.out(
        `journalctl --no-pager -o cat -t postfix/smtp | grep -F ${JSON.stringify(relay)} || true`,
      )
    )
      .split("\n")
      .filter((l) => addrs.some((a) => l.includes(a)))
      .join("\n");
    // The receiving filter hands mail on with BDAT, after which Postfix names the size too: "Ok: 2086 bytes queued as".
    return lines.match(/status=sent \(250 [\d.]+ Ok: (?:\d+ bytes )?queued as (\w+)\)/)?.[1];
  });
  await waitFor(
    `${to.spec.domain} logs a valid DKIM signature of ${from.spec.domain} for ${queued}`,
    15_000,
    async () => {
      const lines = await to.ssh.out(
        `journalctl --no-pager -o cat -t opendkim | grep -F '${queued}: ' || true`,
      );
      return lines.includes(`${queued}: DKIM verification successful`) &&
        lines.includes(`${queued}: s=${DKIM_SELECTOR} d=${from.spec.domain} `)
        ? true
        : undefined;
    },
  );
}

/** A plain-SMTP client connecting straight to a relay's port 25, as a foreign server would (STARTTLS required). */
function port25(
  to: Relay,
  ca: string,
  dkim?: { domainName: string; keySelector: string; privateKey: string },
) {
  return createTransport({
    host: to.spec.addr,
    port: 25,
    secure: false,
    requireTLS: true,
    name: "mx.other.example",
    tls: { ca, servername: to.spec.domain },
    connectionTimeout: 10_000,
    ...(dkim ? { dkim } : {}),
  });
}

async function refusedCode(send: () => Promise<unknown>): Promise<number> {
  try {
    await send();
  } catch (e) {
    const err = e as { responseCode?: number; message: string };
    if (err.responseCode !== undefined) return err.responseCode;
    throw e;
  }
  throw new Error("the relay accepted the message");
}

export function federationSuite(fed: FedContext): ReadonlyArray<readonly [string, readonly E2eTest[]]> {
  const [a, b] = fed.relays;
  const pair = [
    [a, b],
    [b, a],
  ] as const;
  const test = (name: string, body: () => Promise<void>): E2eTest => ({ name, run: body });

  const dns: E2eTest[] = [
    test("every record of each relay's record set resolves through the other relay's unbound from the test's knot", async () => {
      for (const [via, target] of pair) {
        const records = relayRecords(target.config, target.facts);
        const missing: string[] = [];
        for (const r of records) {
          const answers = (await lookup(via, r.name, r.type)).map((x) => normalize(r.type, x));
          if (!answers.includes(expected(r)))
            missing.push(`${r.name} ${r.type}: want ${expected(r)}, got ${answers.join(" | ") || "nothing"}`);
        }
        if (missing.length > 0) throw new Error(`through ${via.spec.domain}:\n${missing.join("\n")}`);
        const types = new Set(records.map((r) => r.type));
        for (const t of ["MX", "TXT", "SRV", "CAA", "A", "CNAME"])
          if (!types.has(t as DnsRecord["type"]))
            throw new Error(`record set of ${target.spec.domain} has no ${t}`);
      }
    }),
    test("MX, SPF, DMARC, MTA-STS and SRV answers are the specified ones", async () => {
      for (const [via, t] of pair) {
        const d = t.spec.domain;
        const checks: Array<[string, string, string]> = [
          [d, "MX", `10 ${d}.`],
          [d, "TXT", "v=spf1 a ~all"],
          [`_dmarc.${d}`, "TXT", "v=DMARC1;p=reject;adkim=s;aspf=s"],
          [`_mta-sts.${d}`, "TXT", `v=STSv1; id=${mtaStsId(t.config)}`],
          [`_submissions._tcp.${d}`, "SRV", `0 1 465 ${d}.`],
          [`_imaps._tcp.${d}`, "SRV", `0 1 993 ${d}.`],
        ];
        for (const [name, type, want] of checks) {
          const got = (await lookup(via, name, type)).map((x) => normalize(type, x));
          if (!got.includes(want))
            throw new Error(
              `${name} ${type} via ${via.spec.domain}: want ${want}, got ${got.join(" | ") || "nothing"}`,
            );
        }
      }
    }),
    test("opendkim-testkey confirms each relay's published DKIM key", async () => {
      for (const r of fed.relays) {
        const out = await r.ssh.exec(
          `opendkim-testkey -x /etc/opendkim.conf -d ${r.spec.domain} -s ${DKIM_SELECTOR} -k /etc/dkimkeys/opendkim.private -vvv 2>&1`,
          { allowFail: true },
        );
        if (out.code !== 0 || !/key OK/.test(out.stdout))
          throw new Error(`${r.spec.domain}: exit ${out.code}\n${out.stdout.trim()}`);
      }
    }),
  ];

  const acme: E2eTest[] = [
    test("each relay serves a certificate from the ACME server for its three names", async () => {
      for (const r of fed.relays) {
        for (const name of certificateNames(r.config)) {
          const cert = await peerCertificate(r, name, fed.pebbleRoot);
          if (!/pebble/i.test(JSON.stringify(cert.issuer)))
            throw new Error(`${name}: issuer ${JSON.stringify(cert.issuer)} is not Pebble's`);
          if (!cert.subjectaltname?.includes(`DNS:${name}`))
            throw new Error(`${name}: not in ${cert.subjectaltname}`);
        }
      }
    }),
    test("the CAA record names the ACME server and each relay's own account", async () => {
      for (const [via, t] of pair) {
        const accountUrl = await t.ssh.out(READ_BACK.acmeAccountUrl);
        if (!accountUrl.startsWith(`https://${ACME_NAME}:${ACME_PORT}/`))
          throw new Error(`${t.spec.domain}: account URL ${JSON.stringify(accountUrl)}`);
        const want = `0 issue "${ACME_NAME};accounturi=${accountUrl}"`;
        const got = await lookup(via, t.spec.domain, "CAA");
        if (!got.includes(want))
          throw new Error(`${t.spec.domain} CAA: want ${want}, got ${got.join(" | ") || "nothing"}`);
      }
    }),
  ];

  const mail: E2eTest[] = [
    test("A sends B an encrypted message over port 25 with verified TLS and B's DKIM check passes; B answers A", async () => {
      for (const r of fed.relays) {
        const level = await r.ssh.out("postconf -h smtp_tls_security_level");
        if (level !== "verify")
          throw new Error(`${r.spec.domain}: smtp_tls_security_level is ${level}, not verify`);
      }
      await encryptedAcross(a, b);
      await encryptedAcross(b, a);
    }),
    test("mail without a DKIM signature or with a bad one is refused on port 25", async () => {
      const sender: Account = { addr: `nobody@${a.spec.domain}`, password: "" };
      const rcpt = await account(b);
      const key = await openpgp.generateKey({
        type: "curve25519",
        userIDs: [{ email: rcpt.addr }],
        format: "object",
      });
      const unsigned = await encryptedMessage(sender, rcpt.addr, a.spec.domain, "unsigned", key.publicKey);
      const env = { from: sender.addr, to: [rcpt.addr] };
      const noSig = await refusedCode(() =>
        port25(b, fed.pebbleRoot).sendMail({ envelope: env, raw: unsigned.raw }),
      );
      if (noSig < 500) throw new Error(`unsigned mail: ${noSig}, want a permanent refusal`);
      // A signature that claims A's selector but is made with another key.
      const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
      const forged = await encryptedMessage(sender, rcpt.addr, a.spec.domain, "forged", key.publicKey);
      const badSig = await refusedCode(() =>
        port25(b, fed.pebbleRoot, {
          domainName: a.spec.domain,
          keySelector: DKIM_SELECTOR,
          privateKey: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
        }).sendMail({ envelope: env, raw: forged.raw }),
      );
      if (badSig < 500) throw new Error(`badly signed mail: ${badSig}, want a permanent refusal`);
    }),
    test("each relay serves its MTA-STS policy under a certificate that verifies, with the id DNS announces", async () => {
      for (const [via, t] of pair) {
        const reply = await https(t.ctx, "GET", "/.well-known/mta-sts.txt", {
          host: `mta-sts.${t.spec.domain}`,
        });
        if (reply.status !== 200) throw new Error(`mta-sts.${t.spec.domain}: HTTP ${reply.status}`);
        if (reply.body !== mtaStsPolicy(t.config)) throw new Error(`policy differs:\n${reply.body}`);
        const txt = (await lookup(via, `_mta-sts.${t.spec.domain}`, "TXT")).map((x) => normalize("TXT", x));
        if (!txt.includes(`v=STSv1; id=${mtaStsId(t.config)}`))
          throw new Error(`_mta-sts TXT: ${txt.join(" | ")}`);
        if (!/^mx: (.+)$/m.test(reply.body) || !reply.body.includes(`mx: ${t.spec.domain}`))
          throw new Error("policy does not name the MX");
        // The policy's MX is the name the sending relay verified above (smtp_tls_security_level verify, servername
        // = MX hostname): a sender applying the policy reaches exactly that host.
        const mx = await lookup(via, t.spec.domain, "MX");
        if (!mx.includes(`10 ${t.spec.domain}.`))
          throw new Error(`MX ${mx.join(" | ")} is not the policy's mx`);
      }
    }),
    test("a bounce for an unknown user at B reaches the sender at A", async () => {
      const sender = await account(a);
      const missing = `nosuchuser${randomUUID().slice(0, 8)}@${b.spec.domain}`;
      const key = await openpgp.generateKey({
        type: "curve25519",
        userIDs: [{ email: missing }],
        format: "object",
      });
      const { messageId, raw } = await encryptedMessage(
        sender,
        missing,
        a.spec.domain,
        "to nobody",
        key.publicKey,
      );
      await submit(a.ctx, sender, 587, { from: sender.addr, to: [missing] }, raw);
      const client = await imapLogin(a.ctx, sender);
      try {
        await client.mailboxOpen("INBOX");
        const bounce = await waitFor(
          `bounce for ${missing} in ${sender.addr}'s INBOX`,
          DELIVERY_DEADLINE_MS,
          async () => {
            await client.noop();
            for await (const msg of client.fetch("1:*", { source: true })) {
              const text = msg.source?.toString("utf8") ?? "";
              if (text.includes(messageId.slice(1, -1)) && /multipart\/report/i.test(text)) return text;
            }
            return undefined;
          },
          1000,
        );
        if (!bounce.includes(missing)) throw new Error(`the bounce does not name ${missing}`);
        if (!/^From:.*MAILER-DAEMON/im.test(headerBlock(bounce)))
          throw new Error(`the bounce is not from MAILER-DAEMON:\n${headerBlock(bounce)}`);
      } finally {
        await client.logout();
      }
    }),
    test("a Secure-Join handshake message passes unencrypted from A to B", async () => {
      const sender = await account(a);
      const recipient = await account(b);
      const messageId = `<${randomUUID()}@${a.spec.domain}>`;
      const sample = readFileSync(`${__dirname}/../../filtermail/mail-data/securejoin-vc.eml`, "utf8");
      const raw = sample
        .replace(/\{from_addr\}/g, sender.addr)
        .replace(/\{to_addr\}/g, recipient.addr)
        .replace(/^Message-ID: .*$/m, `Message-ID: ${messageId}`)
        .replace(/\r?\n/g, "\r\n")
        // Ends at the closing boundary, as Delta Chat's messages do; the sample's trailing blank lines meet the
        // problem of the next test.
        .replace(/(\r\n)+$/, "\r\n");
      await submit(a.ctx, sender, 587, { from: sender.addr, to: [recipient.addr] }, raw);
      const source = await receive(b.ctx, recipient, messageId);
      if (!/^Secure-Join: vc-request$/m.test(source))
        throw new Error("the Secure-Join header did not arrive");
      await checkDelivery(a, b, recipient.addr);
    }),
  ];

  mail.push(
    test("a signed message that ends in blank lines is accepted by the other relay", async () => {
      // DKIM's body canonicalization drops trailing blank lines, so the signed length is shorter than the body
      // although nothing was appended; final.lua's body-length check must not take that for an l= signature.
      const sender = await account(a);
      const recipient = await account(b);
      const key = await openpgp.generateKey({
        type: "curve25519",
        userIDs: [{ email: recipient.addr }],
        format: "object",
      });
      const { messageId, raw } = await encryptedMessage(
        sender,
        recipient.addr,
        a.spec.domain,
        "trailing",
        key.publicKey,
      );
      await submit(a.ctx, sender, 587, { from: sender.addr, to: [recipient.addr] }, raw + "\r\n\r\n");
      await receive(b.ctx, recipient, messageId);
    }),
  );

  const renewal: E2eTest[] = [
    test("the timer's reconcile replaces a certificate that no longer satisfies the target, and the services load it", async () => {
      // Pebble 2.4 issues certificates for five years and the clock is the host's, so a time-based renewal cannot be
      // provoked. acmetool renews whenever no stored certificate satisfies the target; dropping the current one
      // from its store takes that same path (order, challenge through nginx and the redirector, live link, hook).
      const live = `/var/lib/acme/live/${a.spec.domain}/cert`;
      const before = (await peerCertificate(a, a.spec.domain, fed.pebbleRoot)).serialNumber;
      const serialOnDisk = async () =>
        (await a.ssh.out(`openssl x509 -in ${live} -noout -serial`)).replace(/^serial=/, "");
      await a.ssh.out(
        `rm -rf "/var/lib/acme/certs/$(basename "$(readlink /var/lib/acme/live/${a.spec.domain})")"`,
      );
      const t = Date.now();
      // The unit acmetool.timer starts.
      await a.ssh.out("systemctl start acmetool.service");
      fed.time("ACME renewal (A)", (Date.now() - t) / 1000);
      const onDisk = await serialOnDisk();
      const served = await waitFor("nginx serves the renewed certificate", 30_000, async () => {
        const s = (await peerCertificate(a, a.spec.domain, fed.pebbleRoot)).serialNumber;
        return s !== before ? s : undefined;
      });
      if (served.toUpperCase() !== onDisk.toUpperCase())
        throw new Error(`served ${served}, on disk ${onDisk}`);
      // Mail still flows with the new certificate.
      await encryptedAcross(b, a);
    }),
  ];

  // Both stacks: a preview after all the above shows no change, then destroy forgets each relay and leaves it running.
  const engine: E2eTest[] = [
    test("pulumi preview --expect-no-changes passes for both stacks after the suite", async () => {
      for (const r of fed.relays) await r.ctx.stack.preview(["--expect-no-changes"]);
    }),
    test("pulumi destroy empties both stacks and each relay keeps accepting mail", async () => {
      for (const r of fed.relays) await r.ctx.stack.destroy();
      for (const r of fed.relays) {
        const state = JSON.parse(await r.ctx.stack.exportState()) as {
          deployment?: { resources?: unknown[] };
        };
        if ((state.deployment?.resources ?? []).length > 0)
          throw new Error(`${r.spec.domain}: the stack still holds resources after destroy`);
      }
      await encryptedAcross(a, b);
    }),
  ];

  return [
    // First, while the queues are empty and nothing has been changed by the other groups.
    ["npm run check", checkGroup(fed, fed.checkEnv)],
    // Next, while both stacks match their servers: a fleet preview must show no change.
    ["npm run fleet", fleetGroup(fed, fed.checkEnv)],
    ["DNS", dns],
    ["ACME", acme],
    ["federation", mail],
    ["ACME renewal", renewal],
    ["pulumi: no changes, then destroy", engine],
  ];
}
