package persistence

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// testCacheSize keeps each test database's block cache small; many stores
// are opened per test run.
const testCacheSize = 4 << 20

// harness opens, closes and reopens one Store over a fixed filesystem, so a
// test can restart streamd's storage the way a process restart would.
type harness struct {
	tb   testing.TB
	opts Options
	s    *Store
}

func newHarness(tb testing.TB, opts Options) *harness {
	h := &harness{tb: tb, opts: opts}
	tb.Cleanup(h.close)
	return h
}

func (h *harness) open() *Store {
	h.tb.Helper()
	if h.s != nil {
		h.tb.Fatalf("store is already open")
	}
	s, err := Open(h.opts)
	if err != nil {
		h.tb.Fatalf("Open: %v", err)
	}
	h.s = s
	return s
}

func (h *harness) close() {
	h.tb.Helper()
	if h.s == nil {
		return
	}
	if err := h.s.Close(); err != nil {
		h.tb.Errorf("Close: %v", err)
	}
	h.s = nil
}

func (h *harness) reopen() *Store {
	h.tb.Helper()
	h.close()
	return h.open()
}

// fsKinds are the two filesystems streamd runs on: --memory and a data dir.
var fsKinds = []string{"mem", "disk"}

func optionsFor(tb testing.TB, kind string) Options {
	switch kind {
	case "mem":
		return Options{FS: vfs.NewMem(), CacheSize: testCacheSize}
	case "disk":
		return Options{Dir: tb.TempDir(), CacheSize: testCacheSize}
	}
	tb.Fatalf("unknown filesystem kind %q", kind)
	return Options{}
}

// forEachFS runs body once over Pebble's in-memory filesystem and once over
// a real directory: every store behaviour must hold on both.
func forEachFS(t *testing.T, body func(t *testing.T, h *harness)) {
	t.Helper()
	for _, kind := range fsKinds {
		t.Run(kind, func(t *testing.T) {
			body(t, newHarness(t, optionsFor(t, kind)))
		})
	}
}

func allocate(tb testing.TB, s *Store) uint64 {
	tb.Helper()
	id, err := s.AllocateID()
	if err != nil {
		tb.Fatalf("AllocateID: %v", err)
	}
	return id
}

// commit builds one batch with fill and commits it.
func commit(tb testing.TB, s *Store, fill func(b *Batch) error) {
	tb.Helper()
	if err := tryCommit(s, fill); err != nil {
		tb.Fatal(err)
	}
}

// tryCommit is commit for goroutines other than the test's own.
func tryCommit(s *Store, fill func(b *Batch) error) error {
	b := s.NewBatch()
	defer b.Close()
	if err := fill(b); err != nil {
		return fmt.Errorf("fill batch: %w", err)
	}
	if err := b.Commit(); err != nil {
		return fmt.Errorf("Commit: %w", err)
	}
	return nil
}

// appendRecords writes recs as consecutive records of stream id starting at
// pos, in one batch, and returns the new tail.
func appendRecords(tb testing.TB, s *Store, id, pos uint64, recs ...[]byte) uint64 {
	tb.Helper()
	commit(tb, s, func(b *Batch) error {
		for _, r := range recs {
			if err := b.Append(id, pos, r); err != nil {
				return err
			}
			pos += uint64(len(r))
		}
		return nil
	})
	return pos
}

func load(tb testing.TB, s *Store, path string) *StreamState {
	tb.Helper()
	st, err := s.Load(path)
	if err != nil {
		tb.Fatalf("Load(%q): %v", path, err)
	}
	return st
}

func readBytes(tb testing.TB, s *Store, id, from, upto uint64, max int) []byte {
	tb.Helper()
	b, err := s.ReadBytes(id, from, upto, max)
	if err != nil {
		tb.Fatalf("ReadBytes(%d, %d, %d, %d): %v", id, from, upto, max, err)
	}
	return b
}

func concat(recs [][]byte) []byte {
	var out []byte
	for _, r := range recs {
		out = append(out, r...)
	}
	return out
}

func totalLen(recs [][]byte) uint64 {
	n := uint64(0)
	for _, r := range recs {
		n += uint64(len(r))
	}
	return n
}

// starts returns each record's position when recs are laid out from 0.
func starts(recs [][]byte) []uint64 {
	out := make([]uint64, len(recs))
	pos := uint64(0)
	for i, r := range recs {
		out[i] = pos
		pos += uint64(len(r))
	}
	return out
}

// filled returns n copies of c: records whose content names them, so a
// misplaced byte is easy to spot in a failure message.
func filled(c byte, n int) []byte { return bytes.Repeat([]byte{c}, n) }

func randBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

func sameRecords(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// sameMeta compares metadata with time.Time.Equal, since a JSON round trip
// drops monotonic readings and may change the *Location of equal instants.
func sameMeta(a, b Meta) bool {
	if !a.ExpiresAt.Equal(b.ExpiresAt) || !a.CreatedAt.Equal(b.CreatedAt) || !a.LastAccess.Equal(b.LastAccess) {
		return false
	}
	a.ExpiresAt, a.CreatedAt, a.LastAccess = time.Time{}, time.Time{}, time.Time{}
	b.ExpiresAt, b.CreatedAt, b.LastAccess = time.Time{}, time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

func sameProducers(a, b map[string]ProducerState) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func sameState(a, b *StreamState) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Tail == b.Tail && sameMeta(a.Meta, b.Meta) && sameProducers(a.Producers, b.Producers)
}
