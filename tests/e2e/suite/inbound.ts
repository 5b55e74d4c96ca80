// What other servers and old clients meet: port 25 refuses mail without a valid DKIM signature of its From:
// domain and does not reveal which addresses exist; IMAP and SMTP submission accept TLS 1.3 only.
import { randomUUID } from "node:crypto";
import { connect, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { imapLogin, newCredentials, tlsOpts } from "./clients";
import type { E2eTest, SuiteContext } from "./types";

const MTA = ["service:postfix.service", "service:chatmaild.service", "service:opendkim.service"];

/** A plain SMTP conversation on port 25: send each line, collect each complete reply. */
async function smtp25(ctx: SuiteContext, lines: readonly string[]): Promise<string[]> {
  const socket: Socket = connect({ host: ctx.addr, port: 25 });
  socket.setTimeout(15_000, () => socket.destroy(new Error("port 25: no reply within 15 s")));
  let buffer = "";
  const waiters: Array<(reply: string) => void> = [];
  socket.on("data", (b: Buffer) => {
    buffer += b.toString("utf8");
    // A reply is complete at a line "NNN text" (a space, not a dash, after the code).
    for (
      let m = buffer.match(/^(?:\d{3}-.*\r\n)*\d{3}(?: .*)?\r\n/);
      m;
      m = buffer.match(/^(?:\d{3}-.*\r\n)*\d{3}(?: .*)?\r\n/)
    ) {
      buffer = buffer.slice(m[0].length);
      waiters.shift()?.(m[0].trimEnd());
    }
  });
  const next = () =>
    new Promise<string>((resolve, reject) => {
      waiters.push(resolve);
      socket.once("error", reject);
    });
  try {
    const replies = [await next()];
    for (const line of lines) {
      const reply = next();
      socket.write(line + "\r\n");
      replies.push(await reply);
    }
    return replies;
  } finally {
    socket.destroy();
  }
}

export const inbound: E2eTest[] = [
  {
    name: "port 25 refuses an encrypted message from another domain that has no DKIM signature",
    needs: MTA,
    async run(ctx) {
      const local = newCredentials(ctx);
      await (await imapLogin(ctx, local)).logout();
      const from = `alice@remote-${randomUUID().slice(0, 6)}.example`;
      const boundary = "b1";
      const message = [
        `From: <${from}>`,
        `To: <${local.addr}>`,
        "Subject: ...",
        `Message-ID: <${randomUUID()}@remote.example>`,
        "MIME-Version: 1.0",
        `Content-Type: multipart/encrypted; protocol="application/pgp-encrypted"; boundary="${boundary}"`,
        "",
        `--${boundary}`,
        "Content-Type: application/pgp-encrypted",
        "",
        "Version: 1",
        `--${boundary}--`,
        ".",
      ].join("\r\n");
      const replies = await smtp25(ctx, [
        "EHLO remote.example",
        `MAIL FROM:<${from}>`,
        `RCPT TO:<${local.addr}>`,
        "DATA",
        message,
        "QUIT",
      ]);
      const final = replies[5] ?? "";
      if (!/^5\d\d/.test(final) || !/DKIM/i.test(final))
        throw new Error(`end of DATA: ${JSON.stringify(final)}; replies: ${replies.join(" | ")}`);
    },
  },
  {
    name: "VRFY on port 25 answers the same for an existing and an unknown address",
    needs: MTA,
    async run(ctx) {
      const existing = newCredentials(ctx);
      await (await imapLogin(ctx, existing)).logout();
      const unknown = newCredentials(ctx).addr;
      const [, , known, missing] = await smtp25(ctx, [
        "EHLO remote.example",
        `VRFY ${existing.addr}`,
        `VRFY ${unknown}`,
        "QUIT",
      ]);
      if (known !== missing)
        throw new Error(`VRFY tells addresses apart: ${JSON.stringify(known)} vs ${JSON.stringify(missing)}`);
      if (/^25[01]/.test(known)) throw new Error(`VRFY confirms an address: ${known}`);
    },
  },
  {
    name: "IMAP (993) and SMTP submission (465) refuse TLS 1.2 clients",
    needs: ["service:dovecot.service", "service:postfix.service"],
    async run(ctx) {
      const tls = await tlsOpts(ctx);
      for (const port of [993, 465]) {
        const outcome = await new Promise<string>((resolve) => {
          const s = tlsConnect({ ...tls, port, minVersion: "TLSv1.2", maxVersion: "TLSv1.2" }, () => {
            resolve(`handshake succeeded with ${s.getProtocol()}`);
            s.destroy();
          });
          s.once("error", () => resolve("refused"));
          s.setTimeout(10_000, () => {
            s.destroy();
            resolve("no answer within 10 s");
          });
        });
        if (outcome !== "refused") throw new Error(`port ${port} with TLS 1.2 only: ${outcome}`);
      }
    },
  },
];
