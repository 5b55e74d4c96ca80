import { defineConfig } from "vitest/config";

// Each test file runs in its own process: the Pulumi SDK keeps runtime state on `global`.
export default defineConfig({
  test: {
    include: ["tests/**/*.test.ts"],
    exclude: ["tests/e2e/**", "tests/engine/**", "node_modules/**"],
    environment: "node",
    pool: "forks",
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
