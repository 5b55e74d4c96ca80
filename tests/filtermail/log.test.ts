// The filter's log lines go to stderr in one write per turn of the event loop (daemons/filtermail/log.ts): in
// order, none lost, none held past the turn or past a flush.
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { afterEach, describe, expect, it, vi } from "vitest";
import { flushLog, logLine } from "../../daemons/filtermail/log";

const nextTurn = () => new Promise((r) => setImmediate(r));

afterEach(() => {
  flushLog();
  vi.restoreAllMocks();
});

describe("filtermail log lines", () => {
  it("writes the lines of one turn in one write, in order, at the end of the turn", async () => {
    const writes: string[] = [];
    vi.spyOn(process.stderr, "write").mockImplementation((chunk) => (writes.push(String(chunk)), true));
    logLine("Outgoing: Filtering encrypted mail.");
    logLine("Rejected unencrypted mail.");
    expect(writes).toEqual([]);
    await nextTurn();
    expect(writes).toEqual(["Outgoing: Filtering encrypted mail.\nRejected unencrypted mail.\n"]);
    logLine("next turn");
    await nextTurn();
    expect(writes).toEqual([
      "Outgoing: Filtering encrypted mail.\nRejected unencrypted mail.\n",
      "next turn\n",
    ]);
  });

  it("writes at once on flushLog and when many lines wait, and writes nothing when none do", async () => {
    const writes: string[] = [];
    vi.spyOn(process.stderr, "write").mockImplementation((chunk) => (writes.push(String(chunk)), true));
    logLine("a");
    flushLog();
    expect(writes).toEqual(["a\n"]);
    const line = "x".repeat(1000);
    for (let i = 0; i < 20; i++) logLine(line);
    expect(writes.length).toBe(2);
    expect(writes[1].length).toBeGreaterThanOrEqual(16 * 1024);
    await nextTurn();
    expect(writes.join("")).toBe(`a\n${`${line}\n`.repeat(20)}`);
    await nextTurn();
    expect(writes.length).toBe(3);
  });

  it("writes lines still waiting when the process exits", () => {
    const module = join(__dirname, "../../daemons/filtermail/log.ts");
    const script = `const l = require(${JSON.stringify(module)}); l.logLine("one"); l.logLine("two"); process.exit(3);`;
    const r = spawnSync(process.execPath, ["--import", "tsx", "-e", script], { encoding: "utf8" });
    expect(r.status).toBe(3);
    expect(r.stderr).toBe("one\ntwo\n");
  });
});
