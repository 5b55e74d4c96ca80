// Client helpers for the online suite: every connection goes to the server's namespace address and verifies the
// certificate against the relay's own chain for the name chat.example.org (SNI), as a real client would.
import { randomInt } from "node:crypto";
import { request } from "node:https";
import { connect as tlsConnect, type TLSSocket } from "node:tls";
import { ImapFlow } from "imapflow";
import { createTransport } from "nodemailer";
import type { SuiteContext } from "./types";

export interface Account {
  readonly addr: string;
  readonly password: string;
}

const ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789";
const randomText = (n: number) =>
  Array.from({ length: n }, () => ALPHABET[randomInt(ALPHABET.length)]).join("");

/** Fresh credentials as a client would pick them: the shortest allowed localpart, a password longer than required. */
export function newCredentials(ctx: SuiteContext, passwordPrefix = ""): Account {
  const c = ctx.first.config;
  return {
    addr: `${randomText(c.usernameMinLength)}@${ctx.domain}`,
    password: passwordPrefix + randomText(c.passwordMinLength + 4),
  };
}

export async function tlsOpts(ctx: SuiteContext) {
  return { host: ctx.addr, servername: ctx.domain, ca: await ctx.caCert(), minVersion: "TLSv1.2" as const };
}

/** An IMAP session over implicit TLS (993 unless told), logged in; the caller logs out. */
export async function imapLogin(ctx: SuiteContext, account: Account, port = 993): Promise<ImapFlow> {
  const tls = await tlsOpts(ctx);
  const client = new ImapFlow({
    host: ctx.addr,
    port,
    secure: true,
    servername: ctx.domain,
    auth: { user: account.addr, pass: account.password },
    tls: { ca: tls.ca, servername: ctx.domain, minVersion: tls.minVersion },
    logger: false,
    disableAutoIdle: true,
  });
  // A failed login also emits 'error'; the rejected connect() carries it to the caller.
  client.on("error", () => {});
  try {
    await client.connect();
  } catch (e) {
    // imapflow says only "Command failed"; the server's own words go into the message.
    const err = e as Error & { responseText?: string };
    if (err.responseText)
      err.message = `IMAP login of ${account.addr} on ${port}: ${err.message}: ${err.responseText}`;
    throw err;
  }
  return client;
}

/** Whether a fresh IMAP login with these credentials is refused as an authentication failure. */
export async function imapLoginRefused(ctx: SuiteContext, account: Account): Promise<boolean> {
  try {
    const client = await imapLogin(ctx, account);
    await client.logout();
    return false;
  } catch (e) {
    const err = e as { authenticationFailed?: boolean; message: string };
    if (err.authenticationFailed) return true;
    throw new Error(`IMAP login failed for another reason than authentication: ${err.message}`);
  }
}

export type SubmissionPort = 465 | 587;

/** Submits a raw message; resolves with the server's final reply or rejects with its SMTP error (responseCode). */
export async function submit(
  ctx: SuiteContext,
  account: Account,
  port: SubmissionPort,
  envelope: { from: string; to: string[] },
  raw: string,
): Promise<string> {
  const tls = await tlsOpts(ctx);
  const transport = createTransport({
    host: ctx.addr,
    port,
    secure: port === 465,
    requireTLS: port === 587,
    auth: { user: account.addr, pass: account.password },
    tls: { ca: tls.ca, servername: ctx.domain, minVersion: tls.minVersion },
    connectionTimeout: 10_000,
  });
  try {
    const info = await transport.sendMail({ envelope, raw });
    return info.response;
  } finally {
    transport.close();
  }
}

/** The SMTP reply code of a failed submission, or undefined when it was accepted. */
export async function submitCode(...args: Parameters<typeof submit>): Promise<number | undefined> {
  try {
    await submit(...args);
    return undefined;
  } catch (e) {
    const err = e as { responseCode?: number; message: string };
    if (err.responseCode === undefined) throw e;
    return err.responseCode;
  }
}

export interface HttpsReply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

/** An HTTPS request to the relay on 443 (no ALPN unless given, like a browser without h2). */
export async function https(
  ctx: SuiteContext,
  method: string,
  path: string,
  opts: { host?: string; alpn?: string[] } = {},
): Promise<HttpsReply> {
  const tls = await tlsOpts(ctx);
  const servername = opts.host ?? ctx.domain;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: ctx.addr,
        port: 443,
        method,
        path,
        servername,
        headers: { host: servername },
        ca: tls.ca,
        ...(opts.alpn ? { ALPNProtocols: opts.alpn } : {}),
        agent: false,
        timeout: 10_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (c: Buffer) => chunks.push(c));
        res.on("end", () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString("utf8"),
          }),
        );
      },
    );
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer within 10 s`)));
    req.on("error", reject);
    req.end();
  });
}

/** A raw TLS connection to port 443 offering one ALPN protocol; resolves once the handshake is done. */
export async function alpnSocket(ctx: SuiteContext, protocol: string): Promise<TLSSocket> {
  const tls = await tlsOpts(ctx);
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ ...tls, port: 443, ALPNProtocols: [protocol] }, () => resolve(socket));
    socket.once("error", reject);
    socket.setTimeout(10_000, () =>
      socket.destroy(new Error(`443 with ALPN ${protocol}: no progress within 10 s`)),
    );
  });
}

/** Reads from a socket until `done(text)` holds; rejects on close or the socket's timeout. */
export function readUntil(socket: TLSSocket, done: (text: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const finish = (error?: Error) => {
      socket.off("data", onData);
      socket.off("close", onClose);
      socket.off("error", finish);
      if (error) reject(error);
      else resolve(text);
    };
    const onData = (b: Buffer) => {
      text += b.toString("utf8");
      if (done(text)) finish();
    };
    const onClose = () => finish(new Error(`connection closed; received so far: ${JSON.stringify(text)}`));
    socket.on("data", onData);
    socket.on("close", onClose);
    socket.on("error", finish);
  });
}

/** A bare IMAP session over implicit TLS for commands imapflow lacks (METADATA); `command` returns all lines up to the tagged reply. */
export async function rawImap(ctx: SuiteContext, port = 993) {
  const tls = await tlsOpts(ctx);
  const socket = await new Promise<TLSSocket>((resolve, reject) => {
    const s = tlsConnect({ ...tls, port }, () => resolve(s));
    s.once("error", reject);
    s.setTimeout(15_000, () => s.destroy(new Error(`IMAP on ${port}: no progress within 15 s`)));
  });
  await readUntil(socket, (t) => t.includes("\r\n"));
  let n = 0;
  return {
    async command(line: string): Promise<string> {
      const tag = `t${++n}`;
      const reply = readUntil(socket, (t) => new RegExp(`^${tag} `, "m").test(t));
      socket.write(`${tag} ${line}\r\n`);
      const text = await reply;
      if (!new RegExp(`^${tag} OK`, "m").test(text))
        throw new Error(`IMAP ${line.split(" ")[0]}: ${text.trim()}`);
      return text;
    },
    close: () => socket.destroy(),
  };
}
