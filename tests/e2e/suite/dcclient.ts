// The real Delta Chat core (deltachat-rpc-server from npm) as a test client. It runs inside the test's network
// namespace, where the relay's names resolve to the test server and nothing else resolves, so the core's own
// lookups (autoconfig, MX) stay inside. Each profile is configured from a link the relay hands out.
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { StdioDeltaChat, type DcEventType } from "@deltachat/jsonrpc-client";
import { waitFor } from "../proc";
import type { SuiteContext } from "./types";

export const DC_DEADLINE_MS = 60_000;

export class DcClient {
  private constructor(
    readonly dc: StdioDeltaChat,
    private readonly proc: ChildProcess,
    private readonly dir: string,
    readonly stderr: string[],
  ) {}

  static start(ctx: SuiteContext): DcClient {
    const binary = require.resolve("@deltachat/stdio-rpc-server-linux-x64");
    const dir = mkdtempSync("/tmp/cme2e-dc-");
    const proc = spawn("ip", ["netns", "exec", ctx.netns.name, binary], {
      env: { DC_ACCOUNTS_PATH: `${dir}/accounts`, PATH: process.env.PATH, RUST_LOG: "warn" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    // Requests written after the core exited must not crash the runner; the pending call fails the test instead.
    proc.stdin!.on("error", () => {});
    const stderr: string[] = [];
    proc.stderr!.on("data", (b: Buffer) => stderr.push(...b.toString("utf8").split("\n").filter(Boolean)));
    return new DcClient(new StdioDeltaChat(proc.stdin, proc.stdout, true), proc, dir, stderr);
  }

  /**
   * A profile configured from a `dclogin:`/`dcaccount:` link, with IO started. `config` is set after the link
   * (the way a user would tick "accept invalid certificates" for a self-signed relay).
   */
  async profile(link: string, config: Record<string, string> = {}): Promise<number> {
    const id = await this.dc.rpc.addAccount();
    await this.dc.rpc.setConfigFromQr(id, link);
    if (Object.keys(config).length > 0) await this.dc.rpc.batchSetConfig(id, config);
    await this.dc.rpc.configure(id);
    await this.dc.rpc.startIo(id);
    return id;
  }

  /** Resolves with the first event of this kind on this profile that satisfies `accept`; listen before acting. */
  event<K extends DcEventType<any>["kind"]>(
    account: number,
    kind: K,
    accept: (e: DcEventType<K>) => boolean | Promise<boolean>,
    deadlineMs = DC_DEADLINE_MS,
  ): Promise<DcEventType<K>> {
    const seen: DcEventType<K>[] = [];
    const emitter = this.dc.getContextEvents(account);
    const onEvent = (e: DcEventType<K>) => void seen.push(e);
    emitter.on(kind, onEvent as never);
    let checked = 0;
    return waitFor(
      `${kind} on profile ${account}`,
      deadlineMs,
      async () => {
        while (checked < seen.length) {
          const e = seen[checked++];
          if (await accept(e)) return e;
        }
        return undefined;
      },
      200,
    ).finally(() => emitter.off(kind, onEvent as never));
  }

  /** Waits for an incoming message with exactly this text and returns its id. */
  async incomingText(account: number, text: string): Promise<number> {
    const e = await this.event(
      account,
      "IncomingMsg",
      async (ev) => (await this.dc.rpc.getMessage(account, ev.msgId)).text === text,
    );
    return e.msgId;
  }

  async close(): Promise<void> {
    this.dc.close();
    if (this.proc.exitCode === null && this.proc.signalCode === null) {
      const exited = new Promise((r) => this.proc.once("exit", r));
      this.proc.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill("SIGKILL");
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
