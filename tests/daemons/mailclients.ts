// Minimal IMAP and LMTP clients for the Dovecot integration test: plain TCP on loopback, one command at a time.
import { connect, type Socket } from "node:net";

class LineConn {
  private buffer = "";
  private waiters: Array<() => void> = [];
  constructor(readonly sock: Socket) {
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      this.buffer += d;
      for (const w of this.waiters.splice(0)) w();
    });
    sock.on("close", () => {
      for (const w of this.waiters.splice(0)) w();
    });
  }

  /** Waits until the collected text satisfies `done`, returns and consumes it. */
  async until(done: (text: string) => number): Promise<string> {
    for (;;) {
      const end = done(this.buffer);
      if (end >= 0) {
        const text = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end);
        return text;
      }
      if (this.sock.destroyed) throw new Error(`connection closed; got ${JSON.stringify(this.buffer)}`);
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  write(text: string): void {
    this.sock.write(text);
  }
}

function open(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(port, "127.0.0.1");
    s.once("error", reject);
    s.once("connect", () => resolve(s));
  });
}

export class ImapClient {
  private tag = 0;
  private constructor(private readonly conn: LineConn) {}

  static async connect(port: number): Promise<ImapClient> {
    const c = new ImapClient(new LineConn(await open(port)));
    await c.conn.until((t) => (t.includes("\r\n") ? t.indexOf("\r\n") + 2 : -1));
    return c;
  }

  /** Sends a command; resolves with all lines up to and including the tagged status line. */
  async command(cmd: string): Promise<{ ok: boolean; text: string }> {
    const tag = `a${++this.tag}`;
    this.conn.write(`${tag} ${cmd}\r\n`);
    const text = await this.conn.until((t) => {
      const m = new RegExp(`(^|\\r\\n)${tag} (OK|NO|BAD)[^\\r\\n]*\\r\\n`).exec(t);
      return m ? m.index + m[0].length : -1;
    });
    return { ok: new RegExp(`(^|\\r\\n)${tag} OK`).test(text), text };
  }

  close(): void {
    this.conn.sock.destroy();
  }
}

/** Delivers one message over LMTP; resolves with the reply to the end of DATA. */
export async function lmtpDeliver(port: number, from: string, to: string, message: string): Promise<string> {
  const conn = new LineConn(await open(port));
  const reply = async (): Promise<string> =>
    conn.until((t) => {
      const m = /(^|\r\n)\d{3} [^\r\n]*\r\n/.exec(t);
      return m ? m.index + m[0].length : -1;
    });
  await reply();
  for (const cmd of ["LHLO test.local", `MAIL FROM:<${from}>`, `RCPT TO:<${to}>`, "DATA"]) {
    conn.write(`${cmd}\r\n`);
    const r = await reply();
    if (!/^(250|354)/m.test(r.split("\r\n").filter(Boolean).pop() ?? ""))
      throw new Error(`LMTP ${cmd}: ${r}`);
  }
  conn.write(`${message.replace(/\r?\n/g, "\r\n")}\r\n.\r\n`);
  const done = await reply();
  conn.write("QUIT\r\n");
  conn.sock.end();
  return done;
}
