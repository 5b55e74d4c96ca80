// Shared test fixtures for the daemons: a temp relay (config + mailboxes dir) and a small dict-protocol client
// that talks to a daemon over its real Unix socket.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { connect, createServer as createNetServer, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseChatmailIni } from "../../core/config/ini";
import type { RelayConfig } from "../../core/config/options";

export const DOMAIN = "chat.example.org";

export interface TempRelay {
  dir: string;
  config: RelayConfig;
  socket(name: string): string;
  cleanup(): void;
}

/** A relay config on a fresh temp dir, with permissive resource limits unless `ini` overrides them. */
export function tempRelay(ini: Record<string, string> = {}, overrides: Partial<RelayConfig> = {}): TempRelay {
  const dir = mkdtempSync(join(tmpdir(), "chatmaild-test-"));
  const mailboxesDir = join(dir, "vmail", DOMAIN);
  mkdirSync(mailboxesDir, { recursive: true });
  const params: Record<string, string> = {
    mail_domain: DOMAIN,
    mailboxes_dir: mailboxesDir,
    max_load_1m: "99999",
    min_available_memory: "0",
    min_free_disk_space: "0",
    ...ini,
  };
  const text = `[params]\n${Object.entries(params)
    .map(([k, v]) => `${k} = ${v}`)
    .join("\n")}\n`;
  const config = { ...parseChatmailIni(text).config, ...overrides } as RelayConfig;
  return {
    dir,
    config,
    socket: (name) => join(dir, `${name}.socket`),
    cleanup: () => rmSync(dir, { recursive: true, force: true }),
  };
}

/** Sends `data` and half-closes, then collects everything until the daemon closes the connection. */
export function converse(socketPath: string, data: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = connect(socketPath);
    let out = "";
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => (out += d));
    sock.on("error", reject);
    sock.on("close", () => resolve(out));
    sock.on("connect", () => sock.end(data));
  });
}

/** A persistent dict client: `request(line)` sends one line and waits for `lines` reply lines. */
export class DictClient {
  private buffer = "";
  private waiters: Array<{ lines: number; resolve: (s: string) => void; until?: string }> = [];
  private constructor(readonly sock: Socket) {
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      this.buffer += d;
      this.flush();
    });
  }

  static open(socketPath: string): Promise<DictClient> {
    return new Promise((resolve, reject) => {
      const sock = connect(socketPath);
      sock.once("error", reject);
      sock.once("connect", () => resolve(new DictClient(sock)));
    });
  }

  private flush(): void {
    while (this.waiters.length > 0) {
      const w = this.waiters[0];
      if (w.until !== undefined) {
        // Iterate output ends with an empty line: "\n" alone, or "\n\n" after rows.
        const pos = this.buffer.startsWith("\n") ? 0 : this.buffer.indexOf("\n\n") + 1;
        if (pos === 0 && !this.buffer.startsWith("\n")) return;
        const text = this.buffer.slice(0, pos + 1);
        this.buffer = this.buffer.slice(pos + 1);
        this.waiters.shift();
        w.resolve(text);
        continue;
      }
      let idx = -1;
      for (let i = 0; i < w.lines; i++) {
        idx = this.buffer.indexOf("\n", idx + 1);
        if (idx === -1) return;
      }
      const text = this.buffer.slice(0, idx + 1);
      this.buffer = this.buffer.slice(idx + 1);
      this.waiters.shift();
      w.resolve(text);
    }
  }

  /** Sends a line; resolves with the reply line (with LF). */
  request(line: string): Promise<string> {
    return new Promise((resolve) => {
      this.waiters.push({ lines: 1, resolve });
      this.sock.write(`${line}\n`);
    });
  }

  /** Sends an iterate request; resolves with all rows including the empty end line. */
  iterate(line: string): Promise<string> {
    return new Promise((resolve) => {
      this.waiters.push({ lines: 0, resolve, until: "\n\n" });
      this.sock.write(`${line}\n`);
    });
  }

  /** Sends a line that gets no reply. */
  send(line: string): void {
    this.sock.write(`${line}\n`);
  }

  close(): void {
    this.sock.destroy();
  }
}

/** A loopback TCP port that was free a moment ago (for daemons whose config needs a fixed port). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.once("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}
