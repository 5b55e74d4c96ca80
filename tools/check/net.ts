// The connections the check makes from this machine: HTTPS requests and TLS handshakes (implicit, or after
// SMTP STARTTLS), always to a given address with the relay's name as SNI, verified against the system's roots
// (plus NODE_EXTRA_CA_CERTS) unless told otherwise.
import { request } from "node:https";
import { connect as tcpConnect, type Socket } from "node:net";
import { connect as tlsConnect, type PeerCertificate, type TLSSocket } from "node:tls";

const TIMEOUT_MS = 10_000;

export async function httpsGet(opts: {
  addr: string;
  servername: string;
  path: string;
  method?: string;
}): Promise<{ status: number; body: string; headers: Record<string, string | string[] | undefined> }> {
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: opts.addr,
        servername: opts.servername,
        headers: { Host: opts.servername },
        path: opts.path,
        method: opts.method ?? "GET",
        timeout: TIMEOUT_MS,
      },
      (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c.length + body.length > 1_000_000 ? "" : c));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      },
    );
    req.on("timeout", () => req.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)));
    req.on("error", reject);
    req.end();
  });
}

export interface Handshake {
  readonly protocol: string;
  readonly cert: PeerCertificate;
  /** Whether the chain verified against the trusted roots and the name matched. */
  readonly authorized: boolean;
  readonly authorizationError?: string;
}

function handshake(options: {
  socket?: Socket;
  addr: string;
  port: number;
  servername: string;
}): Promise<Handshake> {
  return new Promise((resolve, reject) => {
    const s: TLSSocket = tlsConnect({
      ...(options.socket ? { socket: options.socket } : { host: options.addr, port: options.port }),
      servername: options.servername,
      rejectUnauthorized: false,
      minVersion: "TLSv1.2",
    });
    s.setTimeout(TIMEOUT_MS, () => s.destroy(new Error(`no TLS handshake within ${TIMEOUT_MS / 1000} s`)));
    s.once("secureConnect", () => {
      const result: Handshake = {
        protocol: s.getProtocol() ?? "?",
        cert: s.getPeerCertificate(),
        authorized: s.authorized,
        ...(s.authorizationError ? { authorizationError: String(s.authorizationError) } : {}),
      };
      s.end();
      resolve(result);
    });
    s.once("error", reject);
  });
}

export const tlsHandshake = (addr: string, port: number, servername: string) =>
  handshake({ addr, port, servername });

/** Reads SMTP replies line by line; `next()` resolves with a whole (possibly multi-line) reply. */
function smtpReader(socket: Socket) {
  let buffer = "";
  const waiting: Array<(reply: string) => void> = [];
  let lines: string[] = [];
  const onData = (chunk: Buffer) => {
    buffer += chunk.toString("latin1");
    let i;
    while ((i = buffer.indexOf("\n")) !== -1) {
      const line = buffer.slice(0, i).replace(/\r$/, "");
      buffer = buffer.slice(i + 1);
      lines.push(line);
      if (/^\d{3} /.test(line) || /^\d{3}$/.test(line)) {
        const reply = lines.join("\n");
        lines = [];
        waiting.shift()?.(reply);
      }
    }
  };
  socket.on("data", onData);
  return {
    next: () => new Promise<string>((resolve) => waiting.push(resolve)),
    stop: () => socket.off("data", onData),
  };
}

/** Plain SMTP to `port`, EHLO, STARTTLS, then the TLS handshake on the same connection. */
export async function smtpStarttls(addr: string, port: number, servername: string): Promise<Handshake> {
  const socket = tcpConnect({ host: addr, port });
  socket.setTimeout(TIMEOUT_MS, () =>
    socket.destroy(new Error(`no SMTP answer within ${TIMEOUT_MS / 1000} s`)),
  );
  const failed = new Promise<never>((_, reject) => socket.once("error", reject));
  const reader = smtpReader(socket);
  const step = async (send: string | undefined, expect: string) => {
    if (send !== undefined) socket.write(`${send}\r\n`);
    const reply = await Promise.race([reader.next(), failed]);
    if (!reply.startsWith(expect)) throw new Error(`${send ?? "greeting"}: ${reply.split("\n").pop()}`);
    return reply;
  };
  try {
    await step(undefined, "220");
    const ehlo = await step("EHLO check.invalid", "250");
    if (!/^250[- ]STARTTLS$/im.test(ehlo)) throw new Error("STARTTLS is not offered");
    await step("STARTTLS", "220");
    reader.stop();
    socket.setTimeout(0);
    return await Promise.race([handshake({ socket, addr, port, servername }), failed]);
  } catch (e) {
    socket.destroy();
    throw e;
  }
}
