// Runs a script on the test server over SSH, the way the Pulumi command resources do: the script is the remote
// command and the step's stdin is piped in. One multiplexed connection keeps ~100 steps from paying ~100 handshakes.
import { join } from "node:path";
import { run, type ProcResult } from "./proc";

export interface SshTarget {
  readonly addr: string;
  readonly keyPath: string;
  /** Directory for the control socket; it must be short (the socket path is limited to ~100 bytes). */
  readonly controlDir: string;
}

export class Ssh {
  constructor(private readonly target: SshTarget) {}

  private options(): string[] {
    return [
      "-o",
      "StrictHostKeyChecking=no",
      "-o",
      "UserKnownHostsFile=/dev/null",
      "-o",
      "BatchMode=yes",
      "-o",
      "LogLevel=ERROR",
      "-o",
      "ConnectTimeout=10",
      "-o",
      "ControlMaster=auto",
      "-o",
      `ControlPath=${join(this.target.controlDir, "ssh-%C")}`,
      "-o",
      "ControlPersist=300",
      "-i",
      this.target.keyPath,
    ];
  }

  /**
   * Runs `script` as root with `stdin` on its standard input. With `secret`, a failure's message leaves out the
   * remote stderr, which could echo the input.
   */
  exec(
    script: string,
    opts: { stdin?: string; secret?: boolean; allowFail?: boolean; timeoutMs?: number } = {},
  ): Promise<ProcResult> {
    return run("ssh", [...this.options(), `root@${this.target.addr}`, script], {
      input: opts.stdin ?? "",
      quiet: opts.secret,
      allowFail: opts.allowFail,
      timeoutMs: opts.timeoutMs ?? 10 * 60_000,
    });
  }

  /** Output of a command that must succeed, trimmed. */
  async out(script: string): Promise<string> {
    return (await this.exec(script)).stdout.trim();
  }

  /** Ends the shared connection (the ControlPersist master process). */
  async close(): Promise<void> {
    await run("ssh", [...this.options(), "-O", "exit", `root@${this.target.addr}`], {
      allowFail: true,
      timeoutMs: 10_000,
    });
  }
}
