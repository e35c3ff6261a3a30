// Package cursor generates Stream-Cursor values for live reads, as described
// in section 10.1 of the Durable Streams protocol.
//
// Time since a fixed epoch is divided into fixed-length intervals, and the
// cursor is the current interval number rendered as a decimal string. A
// cursor returned to a client never goes backwards relative to the cursor
// the client echoed: when the client's cursor is already at or beyond the
// current interval, the generator adds random jitter (1 to 3600 seconds,
// expressed in whole intervals and at least one interval) so that the
// result is strictly greater than the client's value. This keeps CDN cache
// keys moving and prevents clients from cycling through cached empty
// long-poll responses. Cursors saturate at MaxCursor (the int64 maximum),
// so every cursor returned parses again and echoing it back never yields a
// smaller one. Within one response (successive SSE control events),
// Continue keeps the cursor non-decreasing without adding jitter again.
//
// A Generator is immutable after construction and is safe for concurrent
// use by multiple goroutines.
package cursor
