package actors

import (
	"hash/maphash"
	"time"

	"github.com/streamd/streamd/persistence"
)

// Resting state: a passivating stream actor hands its settled state to the
// supervisor, which gives it to the stream's next incarnation, so that
// reactivating a passivated stream costs a map lookup instead of a Pebble
// point read plus a reverse seek for the tail. On a node with a million
// streams, where the actor soft limit passivates actors after one idle
// second, those loads missed Pebble's block cache and took a third of the
// server's CPU (~60 µs each).
//
// Coherence invariant: only a stream's actor writes the stream's durable
// state, and the supervisor spawns the next incarnation of a path only after
// the previous one has stopped and reported (actorStopped, carrying the
// state). Between those two points nothing can change the stream, so an
// entry is exactly what Store.Load would return; spawn takes it out, so it
// is used once. Entries live in memory only: after a restart every stream
// loads from Pebble once.
//
// Entries are pointer-free (times as Unix nanoseconds, the content type as
// an index into a small interned table) so a million of them add little to
// the garbage collector's work. Streams with state that does not fit (an
// idempotent producer table, a Stream-Seq, a producer-closed stream, an
// unusual content type beyond the table) are not kept and load from Pebble.

// restingEntryBytes approximates one entry's memory: its slot in the index
// map with control bytes and spare capacity, and its slab record (measured:
// a million entries took 118 bytes each).
const restingEntryBytes = 120

// maxRestingContentTypes bounds the interned content type table (it is
// never pruned, and clients choose content types); streams with further
// content types are not kept.
const maxRestingContentTypes = 4096

const (
	restExists uint8 = 1 << iota
	restHasTTL
	restClosed
	restNoProducers
	restSegmented // persistence.Meta.Segmented
)

// restingState is the state of one passivated stream (or the knowledge that
// no stream exists at the path): 56 bytes, no pointers.
type restingState struct {
	id, tail                         uint64
	createdAt, lastAccess, expiresAt int64 // Unix ns; 0 is the zero time
	ttl                              time.Duration
	contentType                      uint16
	expiresAtZone                    int16 // minutes east of UTC, kept for Expires-At's formatting
	flags                            uint8
}

// restingKey identifies a path by two independent 64-bit hashes with seeds
// chosen at random per process: two paths share a key with probability
// about 2^-128 per pair, which an outside party cannot raise without the
// seeds. Keys rather than the paths themselves keep the index free of
// pointers, so a million entries add nothing to the garbage collector's
// marking and need no allocation each (with path strings as keys, a run at
// a million streams peaked at 1,052 MiB RSS against 931 MiB, and appended
// 6 % slower).
type restingKey [2]uint64

// restingStates holds the state of passivated streams, bounded by bytes.
// It belongs to the supervisor and is used from its goroutine only.
//
// Records live in one slab indexed from the map: a map of 56-byte records
// costs about half as much again in slots and spare capacity.
type restingStates struct {
	budget int64 // bytes; 0 or less disables
	seeds  [2]maphash.Seed
	index  map[restingKey]uint32 // slab position
	slab   []restingState
	free   []uint32 // unused slab positions

	contentTypes []string
	typeIndex    map[string]uint16
}

func newRestingStates(budget int64) *restingStates {
	return &restingStates{budget: budget, seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}}
}

func (r *restingStates) key(path string) restingKey {
	return restingKey{maphash.String(r.seeds[0], path), maphash.String(r.seeds[1], path)}
}

// used is the memory the entries account for.
func (r *restingStates) used() int64 { return int64(len(r.index)) * restingEntryBytes }

// put records the state of path's stream as its actor stops; st nil means
// no stream exists there. A state that cannot be kept drops any entry.
func (r *restingStates) put(path string, st *persistence.StreamState) {
	k := r.key(path)
	rs, ok := r.encode(st)
	if !ok || r.budget < restingEntryBytes {
		r.drop(k)
		return
	}
	if i, exists := r.index[k]; exists {
		r.slab[i] = rs
		return
	}
	// Evict arbitrary entries (map iteration starts at a random place)
	// until the new one fits: with streams touched at random any choice is
	// as good, and this one costs nothing to track.
	for r.used()+restingEntryBytes > r.budget {
		for victim := range r.index {
			r.drop(victim)
			break
		}
	}
	if r.index == nil {
		r.index = make(map[restingKey]uint32)
	}
	var i uint32
	if n := len(r.free); n > 0 {
		i, r.free = r.free[n-1], r.free[:n-1]
		r.slab[i] = rs
	} else {
		i = uint32(len(r.slab))
		r.slab = append(r.slab, rs)
	}
	r.index[k] = i
}

// take removes and returns path's entry: the state and whether there was
// one (a nil state with ok means no stream exists at path).
func (r *restingStates) take(path string) (st *persistence.StreamState, ok bool) {
	k := r.key(path)
	i, ok := r.index[k]
	if !ok {
		return nil, false
	}
	st = r.decode(r.slab[i])
	r.drop(k)
	return st, true
}

// forget drops path's entry, if any.
func (r *restingStates) forget(path string) { r.drop(r.key(path)) }

func (r *restingStates) drop(k restingKey) {
	i, ok := r.index[k]
	if !ok {
		return
	}
	delete(r.index, k)
	if len(r.index) == 0 {
		// Empty: give the memory back rather than keep the peak's slab.
		r.index, r.slab, r.free = nil, nil, nil
		return
	}
	r.free = append(r.free, i)
}

// len is the number of entries.
func (r *restingStates) len() int { return len(r.index) }

func (r *restingStates) encode(st *persistence.StreamState) (restingState, bool) {
	if st == nil {
		return restingState{}, true
	}
	m := &st.Meta
	if len(st.Producers) > 0 || m.ClosedBy != nil || m.LastSeq != "" || m.Fork != nil || m.SoftDeleted {
		return restingState{}, false
	}
	if !nanoRange(m.CreatedAt) || !nanoRange(m.LastAccess) || !nanoRange(m.ExpiresAt) {
		return restingState{}, false // e.g. an Expires-At in the year 9999
	}
	ct, ok := r.intern(m.ContentType)
	if !ok {
		return restingState{}, false
	}
	rs := restingState{
		id: m.ID, tail: st.Tail, ttl: m.TTL, contentType: ct, flags: restExists,
		createdAt: unixNano(m.CreatedAt), lastAccess: unixNano(m.LastAccess), expiresAt: unixNano(m.ExpiresAt),
	}
	if !m.ExpiresAt.IsZero() {
		_, off := m.ExpiresAt.Zone()
		if off%60 != 0 {
			return restingState{}, false // RFC 3339 offsets are whole minutes
		}
		rs.expiresAtZone = int16(off / 60)
	}
	if m.HasTTL {
		rs.flags |= restHasTTL
	}
	if m.Closed {
		rs.flags |= restClosed
	}
	if m.NoProducers {
		rs.flags |= restNoProducers
	}
	if m.Segmented {
		rs.flags |= restSegmented
	}
	return rs, true
}

func (r *restingStates) decode(rs restingState) *persistence.StreamState {
	if rs.flags&restExists == 0 {
		return nil
	}
	st := &persistence.StreamState{Tail: rs.tail, Meta: persistence.Meta{
		ID: rs.id, ContentType: r.contentTypes[rs.contentType], TTL: rs.ttl,
		HasTTL: rs.flags&restHasTTL != 0, Closed: rs.flags&restClosed != 0, NoProducers: rs.flags&restNoProducers != 0,
		Segmented: rs.flags&restSegmented != 0,
		CreatedAt: fromUnixNano(rs.createdAt), LastAccess: fromUnixNano(rs.lastAccess),
	}}
	if rs.expiresAt != 0 {
		zone := time.UTC
		if rs.expiresAtZone != 0 {
			zone = time.FixedZone("", int(rs.expiresAtZone)*60)
		}
		st.Meta.ExpiresAt = time.Unix(0, rs.expiresAt).In(zone)
	}
	return st
}

func (r *restingStates) intern(ct string) (uint16, bool) {
	if i, ok := r.typeIndex[ct]; ok {
		return i, true
	}
	if len(r.contentTypes) >= maxRestingContentTypes {
		return 0, false
	}
	if r.typeIndex == nil {
		r.typeIndex = make(map[string]uint16)
	}
	i := uint16(len(r.contentTypes))
	r.contentTypes = append(r.contentTypes, ct)
	r.typeIndex[ct] = i
	return i, true
}

// nanoRange reports whether t is zero or representable in Unix nanoseconds
// (years 1678 to 2262) other than 0, which stands for the zero time: an
// Expires-At of exactly 1970-01-01T00:00:00Z kept as 0 would come back as
// no expiry at all.
func nanoRange(t time.Time) bool {
	return t.IsZero() || (t.Year() > 1678 && t.Year() < 2262 && t.UnixNano() != 0)
}

func unixNano(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromUnixNano(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
