#!/usr/bin/env node
// Starts the official Node reference server of the Durable Streams protocol
// (@durable-streams/server, DurableStreamTestServer) as a comparison target
// for the streamd benchmarks.
//
// usage: node reference-server.mjs [--port P] [--host H] [--data-dir DIR]
//                                  [--long-poll-timeout-ms MS]
//
//   --port                  TCP port (default 0: any free port)
//   --host                  listen address (default 127.0.0.1)
//   --data-dir              file-backed storage (LMDB metadata and append-only
//                           segment files, fsynced per append) in DIR;
//                           without it, streams are kept in memory
//   --long-poll-timeout-ms  long-poll timeout (default 30000, like streamd)
//
// Prints one line `reference listening http://HOST:PORT (memory|file DIR)`
// on stdout when it accepts connections. SIGTERM or SIGINT stops it: pending
// long-polls and SSE responses are ended, the listener is closed, and the
// file store is flushed and closed; connections still open after
// STOP_GRACE_MS (default 5000) are destroyed.
import { parseArgs } from "node:util"
import { mkdirSync } from "node:fs"
import { resolve } from "node:path"
import { DurableStreamTestServer } from "@durable-streams/server"

const usage =
  "usage: node reference-server.mjs [--port P] [--host H] [--data-dir DIR] [--long-poll-timeout-ms MS]"

function parseFlags() {
  return parseArgs({
    options: {
      port: { type: "string", default: "0" },
      host: { type: "string", default: "127.0.0.1" },
      "data-dir": { type: "string" },
      "long-poll-timeout-ms": { type: "string", default: "30000" },
      help: { type: "boolean", short: "h" },
    },
    strict: true,
  }).values
}

let values
try {
  values = parseFlags()
} catch (err) {
  console.error(`reference: ${err.message}\n${usage}`)
  process.exit(2)
}
if (values.help) {
  console.log(usage)
  process.exit(0)
}

const port = Number(values.port)
const longPollTimeout = Number(values["long-poll-timeout-ms"])
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`reference: invalid --port ${values.port}`)
  process.exit(2)
}
if (!Number.isInteger(longPollTimeout) || longPollTimeout <= 0) {
  console.error(`reference: invalid --long-poll-timeout-ms ${values["long-poll-timeout-ms"]}`)
  process.exit(2)
}

let dataDir
if (values["data-dir"] !== undefined) {
  dataDir = resolve(values["data-dir"])
  mkdirSync(dataDir, { recursive: true })
}

const server = new DurableStreamTestServer({
  port,
  host: values.host,
  longPollTimeout,
  dataDir,
})

let url
try {
  url = await server.start()
} catch (err) {
  console.error(`reference: cannot listen on ${values.host}:${port}: ${err.message}`)
  process.exit(1)
}
console.log(`reference listening ${url} (${dataDir ? `file ${dataDir}` : "memory"})`)

const stopGraceMs = Number(process.env.STOP_GRACE_MS ?? 5000)
let stopping = false

async function shutdown(signal) {
  if (stopping) return
  stopping = true
  console.error(`reference: ${signal}, stopping`)
  // stop() waits for every connection to close; idle keep-alive ones are
  // closed by Node, and busy ones are cut off after the grace period.
  const force = setTimeout(() => {
    console.error(`reference: connections still open after ${stopGraceMs} ms, closing them`)
    server.server?.closeAllConnections?.()
  }, stopGraceMs)
  force.unref()
  // The store's cancelAllWaits() resolves its pending waits while each
  // resolution splices that same array, so every other wait is skipped and
  // its long-poll hangs until the grace period ends. Resolving a copy first
  // answers them all.
  const pending = server.store?.pendingLongPolls
  if (Array.isArray(pending)) {
    for (const wait of [...pending]) wait.resolve?.([])
  }
  try {
    await server.stop()
    process.exitCode = 0
  } catch (err) {
    console.error(`reference: stop failed: ${err.message}`)
    process.exitCode = 1
  }
  clearTimeout(force)
  process.exit()
}

process.on("SIGTERM", () => void shutdown("SIGTERM"))
process.on("SIGINT", () => void shutdown("SIGINT"))
