// A small STUN/TURN client (RFC 8489 messages, RFC 8656 Allocate) for proving a relay's TURN server: a Binding
// request answers the client's public address, and an Allocate with the credentials the relay hands out must get
// a relayed address, while one with a forged or expired password must be refused. It speaks UDP or TCP and
// knows only what those checks need.
import { createHash, createHmac, randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { connect, isIPv6 } from "node:net";

const MAGIC_COOKIE = 0x2112a442;
const HEADER = 20;

/** Message types: method | class bits (RFC 8489 §5). */
const TYPE = {
  bindingRequest: 0x0001,
  bindingSuccess: 0x0101,
  allocateRequest: 0x0003,
  allocateSuccess: 0x0103,
  allocateError: 0x0113,
  refreshRequest: 0x0004,
  refreshSuccess: 0x0104,
} as const;

const ATTR = {
  username: 0x0006,
  messageIntegrity: 0x0008,
  errorCode: 0x0009,
  lifetime: 0x000d,
  realm: 0x0014,
  nonce: 0x0015,
  xorRelayedAddress: 0x0016,
  requestedTransport: 0x0019,
  xorMappedAddress: 0x0020,
} as const;

/** REQUESTED-TRANSPORT's protocol number for UDP, the only one TURN relays here. */
const UDP_PROTOCOL = 17;

export interface TurnServer {
  host: string;
  port: number;
  transport: "udp" | "tcp";
  /** Per attempt; UDP retries twice. */
  timeoutMs?: number;
}

export interface TurnCredentialsInput {
  username: string;
  password: string;
}

export type AllocateResult =
  { ok: true; relayed: string; lifetimeS: number } | { ok: false; code: number; reason: string };

interface Message {
  type: number;
  /** The transaction id, which XOR-ed IPv6 addresses need. */
  id: Buffer;
  attrs: Map<number, Buffer>;
}

/** Parses `host:port:username:password`, the value of the relay's /shared/vendor/deltachat/turn entry. */
export function parseTurnEntry(value: string): { host: string; port: number } & TurnCredentialsInput {
  const m = /^(\[[^\]]+\]|[^:]+):(\d+):([^:]+):(.+)$/.exec(value);
  if (!m) throw new Error(`turn entry ${JSON.stringify(value)} is not host:port:username:password`);
  return { host: m[1].replace(/^\[|\]$/g, ""), port: Number(m[2]), username: m[3], password: m[4] };
}

/** STUN Binding: the address the server saw the request come from. */
export async function stunBinding(server: TurnServer): Promise<string> {
  const msg = await withConnection(server, (send) => send(encode(TYPE.bindingRequest, [])));
  if (msg.type !== TYPE.bindingSuccess)
    throw new Error(`binding: unexpected reply type 0x${msg.type.toString(16)}`);
  const mapped = msg.attrs.get(ATTR.xorMappedAddress);
  if (!mapped) throw new Error("binding: reply without XOR-MAPPED-ADDRESS");
  return xorAddress(mapped, msg.id);
}

/**
 * Allocate with long-term credentials: the first request learns realm and nonce from the 401, the second one
 * authenticates. A granted allocation is released again (Refresh with lifetime 0).
 */
export async function allocate(server: TurnServer, creds: TurnCredentialsInput): Promise<AllocateResult> {
  return withConnection(server, async (send) => {
    const transport = attr(ATTR.requestedTransport, Buffer.from([UDP_PROTOCOL, 0, 0, 0]));
    const challenge = await send(encode(TYPE.allocateRequest, [transport]));
    const realm = challenge.attrs.get(ATTR.realm);
    const nonce = challenge.attrs.get(ATTR.nonce);
    if (challenge.type !== TYPE.allocateError || !realm || !nonce) return errorOf(challenge);
    const key = createHash("md5")
      .update(`${creds.username}:${realm.toString("utf8")}:${creds.password}`)
      .digest();
    const auth = [
      attr(ATTR.username, Buffer.from(creds.username)),
      attr(ATTR.realm, realm),
      attr(ATTR.nonce, nonce),
    ];
    const reply = await send(encode(TYPE.allocateRequest, [transport, ...auth], key));
    if (reply.type !== TYPE.allocateSuccess) return errorOf(reply);
    const relayed = reply.attrs.get(ATTR.xorRelayedAddress);
    const lifetime = reply.attrs.get(ATTR.lifetime);
    if (!relayed) throw new Error("allocate: success without XOR-RELAYED-ADDRESS");
    const release = await send(encode(TYPE.refreshRequest, [attr(ATTR.lifetime, u32(0)), ...auth], key));
    if (release.type !== TYPE.refreshSuccess) throw new Error("allocate: releasing the allocation failed");
    return {
      ok: true,
      relayed: xorAddress(relayed, reply.id),
      lifetimeS: lifetime ? lifetime.readUInt32BE(0) : 0,
    };
  });
}

function errorOf(msg: Message): AllocateResult {
  const e = msg.attrs.get(ATTR.errorCode);
  if (!e) throw new Error(`unexpected reply type 0x${msg.type.toString(16)} without ERROR-CODE`);
  return { ok: false, code: (e[2] & 0x7) * 100 + e[3], reason: e.subarray(4).toString("utf8") };
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function attr(type: number, value: Buffer): Buffer {
  const padded = Buffer.alloc(4 + Math.ceil(value.length / 4) * 4);
  padded.writeUInt16BE(type, 0);
  padded.writeUInt16BE(value.length, 2);
  value.copy(padded, 4);
  return padded;
}

/** A request with a fresh transaction id; with `key`, MESSAGE-INTEGRITY over everything before it. */
function encode(type: number, attrs: Buffer[], key?: Buffer): Buffer {
  const body = Buffer.concat(attrs);
  const header = Buffer.alloc(HEADER);
  header.writeUInt16BE(type, 0);
  header.writeUInt32BE(MAGIC_COOKIE, 4);
  randomBytes(12).copy(header, 8);
  if (!key) {
    header.writeUInt16BE(body.length, 2);
    return Buffer.concat([header, body]);
  }
  // The length field counts the MESSAGE-INTEGRITY attribute (24 bytes) while the HMAC is computed.
  header.writeUInt16BE(body.length + 24, 2);
  const hmac = createHmac("sha1", key).update(header).update(body).digest();
  return Buffer.concat([header, body, attr(ATTR.messageIntegrity, hmac)]);
}

function decode(data: Buffer): Message {
  if (data.length < HEADER || data.readUInt32BE(4) !== MAGIC_COOKIE) throw new Error("not a STUN message");
  const length = data.readUInt16BE(2);
  const attrs = new Map<number, Buffer>();
  for (let at = HEADER; at + 4 <= HEADER + length;) {
    const type = data.readUInt16BE(at);
    const len = data.readUInt16BE(at + 2);
    if (!attrs.has(type)) attrs.set(type, data.subarray(at + 4, at + 4 + len));
    at += 4 + Math.ceil(len / 4) * 4;
  }
  return { type: data.readUInt16BE(0), id: data.subarray(8, HEADER), attrs };
}

/** XOR-MAPPED-ADDRESS and XOR-RELAYED-ADDRESS as address:port, [address]:port for IPv6 (RFC 8489 §14.2). */
function xorAddress(v: Buffer, id: Buffer): string {
  const port = v.readUInt16BE(2) ^ (MAGIC_COOKIE >>> 16);
  if (v[1] === 0x01) {
    const a = (v.readUInt32BE(4) ^ MAGIC_COOKIE) >>> 0;
    return `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}:${port}`;
  }
  const mask = Buffer.concat([u32(MAGIC_COOKIE), id]);
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2)
    groups.push(((v[4 + i] ^ mask[i]) * 256 + (v[5 + i] ^ mask[i + 1])).toString(16));
  return `[${groups.join(":")}]:${port}`;
}

type Send = (request: Buffer) => Promise<Message>;

/** One UDP socket or TCP connection for a whole conversation (TURN allocations belong to the 5-tuple). */
async function withConnection<T>(server: TurnServer, body: (send: Send) => Promise<T>): Promise<T> {
  const timeoutMs = server.timeoutMs ?? 2000;
  return server.transport === "udp" ? withUdp(server, timeoutMs, body) : withTcp(server, timeoutMs, body);
}

async function withUdp<T>(
  server: TurnServer,
  timeoutMs: number,
  body: (send: Send) => Promise<T>,
): Promise<T> {
  const socket = createSocket(isIPv6(server.host) ? "udp6" : "udp4");
  let waiting: ((m: Buffer) => void) | undefined;
  socket.on("message", (m) => waiting?.(m));
  const send: Send = async (request) => {
    const id = request.subarray(8, HEADER);
    for (let attempt = 0; attempt < 3; attempt++) {
      const reply = await new Promise<Buffer | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), timeoutMs);
        waiting = (m) => {
          if (m.length >= HEADER && m.subarray(8, HEADER).equals(id)) {
            clearTimeout(timer);
            resolve(m);
          }
        };
        socket.send(request, server.port, server.host);
      });
      if (reply) return decode(reply);
    }
    throw new Error(`no STUN reply from ${server.host}:${server.port}/udp`);
  };
  try {
    return await body(send);
  } finally {
    socket.close();
  }
}

async function withTcp<T>(
  server: TurnServer,
  timeoutMs: number,
  body: (send: Send) => Promise<T>,
): Promise<T> {
  const socket = connect({ host: server.host, port: server.port });
  socket.setTimeout(timeoutMs);
  let buffered = Buffer.alloc(0);
  let waiting: { resolve: (m: Message) => void; reject: (e: Error) => void } | undefined;
  const fail = (err: Error) => waiting?.reject(err);
  socket.on("error", fail);
  socket.on("timeout", () => fail(new Error(`no STUN reply from ${server.host}:${server.port}/tcp`)));
  socket.on("close", () => fail(new Error(`${server.host}:${server.port}/tcp closed the connection`)));
  socket.on("data", (chunk) => {
    buffered = Buffer.concat([buffered, chunk]);
    // Over TCP, messages follow each other; each one's length is in its header.
    if (buffered.length < HEADER) return;
    const total = HEADER + buffered.readUInt16BE(2);
    if (buffered.length < total) return;
    const message = buffered.subarray(0, total);
    buffered = buffered.subarray(total);
    waiting?.resolve(decode(message));
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  const send: Send = (request) =>
    new Promise<Message>((resolve, reject) => {
      waiting = { resolve, reject };
      socket.write(request);
    });
  try {
    return await body(send);
  } finally {
    socket.destroy();
  }
}
