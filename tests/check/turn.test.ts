// The relay's TURN server for real: Debian's coturn started on loopback with the plan's own turnserver.conf (only
// addresses, ports and logging changed, and the secret added as coturn's unit adds it), the metadata daemon
// handing out credentials from the same secret, and tools/check/turn.ts allocating with them.
import { spawn, type ChildProcess } from "node:child_process";
import { createSocket } from "node:dgram";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { PATHS } from "../../core/plan/facts";
import { memoryLogger } from "../../daemons/dictproxy/log";
import { startMetadata } from "../../daemons/metadata";
import { turnCredentials } from "../../daemons/metadata/turn";
import { allocate, parseTurnEntry, stunBinding, type TurnServer } from "../../tools/check/turn";
import { converse, tempRelay } from "../daemons/helpers";
import { turnRow } from "../../tools/check/reach";
import { configFor, planFor, text } from "../plan/helpers";

const SECRET = "9f2c4e7a1b3d5f60718293a4b5c6d7e8f9a0b1c2d3e4f5061728394a5b6c7d8e";
const SERVER_KEY = "shared/0123/vendor/vendor.dovecot/pvt/server/vendor/deltachat";

/** A port free for both UDP and TCP on loopback right now. */
async function freePort(): Promise<number> {
  for (;;) {
    const tcp = createServer();
    const port = await new Promise<number>((r) =>
      tcp.listen(0, "127.0.0.1", () => r((tcp.address() as { port: number }).port)),
    );
    const udp = createSocket("udp4");
    const udpFree = await new Promise<boolean>((r) => {
      udp.once("error", () => r(false));
      udp.bind(port, "127.0.0.1", () => r(true));
    });
    udp.close();
    await new Promise((r) => tcp.close(r));
    if (udpFree) return port;
  }
}

let dir: string;
let coturn: ChildProcess;
let output = "";
let udp: TurnServer;
let tcp: TurnServer;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "coturn-"));
  const port = await freePort();
  const relayFirst = 20000 + Math.floor(Math.random() * 20000);
  const conf = text(planFor(), PATHS.turnConfig)
    .replace(/^listening-port=.*$/m, `listening-port=${port}\nlistening-ip=127.0.0.1\nrelay-ip=127.0.0.1`)
    .replace(/^min-port=.*$/m, `min-port=${relayFirst}`)
    .replace(/^max-port=.*$/m, `max-port=${relayFirst + 20}`)
    .replace(/^syslog$/m, "log-file=stdout");
  expect(conf).toContain("use-auth-secret\n");
  const path = join(dir, "turnserver.conf");
  writeFileSync(path, `${conf}static-auth-secret=${SECRET}\n`);
  coturn = spawn("/usr/bin/turnserver", ["-c", path, "--pidfile", join(dir, "pid")], { stdio: "pipe" });
  coturn.stdout!.on("data", (d) => (output += d));
  coturn.stderr!.on("data", (d) => (output += d));
  udp = { host: "127.0.0.1", port, transport: "udp", timeoutMs: 300 };
  tcp = { ...udp, transport: "tcp" };
  for (let i = 0; ; i++) {
    try {
      await stunBinding(udp);
      break;
    } catch (err) {
      if (i === 30) throw new Error(`coturn did not answer: ${(err as Error).message}\n${output}`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}, 30_000);

afterAll(() => {
  coturn?.kill();
  rmSync(dir, { recursive: true, force: true });
});

describe("coturn with the plan's turnserver.conf", () => {
  it("answers STUN binding requests with the client's address, over UDP and TCP", async () => {
    expect(await stunBinding(udp)).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(await stunBinding(tcp)).toMatch(/^127\.0\.0\.1:\d+$/);
  });

  it("grants an allocation for the credentials the metadata daemon hands out", async () => {
    const relay = tempRelay();
    const svc = await startMetadata(relay.config, {
      socketPath: relay.socket("m"),
      log: memoryLogger(),
      turnSecret: SECRET,
    });
    try {
      const reply = await converse(
        relay.socket("m"),
        `L${SERVER_KEY}/turn\tuser@${relay.config.mailDomain}\n`,
      );
      const entry = parseTurnEntry(reply.slice(1).trimEnd());
      expect(entry.port).toBe(3478);
      for (const server of [udp, tcp]) {
        const result = await allocate(server, entry);
        expect(result, output).toMatchObject({ ok: true });
        if (result.ok) {
          expect(result.relayed).toMatch(/^127\.0\.0\.1:(\d+)$/);
          expect(result.lifetimeS).toBeGreaterThan(0);
        }
      }
    } finally {
      await svc.close();
      relay.cleanup();
    }
  });

  it("makes npm run check's TURN row ok, and fail where nothing answers", async () => {
    const row = await turnRow(configFor(), "127.0.0.1", udp.port);
    expect(row, row.detail).toMatchObject({ status: "ok", check: `port ${udp.port} STUN and TURN (UDP)` });
    expect(row.detail).toMatch(/^STUN saw this machine as 127\.0\.0\.1:\d+; TURN asks for credentials$/);
    const closed = await turnRow(configFor(), "127.0.0.1", await freePort());
    expect(closed).toMatchObject({ status: "fail" });
    expect(closed.detail).toMatch(/no STUN reply/);
  });

  it("refuses a forged password and expired credentials with 401", async () => {
    const forged = turnCredentials("not-the-servers-secret");
    expect(await allocate(udp, forged)).toMatchObject({ ok: false, code: 401 });
    // Made with the right secret, but the expiry in the username passed an hour ago.
    const expired = turnCredentials(SECRET, Math.floor(Date.now() / 1000) - 3600, 0);
    expect(await allocate(udp, expired)).toMatchObject({ ok: false, code: 401 });
    const valid = turnCredentials(SECRET);
    expect(await allocate(udp, { ...valid, username: String(Number(valid.username) + 1) })).toMatchObject({
      ok: false,
      code: 401,
    });
  });
});
