#!/usr/bin/env node
// Result bookkeeping and tables for scripts/bench.sh. Node built-ins only, so
// that it runs without bench/'s npm install.
//
// usage:
//   node report.mjs record --results DIR --case ID --scenario S --title T
//                          --target NAME --exit N --wall SECONDS --note TEXT
//                          --stdout FILE
//       Takes the load tool's JSON line from FILE (its last line that parses
//       as a JSON object), appends it unchanged to DIR/raw.jsonl and a record
//       {case, scenario, title, target, status, exit_code, wall_seconds,
//       note, result} to DIR/results.jsonl, and prints a one-line summary.
//       Exits 1 if the run failed (non-zero exit, no JSON line) or reported
//       errors or missing messages.
//
//   node report.mjs table --results DIR
//       Prints one Markdown table per case from DIR/results.jsonl: each
//       target's throughput, latencies, errors, RSS, and streamd's ratio to
//       every other target (streamd / other, for throughput, latencies and
//       RSS alike).
import { appendFileSync, existsSync, readFileSync } from "node:fs"
import { join } from "node:path"
import { parseArgs } from "node:util"

const [command, ...rest] = process.argv.slice(2)
const { values: opts } = parseArgs({
  args: rest,
  options: {
    results: { type: "string" },
    case: { type: "string" },
    scenario: { type: "string" },
    title: { type: "string", default: "" },
    target: { type: "string" },
    exit: { type: "string", default: "0" },
    wall: { type: "string", default: "0" },
    note: { type: "string", default: "" },
    stdout: { type: "string" },
  },
  strict: true,
})
if (!opts.results) fail("--results is required")

const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : 0)

function fail(msg) {
  console.error(`report: ${msg}`)
  process.exit(2)
}

// ------------------------------------------------------------------ record

function lastJsonLine(file) {
  if (!file || !existsSync(file)) return null
  const lines = readFileSync(file, "utf8").split("\n").reverse()
  for (const line of lines) {
    const t = line.trim()
    if (!t.startsWith("{")) continue
    try {
      const v = JSON.parse(t)
      if (v && typeof v === "object" && !Array.isArray(v)) return { line: t, value: v }
    } catch {
      // not the result line
    }
  }
  return null
}

function record() {
  for (const k of ["case", "scenario", "target"]) if (!opts[k]) fail(`--${k} is required`)
  const exitCode = Number(opts.exit)
  const found = lastJsonLine(opts.stdout)
  const notes = opts.note ? [opts.note] : []
  let status = "ok"
  if (exitCode !== 0) {
    status = "failed"
    notes.push(`load tool exited with status ${exitCode}`)
  } else if (!found) {
    status = "failed"
    notes.push("load tool printed no JSON result")
  }
  if (found) appendFileSync(join(opts.results, "raw.jsonl"), found.line + "\n")
  const result = found ? found.value : null
  const rec = {
    case: opts.case,
    scenario: opts.scenario,
    title: opts.title,
    target: opts.target,
    status,
    exit_code: exitCode,
    wall_seconds: Number(opts.wall),
    note: notes.join("; "),
    result,
  }
  appendFileSync(join(opts.results, "results.jsonl"), JSON.stringify(rec) + "\n")

  const head = `  -> ${opts.target} ${opts.case}:`
  if (!result) {
    console.log(`${head} FAILED (${rec.note})`)
    process.exit(1)
  }
  const r = result
  const rss = num(r.rss_bytes) ? `, RSS ${mib(r.rss_bytes)} MiB` : ""
  const per = num(r.rss_per_reader_bytes) ? ` (${kib(r.rss_per_reader_bytes)} KiB/reader)` : ""
  console.log(
    `${head} ${fmt(r.throughput)} ${r.throughput_unit ?? ""}, p50 ${fmt(r.p50_ms)} ms, ` +
      `p99 ${fmt(r.p99_ms)} ms, max ${fmt(r.max_ms)} ms, requests ${count(num(r.requests))}, ` +
      `errors ${count(num(r.errors))}, missing ${count(num(r.missing))}${rss}${per} ` +
      `[${rec.wall_seconds}s]${status === "ok" ? "" : ` ${status.toUpperCase()}: ${rec.note}`}`,
  )
  if (status !== "ok" || num(r.errors) > 0 || num(r.missing) > 0) process.exit(1)
}

// ------------------------------------------------------------------ table

function fmt(v) {
  if (typeof v !== "number" || !Number.isFinite(v)) return "–"
  const a = Math.abs(v)
  if (a === 0) return "0"
  if (a >= 1000) return Math.round(v).toLocaleString("en-US")
  if (a >= 100) return v.toFixed(0)
  if (a >= 10) return v.toFixed(1)
  if (a >= 1) return v.toFixed(2)
  return v.toPrecision(2)
}
const count = (v) => (typeof v === "number" && Number.isFinite(v) ? Math.round(v).toLocaleString("en-US") : "–")
const mib = (b) => fmt(num(b) / 1048576)
const kib = (b) => fmt(num(b) / 1024)

function ratio(a, b) {
  if (!(num(a) > 0) || !(num(b) > 0)) return "–"
  const r = a / b
  return `${r >= 100 ? r.toFixed(0) : r >= 10 ? r.toFixed(1) : r.toFixed(2)}×`
}

// The flags that describe the load, without those naming the server and run.
const runFlags = new Set(["url", "server-pid", "label", "prefix", "timeout"])
function caseParams(params) {
  return Object.fromEntries(Object.entries(params).filter(([k]) => !runFlags.has(k)))
}

function table() {
  const file = join(opts.results, "results.jsonl")
  const recs = existsSync(file)
    ? readFileSync(file, "utf8")
        .split("\n")
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l))
    : []
  const order = []
  const byCase = new Map()
  for (const r of recs) {
    if (!byCase.has(r.case)) {
      byCase.set(r.case, [])
      order.push(r.case)
    }
    byCase.get(r.case).push(r)
  }
  const out = []
  const problems = []
  for (const id of order) {
    const rows = byCase.get(id)
    const title = rows.find((r) => r.title)?.title ?? ""
    const unit = rows.find((r) => r.result?.throughput_unit)?.result.throughput_unit ?? ""
    out.push(`### ${id}${title ? ` — ${title}` : ""}`, "")
    out.push(
      `| target | throughput${unit ? ` (${unit})` : ""} | p50 ms | p99 ms | max ms | requests | errors | missing | RSS MiB | RSS/reader KiB | wall s |`,
      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    )
    const notes = []
    for (const rec of rows) {
      const r = rec.result
      if (rec.status !== "ok" || !r) {
        problems.push(`${id} on ${rec.target}: failed${rec.note ? ` (${rec.note})` : ""}`)
        out.push(`| ${rec.target} | **failed** | | | | | | | | | ${num(rec.wall_seconds).toFixed(1)} |`)
      } else {
        if (num(r.errors) > 0 || num(r.missing) > 0) {
          problems.push(`${id} on ${rec.target}: ${count(num(r.errors))} errors, ${count(num(r.missing))} missing`)
        }
        out.push(
          `| ${rec.target} | ${fmt(r.throughput)} | ${fmt(r.p50_ms)} | ${fmt(r.p99_ms)} | ${fmt(r.max_ms)} | ` +
            `${count(num(r.requests))} | ${count(num(r.errors))} | ${count(num(r.missing))} | ` +
            `${num(r.rss_bytes) ? mib(r.rss_bytes) : "–"} | ` +
            `${num(r.rss_per_reader_bytes) ? kib(r.rss_per_reader_bytes) : "–"} | ${num(rec.wall_seconds).toFixed(1)} |`,
        )
      }
      if (rec.note) notes.push(`${rec.target}: ${rec.note}`)
    }

    const me = rows.find((r) => r.target === "streamd" && r.status === "ok" && r.result)
    const others = rows.filter((r) => r.target !== "streamd" && r.status === "ok" && r.result)
    if (me && others.length) {
      const m = me.result
      out.push(
        "",
        "| streamd / other | throughput | p50 | p99 | max | RSS |",
        "|---|---:|---:|---:|---:|---:|",
      )
      for (const o of others) {
        const r = o.result
        out.push(
          `| ${o.target} | ${ratio(m.throughput, r.throughput)} | ${ratio(m.p50_ms, r.p50_ms)} | ` +
            `${ratio(m.p99_ms, r.p99_ms)} | ${ratio(m.max_ms, r.max_ms)} | ${ratio(m.rss_bytes, r.rss_bytes)} |`,
        )
      }
    }

    // Parameters as the load tool reports them; per target when they differ.
    const params = rows.filter((r) => r.result?.params).map((r) => [r.target, JSON.stringify(caseParams(r.result.params))])
    const distinct = [...new Set(params.map(([, p]) => p))]
    if (distinct.length === 1) notes.push(`params: ${distinct[0]}`)
    else for (const [t, p] of params) notes.push(`${t} params: ${p}`)
    for (const rec of rows) {
      const extra = rec.result?.extra
      if (extra && typeof extra === "object" && Object.keys(extra).length) {
        const text = JSON.stringify(extra)
        // manystreams reports its per-phase figures only here: keep them whole.
        const long = text.length > 400 && rec.scenario !== "manystreams"
        notes.push(`${rec.target} extra: ${long ? `${text.slice(0, 400)}… (results.jsonl has it all)` : text}`)
      }
    }
    if (notes.length) out.push("", ...notes.map((n) => `- ${n}`))
    out.push("")
  }
  if (!order.length) out.push("(no results)", "")
  out.push(
    "Ratios are streamd's value divided by the other target's: above 1× is better for throughput, " +
      "below 1× is better for latency and RSS.",
  )
  if (problems.length) {
    out.push("", `${problems.length} run(s) failed or reported errors or missing messages:`, "")
    out.push(...problems.map((p) => `- ${p}`))
  }
  console.log(out.join("\n"))
}

switch (command) {
  case "record":
    record()
    break
  case "table":
    table()
    break
  default:
    fail(`unknown command ${command ?? "(none)"}; use record or table`)
}
