// The fleet's one table (and its JSON form): a row per stack, the error under a failed one, the counts, and an
// exit code that is 0 only when no relay failed.
import { describe, expect, it } from "vitest";
import { summariseChanges } from "../../tools/fleet/changes";
import {
  changeResult,
  checkResult,
  fleetExitCode,
  renderFleetJson,
  renderFleetTable,
  type StackResult,
} from "../../tools/fleet/table";

const row = (r: Partial<StackResult> & Pick<StackResult, "stack" | "result">): StackResult => ({
  workDir: "/repo",
  domain: `${r.stack}.example.org`,
  seconds: 12.34,
  ...r,
});

describe("renderFleetTable", () => {
  const results = [
    row({ stack: "relay-a", result: "ok", changes: summariseChanges({ same: 140 }) }),
    row({
      stack: "relay-b",
      result: "changes",
      changes: summariseChanges({ same: 137, update: 3 }),
      seconds: 61,
    }),
    row({
      stack: "relay-c",
      result: "failed",
      domain: "",
      error: "dial tcp 127.0.0.1:22: connection refused",
    }),
    row({ stack: "relay-d", result: "skipped", error: "not started (--fail-fast)" }),
  ];

  it("has one aligned line per stack with its domain, result, changes and duration", () => {
    const lines = renderFleetTable({ command: "up", stacks: results }).split("\n");
    expect(lines[0]).toMatch(/^STACK\s+DOMAIN\s+RESULT\s+CHANGES\s+DURATION$/);
    expect(lines[1]).toMatch(/^-+ {2}-+ {2}-+ {2}-+ {2}-+$/);
    expect(lines[2]).toMatch(/^relay-a\s+relay-a\.example\.org\s+ok\s+none\s+12\.3 s$/);
    expect(lines[3]).toMatch(/^relay-b\s+relay-b\.example\.org\s+changes\s+3 update\s+61\.0 s$/);
    expect(lines[4]).toMatch(/^relay-c\s+-\s+failed\s+-\s+12\.3 s$/);
    // Columns line up: every row's RESULT starts where the header's does.
    const at = lines[0].indexOf("RESULT");
    for (const l of [lines[2], lines[3], lines[4]]) expect(l.slice(at)).toMatch(/^(ok|changes|failed) /);
  });

  it("puts the reason under a failed or skipped stack and ends with the counts", () => {
    const text = renderFleetTable({ command: "up", stacks: results });
    expect(text).toMatch(/\n\s+-> dial tcp 127\.0\.0\.1:22: connection refused\n/);
    expect(text).toMatch(
      /relay-d\s+relay-d\.example\.org\s+skipped\s+-\s+-\n\s+-> not started \(--fail-fast\)/,
    );
    expect(text.trimEnd().split("\n").pop()).toBe("4 stacks: 1 ok, 1 changes, 1 failed, 1 skipped");
  });

  it("shows the check counts for check, and webUrl for outputs", () => {
    const checks = renderFleetTable({
      command: "check",
      stacks: [row({ stack: "a", result: "warn", checks: { ok: 30, warn: 1, fail: 0 } })],
    });
    expect(checks.split("\n")[0]).toMatch(/RESULT\s+CHECKS\s+DURATION/);
    expect(checks).toMatch(/^a\s+a\.example\.org\s+warn\s+30 ok, 1 warn, 0 fail\s+12\.3 s$/m);
    expect(checks.trimEnd().split("\n").pop()).toBe("1 stack: 0 ok, 1 warn, 0 failed");
    const outputs = renderFleetTable({
      command: "outputs",
      stacks: [
        row({
          stack: "a",
          result: "ok",
          outputs: { webUrl: "https://a.example.org/", inviteLinks: "[secret]" },
        }),
      ],
    });
    expect(outputs).toMatch(/OUTPUTS/);
    expect(outputs).toMatch(/webUrl https:\/\/a\.example\.org\/ \(2 outputs\)/);
  });

  it("gives the same as JSON, with the exit code", () => {
    const report = { command: "preview" as const, stacks: results, exitCode: fleetExitCode(results) };
    const parsed = JSON.parse(renderFleetJson(report));
    expect(parsed.exitCode).toBe(1);
    expect(parsed.stacks.map((s: StackResult) => [s.stack, s.result])).toEqual([
      ["relay-a", "ok"],
      ["relay-b", "changes"],
      ["relay-c", "failed"],
      ["relay-d", "skipped"],
    ]);
    expect(parsed.stacks[1].changes).toEqual({ changes: { update: 3 }, total: 3, unchanged: 137 });
  });
});

describe("results and exit code", () => {
  it("exits 0 only when no relay failed", () => {
    expect(fleetExitCode([row({ stack: "a", result: "ok" }), row({ stack: "b", result: "changes" })])).toBe(
      0,
    );
    expect(fleetExitCode([row({ stack: "a", result: "warn" })])).toBe(0);
    expect(fleetExitCode([row({ stack: "a", result: "ok" }), row({ stack: "b", result: "failed" })])).toBe(1);
    expect(fleetExitCode([row({ stack: "a", result: "skipped" })])).toBe(1);
  });

  it("calls a run with changes 'changes' and one without 'ok'", () => {
    expect(changeResult(summariseChanges({ same: 3, update: 1 }))).toBe("changes");
    expect(changeResult(summariseChanges({ same: 3, read: 1 }))).toBe("ok");
  });

  it("judges a check by its rows and its exit code", () => {
    expect(checkResult({ ok: 3, warn: 0, fail: 0 }, 0)).toBe("ok");
    expect(checkResult({ ok: 3, warn: 1, fail: 0 }, 0)).toBe("warn");
    expect(checkResult({ ok: 3, warn: 1, fail: 1 }, 1)).toBe("failed");
    expect(checkResult({ ok: 3, warn: 0, fail: 0 }, 2)).toBe("failed");
  });
});
