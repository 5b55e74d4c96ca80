import { defineConfig } from "vitest/config";

// The fuzz layer (`npm run test:fuzz`): hostile input against the bundled daemons, bounded by FUZZ_BUDGET_MS
// (tests/fuzz/budget.ts). Its files end in .fuzz.ts, so the root config's tests/**/*.test.ts never picks them up.
// One file at a time: each starts its own chatmaild process, and both compete for the same cores otherwise.
export default defineConfig({
  test: {
    include: ["tests/fuzz/**/*.fuzz.ts"],
    environment: "node",
    pool: "forks",
    fileParallelism: false,
    // A failing property shrinks after its time share; give it room rather than a cut-off mid-report.
    testTimeout: 300_000,
    hookTimeout: 120_000,
  },
});
