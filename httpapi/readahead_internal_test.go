package httpapi

import (
	"bytes"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/streamd/streamd/actors"
	"github.com/streamd/streamd/persistence"
)

// readAheadServer is a Server with just what catch-up reads need, over a
// store holding one stream of n bytes ("a".."z" repeating) in 100-byte
// records.
func readAheadServer(t *testing.T, budget, maxChunk, n int) (*Server, *actors.Snapshot, []byte) {
	t.Helper()
	st, err := persistence.Open(persistence.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	id, err := st.AllocateID()
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, n)
	for i := range data {
		data[i] = byte('a' + i%26)
	}
	b := st.NewBatch()
	for pos := 0; pos < n; pos += 100 {
		if err := b.Append(id, uint64(pos), data[pos:min(n, pos+100)]); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	b.Close()
	s := &Server{cfg: Config{MaxChunkBytes: maxChunk}, store: st}
	s.ahead = newReadAhead(s, budget)
	return s, &actors.Snapshot{Exists: true, ID: id, ContentType: "application/octet-stream", Tail: uint64(n)}, data
}

// TestReadAheadServesSequentialReaders: a reader following its offsets
// gets every chunk after the first from read-ahead, with the right bytes.
func TestReadAheadServesSequentialReaders(t *testing.T) {
	s, snap, data := readAheadServer(t, 10_000, 1000, 10_500)
	var got []byte
	for pos := uint64(0); pos < snap.Tail; {
		ch, err := s.sequentialChunk(snap, pos)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, ch.body...)
		if want := ch.end == snap.Tail; ch.upToDate != want {
			t.Errorf("chunk at %d: upToDate %v, want %v", pos, ch.upToDate, want)
		}
		pos = ch.end
		s.release(ch)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("read %d bytes that differ from the %d stored", len(got), len(data))
	}
	stats, held := s.ahead.snapshot()
	if stats.hits != 10 {
		t.Errorf("read-ahead hits = %d, want 10 (every chunk after the first): %+v", stats.hits, stats)
	}
	// The last chunk started a read-ahead past the one it served; nothing
	// else is held.
	if held > 1000 {
		t.Errorf("%d bytes held after the reader finished", held)
	}
}

// TestReadAheadBudgetAndExpiry: read-ahead never holds more than its
// budget, and a chunk nobody takes is dropped after readAheadTTL.
func TestReadAheadBudgetAndExpiry(t *testing.T) {
	s, snap, _ := readAheadServer(t, 2500, 1000, 20_000)
	for pos := uint64(0); pos < 10_000; pos += 1000 {
		s.ahead.start(snap, pos)
	}
	stats, held := s.ahead.snapshot()
	if stats.started != 2 || stats.skipped != 8 || held > 2500 {
		t.Fatalf("after 10 starts with room for 2: %+v, %d bytes held", stats, held)
	}
	deadline := time.Now().Add(readAheadTTL + 5*time.Second)
	for {
		stats, held = s.ahead.snapshot()
		if stats.expired == 2 && held == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("untaken chunks not dropped: %+v, %d bytes held", stats, held)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, ok := s.ahead.take(snap, 0); ok {
		t.Error("an expired chunk was served")
	}
}

// TestReadAheadRespectsCallersSnapshot: a chunk read ahead for a reader
// that saw a longer stream is not served to one whose snapshot ends
// earlier, nor is one of another incarnation of the path.
func TestReadAheadRespectsCallersSnapshot(t *testing.T) {
	s, snap, _ := readAheadServer(t, 10_000, 1000, 5000)
	s.ahead.start(snap, 1000) // bounded by tail 5000: [1000, 2000)
	older := *snap
	older.Tail = 1500
	if _, ok := s.ahead.take(&older, 1000); ok {
		t.Error("chunk reaching past the caller's tail was served")
	}
	s.ahead.start(snap, 2000)
	other := *snap
	other.ID++
	if _, ok := s.ahead.take(&other, 2000); ok {
		t.Error("chunk of another stream id was served")
	}
	ch, ok := s.ahead.take(snap, 2000)
	if !ok || ch.end != 3000 || ch.upToDate {
		t.Errorf("take at 2000 = %v (end %d, upToDate %v); want the chunk up to 3000", ok, ch.end, ch.upToDate)
	}
}
