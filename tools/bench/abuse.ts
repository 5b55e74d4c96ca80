// Hostile or careless clients for `npm run bench -- memory`: each runs against a fresh chatmaild and tries to make
// it hold memory that it should refuse to hold.
import { connect, type Socket } from "node:net";
import { DictConn, passdb } from "./dictclient";

function open(opts: { path: string } | { port: number; host: string }): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect(opts);
    s.once("error", reject);
    s.once("connect", () => {
      s.off("error", reject);
      s.on("error", () => {});
      resolve(s);
    });
  });
}

/** Writes `chunk` again and again for `ms`, as fast as the socket takes it, never reading. */
async function flood(sock: Socket, chunk: Buffer, ms: number): Promise<number> {
  sock.pause();
  let sent = 0;
  const end = performance.now() + ms;
  while (performance.now() < end && !sock.destroyed) {
    if (!sock.write(chunk)) {
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.max(0, end - performance.now()));
        sock.once("drain", () => {
          clearTimeout(t);
          resolve();
        });
        sock.once("close", () => resolve());
      });
    }
    sent += chunk.length;
  }
  sock.destroy();
  return sent;
}

/** An SMTP client that pipelines NOOPs without ever reading the replies. Returns the bytes it got written. */
export async function smtpPipeliner(port: number, ms: number): Promise<number> {
  const sock = await open({ port, host: "127.0.0.1" });
  sock.write("EHLO pipeliner\r\n");
  return flood(sock, Buffer.from("NOOP\r\n".repeat(10_000)), ms);
}

/** A dict client that pipelines lookups without ever reading the replies. */
export async function dictPipeliner(socket: string, request: string, ms: number): Promise<number> {
  const sock = await open({ path: socket });
  return flood(sock, Buffer.from(`${request}\n`.repeat(1000)), ms);
}

/** `count` connections that connect and then say nothing; closed by the returned function. */
export async function idleConnections(
  count: number,
  target: { path: string } | { port: number; host: string },
): Promise<() => void> {
  const socks: Socket[] = [];
  // In batches, so that the listen backlog never refuses one.
  for (let i = 0; i < count; i += 100)
    socks.push(...(await Promise.all(Array.from({ length: Math.min(100, count - i) }, () => open(target)))));
  return () => {
    for (const s of socks) s.destroy();
  };
}

/** First logins of new addresses with `passwordChars`-long passwords on `connections` connections for `ms`. */
export async function longPasswordLogins(
  socket: string,
  domain: string,
  passwordChars: number,
  connections: number,
  ms: number,
): Promise<Map<string, number>> {
  const password = "p".repeat(passwordChars);
  const replies = new Map<string, number>();
  const conns = await DictConn.openMany(socket, connections);
  const end = performance.now() + ms;
  await Promise.all(
    conns.map(async (c, ci) => {
      for (let i = 0; performance.now() < end; i++) {
        const reply = (await c.request(passdb(`long${ci}x${i}@${domain}`, password)))[0] ?? "closed";
        replies.set(reply, (replies.get(reply) ?? 0) + 1);
        if (reply === "closed") return;
      }
    }),
  );
  for (const c of conns) c.close();
  return replies;
}
