// Runs the Durable Streams server conformance suite against the server at
// STREAMD_URL (for example http://127.0.0.1:4437). Start streamd first, or
// use scripts/conformance.sh, which does both.
import { runConformanceTests } from "@durable-streams/server-conformance-tests"

const baseUrl = process.env.STREAMD_URL
if (!baseUrl) {
  throw new Error(
    "STREAMD_URL is not set: point it at a running streamd, e.g. " +
      "STREAMD_URL=http://127.0.0.1:4437 npx vitest run " +
      "(or run scripts/conformance.sh from the repository root)",
  )
}

const longPollTimeoutMs = process.env.STREAMD_LONG_POLL_TIMEOUT_MS
  ? Number(process.env.STREAMD_LONG_POLL_TIMEOUT_MS)
  : undefined

// The suite's describe groups are registered at the top level of this file
// so that their names start the full test names matched by the filter in
// vitest.config.mjs.
runConformanceTests({
  baseUrl: baseUrl.replace(/\/+$/, ""),
  ...(longPollTimeoutMs ? { longPollTimeoutMs } : {}),
})
