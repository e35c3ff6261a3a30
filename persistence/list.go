package persistence

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/cockroachdb/pebble/v2"
)

// Listed is one stream as List reports it.
type Listed struct {
	Path string
	Meta Meta
	// Tail is the end of the stream's data in storage. It may include a
	// write whose commit is still in progress, so it is an operator's view,
	// never an offset to serve readers (see ReadBytes).
	Tail uint64
}

// maxListLimit bounds one page of List.
const maxListLimit = 10_000

// List returns up to limit streams whose paths start with prefix and sort
// after after (exclusive; "" starts at the beginning), in path order, and
// whether more follow. Soft-deleted streams are left out: they no longer
// exist for clients. Each call reads one consistent snapshot.
func (s *Store) List(prefix, after string, limit int) ([]Listed, bool, error) {
	if limit <= 0 || limit > maxListLimit {
		limit = maxListLimit
	}
	if err := s.acquire(); err != nil {
		return nil, false, err
	}
	defer s.mu.RUnlock()
	snap := s.db.NewSnapshot()
	defer snap.Close()
	lower := metaKey(prefix)
	if after != "" && after >= prefix {
		lower = append(metaKey(after), 0) // the first key after after
	}
	it, err := snap.NewIter(&pebble.IterOptions{LowerBound: lower, UpperBound: prefixEnd(metaKey(prefix))})
	if err != nil {
		return nil, false, fmt.Errorf("list streams under %q: %w", prefix, err)
	}
	defer it.Close()
	var out []Listed
	for ok := it.First(); ok; ok = it.Next() {
		path := string(it.Key()[1:])
		if !strings.HasPrefix(path, prefix) {
			break
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, false, fmt.Errorf("list streams under %q: %w", prefix, err)
		}
		var l Listed
		if err := json.Unmarshal(v, &l.Meta); err != nil {
			return nil, false, fmt.Errorf("decode metadata of stream %q: %w", path, err)
		}
		if l.Meta.SoftDeleted {
			continue
		}
		if len(out) == limit {
			return out, true, nil
		}
		l.Path = path
		if l.Tail, err = tailIn(snap, l.Meta.ID); err != nil {
			return nil, false, fmt.Errorf("list stream %q: %w", path, err)
		}
		if f := l.Meta.Fork; f != nil && l.Tail < f.Base {
			l.Tail = f.Base
		}
		out = append(out, l)
	}
	if err := it.Error(); err != nil {
		return nil, false, fmt.Errorf("list streams under %q: %w", prefix, err)
	}
	return out, false, nil
}

// prefixEnd returns the smallest key greater than every key starting with
// p: p with its last byte below 0xff incremented, the rest dropped.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil // every byte 0xff: no upper bound
}
