// Runs the official TypeScript client (@durable-streams/client) against a
// streamd started with --test-endpoints, arming faults through
// /_test/inject-error the way client test suites do (paths relative to the
// stream prefix), and checks that the client recovers and that no fault
// changed what is stored.
//
// usage: STREAMD_URL=http://127.0.0.1:4437 node client-resilience.mjs
import { DurableStream } from "@durable-streams/client"

const base = process.env.STREAMD_URL
if (!base) {
  console.error("client-resilience: STREAMD_URL is not set")
  process.exit(2)
}
const prefix = `${base}/v1/stream`
const inject = async (fault) => {
  const r = await fetch(`${prefix}/_test/inject-error`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(fault),
  })
  if (r.status !== 200) throw new Error(`arming ${JSON.stringify(fault)}: ${r.status} ${await r.text()}`)
}
const clear = async () => {
  const r = await fetch(`${prefix}/_test/inject-error`, { method: "DELETE" })
  if (r.status !== 200) throw new Error(`clearing faults: ${r.status}`)
}

let failed = 0
const check = (name, ok, detail) => {
  console.log(`client-resilience: ${ok ? "ok  " : "FAIL"} ${name}${detail ? ` (${detail})` : ""}`)
  if (!ok) failed++
}
const readAll = async (s) => (await s.stream({ live: false })).text()

const name = `client-resilience-${process.pid}-${Date.now()}`
const url = `${prefix}/${name}`
const path = `/${name}`
const s = await DurableStream.create({ url, contentType: "text/plain" })
await s.append("a")

const cases = [
  ["an append through two 503s with Retry-After", { status: 503, retryAfter: 1, count: 2, method: "POST" },
    async () => { await s.append("b"); return "ab" }],
  ["a read through a dropped connection", { dropConnection: true, method: "GET" }, async () => "ab"],
  ["a read through a 500", { status: 500, method: "GET" }, async () => "ab"],
  ["a read delayed by 200 ms with jitter", { delayMs: 200, jitterMs: 50, method: "GET" }, async () => "ab"],
  ["an append through a dropped connection before it is handled", { dropConnection: true, method: "POST" },
    async () => { await s.append("c"); return "abc" }],
  ["a read through a 429", { status: 429, retryAfter: 1, method: "GET" }, async () => "abc"],
]
for (const [title, fault, act] of cases) {
  try {
    await inject({ path, ...fault })
    const want = await act()
    const got = await readAll(s)
    check(title, got === want, `read ${JSON.stringify(got)}, want ${JSON.stringify(want)}`)
  } catch (err) {
    check(title, false, String(err))
  } finally {
    await clear()
  }
}
const stored = await (await fetch(url)).text()
check("stored bytes untouched by every fault", stored === "abc", JSON.stringify(stored))
await fetch(url, { method: "DELETE" })
console.log(`client-resilience: ${cases.length + 1 - failed} passed, ${failed} failed`)
process.exit(failed === 0 ? 0 : 1)
