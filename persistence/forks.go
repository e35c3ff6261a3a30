package persistence

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"

	"github.com/streamd/streamd/protocol"
)

// Forks share their source's data instead of copying it. A fork's own
// records are keyed by its own id, at positions from its base on; the
// positions below the base read through its chain: the same positions of
// the streams it inherits from, each up to where the next one took over.
// Offsets are therefore shared along a fork chain, and creating a fork of
// a stream of any size writes a few small keys.
//
// An inherited stream's data must outlive every fork reading it. Each fork
// incarnation keeps a reference key, 'r' | source id | fork id -> fork
// path, written in the batch that creates the fork and deleted in the one
// that deletes it, so a reference exists exactly while its fork does. A
// stream deleted while references to it exist is soft-deleted (its
// metadata stays, marked, and a 'g' | id -> path key lists it for
// collection) and collected once the last reference is gone.

// ErrShortSource reports a fork point past the source's data: a
// Stream-Fork-Sub-Offset naming more bytes or messages than there are
// before the next data boundary.
var ErrShortSource = errors.New("persistence: fork point past the source's data")

const (
	prefixForkRef     = 'r'
	prefixSoftDeleted = 'g'
)

// Segment is one stream's part of a fork's inherited data: the positions
// below End, and at or past the previous segment's End, are stream ID's.
type Segment struct {
	ID  uint64 `json:"id"`
	End uint64 `json:"end"`
}

// ForkInfo is what a fork remembers of its creation.
type ForkInfo struct {
	// SourcePath and SourceID name the stream forked (the incarnation
	// holding this fork's reference).
	SourcePath string `json:"src"`
	SourceID   uint64 `json:"srcId"`
	// Offset and SubOffset are the fork point as requested
	// (Stream-Fork-Offset, resolved to a position, and
	// Stream-Fork-Sub-Offset); Base is the position it names, where the
	// fork's own data begins.
	Offset    uint64 `json:"off"`
	SubOffset uint64 `json:"sub,omitempty"`
	Base      uint64 `json:"base"`
	// Chain is the inherited data, oldest segment first; it ends at Base.
	Chain []Segment `json:"chain,omitempty"`
	// Offsets are the offset segments of the positions up to and including
	// Base, as the source's tokens carry them (nil for forks created before
	// offsets carried segments: segment 0, as their sources had).
	Offsets []protocol.SegmentEnd `json:"offs,omitempty"`
}

// Layout is where a stream's bytes are: its inherited segments, then its
// own records (stream ID) from the last segment's End on.
type Layout struct {
	Chain []Segment
	ID    uint64
}

// ForkChain returns the chain of a fork of the stream with this layout at
// base: the layout's segments below base, the last one cut at base.
func (l Layout) ForkChain(base uint64) []Segment {
	var out []Segment
	start := uint64(0)
	for _, seg := range append(l.Chain, Segment{ID: l.ID, End: ^uint64(0)}) {
		if start >= base {
			break
		}
		if seg.End > start {
			out = append(out, Segment{ID: seg.ID, End: min(seg.End, base)})
		}
		start = seg.End
	}
	return out
}

// spans calls fn with the part of [from, upto) in each stream of the
// layout, in order, until fn returns false.
func (l Layout) spans(from, upto uint64, fn func(id, from, upto uint64) bool) {
	start := uint64(0)
	for _, seg := range l.Chain {
		if from < seg.End && start < upto {
			if !fn(seg.ID, max(from, start), min(upto, seg.End)) {
				return
			}
		}
		start = seg.End
	}
	if from < upto && upto > start {
		fn(l.ID, max(from, start), upto)
	}
}

// AppendBytesLayout is AppendBytes over a layout: the bytes of [from,
// min(upto, from+max)) wherever along the chain they are.
func (s *Store) AppendBytesLayout(dst []byte, l Layout, from, upto uint64, max int) ([]byte, error) {
	if len(l.Chain) == 0 {
		return s.AppendBytes(dst, l.ID, from, upto, max)
	}
	if from >= upto {
		return dst, nil
	}
	max = clampMax(max)
	if end := from + uint64(max); end < upto {
		upto = end
	}
	if dst == nil {
		dst = make([]byte, 0, upto-from)
	}
	var err error
	l.spans(from, upto, func(id, lo, hi uint64) bool {
		dst, err = s.AppendBytes(dst, id, lo, hi, int(hi-lo))
		return err == nil
	})
	return dst, err
}

// ReadMessagesLayout is ReadMessages over a layout: whole records from
// exactly from, across the chain, up to max bytes (at least one record).
func (s *Store) ReadMessagesLayout(l Layout, from, upto uint64, max int) ([][]byte, uint64, error) {
	if len(l.Chain) == 0 {
		return s.ReadMessages(l.ID, from, upto, max)
	}
	max = clampMax(max)
	var msgs [][]byte
	end, size := from, 0
	var err error
	l.spans(from, upto, func(id, lo, hi uint64) bool {
		if lo != end {
			return false // the previous span stopped early
		}
		var got [][]byte
		var n int
		got, end, n, err = s.readMessages(id, lo, hi, max-size, len(msgs) == 0)
		msgs = append(msgs, got...)
		size += n
		return err == nil && end == hi && size < max
	})
	if err != nil {
		return nil, from, err
	}
	return msgs, end, nil
}

// RecordEnd returns the end of the record of layout l that holds pos, as
// the layout shows it (a record inherited up to a fork point ends there),
// or pos itself at the tail.
func (s *Store) RecordEnd(l Layout, pos, tail uint64) (uint64, error) {
	if pos >= tail {
		return pos, nil
	}
	end := pos
	var err error
	l.spans(pos, tail, func(id, lo, hi uint64) bool {
		err = s.scan(id, lo, hi, func(p uint64, v []byte) bool {
			end = min(p+uint64(len(v)), hi)
			return false
		})
		return false
	})
	if err != nil {
		return pos, fmt.Errorf("find record at %d: %w", pos, err)
	}
	return end, nil
}

// MessagesEnd returns the position after the n records of layout l that
// start at pos, which must be a record boundary (ErrNotBoundary); fewer
// than n records before tail is ErrShortSource.
func (s *Store) MessagesEnd(l Layout, pos, n, tail uint64) (uint64, error) {
	if pos > tail {
		return pos, ErrShortSource
	}
	if pos < tail {
		if start, err := s.recordStart(l, pos, tail); err != nil {
			return pos, err
		} else if start != pos {
			return pos, ErrNotBoundary
		}
	}
	end := pos
	for i := uint64(0); i < n; i++ {
		if end >= tail {
			return pos, ErrShortSource
		}
		next, err := s.RecordEnd(l, end, tail)
		if err != nil {
			return pos, err
		}
		end = next
	}
	return end, nil
}

// recordStart returns where the record holding pos starts in the
// layout's view: a record inherited from an earlier stream starts, for
// this layout, no earlier than the segment it is read from.
func (s *Store) recordStart(l Layout, pos, tail uint64) (uint64, error) {
	id, segStart, segEnd := l.segmentAt(pos)
	start := pos
	err := s.scan(id, pos, min(segEnd, tail), func(p uint64, _ []byte) bool {
		start = max(p, segStart)
		return false
	})
	return start, err
}

// segmentAt returns the stream holding position pos and the range of the
// layout it is read from.
func (l Layout) segmentAt(pos uint64) (id, start, end uint64) {
	for _, seg := range l.Chain {
		if pos < seg.End {
			return seg.ID, start, seg.End
		}
		start = seg.End
	}
	return l.ID, start, ^uint64(0)
}

// PutForkRef records that fork child (at childPath) reads stream parent's
// data; written in the batch creating the fork.
func (b *Batch) PutForkRef(parent, child uint64, childPath string) error {
	return b.b.Set(forkRefKey(parent, child), []byte(childPath), nil)
}

// DeleteForkRef removes fork child's reference to parent; written in the
// batch deleting the fork.
func (b *Batch) DeleteForkRef(parent, child uint64) error {
	return b.b.Delete(forkRefKey(parent, child), nil)
}

// PutSoftDeleted lists stream id (at path) as soft-deleted, to collect.
func (b *Batch) PutSoftDeleted(id uint64, path string) error {
	return b.b.Set(softDeletedKey(id), []byte(path), nil)
}

// DeleteSoftDeleted removes stream id from the soft-deleted list.
func (b *Batch) DeleteSoftDeleted(id uint64) error {
	return b.b.Delete(softDeletedKey(id), nil)
}

// HasForkRefs reports whether any fork references stream id.
func (s *Store) HasForkRefs(id uint64) (bool, error) {
	if err := s.acquire(); err != nil {
		return false, err
	}
	defer s.mu.RUnlock()
	lo := forkRefKey(id, 0)
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: forkRefKey(id+1, 0)})
	if err != nil {
		return false, fmt.Errorf("read fork references of stream %d: %w", id, err)
	}
	defer it.Close()
	found := it.First()
	if err := it.Error(); err != nil {
		return false, fmt.Errorf("read fork references of stream %d: %w", id, err)
	}
	return found, nil
}

// SoftDeletedEntry is one soft-deleted stream awaiting collection.
type SoftDeletedEntry struct {
	ID   uint64
	Path string
}

// SoftDeleted returns up to limit soft-deleted streams with ids above
// after, in id order.
func (s *Store) SoftDeleted(after uint64, limit int) ([]SoftDeletedEntry, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: softDeletedKey(after + 1), UpperBound: []byte{prefixSoftDeleted + 1}})
	if err != nil {
		return nil, fmt.Errorf("scan soft-deleted streams: %w", err)
	}
	defer it.Close()
	var out []SoftDeletedEntry
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		k := it.Key()
		if len(k) != 9 {
			continue
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("scan soft-deleted streams: %w", err)
		}
		out = append(out, SoftDeletedEntry{ID: binary.BigEndian.Uint64(k[1:]), Path: string(v)})
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("scan soft-deleted streams: %w", err)
	}
	return out, nil
}

func forkRefKey(parent, child uint64) []byte {
	k := make([]byte, 17)
	k[0] = prefixForkRef
	binary.BigEndian.PutUint64(k[1:], parent)
	binary.BigEndian.PutUint64(k[9:], child)
	return k
}

func softDeletedKey(id uint64) []byte {
	k := make([]byte, 9)
	k[0] = prefixSoftDeleted
	binary.BigEndian.PutUint64(k[1:], id)
	return k
}
