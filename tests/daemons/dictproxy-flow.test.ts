// The dict server's flow control: the end of a conversation, and what a client that floods the server or never
// reads its replies can make it hold. Each test watches the socket from the client's side and the requests the
// handler saw, never the clock.
import { connect, type Socket } from "node:net";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { memoryLogger } from "../../daemons/dictproxy/log";
import { found, NOT_FOUND } from "../../daemons/dictproxy/protocol";
import { startDictServer } from "../../daemons/dictproxy/server";
import type { Service } from "../../daemons/service";
import { converse, tempRelay, type TempRelay } from "./helpers";

/** A client that keeps its side open after the server ends (allowHalfOpen), so it can keep writing. */
function openHalfOpen(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = connect({ path, allowHalfOpen: true });
    sock.once("error", reject);
    sock.once("connect", () => resolve(sock));
  });
}

/** Everything the server sends until it ends its side. */
function readUntilEnd(sock: Socket): Promise<string> {
  return new Promise((resolve) => {
    let out = "";
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => (out += d));
    sock.once("end", () => resolve(out));
  });
}

/** Resolves once the socket is closed; an EPIPE or reset from a server that closed first is no failure here. */
function closed(sock: Socket): Promise<void> {
  return new Promise((resolve) => {
    sock.on("error", () => {});
    if (sock.closed) resolve();
    else sock.once("close", () => resolve());
  });
}

/** `count` lookups the handler records as "late"; none of them may ever run. */
const lateLines = (count: number): string => "Llate\tu\n".repeat(count);

describe("dict server flow control", () => {
  let relay: TempRelay;
  let server: Service;
  let seen: string[];

  beforeEach(async () => {
    relay = tempRelay();
    seen = [];
    server = await startDictServer({
      socketPath: relay.socket("dict"),
      log: memoryLogger(),
      handlers: {
        lookup: (key) => {
          seen.push(key);
          if (key === "big") return found("x".repeat(16 * 1024));
          return key === "k" ? found("v") : NOT_FOUND;
        },
      },
    });
  });

  afterEach(async () => {
    await server.close();
    relay.cleanup();
  });

  it("does not run a last line that follows the end marker", async () => {
    expect(await converse(relay.socket("dict"), "Lk\tu\n\nLlate\tu")).toBe("Ov\n");
    // close() resolves once every connection is gone, so the server has read all there was to read.
    await server.close();
    expect(seen).toEqual(["k"]);
  });

  it("does not run lines sent after the end marker was answered", async () => {
    const sock = await openHalfOpen(relay.socket("dict"));
    const replies = readUntilEnd(sock);
    sock.write("Lk\tu\n\n");
    expect(await replies).toBe("Ov\n");
    sock.on("error", () => {});
    sock.end(lateLines(3));
    await closed(sock);
    await server.close();
    expect(seen).toEqual(["k"]);
  });

  // On a server that never closes such a connection this test waits for its timeout.
  it("closes a conversation that ends while 256 or more lines are queued", { timeout: 15_000 }, async () => {
    const sock = await openHalfOpen(relay.socket("dict"));
    const replies = readUntilEnd(sock);
    sock.write(`Lk\tu\n\n${lateLines(300)}`);
    expect(await replies).toBe("Ov\n");
    // More than the kernel buffers: this only gets anywhere if the server reads on or closes the connection.
    sock.on("error", () => {});
    sock.end(lateLines(200_000));
    await closed(sock);
    await server.close();
    expect(seen).toEqual(["k"]);
  });

  it("stops reading from a client that never reads its replies", async () => {
    const sock = await openHalfOpen(relay.socket("dict"));
    // 4000 replies of 16 KiB would be 64 MiB held for a client that takes none of them.
    const requests = "Lbig\tu\n".repeat(4000);
    sock.write(requests);
    // The server answers synchronously until its unsent replies pass its limit, then waits for the client to take
    // them; at every reply the client checks how far ahead of it the server got.
    let received = 0;
    let mostAhead = 0;
    let partial = "";
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      partial += d;
      let nl: number;
      while ((nl = partial.indexOf("\n")) !== -1) {
        partial = partial.slice(nl + 1);
        received++;
        mostAhead = Math.max(mostAhead, seen.length - received);
      }
      if (received === 4000) sock.end();
    });
    await closed(sock);
    expect(received).toBe(4000);
    // Unsent replies (Node's buffer plus the kernel's socket buffers) stay a few MiB, not 64.
    expect(mostAhead * 16 * 1024).toBeLessThan(8 * 1024 * 1024);
  });
});
