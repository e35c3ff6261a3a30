package persistence

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/streamd/streamd/protocol"
)

// ErrClosed is returned by operations on a closed Store.
var ErrClosed = errors.New("persistence: store is closed")

// ErrNotBoundary is returned by ReadMessages when the start position falls
// inside a message rather than on a message boundary.
var ErrNotBoundary = errors.New("persistence: position is not a message boundary")

const (
	prefixMeta     = 'm'
	prefixData     = 'd'
	prefixProducer = 'p'
	prefixSystem   = 's'
	prefixExpiry   = 'x'

	// idBlock is how many stream ids are reserved per durable write of the
	// high-water mark, so creates rarely touch the counter key.
	idBlock = 1024
)

var idsKey = []byte{prefixSystem, 'i', 'd', 's'}

// Options configure Open.
type Options struct {
	// Dir is the database directory (ignored when FS is set to a MemFS).
	Dir string
	// FS overrides the filesystem; use vfs.NewMem() for --memory and tests.
	FS vfs.FS
	// Logger receives Pebble's own log lines; nil discards them.
	Logger *slog.Logger
	// CacheSize is Pebble's block cache size in bytes (0: 64 MiB).
	CacheSize int64
}

// Store is the single Pebble database holding all streams.
type Store struct {
	db *pebble.DB

	// mu guards closed: every operation holds it shared so Close (exclusive)
	// never pulls the database from under a read or commit, which would
	// panic inside Pebble.
	mu     sync.RWMutex
	closed bool

	syncs *syncCounters
	// writeCheck caches CheckWritable's probe (engine.go).
	writeCheck writeCheck

	idMu       sync.Mutex
	nextID     uint64 // next id to hand out
	reservedID uint64 // ids below this are covered by the durable high-water mark
}

// Meta is a stream's durable configuration and state, apart from its log and
// producer table.
type Meta struct {
	ID          uint64        `json:"id"`
	ContentType string        `json:"ct"`
	TTL         time.Duration `json:"ttl,omitempty"`
	HasTTL      bool          `json:"hasTtl,omitempty"`
	ExpiresAt   time.Time     `json:"exp,omitzero"`
	CreatedAt   time.Time     `json:"created"`
	// LastAccess anchors the sliding TTL across restarts.
	LastAccess time.Time `json:"access,omitzero"`
	Closed     bool      `json:"closed,omitempty"`
	// ClosedBy is the producer request that closed the stream, so that its
	// retry is recognised as a duplicate (§5.2.1).
	ClosedBy *ProducerRef `json:"closedBy,omitempty"`
	// LastSeq is the highest Stream-Seq accepted (§5.2), scoped per stream.
	LastSeq string `json:"seq,omitempty"`
	// NoProducers is true while the stream has no producer state, so Load
	// skips looking for it (an iterator, a third of the cost of loading a
	// passivated stream). Written in the batch that stores the first
	// producer state; metadata without the field is searched.
	NoProducers bool `json:"noProd,omitempty"`
	// Fork is set for a fork: where its inherited data comes from (see
	// forks.go).
	Fork *ForkInfo `json:"fork,omitempty"`
	// SoftDeleted marks a stream deleted while forks still read its data:
	// it answers 410, its path cannot be created again, and it is
	// collected when its last fork goes.
	SoftDeleted bool `json:"gone,omitempty"`
	// Segmented marks streams whose offset tokens carry their incarnation's
	// id (protocol.OffsetSegments): every stream created since. Streams
	// created earlier keep segment 0, so offsets clients saved before an
	// upgrade stay valid.
	Segmented bool `json:"segOff,omitempty"`
}

// OffsetSegments returns which segment each position's offset token carries.
func (m *Meta) OffsetSegments() protocol.OffsetSegments {
	o := protocol.OffsetSegments{Own: protocol.OwnSegment(m.ID, m.Segmented)}
	if m.Fork != nil {
		o.Inherited = m.Fork.Offsets
	}
	return o
}

// Layout returns where the stream's bytes are.
func (m *Meta) Layout() Layout {
	if m.Fork == nil {
		return Layout{ID: m.ID}
	}
	return Layout{Chain: m.Fork.Chain, ID: m.ID}
}

// Deadline returns when the stream expires as far as storage knows (the
// sliding TTL counts from LastAccess, or CreatedAt before any access), and
// whether it expires at all.
func (m *Meta) Deadline() (time.Time, bool) {
	if m.SoftDeleted {
		return time.Time{}, false // deleted already; collected, not expired
	}
	last := m.LastAccess
	if last.IsZero() {
		last = m.CreatedAt
	}
	return m.Expiry().Deadline(last)
}

// Expiry returns the stream's expiry configuration.
func (m *Meta) Expiry() protocol.Expiry {
	return protocol.Expiry{TTL: m.TTL, HasTTL: m.HasTTL, ExpiresAt: m.ExpiresAt}
}

// ExpiryEntry is one entry of the expiry index: streams that may have
// expired by Deadline. Entries can be stale (the stream was read since,
// deleted, or recreated with another id); whoever acts on an entry checks
// the stream itself and deletes the entry.
type ExpiryEntry struct {
	Deadline time.Time
	ID       uint64
	Path     string
}

// SameKey reports whether e and o are stored under the same index key.
func (e ExpiryEntry) SameKey(o ExpiryEntry) bool {
	return e.ID == o.ID && expiryNanos(e.Deadline) == expiryNanos(o.Deadline)
}

// ProducerRef names one producer request.
type ProducerRef struct {
	ID    string `json:"id"`
	Epoch uint64 `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

// ProducerState is what a stream remembers of an idempotent producer.
type ProducerState struct {
	Epoch   uint64 `json:"epoch"`
	LastSeq uint64 `json:"seq"`
	// Used is when the producer last wrote, in Unix seconds (0 in state
	// written before it was recorded); idle producers may be forgotten to
	// make room for new ones.
	Used int64 `json:"used,omitempty"`
}

// StreamState is everything needed to resume a stream: its metadata, tail
// position and producer table.
type StreamState struct {
	Meta      Meta
	Tail      uint64
	Producers map[string]ProducerState
}

// Open opens (creating if needed) the database.
func Open(opts Options) (*Store, error) {
	cache := opts.CacheSize
	if cache == 0 {
		cache = 64 << 20
	}
	c := pebble.NewCache(cache)
	defer c.Unref()
	fs := opts.FS
	if fs == nil {
		fs = vfs.Default
	}
	syncs := &syncCounters{}
	po := &pebble.Options{
		FS:                 syncCountingFS{FS: fs, c: syncs},
		Cache:              c,
		FormatMajorVersion: pebble.FormatNewest,
		MemTableSize:       64 << 20,
		Logger:             pebbleLogger{l: loggerOrDiscard(opts.Logger)},
	}
	// No block compression: catch-up reads dominate a stream server's work,
	// and decompressing every block on every cold read cost a third of the
	// CPU of a large read in profiles; stream payloads are also often
	// compressed by their producers already. Disk is the cheaper resource.
	po.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionNone })
	db, err := pebble.Open(opts.Dir, po)
	if err != nil {
		return nil, fmt.Errorf("open pebble at %q: %w", opts.Dir, err)
	}
	s := &Store{db: db, syncs: syncs}
	v, closer, err := db.Get(idsKey)
	switch {
	case err == nil:
		if len(v) == 8 {
			s.nextID = binary.BigEndian.Uint64(v)
		}
		closer.Close()
	case errors.Is(err, pebble.ErrNotFound):
	default:
		db.Close()
		return nil, fmt.Errorf("read stream id high-water mark: %w", err)
	}
	if s.nextID == 0 {
		s.nextID = 1 // id 0 is never used, so a zero Meta is recognisably empty
	}
	s.reservedID = s.nextID
	return s, nil
}

// Syncs returns the file syncs issued since Open.
func (s *Store) Syncs() SyncStats {
	return SyncStats{WAL: s.syncs.wal.Load(), All: s.syncs.all.Load(), WALTime: time.Duration(s.syncs.walNanos.Load())}
}

// Close flushes nothing (every acknowledged write is already synced) and
// releases the database.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrClosed
	}
	s.closed = true
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close pebble: %w", err)
	}
	return nil
}

// AllocateID returns a stream id never returned before by this database,
// including across crashes: ids are handed out from blocks whose upper bound
// is made durable before any id in the block is used.
func (s *Store) AllocateID() (uint64, error) {
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	s.idMu.Lock()
	defer s.idMu.Unlock()
	if s.nextID >= s.reservedID {
		var buf [8]byte
		binary.BigEndian.PutUint64(buf[:], s.nextID+idBlock)
		if err := s.db.Set(idsKey, buf[:], pebble.Sync); err != nil {
			return 0, fmt.Errorf("reserve stream ids: %w", err)
		}
		s.reservedID = s.nextID + idBlock
	}
	id := s.nextID
	s.nextID++
	return id, nil
}

// Load reads a stream's state by path. It returns (nil, nil) when no stream
// exists at path.
func (s *Store) Load(path string) (*StreamState, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	v, closer, err := s.db.Get(metaKey(path))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("load stream %q: %w", path, err)
	}
	st := &StreamState{}
	err = json.Unmarshal(v, &st.Meta)
	closer.Close()
	if err != nil {
		return nil, fmt.Errorf("decode metadata of stream %q: %w", path, err)
	}
	if st.Tail, err = s.tail(st.Meta.ID); err != nil {
		return nil, fmt.Errorf("load stream %q: %w", path, err)
	}
	if f := st.Meta.Fork; f != nil && st.Tail < f.Base {
		st.Tail = f.Base // a fork without data of its own yet
	}
	if !st.Meta.NoProducers {
		if st.Producers, err = s.producers(st.Meta.ID); err != nil {
			return nil, fmt.Errorf("load stream %q: %w", path, err)
		}
	}
	return st, nil
}

// tail is the end position of the last record of stream id.
func (s *Store) tail(id uint64) (uint64, error) { return tailIn(s.db, id) }

// tailIn is tail as r (the database or a snapshot of it) sees it.
func tailIn(r pebble.Reader, id uint64) (uint64, error) {
	it, err := r.NewIter(&pebble.IterOptions{LowerBound: dataKey(id, 0), UpperBound: dataKey(id+1, 0)})
	if err != nil {
		return 0, err
	}
	defer it.Close()
	if !it.Last() {
		return 0, it.Error()
	}
	pos := binary.BigEndian.Uint64(it.Key()[9:])
	v, err := it.ValueAndErr()
	if err != nil {
		return 0, err
	}
	return pos + uint64(len(v)), nil
}

func (s *Store) producers(id uint64) (map[string]ProducerState, error) {
	lo := producerPrefix(id)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: producerPrefix(id + 1)})
	if err != nil {
		return nil, err
	}
	defer it.Close()
	var m map[string]ProducerState
	for ok := it.First(); ok; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, err
		}
		var ps ProducerState
		if err := json.Unmarshal(v, &ps); err != nil {
			return nil, fmt.Errorf("decode producer state: %w", err)
		}
		if m == nil {
			m = make(map[string]ProducerState)
		}
		m[string(it.Key()[len(lo):])] = ps
	}
	return m, it.Error()
}

// ReadBytes returns the bytes of stream id in [from, min(upto, from+max)),
// splitting records where the range requires. upto must not exceed the
// stream's durable tail: Pebble makes a batch visible before its WAL is
// synced, so readers are bounded by the tail their stream actor has seen
// committed (see package actors).
func (s *Store) ReadBytes(id, from, upto uint64, max int) ([]byte, error) {
	return s.AppendBytes(nil, id, from, upto, max)
}

// AppendBytes is ReadBytes appending to dst, so callers can reuse buffers
// across reads (a catch-up read is up to --max-chunk-bytes; allocating and
// zeroing one per response showed up as a fifth of CPU in profiles).
func (s *Store) AppendBytes(dst []byte, id, from, upto uint64, max int) ([]byte, error) {
	if from >= upto {
		return dst, nil
	}
	max = clampMax(max)
	if end := from + uint64(max); end < upto {
		upto = end
	}
	out := dst
	if out == nil {
		out = make([]byte, 0, upto-from)
	}
	err := s.scan(id, from, upto, func(pos uint64, v []byte) bool {
		lo, hi := uint64(0), uint64(len(v))
		if pos < from {
			lo = from - pos
		}
		if pos+hi > upto {
			hi = upto - pos
		}
		if lo < hi {
			out = append(out, v[lo:hi]...)
		}
		return pos+uint64(len(v)) < upto
	})
	if err != nil {
		return nil, fmt.Errorf("read stream %d at %d: %w", id, from, err)
	}
	return out, nil
}

// ReadMessages returns whole records of stream id starting exactly at from
// and ending at or before upto, stopping once max bytes are collected (at
// least one record is returned when any exists). It returns the messages and
// the position after the last one.
func (s *Store) ReadMessages(id, from, upto uint64, max int) ([][]byte, uint64, error) {
	msgs, end, _, err := s.readMessages(id, from, upto, clampMax(max), true)
	if err != nil {
		return nil, from, err
	}
	return msgs, end, nil
}

// readMessages is ReadMessages returning the bytes read too; with
// atLeastOne false, a first record larger than max is not read either.
func (s *Store) readMessages(id, from, upto uint64, max int, atLeastOne bool) ([][]byte, uint64, int, error) {
	if from >= upto {
		return nil, from, 0, nil
	}
	var msgs [][]byte
	end, size := from, 0
	var bad bool
	err := s.scan(id, from, upto, func(pos uint64, v []byte) bool {
		if pos != end {
			bad = true
			return false
		}
		if pos+uint64(len(v)) > upto || ((len(msgs) > 0 || !atLeastOne) && size+len(v) > max) {
			return false
		}
		msgs = append(msgs, append([]byte(nil), v...))
		size += len(v)
		end = pos + uint64(len(v))
		return end < upto
	})
	if err != nil {
		return nil, from, 0, fmt.Errorf("read stream %d at %d: %w", id, from, err)
	}
	if bad {
		return nil, from, 0, ErrNotBoundary
	}
	return msgs, end, size, nil
}

// scan visits the records of stream id overlapping [from, upto) in order,
// starting with the record containing from, until fn returns false.
func (s *Store) scan(id, from, upto uint64, fn func(pos uint64, v []byte) bool) error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: dataKey(id, 0), UpperBound: dataKey(id, upto)})
	if err != nil {
		return err
	}
	defer it.Close()
	// Reads almost always start on a record boundary (offsets come from
	// earlier responses), and a forward seek is far cheaper than a backward
	// one: SeekLT makes Pebble decode the block and clone the value it lands
	// on. Only a read starting inside a record (the next chunk of an append
	// larger than --max-chunk-bytes) needs to step back.
	ok := it.SeekGE(dataKey(id, from))
	if !ok || binary.BigEndian.Uint64(it.Key()[9:]) != from {
		if ok = it.SeekLT(dataKey(id, from+1)); !ok {
			ok = it.First()
		}
	}
	for ; ok; ok = it.Next() {
		pos := binary.BigEndian.Uint64(it.Key()[9:])
		v, err := it.ValueAndErr()
		if err != nil {
			return err
		}
		if pos+uint64(len(v)) <= from {
			continue // record ends before the range starts
		}
		if !fn(pos, v) {
			break
		}
	}
	return it.Error()
}

// ExpiredEntries returns up to limit expiry index entries whose deadline is
// at or before now, in deadline order, starting after the entry after (nil:
// from the first), so a caller can page past entries it skips.
func (s *Store) ExpiredEntries(now time.Time, after *ExpiryEntry, limit int) ([]ExpiryEntry, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	lower := []byte{prefixExpiry}
	if after != nil {
		// The smallest key greater than after's.
		lower = append(expiryKey(after.Deadline, after.ID), 0)
	}
	// Exclusive bound: every entry with a deadline at or before now.
	upper := expiryKey(now.Add(time.Nanosecond), 0)
	if bytes.Compare(lower, upper) >= 0 {
		return nil, nil
	}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: upper})
	if err != nil {
		return nil, fmt.Errorf("scan expiry index: %w", err)
	}
	defer it.Close()
	var out []ExpiryEntry
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		k := it.Key()
		if len(k) != 17 {
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("scan expiry index: %w", err)
		}
		out = append(out, ExpiryEntry{
			Deadline: time.Unix(0, int64(binary.BigEndian.Uint64(k[1:9]))),
			ID:       binary.BigEndian.Uint64(k[9:17]),
			Path:     string(v),
		})
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("scan expiry index: %w", err)
	}
	return out, nil
}

// acquire takes the shared lock unless the store is closed; the caller
// releases it with s.mu.RUnlock.
func (s *Store) acquire() error {
	s.mu.RLock()
	if s.closed {
		s.mu.RUnlock()
		return ErrClosed
	}
	return nil
}

// clampMax makes a read limit usable: every read returns at least one byte
// (or record) so that paging always progresses.
func clampMax(max int) int {
	if max < 1 {
		return 1
	}
	return max
}

// Batch accumulates one atomic, synced write.
type Batch struct {
	s *Store
	b *pebble.Batch
}

// NewBatch starts a write batch. Building a batch does not touch the
// database, so it needs no lock; Commit does.
func (s *Store) NewBatch() *Batch { return &Batch{s: s, b: s.db.NewBatch()} }

// PutMeta writes a stream's metadata.
// Streams that expire also get an expiry index entry for their current
// deadline, so expired streams can be found without scanning every stream.
func (b *Batch) PutMeta(path string, m *Meta) error {
	v, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("encode metadata of stream %q: %w", path, err)
	}
	if err := b.b.Set(metaKey(path), v, nil); err != nil {
		return err
	}
	if d, ok := m.Deadline(); ok {
		return b.b.Set(expiryKey(d, m.ID), []byte(path), nil)
	}
	return nil
}

// DeleteExpiryEntry removes one expiry index entry.
func (b *Batch) DeleteExpiryEntry(e ExpiryEntry) error {
	return b.b.Delete(expiryKey(e.Deadline, e.ID), nil)
}

// Append writes one record of stream id at position pos.
func (b *Batch) Append(id, pos uint64, data []byte) error {
	return b.b.Set(dataKey(id, pos), data, nil)
}

// PutProducer writes one producer's state for stream id.
func (b *Batch) PutProducer(id uint64, producer string, ps ProducerState) error {
	v, err := json.Marshal(ps)
	if err != nil {
		return fmt.Errorf("encode producer state: %w", err)
	}
	return b.b.Set(append(producerPrefix(id), producer...), v, nil)
}

// DeleteProducer forgets one producer of stream id.
func (b *Batch) DeleteProducer(id uint64, producer string) error {
	return b.b.Delete(append(producerPrefix(id), producer...), nil)
}

// DeleteStream removes the stream at path with id: metadata, log and
// producers. Range deletions make this O(1) regardless of stream size.
func (b *Batch) DeleteStream(path string, id uint64) error {
	if err := b.b.Delete(metaKey(path), nil); err != nil {
		return err
	}
	if err := b.b.DeleteRange(dataKey(id, 0), dataKey(id+1, 0), nil); err != nil {
		return err
	}
	return b.b.DeleteRange(producerPrefix(id), producerPrefix(id+1), nil)
}

// Empty reports whether the batch holds no writes.
func (b *Batch) Empty() bool { return b.b.Empty() }

// Commit writes the batch durably: it returns only after the WAL is synced.
// Concurrent commits share fsyncs through Pebble's commit pipeline.
func (b *Batch) Commit() error {
	if err := b.s.acquire(); err != nil {
		return err
	}
	defer b.s.mu.RUnlock()
	if err := b.b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("commit batch: %w", err)
	}
	return nil
}

// Close releases the batch; it must be called after Commit or on abandon.
func (b *Batch) Close() { _ = b.b.Close() }

func metaKey(path string) []byte {
	k := make([]byte, 0, 1+len(path))
	return append(append(k, prefixMeta), path...)
}

func dataKey(id, pos uint64) []byte {
	k := make([]byte, 17)
	k[0] = prefixData
	binary.BigEndian.PutUint64(k[1:], id)
	binary.BigEndian.PutUint64(k[9:], pos)
	return k
}

// expiryKey orders entries by deadline (see expiryNanos) then id.
func expiryKey(deadline time.Time, id uint64) []byte {
	k := make([]byte, 17)
	k[0] = prefixExpiry
	binary.BigEndian.PutUint64(k[1:], expiryNanos(deadline))
	binary.BigEndian.PutUint64(k[9:], id)
	return k
}

// expiryNanos is a deadline in Unix nanoseconds, clamped to [0, MaxInt64]
// without overflow (time.UnixNano is undefined outside 1678-2262). Earlier
// deadlines are due at once in any case; a later one (refused at the API,
// but possible in metadata written before that check) must sort last rather
// than wrap around and come due at once, forever.
func expiryNanos(deadline time.Time) uint64 {
	switch {
	case deadline.Before(time.Unix(0, 0)):
		return 0
	case deadline.After(time.Unix(0, math.MaxInt64)):
		return math.MaxInt64
	}
	return uint64(deadline.UnixNano())
}

func producerPrefix(id uint64) []byte {
	k := make([]byte, 9, 9+32)
	k[0] = prefixProducer
	binary.BigEndian.PutUint64(k[1:], id)
	return k
}

func loggerOrDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}

// pebbleLogger routes Pebble's printf-style logging into slog. Pebble's
// informational chatter goes to Debug so streamd stays quiet by default.
type pebbleLogger struct{ l *slog.Logger }

func (p pebbleLogger) Infof(format string, args ...any) {
	p.l.Debug(fmt.Sprintf(format, args...), "lib", "pebble")
}
func (p pebbleLogger) Errorf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "lib", "pebble")
}
func (p pebbleLogger) Fatalf(format string, args ...any) {
	p.l.Error(fmt.Sprintf(format, args...), "lib", "pebble")
	panic(fmt.Sprintf(format, args...))
}
