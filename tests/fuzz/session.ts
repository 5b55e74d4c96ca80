// One raw client session against a daemon socket (Unix path or loopback TCP port): write the input in the given
// chunks, then finish the way the input says, and collect every byte the daemon sent. A session that is not over
// by its deadline is cut and reported as such, so one stuck input cannot stall the whole layer.
import { connect, type Socket } from "node:net";

export type Target = { path: string } | { port: number };

/**
 * end: half-close after the input and wait for the daemon to close (dict clients end this way).
 * wait: keep our side open and wait for the daemon to close (the input ends with QUIT).
 * destroy: drop the connection right after the input (a client that goes away).
 */
export type Finish = "end" | "wait" | "destroy";

export interface SessionResult {
  output: Buffer;
  /** The daemon closed the connection (false after destroy, or when the deadline cut the session). */
  closedByDaemon: boolean;
  timedOut: boolean;
  /** The daemon sent more than MAX_OUTPUT_BYTES; output holds only the start. */
  outputCut: boolean;
}

/** Output kept per session; more is counted, not stored (a huge iterate answer). */
const MAX_OUTPUT_BYTES = 4 << 20;

export const SESSION_DEADLINE_MS = 20_000;

export function runSession(
  target: Target,
  chunks: readonly Buffer[],
  finish: Finish,
  deadlineMs = SESSION_DEADLINE_MS,
): Promise<SessionResult> {
  return new Promise((resolve, reject) => {
    const sock: Socket =
      "path" in target ? connect(target.path) : connect({ host: "127.0.0.1", port: target.port });
    const received: Buffer[] = [];
    let size = 0;
    let done = false;
    let closedByDaemon = false;
    const settle = (timedOut: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({
        output: Buffer.concat(received),
        closedByDaemon,
        timedOut,
        outputCut: size > MAX_OUTPUT_BYTES,
      });
    };
    const timer = setTimeout(() => settle(true), deadlineMs);
    sock.on("data", (d: Buffer) => {
      size += d.length;
      if (size <= MAX_OUTPUT_BYTES) received.push(d);
    });
    // EPIPE/ECONNRESET: the daemon closed while we were writing, which is its right (too long a line, QUIT).
    sock.on("error", () => undefined);
    // Any close we did not cause is the daemon's: a FIN, or a reset when it dropped the connection unread.
    sock.on("close", () => {
      closedByDaemon = !done;
      settle(false);
    });
    sock.once("connect", () => {
      void (async () => {
        for (const chunk of chunks) {
          if (sock.destroyed || done) return;
          await new Promise<void>((r) => sock.write(chunk, () => r()));
          // Give the daemon a turn between chunks, so it sees them as separate reads.
          await new Promise((r) => setImmediate(r));
        }
        if (finish === "end") sock.end();
        if (finish === "destroy") {
          sock.destroy();
          settle(false);
        }
      })().catch(reject);
    });
  });
}

/** Splits `data` at the given fractions (0..1) of its length: how one input arrives in several reads. */
export function splitAt(data: Buffer, fractions: readonly number[]): Buffer[] {
  const cuts = [...new Set(fractions.map((f) => Math.floor(f * data.length)))]
    .filter((c) => c > 0 && c < data.length)
    .sort((a, b) => a - b);
  const chunks: Buffer[] = [];
  let from = 0;
  for (const cut of cuts) {
    chunks.push(data.subarray(from, cut));
    from = cut;
  }
  chunks.push(data.subarray(from));
  return chunks;
}
