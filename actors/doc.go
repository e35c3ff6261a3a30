// Package actors runs one protoactor-go actor per stream path and the
// supervisor that spawns and locates them.
//
// A stream actor is the single writer of its stream: it owns the tail
// offset, the TTL timer, producer state and live waiters (long-poll and SSE).
// It validates each write against its in-memory state, assigns offsets and
// queues the write; at most one Pebble commit per stream is in flight, and
// writes arriving meanwhile form the next batch, so concurrent writers share
// fsyncs. A write is acknowledged, and waiters woken, only after its commit
// is synced.
//
// Concurrency contract:
//   - Streams is safe for concurrent use by any number of HTTP handlers.
//   - Locating a live stream is a lock-free map lookup; only the first touch
//     of a stream (or the first after passivation) goes through the
//     supervisor's mailbox.
//   - Handlers never block an actor: every request carries a buffered reply
//     channel, and handlers select on it together with their own context.
//   - Catch-up reads never enter a mailbox: they read the Snapshot a stream
//     actor publishes after each commit and then read Pebble directly,
//     bounded by the snapshot's durable tail.
//   - Long-polls never enter a mailbox either: they park on the handle's
//     current wakeup, which the actor closes after each commit with the
//     commit's shared Delta (the protocol is at Streams.Wait).
//   - Live subscribers receive each committed Delta through a buffered
//     channel with a non-blocking send; a subscriber that falls behind (in
//     commits or in bytes) is dropped from the live set and catches up from
//     Pebble, so a slow reader never stalls the stream.
//   - Every queue an actor keeps is bounded (pending appends, producers,
//     live readers per stream and in total); a request past a bound gets a
//     *LimitError at once and changes nothing.
package actors
