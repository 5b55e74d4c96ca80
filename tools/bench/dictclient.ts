// The benches' dict client: one connection that sends a request line and waits for its one-line reply, as
// Dovecot's auth process does. Kept lean, since at 16 and more connections the client is what limits throughput.
import { connect, type Socket } from "node:net";

export class DictConn {
  private pending: ((line: string) => void) | undefined;
  private buf = "";

  private constructor(private readonly sock: Socket) {
    sock.setEncoding("latin1");
    sock.on("data", (d: string) => {
      this.buf += d;
      const nl = this.buf.indexOf("\n");
      if (nl === -1 || !this.pending) return;
      const line = this.buf.slice(0, nl);
      this.buf = this.buf.slice(nl + 1);
      const p = this.pending;
      this.pending = undefined;
      p(line);
    });
    // A reset from a server that drops this connection ends the waiting request with an empty reply.
    sock.on("error", () => this.pending?.(""));
    sock.on("close", () => this.pending?.(""));
  }

  static open(path: string): Promise<DictConn> {
    return new Promise((resolve, reject) => {
      const s = connect(path);
      s.once("error", reject);
      s.once("connect", () => {
        s.off("error", reject);
        resolve(new DictConn(s));
      });
    });
  }

  static openMany(path: string, count: number): Promise<DictConn[]> {
    return Promise.all(Array.from({ length: count }, () => DictConn.open(path)));
  }

  request(line: string): Promise<string> {
    return new Promise((resolve) => {
      this.pending = resolve;
      this.sock.write(`${line}\n`);
    });
  }

  close(): void {
    this.sock.destroy();
  }
}

/** The passdb key Dovecot's auth.conf sends: password, address and the client's IP, each %E-escaped. */
export const passdb = (user: string, password: string, client = "127.0.0.1"): string =>
  `Lshared/passdb/${password}"${user}"${client}`;

/** A fresh local part of the default length (9), `prefix` then a counter: every call names a new address. */
export function newLocalPart(prefix: string): string {
  return prefix + String(counter++).padStart(9 - prefix.length, "0");
}
let counter = 0;
