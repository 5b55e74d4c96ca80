import { defineConfig } from "vitest/config";

// Tests that run the real Pulumi CLI (built by tests/tools/pulumi/build.sh): `npm run test:engine`.
export default defineConfig({
  test: {
    include: ["tests/engine/**/*.test.ts"],
    environment: "node",
    pool: "forks",
    testTimeout: 180_000,
    hookTimeout: 180_000,
  },
});
