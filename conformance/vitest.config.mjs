import { defineConfig } from "vitest/config"

// The whole pinned suite runs. Its "Reserved subscription APIs" group is
// skipped by the suite itself unless runConformanceTests is given
// `subscriptions: true`.
export default defineConfig({
  test: {
    include: ["conformance.test.mjs"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    teardownTimeout: 10_000,
    // One file, one server: run tests in order, no file parallelism.
    fileParallelism: false,
  },
})
