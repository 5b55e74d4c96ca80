// The concurrency runner with fake tasks: never more than the limit at once, every item once and in order, and a
// failure stops nothing unless failFast, which then starts nothing new.
import { describe, expect, it } from "vitest";
import { runPool } from "../../tools/fleet/pool";

/** Tasks that finish when told to, recording how many run at once. */
function fakeTasks() {
  let active = 0;
  let maxActive = 0;
  const started: number[] = [];
  const task = async (ms: number, i: number) => {
    started.push(i);
    active++;
    maxActive = Math.max(maxActive, active);
    await new Promise((r) => setTimeout(r, ms));
    active--;
    return i;
  };
  return { task, started, max: () => maxActive };
}

describe("runPool", () => {
  it.each([1, 2, 3, 10])("runs at most %i tasks at once and every task once", async (limit) => {
    const { task, started, max } = fakeTasks();
    const items = [30, 5, 20, 5, 10, 25, 5, 15];
    const outcomes = await runPool(items, limit, task);
    expect(max()).toBe(Math.min(limit, items.length));
    expect([...started].sort((a, b) => a - b)).toEqual(items.map((_, i) => i));
    expect(outcomes).toEqual(items.map((_, i) => ({ kind: "done", value: i })));
  });

  it("starts the next task as soon as one finishes, not in batches", async () => {
    const order: string[] = [];
    await runPool([50, 5, 5, 5], 2, async (ms, i) => {
      order.push(`start ${i}`);
      await new Promise((r) => setTimeout(r, ms));
      order.push(`end ${i}`);
    });
    // Task 0 is still running while 1, 2 and 3 start and finish one after the other beside it.
    expect(order.indexOf("start 3")).toBeLessThan(order.indexOf("end 0"));
  });

  it("keeps going after a failure: a failed value or a thrown error stops no other task", async () => {
    const outcomes = await runPool(
      ["ok", "fail", "throw", "ok"],
      1,
      async (what) => {
        if (what === "throw") throw new Error("boom");
        return what;
      },
      { failed: (v) => v === "fail" },
    );
    expect(outcomes.map((o) => o.kind)).toEqual(["done", "done", "threw", "done"]);
    expect(outcomes[2]).toMatchObject({ kind: "threw", error: { message: "boom" } });
  });

  it("with failFast starts nothing after the first failure; running tasks finish, the rest are skipped", async () => {
    const started: number[] = [];
    const outcomes = await runPool(
      [
        { ms: 40, fail: false },
        { ms: 5, fail: true },
        { ms: 5, fail: false },
        { ms: 5, fail: false },
      ],
      2,
      async (item, i) => {
        started.push(i);
        await new Promise((r) => setTimeout(r, item.ms));
        return item.fail ? "failed" : "ok";
      },
      { failFast: true, failed: (v) => v === "failed" },
    );
    expect(started).toEqual([0, 1]);
    expect(outcomes.map((o) => o.kind)).toEqual(["done", "done", "skipped", "skipped"]);
    expect(outcomes[0]).toEqual({ kind: "done", value: "ok" });
  });

  it("with failFast also stops after a thrown error", async () => {
    const outcomes = await runPool(
      [1, 2, 3],
      1,
      async (n) => {
        if (n === 1) throw new Error("first");
        return n;
      },
      { failFast: true },
    );
    expect(outcomes.map((o) => o.kind)).toEqual(["threw", "skipped", "skipped"]);
  });

  it("refuses a limit below 1", async () => {
    await expect(runPool([1], 0, async (n) => n)).rejects.toThrow("limit 0");
  });
});
