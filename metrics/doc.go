// Package metrics exports streamd's activity in the Prometheus text format,
// from a private registry (no process-wide default registry).
//
// The request path pays only for what cannot be read later: per request,
// one atomic add into a fixed array indexed by route, method and status
// (httpRequests), one histogram observation of its latency and, for
// catch-up reads, one add of the bytes served; per append, one observation
// of its commit latency. Everything else (appends, fsyncs, live readers,
// stream actors, lifecycle counts, rejections, read-ahead, Pebble's own
// metrics) is kept by actors, httpapi and persistence as they already do,
// and read through their Stats/Counters accessors by a Collector only when
// /metrics is scraped. No label carries a stream path: every label has a
// small fixed set of values.
//
// Concurrency contract: Metrics is safe for concurrent use once built;
// ObserveRequest and ObserveCommitLatency are called concurrently from
// request and actor goroutines, and Collect runs on the scraping request's
// goroutine, concurrently with both. Sources must be attached (Attach)
// before the first scrape; until then only the request and commit
// metrics, and the Go and process collectors, are exported.
package metrics
