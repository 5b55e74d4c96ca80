// Connections the daemon still holds after every client has gone: server-side sockets of its dict socket paths
// (/proc/net/unix lists an accepted socket under its listener's path) and of its TCP listening ports
// (/proc/net/tcp: local port = listening port, established or waiting for the daemon to close). After a session
// ends the daemon must let go of it; one that stays is a leak that grows with every such client.
import { readFileSync } from "node:fs";

const UNIX_LISTENING = "01";
const TCP_ESTABLISHED = "01";
const TCP_CLOSE_WAIT = "08";

export function heldUnix(paths: readonly string[]): number {
  const wanted = new Set(paths);
  return readFileSync("/proc/net/unix", "utf8")
    .split("\n")
    .slice(1)
    .map((line) => line.trim().split(/\s+/))
    .filter((f) => f.length >= 8 && wanted.has(f[7]) && f[5] !== UNIX_LISTENING).length;
}

export function heldTcp(ports: readonly number[]): number {
  const wanted = new Set(ports);
  let held = 0;
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text: string;
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length < 4) continue;
      const port = parseInt(f[1].split(":")[1], 16);
      if (wanted.has(port) && (f[3] === TCP_ESTABLISHED || f[3] === TCP_CLOSE_WAIT)) held++;
    }
  }
  return held;
}

/** Waits until `count()` is 0; returns what it was at the deadline otherwise (closing takes the daemon a turn). */
export async function untilReleased(count: () => number, deadlineMs = 3_000): Promise<number> {
  const end = Date.now() + deadlineMs;
  let n = count();
  while (n > 0 && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 20));
    n = count();
  }
  return n;
}
