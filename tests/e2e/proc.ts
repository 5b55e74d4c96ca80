// Runs host programs for the testbed: one promise-returning wrapper around spawn, so every module reports
// failures the same way (program, exit code, the end of stderr) and nothing uses a shell on the host.
import { spawn, type SpawnOptions } from "node:child_process";

export interface ProcResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface ProcOptions {
  /** Written to the program's standard input, which is then closed. */
  readonly input?: string;
  /** A non-zero exit is returned instead of thrown. */
  readonly allowFail?: boolean;
  /** Killed (SIGKILL) after this many milliseconds; the error says so. */
  readonly timeoutMs?: number;
  /** Replaces stderr in error messages (a step whose output may echo a secret). */
  readonly quiet?: boolean;
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
}

const tail = (text: string, lines = 30) => text.trimEnd().split("\n").slice(-lines).join("\n");

export function run(program: string, args: readonly string[], opts: ProcOptions = {}): Promise<ProcResult> {
  return new Promise((resolve, reject) => {
    const spawnOpts: SpawnOptions = {
      stdio: ["pipe", "pipe", "pipe"],
      env: opts.env ?? process.env,
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
    };
    const child = spawn(program, [...args], spawnOpts);
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout!.on("data", (b: Buffer) => out.push(b));
    child.stderr!.on("data", (b: Buffer) => err.push(b));
    let timedOut = false;
    const timer = opts.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill("SIGKILL");
        }, opts.timeoutMs)
      : undefined;
    child.on("error", (e) => {
      if (timer) clearTimeout(timer);
      reject(new Error(`${program}: could not start: ${e.message}`));
    });
    child.on("close", (code, signal) => {
      if (timer) clearTimeout(timer);
      const result = {
        code: code ?? 128,
        stdout: Buffer.concat(out).toString("utf8"),
        stderr: Buffer.concat(err).toString("utf8"),
      };
      if (timedOut)
        return reject(new Error(`${program} ${args[0] ?? ""}: no exit within ${opts.timeoutMs} ms`));
      if (result.code !== 0 && !opts.allowFail) {
        const why = opts.quiet
          ? "(stderr withheld: it may hold a secret)"
          : tail(result.stderr || result.stdout);
        return reject(new Error(`${program} ${args.slice(0, 3).join(" ")}: exit ${code ?? signal}\n${why}`));
      }
      resolve(result);
    });
    child.stdin!.on("error", () => {
      // The program may exit before reading all input; its exit code tells what happened.
    });
    child.stdin!.end(opts.input ?? "");
  });
}

/** Polls `probe` until it returns a value, or throws naming what was awaited and the deadline. */
export async function waitFor<T>(
  what: string,
  deadlineMs: number,
  probe: () => Promise<T | undefined>,
  intervalMs = 250,
): Promise<T> {
  const end = Date.now() + deadlineMs;
  let last = "";
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (e) {
      last = (e as Error).message;
    }
    if (Date.now() > end)
      throw new Error(`${what}: not reached within ${deadlineMs} ms${last ? ` (last error: ${last})` : ""}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
