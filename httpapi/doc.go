// Package httpapi serves the Durable Streams protocol over Echo v4: it
// parses and validates requests, sends writes and live waits to the stream
// actors, serves catch-up reads straight from storage, and encodes
// responses, SSE events and errors.
//
// Concurrency contract: handlers run on net/http's goroutines and never
// block an actor: they wait on reply channels together with the request's
// context and their own timers. A slow SSE client only slows its own
// handler goroutine.
package httpapi
