// The SMTP server against peers that misbehave on purpose: one that pipelines commands and never reads the
// replies, and ones that trickle bytes to keep a session open. Real loopback sockets, small injected deadlines.
import * as net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { reply, type Reply } from "../../daemons/smtp/reply";
import { startSmtpServer, type SmtpServer } from "../../daemons/smtp/server";
import { RawClient } from "../filtermail/harness";

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function server(
  deadlineMs = 60_000,
  onData: () => Promise<Reply> = async () => reply(250, "OK"),
): Promise<SmtpServer> {
  const s = await startSmtpServer(
    {
      host: "127.0.0.1",
      port: 0,
      name: "limits",
      maxMessageBytes: 1 << 20,
      deadlineMs,
      maxConnections: 10,
      log: () => undefined,
    },
    { onMailFrom: () => undefined, onData },
  );
  cleanups.push(() => s.close());
  return s;
}

async function connect(port: number): Promise<net.Socket> {
  const socket = net.connect({ host: "127.0.0.1", port });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  cleanups.push(() => void socket.destroy());
  return socket;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Writes `line` repeated, 64 KiB at a time, until `total` bytes are written or writing has made no progress for
 * `stallMs`. `accepted` is what the kernel took from this side: bytes it did not keep in its own buffers were
 * read by the server. `written` also counts the chunk still queued on this side when writing stalled.
 */
async function floodUntilStalled(socket: net.Socket, line: string, total: number, stallMs: number) {
  const chunk = Buffer.from(line.repeat(Math.floor(65_536 / line.length)));
  let accepted = 0;
  let written = 0;
  while (written < total) {
    const flushed = new Promise<boolean>((resolve) => socket.write(chunk, () => resolve(true)));
    written += chunk.length;
    if (!(await Promise.race([flushed, sleep(stallMs).then(() => false)]))) break;
    accepted += chunk.length;
  }
  return { accepted, written };
}

describe("SMTP server: backpressure", () => {
  it("stops reading from a client that pipelines NOOPs and never reads the replies", async () => {
    const s = await server();
    const socket = await connect(s.port);
    // The client reads nothing: the replies fill its receive buffer, then the server's send buffer. From then
    // on the server must not read more. Loopback kernel buffers hold a few MB; 64 MB is far beyond them.
    const total = 64 << 20;
    const { accepted } = await floodUntilStalled(socket, "NOOP\r\n", total, 1000);
    expect(accepted).toBeLessThan(total / 4);
  });

  it("answers every pipelined command once the client reads again", async () => {
    const s = await server();
    const socket = await connect(s.port);
    const total = 24 << 20;
    const { accepted, written } = await floodUntilStalled(socket, "NOOP\r\n", total, 500);
    expect(accepted).toBeLessThan(total);
    let received = 0;
    socket.on("data", (d: Buffer) => (received += d.length));
    const closed = new Promise((r) => socket.once("close", r));
    socket.write("QUIT\r\n");
    await closed;
    const noops = written / "NOOP\r\n".length;
    expect(received).toBe("220 limits\r\n".length + noops * "250 OK\r\n".length + "221 OK\r\n".length);
  });
});

describe("SMTP server: input while a message is handed on", () => {
  it("reads no more than it already had while the handler decides, then answers everything in order", async () => {
    let decide!: (r: Reply) => void;
    let deciding!: () => void;
    const handedOn = new Promise<void>((r) => (deciding = r));
    const s = await server(60_000, () => {
      deciding();
      return new Promise<Reply>((r) => (decide = r));
    });
    const socket = await connect(s.port);
    let received = "";
    socket.on("data", (d: Buffer) => (received += d.toString("latin1")));
    socket.write("EHLO x\r\nMAIL FROM:<a@b>\r\nRCPT TO:<c@d>\r\nDATA\r\nmessage\r\n.\r\n");
    await handedOn;
    // The client pipelines on without waiting for the answer (Postfix never does). The server is busy with the
    // message and must leave this in the kernel's buffers, not read it into its own memory.
    const total = 64 << 20;
    const { accepted, written } = await floodUntilStalled(socket, "NOOP\r\n", total, 1000);
    expect(accepted).toBeLessThan(total / 4);
    const closed = new Promise((r) => socket.once("close", r));
    decide(reply(250, "queued"));
    socket.write("QUIT\r\n");
    await closed;
    const noops = written / "NOOP\r\n".length;
    expect(received).toBe(
      "220 limits\r\n250-limits\r\n250-PIPELINING\r\n250-SIZE 1048576\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n" +
        "250 CHUNKING\r\n250 OK\r\n250 OK\r\n354 End data with <CR><LF>.<CR><LF>\r\n250 queued\r\n" +
        "250 OK\r\n".repeat(noops) +
        "221 OK\r\n",
    );
  });
});

describe("SMTP server: deadlines a trickling client cannot extend", () => {
  /** Sends `byte` every 50 ms for at most `ms`; resolves with the first reply, or "still open". */
  async function trickle(c: RawClient, byte: string, ms: number): Promise<string> {
    let stop = false;
    const answer = c.next().then((r) => ((stop = true), r));
    for (let t = 0; t < ms && !stop; t += 50) {
      c.write(byte);
      await sleep(50);
    }
    return stop ? answer : "still open";
  }

  it("cuts off a client that sends a command line one byte at a time", async () => {
    const s = await server(300);
    const c = await RawClient.connect(s.port);
    cleanups.push(() => c.close());
    expect(await c.next()).toMatch(/^220/);
    // Ten times the deadline: an idle timer that restarts on every byte never fires.
    expect(await trickle(c, "x", 3000)).toBe("421 4.4.2 Error: timeout exceeded");
    expect(await c.next()).toBe("closed");
  });

  it("cuts off a client that sends the message one byte at a time", async () => {
    const s = await server(300);
    const c = await RawClient.connect(s.port);
    cleanups.push(() => c.close());
    await c.next();
    await c.command("EHLO x");
    await c.command("MAIL FROM:<a@b.example>");
    await c.command("RCPT TO:<c@d.example>");
    expect(await c.command("DATA")).toMatch(/^354/);
    expect(await trickle(c, "x", 3000)).toBe("421 4.4.2 Error: timeout exceeded");
    expect(await c.next()).toBe("closed");
  });
});
