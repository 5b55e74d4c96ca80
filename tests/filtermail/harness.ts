// Socket-level helpers for the filtermail tests: a recording SMTP sink standing in for Postfix's reinjection
// listener, a raw line-oriented SMTP client, and a filter started on free loopback ports.
import * as net from "node:net";
import * as tls from "node:tls";
import {
  startFiltermail,
  type FiltermailConfig,
  type FiltermailOptions,
} from "../../daemons/filtermail/index";
import { parseDaemonConfig } from "../../daemons/config";
import { reply, type Reply } from "../../daemons/smtp/reply";
import { ReplyReader } from "../../daemons/smtp/reply-reader";
import { startSmtpServer, type Envelope } from "../../daemons/smtp/server";

export interface Delivered {
  envelope: Envelope;
  message: Buffer;
  remoteAddress: string;
}

export interface Sink {
  port: number;
  delivered: Delivered[];
  close(): Promise<void>;
}

/** An SMTP server that records what it is given and answers `answer` (default "250 2.0.0 Ok: queued as SINK"). */
export async function startSink(
  answer: (e: Envelope) => Promise<Reply> | Reply = () => reply(250, "2.0.0 Ok: queued as SINK"),
  deadlineMs = 60_000,
): Promise<Sink> {
  const delivered: Delivered[] = [];
  const server = await startSmtpServer(
    {
      host: "127.0.0.1",
      port: 0,
      name: "sink",
      maxMessageBytes: 100 * 1024 * 1024,
      deadlineMs,
      maxConnections: 10_000,
      log: () => undefined,
    },
    {
      onMailFrom: () => undefined,
      async onData(envelope, message, session) {
        const r = await answer(envelope);
        if (r.code === 250) delivered.push({ envelope, message, remoteAddress: session.remoteAddress });
        return r;
      },
    },
  );
  return { port: server.port, delivered, close: () => server.close() };
}

export function testConfig(ini = ""): FiltermailConfig {
  return parseDaemonConfig(`[params]\nmail_domain = chat.example.org\n${ini}`).config;
}

export async function startFilter(
  config: FiltermailConfig,
  direction: "outgoing" | "incoming",
  opts: FiltermailOptions,
) {
  const logs: string[] = [];
  const service = await startFiltermail(config, direction, {
    listenPort: 0,
    log: (l) => logs.push(l),
    ...opts,
  });
  return { service, logs };
}

/** A raw SMTP client: write anything, read replies one by one. */
export class RawClient {
  private readonly reader = new ReplyReader();
  private replies: Reply[] = [];
  private waiters: ((r: Reply | undefined) => void)[] = [];
  closed = false;

  private constructor(private socket: net.Socket) {
    this.listen(socket);
  }

  private listen(socket: net.Socket): void {
    socket.on("data", (c: Buffer) => {
      for (const r of this.reader.push(c)) {
        const w = this.waiters.shift();
        if (w) w(r);
        else this.replies.push(r);
      }
    });
    socket.on("error", () => undefined);
    socket.on("close", () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w(undefined);
    });
  }

  /** STARTTLS, then TLS on the same connection (any certificate: the test servers' are self-signed). */
  async startTls(): Promise<string> {
    const answer = await this.command("STARTTLS");
    if (!answer.startsWith("220")) return answer;
    const plain = this.socket;
    plain.removeAllListeners("data");
    plain.removeAllListeners("close");
    const secure = tls.connect({ socket: plain, rejectUnauthorized: false });
    await new Promise<void>((resolve, reject) => {
      secure.once("secureConnect", resolve);
      secure.once("error", reject);
    });
    this.socket = secure;
    this.listen(secure);
    return answer;
  }

  /** AUTH PLAIN with `user` as login; returns the reply. */
  authPlain(user: string, password: string): Promise<string> {
    return this.command(`AUTH PLAIN ${Buffer.from(`\0${user}\0${password}`).toString("base64")}`);
  }

  static async connect(port: number): Promise<RawClient> {
    const socket = net.connect({ host: "127.0.0.1", port });
    await new Promise<void>((resolve, reject) => {
      socket.once("connect", resolve);
      socket.once("error", reject);
    });
    return new RawClient(socket);
  }

  write(data: string | Buffer): void {
    this.socket.write(data);
  }

  /** The next reply as "code text" (multi-line joined with " / "), or "closed". */
  async next(): Promise<string> {
    const r =
      this.replies.shift() ??
      (this.closed ? undefined : await new Promise<Reply | undefined>((res) => this.waiters.push(res)));
    return r ? `${r.code} ${r.lines.join(" / ")}` : "closed";
  }

  async command(line: string): Promise<string> {
    this.write(`${line}\r\n`);
    return this.next();
  }

  /** Greeting, EHLO, MAIL, RCPTs, DATA, message; returns the end-of-data reply. */
  async sendMail(from: string, to: string[], message: Buffer, mailParams = ""): Promise<string> {
    const greeting = await this.next();
    if (!greeting.startsWith("220")) return greeting;
    await this.command("EHLO client.test");
    return this.transaction(from, to, message, mailParams);
  }

  async transaction(from: string, to: string[], message: Buffer, mailParams = ""): Promise<string> {
    const mail = await this.command(`MAIL FROM:<${from}>${mailParams}`);
    if (!mail.startsWith("250")) return mail;
    for (const r of to) {
      const rcpt = await this.command(`RCPT TO:<${r}>`);
      if (!rcpt.startsWith("250")) return rcpt;
    }
    const data = await this.command("DATA");
    if (!data.startsWith("354")) return data;
    this.write(dotStuff(message));
    return this.next();
  }

  close(): void {
    this.socket.destroy();
  }
}

export function dotStuff(message: Buffer): Buffer {
  const text = message.toString("latin1").replace(/(^|\r\n)\./g, "$1..");
  return Buffer.from(`${text}${text.endsWith("\r\n") || text === "" ? "" : "\r\n"}.\r\n`, "latin1");
}

/** A TCP port on 127.0.0.1 that nothing listens on (bound and released). */
export async function closedPort(): Promise<number> {
  const s = net.createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const port = (s.address() as net.AddressInfo).port;
  await new Promise((r) => s.close(r));
  return port;
}
