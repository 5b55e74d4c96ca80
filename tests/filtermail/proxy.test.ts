// The filter as a running proxy over real loopback sockets, with a recording sink as the reinjection server.
import * as net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { reply } from "../../daemons/smtp/reply";
import { stuffedSlices } from "../../daemons/smtp/data";
import { closedPort, RawClient, startFilter, startSink, testConfig, type Sink } from "./harness";
import { encryptedMessage } from "./pgp";
import { sample } from "./samples";

const ALICE = "alice@chat.example.org";
const BOB = "bob@chat.example.org";
const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(
  opts: { ini?: string; direction?: "outgoing" | "incoming"; sink?: Sink; filter?: object } = {},
) {
  const sink = opts.sink ?? (await startSink());
  const { service, logs } = await startFilter(testConfig(opts.ini), opts.direction ?? "outgoing", {
    downstreamPort: sink.port,
    ...opts.filter,
  });
  cleanups.push(
    () => sink.close(),
    () => service.close(),
  );
  const connect = async () => {
    const c = await RawClient.connect(service.port);
    cleanups.push(() => c.close());
    return c;
  };
  return { sink, service, logs, connect };
}

describe("filtermail proxy: accepted mail", () => {
  it("hands an encrypted message to the reinjection server unchanged and answers with that server's reply", async () => {
    const { sink, connect, logs } = await setup();
    // A header line starting with "." (a field name may): stuffed on the wire, and the message's first byte.
    const message = Buffer.concat([
      Buffer.from(".X-Dotted: a line starting with a dot\r\n"),
      sample("encrypted", ALICE, BOB),
    ]);
    const c = await connect();
    expect(await c.sendMail(ALICE, [BOB], message, " BODY=8BITMIME SMTPUTF8")).toBe(
      "250 2.0.0 Ok: queued as SINK",
    );
    expect(sink.delivered).toHaveLength(1);
    const d = sink.delivered[0];
    expect(d.message.equals(message)).toBe(true);
    expect(d.envelope.mailFrom).toBe(ALICE);
    expect(d.envelope.rcptTos).toEqual([BOB]);
    expect([...d.envelope.mailParams.keys()].sort()).toEqual(["BODY", "SMTPUTF8"]);
    expect(logs).toContain("Outgoing: Filtering encrypted mail.");
  });

  it("hands a message for several recipients on as DATA, byte for byte through stuffing and unstuffing", async () => {
    const { sink, connect } = await setup();
    const message = Buffer.concat([
      Buffer.from(".X-Dotted: a line starting with a dot\r\n..X-Two-Dots: two\r\n"),
      sample("encrypted", ALICE, BOB),
    ]);
    const c = await connect();
    expect(await c.sendMail(ALICE, [BOB, "carol@chat.example.org"], message)).toMatch(/^250/);
    expect(sink.delivered[0].envelope.rcptTos).toEqual([BOB, "carol@chat.example.org"]);
    expect(sink.delivered[0].message.equals(message)).toBe(true);
  });

  it("reinjects incoming mail from source address 127.0.0.2", async () => {
    const { sink, connect } = await setup({ direction: "incoming" });
    const c = await connect();
    expect(
      await c.sendMail("carol@other.example", [BOB], sample("encrypted", "carol@other.example", BOB)),
    ).toMatch(/^250/);
    expect(sink.delivered[0].remoteAddress).toBe("127.0.0.2");
  });

  it("ignores all RCPT TO parameters and takes SMTPUTF8 addresses and 8-bit content", async () => {
    const { sink, connect } = await setup({ direction: "incoming" });
    const c = await connect();
    await c.next();
    await c.command("EHLO x");
    expect(await c.command("MAIL FROM:<jörg@bücher.example> BODY=8BITMIME SMTPUTF8")).toBe("250 OK");
    expect(await c.command(`RCPT TO:<${BOB}> NOTIFY=DELAY,FAILURE ORCPT=rfc822;${BOB}`)).toBe("250 OK");
    expect(await c.command("DATA")).toMatch(/^354/);
    c.write(Buffer.concat([...stuffedSlices(sample("encrypted", "jörg@bücher.example", BOB))]));
    expect(await c.next()).toMatch(/^250/);
    expect(sink.delivered[0].envelope.mailFrom).toBe("jörg@bücher.example");
  });

  it("answers a pipelined transaction in order and carries on with the next one", async () => {
    const { sink, connect } = await setup();
    const c = await connect();
    await c.next();
    const stuffed = Buffer.concat(stuffedSlices(sample("encrypted", ALICE, BOB)));
    c.write(
      `EHLO x\r\nMAIL FROM:<${ALICE}>\r\nRCPT TO:<${BOB}>\r\nRCPT TO:<carol@chat.example.org>\r\nDATA\r\n`,
    );
    c.write(
      Buffer.concat([
        stuffed,
        Buffer.from(`MAIL FROM:<${ALICE}>\r\nRCPT TO:<${BOB}>\r\nDATA\r\n`),
        stuffed,
        Buffer.from("QUIT\r\n"),
      ]),
    );
    const replies = [];
    for (let i = 0; i < 11; i++) replies.push((await c.next()).slice(0, 3));
    expect(replies).toEqual(["250", "250", "250", "250", "354", "250", "250", "250", "354", "250", "221"]);
    expect(sink.delivered).toHaveLength(2);
    expect(sink.delivered[0].envelope.rcptTos).toEqual([BOB, "carol@chat.example.org"]);
  });
});

describe("filtermail proxy: refusals", () => {
  it("refuses unencrypted mail with 523 and delivers nothing", async () => {
    const { sink, connect, logs } = await setup();
    const c = await connect();
    expect(await c.sendMail(ALICE, [BOB], sample("plain", ALICE, BOB))).toBe(
      "523 Encryption Needed: Invalid Unencrypted Mail",
    );
    expect(sink.delivered).toHaveLength(0);
    expect(logs).toEqual(
      expect.arrayContaining(["Outgoing: Filtering unencrypted mail.", "Rejected unencrypted mail."]),
    );
  });

  it("rate-limits a sender after maxUserSendBurstSize messages with 450", async () => {
    const { connect } = await setup({ ini: "max_user_send_burst_size = 3\n" });
    const c = await connect();
    await c.next();
    await c.command("EHLO x");
    const answers = [];
    for (let i = 0; i < 4; i++) {
      answers.push(await c.command(`MAIL FROM:<${ALICE}>`));
      await c.command("RSET");
    }
    expect(answers).toEqual(["250 OK", "250 OK", "250 OK", `450 4.7.1: Too much mail from ${ALICE}`]);
    expect(await c.command("MAIL FROM:<other@chat.example.org>")).toBe("250 OK");
  });

  it("refuses a MAIL FROM that is not one address, before counting it", async () => {
    const { connect } = await setup();
    const c = await connect();
    await c.next();
    await c.command("EHLO x");
    expect(await c.command("MAIL FROM:<bad>")).toBe("500 Invalid from address <bad>");
    expect(await c.command("MAIL FROM:<>")).toBe("500 Invalid from address <>");
  });

  it("refuses a message over maxMessageSize with 552 and keeps the session usable", async () => {
    const { sink, connect } = await setup({ ini: "max_message_size = 4096\n" });
    const c = await connect();
    const big = Buffer.concat([sample("encrypted", ALICE, BOB), Buffer.from("x".repeat(5000) + "\r\n")]);
    expect(await c.sendMail(ALICE, [BOB], big)).toBe("552 5.3.4 Message exceeds maximum size");
    expect(await c.command(`MAIL FROM:<${ALICE}> SIZE=5000`)).toBe("552 5.3.4 Message exceeds maximum size");
    expect(await c.command("NOOP")).toBe("250 OK");
    expect(sink.delivered).toHaveLength(0);
  });

  it("answers sequencing errors like aiosmtpd", async () => {
    const { connect } = await setup();
    const c = await connect();
    await c.next();
    expect(await c.command(`MAIL FROM:<${ALICE}>`)).toBe("503 5.5.1 Error: send HELO first");
    await c.command("HELO x");
    expect(await c.command(`RCPT TO:<${BOB}>`)).toBe("503 5.5.1 Error: need MAIL command");
    expect(await c.command(`MAIL FROM:<${ALICE}>`)).toBe("250 OK");
    expect(await c.command(`MAIL FROM:<${ALICE}>`)).toBe("503 5.5.1 Error: nested MAIL command");
    expect(await c.command("DATA")).toBe("503 5.5.1 Error: need RCPT command");
    expect(await c.command("VRFY x")).toBe("500 5.5.2 Command not recognized");
    expect(await c.command("QUIT")).toBe("221 OK");
  });
});

describe("filtermail proxy: downstream failures give 4xx, never a silent loss", () => {
  it("answers 451 when the reinjection server is down", async () => {
    const sink = await startSink();
    const port = await closedPort();
    const { connect, logs } = await setup({ sink, filter: { downstreamPort: port } });
    const c = await connect();
    expect(await c.sendMail(ALICE, [BOB], sample("encrypted", ALICE, BOB))).toBe("451 Local error");
    expect(logs.some((l) => l.includes("reinjection") && l.includes("failed"))).toBe(true);
  });

  it("answers 451 when the reinjection server does not answer the end of data in time", async () => {
    const never = await startSink(() => new Promise(() => undefined));
    const { connect } = await setup({ sink: never, filter: { downstreamDataTimeoutMs: 300 } });
    const c = await connect();
    expect(await c.sendMail(ALICE, [BOB], sample("encrypted", ALICE, BOB))).toBe("451 Local error");
  });

  it("replaces a pooled reinjection connection that the server has closed meanwhile", async () => {
    const impatient = await startSink(undefined, 100);
    const { sink, connect } = await setup({ sink: impatient });
    const first = await connect();
    expect(await first.sendMail(ALICE, [BOB], sample("encrypted", ALICE, BOB))).toMatch(/^250/);
    // The sink says 421 and hangs up on the idle pooled connection after 100 ms.
    await new Promise((r) => setTimeout(r, 400));
    const second = await connect();
    expect(await second.sendMail(ALICE, [BOB], sample("encrypted", ALICE, BOB))).toMatch(/^250/);
    expect(sink.delivered).toHaveLength(2);
  });

  it("passes a temporary refusal of the reinjection server through", async () => {
    const busy = await startSink(() => reply(452, "4.3.1 Insufficient system storage"));
    const { connect } = await setup({ sink: busy });
    const c = await connect();
    expect(await c.sendMail(ALICE, [BOB], sample("encrypted", ALICE, BOB))).toBe(
      "452 4.3.1 Insufficient system storage",
    );
  });

  it("delivers to all recipients or none when the reinjection server refuses one", async () => {
    const sink = await startSink();
    // A downstream that refuses RCPT for carol: a tiny scripted server.
    const server = net.createServer((s) => {
      s.write("220 scripted\r\n");
      let buf = "";
      let inData = false;
      s.on("data", (d) => {
        buf += d.toString();
        let i;
        while ((i = buf.indexOf("\r\n")) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 2);
          if (inData) {
            if (line === ".") {
              inData = false;
              s.write("250 queued\r\n");
              sink.delivered.push({
                envelope: { mailFrom: "", mailParams: new Map(), rcptTos: [] },
                message: Buffer.alloc(0),
                remoteAddress: "",
              });
            }
          } else if (line.startsWith("EHLO")) s.write("250-scripted\r\n250 PIPELINING\r\n");
          else if (line.startsWith("RCPT") && line.includes("carol")) s.write("550 5.1.1 no such user\r\n");
          else if (line === "DATA") {
            inData = true;
            s.write("354 go\r\n");
          } else s.write("250 ok\r\n");
        }
      });
      s.on("error", () => undefined);
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    cleanups.push(() => new Promise((r) => server.close(() => r(undefined))));
    const { connect } = await setup({
      sink,
      filter: { downstreamPort: (server.address() as net.AddressInfo).port },
    });
    const c = await connect();
    expect(await c.sendMail(ALICE, [BOB, "carol@chat.example.org"], sample("encrypted", ALICE, BOB))).toBe(
      "550 5.1.1 no such user",
    );
    await new Promise((r) => setTimeout(r, 100));
    expect(sink.delivered).toHaveLength(0);
  });
});

describe("filtermail proxy: robustness", () => {
  it("survives binary garbage, over-long lines and bad syntax, answering each", async () => {
    const { connect } = await setup();
    const c = await connect();
    await c.next();
    c.write(Buffer.from([0x00, 0xff, 0xfe, 0x0d, 0x0a]));
    expect(await c.next()).toBe("500 5.5.2 Command not recognized");
    c.write("EHLO " + "x".repeat(10_000) + "\r\n");
    expect(await c.next()).toBe("500 5.5.2 Line too long");
    expect(await c.command("EHLO x")).toMatch(/^250 filtermail SMTP/);
    expect(await c.command("MAIL FROM:alice")).toBe("500 Invalid from address <alice>");
    expect(await c.command("MAIL FROM:<broken")).toBe("501 5.5.4 Syntax: MAIL FROM:<address>");
    expect(await c.command("NOOP")).toBe("250 OK");
  });

  it.each([
    [
      "malformed MIME",
      "From: alice@chat.example.org\r\nContent-Type: multipart/encrypted\r\n\r\n--\r\n--\r\n",
    ],
    [
      "nested boundaries",
      'From: alice@chat.example.org\r\nContent-Type: multipart/encrypted; boundary="a"\r\n\r\n--a\r\nContent-Type: multipart/mixed; boundary="a-b"\r\n\r\n--a-b\r\nVersion: 1\r\n--a--\r\n',
    ],
    ["a huge header line", `From: alice@chat.example.org\r\nX-Long: ${"y".repeat(3_000_000)}\r\n\r\nhi\r\n`],
    [
      "binary garbage",
      `From: alice@chat.example.org\r\n\r\n${String.fromCharCode(...Array.from({ length: 5000 }, (_, i) => (i * 7919) % 256))}\r\n`,
    ],
    ["8-bit headers", "From: Jörg <alice@chat.example.org>\r\nSubject: Grüße\r\n\r\nÄ\r\n"],
  ])("answers 523 for %s and stays up", async (_name, text) => {
    const { connect } = await setup();
    const c = await connect();
    expect(await c.sendMail(ALICE, [BOB], Buffer.from(text, "latin1"))).toBe(
      "523 Encryption Needed: Invalid Unencrypted Mail",
    );
    const again = await connect();
    expect(await again.sendMail(ALICE, [BOB], sample("encrypted", ALICE, BOB))).toMatch(/^250/);
  });

  it("disconnects a silent client with 421 after the idle timeout", async () => {
    const { connect } = await setup({ filter: { deadlineMs: 200 } });
    const c = await connect();
    await c.next();
    await c.command("EHLO x");
    c.write("MAIL FROM:<alice@chat.example.org>\r\nRCPT TO:<bob@chat.example.org>\r\nDATA\r\npartial");
    await c.next();
    await c.next();
    expect(await c.next()).toMatch(/^354/);
    expect(await c.next()).toBe("421 4.4.2 Error: timeout exceeded");
    expect(await c.next()).toBe("closed");
  });

  it("passes 500 concurrent connections, each answered and delivered", async () => {
    const { sink, connect } = await setup({ ini: "max_user_send_burst_size = 1000\n" });
    const message = sample("encrypted", ALICE, BOB);
    const clients = await Promise.all(Array.from({ length: 500 }, () => connect()));
    const answers = await Promise.all(clients.map((c) => c.sendMail(ALICE, [BOB], message)));
    expect(answers.filter((a) => a.startsWith("250"))).toHaveLength(500);
    expect(sink.delivered).toHaveLength(500);
  });

  it("passes a 30 MB encrypted message through intact", async () => {
    const { sink, connect } = await setup();
    const big = encryptedMessage(ALICE, BOB, 22_000_000);
    expect(big.length).toBeGreaterThan(29_000_000);
    expect(big.length).toBeLessThan(31_457_280);
    const c = await connect();
    expect(await c.sendMail(ALICE, [BOB], big)).toMatch(/^250/);
    expect(sink.delivered).toHaveLength(1);
    expect(sink.delivered[0].message.equals(big)).toBe(true);
  });
});
