package httpapi

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/streamd/streamd/actors"
)

// readAhead loads the next chunk of a catch-up reader while the current one
// is on its way to the client. A reader replaying a long stream asks for
// one chunk at a time, each at the Stream-Next-Offset of the one before;
// without read-ahead the storage read and the network transfer of
// successive chunks never overlap, and one of the two cores idles.
//
// Coherence: a chunk is keyed by stream id and start position. Bytes below
// a stream's durable tail never change, and a recreated stream gets a new
// id, so a loaded chunk stays correct for as long as it is kept; whoever
// takes it recomputes the up-to-date and closed flags from its own
// snapshot.
//
// Cost bound: entries hold at most about budget bytes in all (a JSON chunk
// of one message larger than MaxChunkBytes can overshoot by that message).
// One that nobody takes within readAheadTTL (the reader stopped or went
// elsewhere) is dropped by its timer, so a wasted read-ahead costs one
// storage read and its memory for a moment.
//
// Concurrency: no lock. Entries live in a sync.Map, so readers of different
// streams never wait on each other; exactly one of take and expire removes
// an entry (LoadAndDelete, CompareAndDelete) and returns its bytes to the
// budget, reserved up front with an atomic add.
type readAhead struct {
	s       *Server
	budget  int64
	entries sync.Map // readAheadKey -> *readAheadEntry
	held    atomic.Int64

	started, hits, expired, skipped atomic.Uint64
	// misses counts takes that found no usable chunk (metrics).
	misses atomic.Uint64
}

const readAheadTTL = 2 * time.Second

type readAheadKey struct{ id, pos uint64 }

type readAheadEntry struct {
	loaded chan struct{} // closed once ch, err and size are set
	ch     chunk
	err    error
	size   int64 // bytes counted in readAhead.held
}

// readAheadStats counts what read-ahead did, for tests and diagnostics.
type readAheadStats struct {
	started, hits, expired, skipped uint64
}

func newReadAhead(s *Server, budget int) *readAhead {
	return &readAhead{s: s, budget: int64(budget)}
}

// take removes and returns the chunk loaded for (snap.ID, pos), waiting for
// a load still in flight, with its flags set from snap. ok is false when
// there is none, or its load failed (the caller reads normally and gets
// the error itself).
func (r *readAhead) take(snap *actors.Snapshot, pos uint64) (ch chunk, ok bool) {
	if r == nil {
		return chunk{}, false
	}
	v, found := r.entries.LoadAndDelete(readAheadKey{snap.ID, pos})
	if !found {
		r.misses.Add(1)
		return chunk{}, false
	}
	e := v.(*readAheadEntry)
	<-e.loaded
	r.held.Add(-e.size)
	if e.err != nil || e.ch.end > snap.Tail {
		// A failed load is redone by the caller, who then sees the error;
		// a chunk reaching past the caller's snapshot (loaded for a reader
		// with a newer one) is durable, but the caller reads only what its
		// snapshot covers.
		r.s.release(e.ch)
		r.misses.Add(1)
		return chunk{}, false
	}
	r.hits.Add(1)
	ch = e.ch
	ch.upToDate = ch.end == snap.Tail
	ch.closed = ch.upToDate && snap.Closed
	return ch, true
}

// start loads the chunk at pos (bounded by snap's tail) in the background,
// unless one is already loaded or loading there or the budget is spent.
func (r *readAhead) start(snap *actors.Snapshot, pos uint64) {
	if r == nil || pos >= snap.Tail {
		return
	}
	key := readAheadKey{snap.ID, pos}
	if _, dup := r.entries.Load(key); dup {
		return
	}
	e := &readAheadEntry{loaded: make(chan struct{}), size: int64(r.s.cfg.MaxChunkBytes)}
	if r.held.Add(e.size) > r.budget {
		r.held.Add(-e.size)
		r.skipped.Add(1)
		return
	}
	if _, dup := r.entries.LoadOrStore(key, e); dup {
		r.held.Add(-e.size)
		return
	}
	r.started.Add(1)
	snapCopy := *snap
	go func() {
		ch, err := r.s.readChunk(&snapCopy, pos)
		// Only a chunk longer than reserved (one JSON message above
		// MaxChunkBytes) grows the count; the pooled buffer's spare
		// capacity is the pool's, not read-ahead's.
		if size := int64(len(ch.body)); size > e.size {
			r.held.Add(size - e.size)
			e.size = size
		}
		e.ch, e.err = ch, err
		close(e.loaded)
		time.AfterFunc(readAheadTTL, func() { r.expire(key, e) })
	}()
}

// expire drops e if nobody has taken it.
func (r *readAhead) expire(key readAheadKey, e *readAheadEntry) {
	if !r.entries.CompareAndDelete(key, e) {
		return
	}
	r.held.Add(-e.size)
	r.expired.Add(1)
	r.s.release(e.ch)
}

// snapshot returns the counters and the bytes currently held.
func (r *readAhead) snapshot() (readAheadStats, int) {
	return readAheadStats{started: r.started.Load(), hits: r.hits.Load(), expired: r.expired.Load(), skipped: r.skipped.Load()},
		int(r.held.Load())
}
