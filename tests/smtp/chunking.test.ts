// BDAT (RFC 3030 CHUNKING) on both sides: the server reads counted chunks byte for byte, and the client sends a
// one-recipient transaction as MAIL, RCPT, BDAT LAST in one write, which is how the filter reinjects.
import * as net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { SmtpClientConnection } from "../../daemons/smtp/client";
import { reply } from "../../daemons/smtp/reply";
import { startSmtpServer } from "../../daemons/smtp/server";
import { RawClient, startSink } from "../filtermail/harness";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

// Lines a DATA section would have to stuff or would end at, and a bare LF: all plain bytes in a chunk.
const MESSAGE = Buffer.from("From: a@b.example\r\n\r\n.leading dot\r\n.\r\nafter a lone dot\n.\nend\r\n");

async function server(maxMessageBytes = 1 << 20) {
  const received: Buffer[] = [];
  const s = await startSmtpServer(
    {
      host: "127.0.0.1",
      port: 0,
      name: "chunks",
      maxMessageBytes,
      deadlineMs: 60_000,
      maxConnections: 10,
      log: () => undefined,
    },
    {
      onMailFrom: () => undefined,
      onData: async (_e, message) => {
        received.push(message);
        return reply(250, "2.0.0 queued");
      },
    },
  );
  cleanups.push(() => s.close());
  return { port: s.port, received };
}

async function client(port: number) {
  const c = await RawClient.connect(port);
  cleanups.push(() => c.close());
  await c.next();
  expect(await c.command("EHLO x")).toContain("CHUNKING");
  return c;
}

describe("SMTP server: BDAT", () => {
  it("takes a pipelined MAIL, RCPT, BDAT LAST byte for byte and answers all three in one write", async () => {
    const { port, received } = await server();
    const socket = net.connect({ host: "127.0.0.1", port });
    cleanups.push(() => void socket.destroy());
    const chunks: string[] = [];
    socket.on("data", (d: Buffer) => chunks.push(d.toString()));
    socket.write("EHLO x\r\n");
    await new Promise((r) => setTimeout(r, 100));
    chunks.length = 0;
    socket.write(
      Buffer.concat([
        Buffer.from(`MAIL FROM:<a@b.example>\r\nRCPT TO:<c@d.example>\r\nBDAT ${MESSAGE.length} LAST\r\n`),
        MESSAGE,
      ]),
    );
    for (let waited = 0; waited < 5000 && (received.length === 0 || chunks.length === 0); waited += 10)
      await new Promise((r) => setTimeout(r, 10));
    expect(received).toHaveLength(1);
    expect(received[0].equals(MESSAGE)).toBe(true);
    expect(chunks[0]).toBe("250 OK\r\n250 OK\r\n250 2.0.0 queued\r\n");
  });

  it("joins several chunks into one message", async () => {
    const { port, received } = await server();
    const c = await client(port);
    await c.command("MAIL FROM:<a@b.example>");
    await c.command("RCPT TO:<c@d.example>");
    c.write(Buffer.concat([Buffer.from("BDAT 10\r\n"), MESSAGE.subarray(0, 10)]));
    expect(await c.next()).toBe("250 2.0.0 10 octets received");
    c.write(Buffer.concat([Buffer.from(`BDAT ${MESSAGE.length - 10} LAST\r\n`), MESSAGE.subarray(10)]));
    expect(await c.next()).toBe("250 2.0.0 queued");
    expect(received[0].equals(MESSAGE)).toBe(true);
  });

  it("reads the bytes of a refused chunk without taking them for commands", async () => {
    const { port, received } = await server();
    const c = await client(port);
    c.write("BDAT 6 LAST\r\nQUIT\r\n");
    expect(await c.next()).toBe("503 5.5.1 Error: need MAIL command");
    await c.command("MAIL FROM:<a@b.example>");
    c.write("BDAT 6 LAST\r\nQUIT\r\n");
    expect(await c.next()).toBe("554 5.5.1 Error: no valid recipients");
    expect(await c.command("BDAT x")).toBe("501 5.5.4 Syntax: BDAT size [LAST]");
    expect(await c.command("NOOP")).toBe("250 OK");
    expect(received).toHaveLength(0);
  });

  it("refuses a message over the size limit and stays usable", async () => {
    const { port, received } = await server(16);
    const c = await client(port);
    await c.command("MAIL FROM:<a@b.example>");
    await c.command("RCPT TO:<c@d.example>");
    c.write(Buffer.concat([Buffer.from(`BDAT ${MESSAGE.length} LAST\r\n`), MESSAGE]));
    expect(await c.next()).toBe("552 5.3.4 Message exceeds maximum size");
    expect(await c.command("NOOP")).toBe("250 OK");
    expect(received).toHaveLength(0);
  });
});

describe("SMTP client: one recipient goes as BDAT", () => {
  const opts = (port: number) => ({
    host: "127.0.0.1",
    port,
    heloName: "test",
    commandTimeoutMs: 5000,
    dataTimeoutMs: 5000,
  });

  it("delivers the exact bytes and returns the server's answer, then carries the next message", async () => {
    const sink = await startSink();
    cleanups.push(() => sink.close());
    const conn = await SmtpClientConnection.connect(opts(sink.port));
    cleanups.push(() => conn.destroy());
    const t = { mailFrom: "a@b.example", mailParams: [], rcptTos: ["c@d.example"], message: MESSAGE };
    expect(await conn.send(t)).toEqual({ reply: reply(250, "2.0.0 Ok: queued as SINK"), accepted: true });
    expect((await conn.send(t)).accepted).toBe(true);
    expect(sink.delivered.map((d) => d.message.equals(MESSAGE))).toEqual([true, true]);
  });

  it("returns the refusal of the only recipient and delivers nothing", async () => {
    const sink = await startSink();
    cleanups.push(() => sink.close());
    const conn = await SmtpClientConnection.connect(opts(sink.port));
    cleanups.push(() => conn.destroy());
    const result = await conn.send({
      mailFrom: "a@b.example",
      mailParams: [],
      rcptTos: [""],
      message: MESSAGE,
    });
    expect(result).toEqual({ reply: reply(501, "5.5.4 Syntax: RCPT TO:<address>"), accepted: false });
    await new Promise((r) => setTimeout(r, 100));
    expect(sink.delivered).toHaveLength(0);
  });
});
