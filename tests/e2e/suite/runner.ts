// A small sequential runner for the online suite: tests share one server, so they run one after another in the
// listed order (idempotence first, option change last). The last line printed is "N passed, N failed".
import type { E2eTest, SuiteContext } from "./types";

export interface SuiteOutcome {
  readonly passed: number;
  readonly failed: number;
  readonly failures: readonly string[];
}

/** Called around every test (suite/metrics.ts waits for a fresh Prometheus scrape around the tests it watches). */
export interface SuiteHooks {
  before?(group: string, test: string): Promise<void>;
  after?(group: string, test: string): Promise<void>;
}

export async function runSuite(
  groups: ReadonlyArray<readonly [string, readonly E2eTest[]]>,
  ctx: SuiteContext,
  log: (s: string) => void,
  hooks: SuiteHooks = {},
): Promise<SuiteOutcome> {
  const unitIds = new Set(ctx.first.plan.units.map((u) => u.id));
  let passed = 0;
  const failures: string[] = [];
  for (const [group, tests] of groups) {
    log(`${group}`);
    for (const test of tests) {
      const started = Date.now();
      // UTC wall time, to match the test with the server's journal lines.
      const at = new Date(started).toISOString().slice(11, 19);
      const missing = (test.needs ?? []).filter((id) => !unitIds.has(id));
      try {
        if (missing.length > 0) throw new Error(`the plan has no unit ${missing.join(", ")} yet`);
        await hooks.before?.(group, test.name);
        await test.run(ctx);
        await hooks.after?.(group, test.name);
        passed++;
        log(`  ✓ ${at} ${test.name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
      } catch (e) {
        // JSON-RPC clients (the Delta Chat core) reject with plain objects like {code, message}.
        const message =
          e instanceof Error ? e.message : typeof e === "object" ? JSON.stringify(e) : String(e);
        failures.push(`${group}: ${test.name}: ${message.split("\n")[0]}`);
        log(`  ✗ ${at} ${test.name}\n    ${message.replace(/\n/g, "\n    ")}`);
      }
    }
  }
  return { passed, failed: failures.length, failures };
}
