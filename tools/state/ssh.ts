// A script run on a server over SSH with its stdin and stdout as streams (the archive flows through them), with
// the SSH options of the check tool (tools/check/server.ts, sshOptions). The script travels as the remote command,
// not on stdin, because stdin carries the archive.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { PassThrough, type Readable } from "node:stream";
import { q } from "../../core/plan/sh";
import { sshOptions, type SshTarget } from "../check/server";

export type { SshTarget };

export function sshArgs(target: SshTarget, script: string): string[] {
  const shell = `sh -c ${q(script)}`;
  return [
    ...sshOptions(target),
    // A transfer of many minutes must notice a dead connection.
    "-o",
    "ServerAliveInterval=15",
    "-o",
    "ServerAliveCountMax=4",
    "-T",
    `${target.user}@${target.host}`,
    target.user === "root" ? shell : `sudo -n ${shell}`,
  ];
}

/** A running remote script. */
export interface Remote {
  readonly child: ChildProcessWithoutNullStreams;
  /**
   * Its stdout, to read at the caller's pace. Node discards what a child printed when it exits before anyone
   * listened to its stdout (the backup derives its key first), so stdout is piped into this stream at once.
   */
  readonly output: Readable;
  /** Exit code (255: SSH itself failed) and what the script printed on stderr (the last 64 KiB). */
  readonly done: Promise<{ code: number; stderr: string }>;
  /** What it printed on stdout, when stdout is collected (not the archive). */
  stdout(): string;
}

const STDERR_KEPT = 64 * 1024;

/** Starts `script` on `target`. With collectStdout, stdout is kept as text; otherwise the caller reads it. */
export function startRemote(
  target: SshTarget,
  script: string,
  opts: { collectStdout?: boolean } = {},
): Remote {
  const child = spawn("ssh", sshArgs(target, script), { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  let stdout = "";
  child.stderr.on("data", (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-STDERR_KEPT);
  });
  const output = child.stdout.pipe(new PassThrough({ highWaterMark: 1024 * 1024 }));
  if (opts.collectStdout) output.on("data", (c: Buffer) => (stdout += c.toString()));
  // A remote that exits early closes its stdin: the writer sees EPIPE, which the caller reports with the
  // remote's own message.
  child.stdin.on("error", () => {});
  const done = new Promise<{ code: number; stderr: string }>((resolve) => {
    child.once("error", (e) => resolve({ code: 255, stderr: `ssh: ${e.message}` }));
    child.once("close", (code, signal) => resolve({ code: code ?? (signal ? 255 : 1), stderr }));
  });
  return { child, output, done, stdout: () => stdout };
}

/** The last line of a remote's stderr that says something, for one-line error messages. */
export function lastLine(text: string): string {
  const lines = text
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "");
  return lines.at(-1) ?? "";
}
