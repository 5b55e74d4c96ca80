// The `line` unit's step, run as the real sh script on a temporary file (its run-log line redirected there too).
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync, chmodSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { compileSteps, RUN_LOG } from "../../core/plan/steps";
import { line } from "../../core/plan/units";

const dir = mkdtempSync(join(tmpdir(), "plan-line-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function apply(path: string): void {
  const [step] = compileSteps([line(path, "TZ=:/etc/localtime", "TZ=")]);
  const script = step.script
    .split(RUN_LOG)
    .join(join(dir, "runs.log"))
    .split("/var/lib/chatmail-deploy")
    .join(dir);
  execFileSync("sh", ["-c", script]);
}

describe("line unit", () => {
  it("adds the line and keeps the rest of the file, its mode included", () => {
    const path = join(dir, "environment");
    writeFileSync(path, 'PATH="/usr/bin"\nLANG=C.UTF-8\n');
    chmodSync(path, 0o640);
    apply(path);
    expect(readFileSync(path, "utf8")).toBe('PATH="/usr/bin"\nLANG=C.UTF-8\nTZ=:/etc/localtime\n');
    expect(statSync(path).mode & 0o777).toBe(0o640);
  });

  it("replaces an older value of the same setting and changes nothing the second time", () => {
    const path = join(dir, "environment2");
    writeFileSync(path, "TZ=Europe/Berlin\nLANG=C.UTF-8\n");
    apply(path);
    apply(path);
    expect(readFileSync(path, "utf8")).toBe("LANG=C.UTF-8\nTZ=:/etc/localtime\n");
  });

  it("creates the file when it is missing", () => {
    const path = join(dir, "environment3");
    apply(path);
    expect(readFileSync(path, "utf8")).toBe("TZ=:/etc/localtime\n");
  });
});
