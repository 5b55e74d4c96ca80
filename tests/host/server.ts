// Runs a script as the server would, with `ip` answering a given output: tests the address read-back's real
// script without a server.
import { spawnSync } from "node:child_process";

export interface ServerRun {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** The script under sh, where `ip` (whatever its arguments) prints `ipOutput`; undefined: no ip command. */
export function runWithIp(script: string, ipOutput: string | undefined): ServerRun {
  const ip =
    ipOutput === undefined
      ? // `command -v` finds nothing once PATH holds no directory with an ip binary.
        "PATH=/nonexistent\n"
      : `ip() { cat <<'IP_OUTPUT'\n${ipOutput}\nIP_OUTPUT\n}\n`;
  const result = spawnSync("/bin/sh", ["-c", ip + script], { encoding: "utf8" });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** As runWithIp, and throws with stderr when the script fails, as the command does. */
export function runOnServer(script: string, ipOutput: string): string {
  const result = runWithIp(script, ipOutput);
  if (result.status !== 0) throw new Error(`exit ${result.status}: ${result.stderr}`);
  return result.stdout;
}
