import { defineConfig } from "vitest/config"

// Test groups of the conformance suite whose describe names start with
// "Fork - " exercise stream forking, which streamd does not implement yet.
// They are left out with a test-name filter (a negative lookahead on the
// full test name, which begins with the top-level describe name). Set
// STREAMD_CONFORMANCE_FORKS=1 to run them too.
//
// The "Reserved subscription APIs" group is skipped by the suite itself
// unless runConformanceTests is given `subscriptions: true`.
export const EXCLUDE_FORKS_PATTERN = "^(?!Fork - )"

const includeForks = process.env.STREAMD_CONFORMANCE_FORKS === "1"

if (includeForks) {
  console.log('conformance: running all groups, including "Fork - …"')
} else {
  console.log(
    `conformance: the "Fork - …" test groups are left out (forks are not implemented yet); ` +
      `filter --testNamePattern '${EXCLUDE_FORKS_PATTERN}'; set STREAMD_CONFORMANCE_FORKS=1 to include them`,
  )
}

export default defineConfig({
  test: {
    include: ["conformance.test.mjs"],
    testTimeout: 30_000,
    hookTimeout: 30_000,
    teardownTimeout: 10_000,
    // One file, one server: run tests in order, no file parallelism.
    fileParallelism: false,
    ...(includeForks ? {} : { testNamePattern: EXCLUDE_FORKS_PATTERN }),
  },
})
