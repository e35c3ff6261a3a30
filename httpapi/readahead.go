package httpapi

import (
	"sync"
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
type readAhead struct {
	s      *Server
	budget int

	mu      sync.Mutex
	entries map[readAheadKey]*readAheadEntry
	held    int // bytes reserved by entries (MaxChunkBytes each until loaded)
	stats   readAheadStats
}

const readAheadTTL = 2 * time.Second

type readAheadKey struct{ id, pos uint64 }

type readAheadEntry struct {
	loaded chan struct{} // closed once ch and err are set
	ch     chunk
	err    error
	size   int // bytes counted in readAhead.held; guarded by readAhead.mu
}

// readAheadStats counts what read-ahead did, for tests and diagnostics.
type readAheadStats struct {
	started, hits, expired, skipped uint64
}

func newReadAhead(s *Server, budget int) *readAhead {
	return &readAhead{s: s, budget: budget, entries: make(map[readAheadKey]*readAheadEntry)}
}

// take removes and returns the chunk loaded for (snap.ID, pos), waiting for
// a load still in flight, with its flags set from snap. ok is false when
// there is none, or its load failed (the caller reads normally and gets
// the error itself).
func (r *readAhead) take(snap *actors.Snapshot, pos uint64) (ch chunk, ok bool) {
	if r == nil {
		return chunk{}, false
	}
	key := readAheadKey{snap.ID, pos}
	r.mu.Lock()
	e := r.entries[key]
	if e != nil {
		delete(r.entries, key)
		r.stats.hits++
	}
	r.mu.Unlock()
	if e == nil {
		return chunk{}, false
	}
	<-e.loaded
	r.mu.Lock()
	r.held -= e.size
	r.mu.Unlock()
	if e.err != nil || e.ch.end > snap.Tail {
		// A failed load is redone by the caller, who then sees the error;
		// a chunk reaching past the caller's snapshot (loaded for a reader
		// with a newer one) is durable, but the caller reads only what its
		// snapshot covers.
		r.s.release(e.ch)
		return chunk{}, false
	}
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
	e := &readAheadEntry{loaded: make(chan struct{}), size: r.s.cfg.MaxChunkBytes}
	r.mu.Lock()
	if _, dup := r.entries[key]; dup || r.held+e.size > r.budget {
		if !dup {
			r.stats.skipped++
		}
		r.mu.Unlock()
		return
	}
	r.entries[key] = e
	r.held += e.size
	r.stats.started++
	r.mu.Unlock()
	snapCopy := *snap
	go func() {
		ch, err := r.s.readChunk(&snapCopy, pos)
		r.mu.Lock()
		if size := cap(ch.body); size > e.size {
			r.held += size - e.size
			e.size = size
		}
		r.mu.Unlock()
		e.ch, e.err = ch, err
		close(e.loaded)
		time.AfterFunc(readAheadTTL, func() { r.expire(key, e) })
	}()
}

// expire drops e if nobody has taken it.
func (r *readAhead) expire(key readAheadKey, e *readAheadEntry) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.entries[key] != e {
		return
	}
	delete(r.entries, key)
	r.held -= e.size
	r.stats.expired++
	r.s.release(e.ch)
}

// snapshot returns the counters and the bytes currently held.
func (r *readAhead) snapshot() (readAheadStats, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.stats, r.held
}
