// A service step tries a failed restart once more: systemd can lose the race for a unit's cgroup when the unit
// starts right after it stopped (status=219/CGROUP). The script is run by sh with a stand-in systemctl that fails
// the first restart only; a service that fails twice still fails the step.
import { execFileSync } from "node:child_process";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { planFor } from "./helpers";

const dir = mkdtempSync(join(tmpdir(), "service-retry-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The opendkim service step's script, with systemctl, flock and the lock path pointed into `dir`. */
function runStep(failures: number): { code: number; calls: string[] } {
  const step = planFor().steps.find((s) => s.id === "service:opendkim.service")!;
  const log = join(dir, `calls-${failures}`);
  const bin = join(dir, `bin-${failures}`);
  execFileSync("mkdir", ["-p", bin]);
  writeFileSync(
    join(bin, "systemctl"),
    `#!/bin/sh\necho "$*" >>${log}\nif [ "$1" = restart ]; then n=$(grep -c '^restart' ${log}); [ "$n" -gt ${failures} ] || exit 1; fi\nexit 0\n`,
  );
  writeFileSync(join(bin, "flock"), "#!/bin/sh\nexit 0\n");
  writeFileSync(join(bin, "sleep"), "#!/bin/sh\nexit 0\n");
  for (const f of ["systemctl", "flock", "sleep"]) chmodSync(join(bin, f), 0o755);
  const script = step.script.replaceAll("/run/lock/", `${dir}/`).replaceAll("/var/lib/chatmail-deploy", dir);
  let code = 0;
  try {
    execFileSync("sh", ["-c", script], { env: { PATH: `${bin}:/usr/bin:/bin` }, stdio: "pipe" });
  } catch (e) {
    code = (e as { status: number }).status;
  }
  return { code, calls: readFileSync(log, "utf8").trim().split("\n") };
}

describe("a service step", () => {
  it("succeeds when the first restart fails and the second works", () => {
    const { code, calls } = runStep(1);
    expect(code).toBe(0);
    expect(calls.filter((c) => c.startsWith("restart"))).toEqual([
      "restart opendkim.service",
      "restart opendkim.service",
    ]);
  });

  it("restarts once when the first restart works", () => {
    expect(runStep(0).calls.filter((c) => c.startsWith("restart"))).toHaveLength(1);
  });

  it("fails when the service cannot start twice", () => {
    expect(runStep(2).code).not.toBe(0);
  });
});
