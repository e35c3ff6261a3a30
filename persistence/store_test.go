package persistence

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"
	"time"
)

func fullMeta(id uint64) Meta {
	return Meta{
		ID:          id,
		ContentType: "application/json; charset=utf-8",
		TTL:         90 * time.Second,
		HasTTL:      true,
		ExpiresAt:   time.Date(2031, 2, 3, 4, 5, 6, 7, time.UTC),
		CreatedAt:   time.Date(2025, 1, 2, 3, 4, 5, 600, time.UTC),
		LastAccess:  time.Date(2025, 1, 2, 3, 9, 0, 0, time.FixedZone("X", 2*3600)),
		Closed:      true,
		ClosedBy:    &ProducerRef{ID: "writer-1", Epoch: 3, Seq: 42},
		LastSeq:     "000123",
	}
}

func TestLoadMissingStream(t *testing.T) {
	forEachFS(t, func(t *testing.T, h *harness) {
		s := h.open()
		for _, path := range []string{"missing", "", "a/b/c"} {
			st, err := s.Load(path)
			if st != nil || err != nil {
				t.Errorf("Load(%q) = %+v, %v; want nil, nil", path, st, err)
			}
		}
		// A path that is a prefix of a live stream's path is not that stream.
		commit(t, s, func(b *Batch) error { return b.PutMeta("streams/abc", &Meta{ID: 7}) })
		for _, path := range []string{"streams/ab", "streams/abcd", "streams/ab\x00"} {
			if st := load(t, s, path); st != nil {
				t.Errorf("Load(%q) = %+v; want nil", path, st)
			}
		}
	})
}

func TestCommitThenLoad(t *testing.T) {
	forEachFS(t, func(t *testing.T, h *harness) {
		s := h.open()
		id := allocate(t, s)
		meta := fullMeta(id)
		recs := [][]byte{[]byte("hello"), []byte(" "), []byte("world"), filled('x', 1000)}
		commit(t, s, func(b *Batch) error {
			if err := b.PutMeta("s/1", &meta); err != nil {
				return err
			}
			pos := uint64(0)
			for _, r := range recs {
				if err := b.Append(id, pos, r); err != nil {
					return err
				}
				pos += uint64(len(r))
			}
			if err := b.PutProducer(id, "p-a", ProducerState{Epoch: 1, LastSeq: 9}); err != nil {
				return err
			}
			return b.PutProducer(id, "p-b", ProducerState{Epoch: 0, LastSeq: 0})
		})
		want := &StreamState{
			Meta: meta,
			Tail: totalLen(recs),
			Producers: map[string]ProducerState{
				"p-a": {Epoch: 1, LastSeq: 9},
				"p-b": {Epoch: 0, LastSeq: 0},
			},
		}
		if got := load(t, s, "s/1"); !sameState(got, want) {
			t.Fatalf("Load = %+v\nwant %+v", got, want)
		}
		if got := readBytes(t, s, id, 0, want.Tail, 1<<20); !bytes.Equal(got, concat(recs)) {
			t.Fatalf("ReadBytes = %q; want %q", got, concat(recs))
		}

		// A later batch overwrites metadata and one producer and extends the log.
		meta2 := meta
		meta2.Closed, meta2.ClosedBy, meta2.LastSeq = false, nil, "000124"
		meta2.ExpiresAt = time.Time{}
		commit(t, s, func(b *Batch) error {
			if err := b.PutMeta("s/1", &meta2); err != nil {
				return err
			}
			if err := b.Append(id, want.Tail, []byte("!")); err != nil {
				return err
			}
			return b.PutProducer(id, "p-a", ProducerState{Epoch: 2, LastSeq: 0})
		})
		want = &StreamState{
			Meta: meta2,
			Tail: want.Tail + 1,
			Producers: map[string]ProducerState{
				"p-a": {Epoch: 2, LastSeq: 0},
				"p-b": {Epoch: 0, LastSeq: 0},
			},
		}
		got := load(t, s, "s/1")
		if !sameState(got, want) {
			t.Fatalf("after second batch Load = %+v\nwant %+v", got, want)
		}
		if !got.Meta.ExpiresAt.IsZero() || got.Meta.ClosedBy != nil {
			t.Fatalf("cleared fields came back: %+v", got.Meta)
		}
	})
}

func TestLoadStreamWithoutRecordsOrProducers(t *testing.T) {
	forEachFS(t, func(t *testing.T, h *harness) {
		s := h.open()
		id := allocate(t, s)
		meta := Meta{ID: id, ContentType: "text/plain", CreatedAt: time.Unix(1700000000, 0).UTC()}
		commit(t, s, func(b *Batch) error { return b.PutMeta("empty", &meta) })
		st := load(t, s, "empty")
		if st == nil {
			t.Fatal("Load returned nil for a stream with metadata")
		}
		if st.Tail != 0 || len(st.Producers) != 0 || !sameMeta(st.Meta, meta) {
			t.Fatalf("Load = %+v; want meta %+v, tail 0, no producers", st, meta)
		}
	})
}

func TestLoadHonoursNoProducers(t *testing.T) {
	// NoProducers skips the producer lookup; metadata without it (written
	// before the field existed) is searched.
	cases := []struct {
		name        string
		noProducers bool
		want        int
	}{
		{"flag absent: searched", false, 1},
		{"flag set: skipped", true, 0},
	}
	forEachFS(t, func(t *testing.T, h *harness) {
		s := h.open()
		for _, tc := range cases {
			id := allocate(t, s)
			meta := Meta{ID: id, ContentType: "text/plain", CreatedAt: time.Unix(1700000000, 0).UTC(), NoProducers: tc.noProducers}
			commit(t, s, func(b *Batch) error {
				if err := b.PutMeta(tc.name, &meta); err != nil {
					return err
				}
				return b.PutProducer(id, "p", ProducerState{Epoch: 1, LastSeq: 3})
			})
			if st := load(t, s, tc.name); len(st.Producers) != tc.want {
				t.Errorf("%s: Load found producers %v, want %d", tc.name, st.Producers, tc.want)
			}
		}
	})
}

func TestBatchEmpty(t *testing.T) {
	forEachFS(t, func(t *testing.T, h *harness) {
		s := h.open()
		b := s.NewBatch()
		defer b.Close()
		if !b.Empty() {
			t.Fatal("new batch is not empty")
		}
		if err := b.Commit(); err != nil {
			t.Fatalf("committing an empty batch: %v", err)
		}
		b2 := s.NewBatch()
		defer b2.Close()
		if err := b2.Append(1, 0, []byte("x")); err != nil {
			t.Fatal(err)
		}
		if b2.Empty() {
			t.Fatal("batch holding an append reports Empty")
		}
	})
}

// TestBatchInvisibleUntilCommit: a stream actor builds its batch while
// readers keep serving the previous tail.
func TestBatchInvisibleUntilCommit(t *testing.T) {
	forEachFS(t, func(t *testing.T, h *harness) {
		s := h.open()
		b := s.NewBatch()
		defer b.Close()
		if err := b.PutMeta("x", &Meta{ID: 5}); err != nil {
			t.Fatal(err)
		}
		if err := b.Append(5, 0, []byte("abc")); err != nil {
			t.Fatal(err)
		}
		if st := load(t, s, "x"); st != nil {
			t.Fatalf("uncommitted stream is visible: %+v", st)
		}
		if got := readBytes(t, s, 5, 0, 3, 10); len(got) != 0 {
			t.Fatalf("uncommitted bytes are visible: %q", got)
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		if st := load(t, s, "x"); st == nil || st.Tail != 3 {
			t.Fatalf("after Commit Load = %+v; want tail 3", st)
		}
	})
}

// readRecs are five records of distinct lengths and contents, laid out at
// positions 0, 5, 6, 13 and 16 with tail 26.
var readRecs = [][]byte{
	[]byte("aaaaa"),
	[]byte("b"),
	[]byte("ccccccc"),
	[]byte("ddd"),
	[]byte("eeeeeeeeee"),
}

func TestReadBytes(t *testing.T) {
	all := concat(readRecs)
	tail := uint64(len(all))
	tests := []struct {
		name       string
		from, upto uint64
		max        int
		want       string
	}{
		{"whole log", 0, tail, 1 << 20, string(all)},
		{"first record exactly", 0, 5, 100, "aaaaa"},
		{"one-byte record", 5, 6, 100, "b"},
		{"spanning several records", 5, 16, 100, "bcccccccddd"},
		{"start mid-record", 2, 6, 100, "aaab"},
		{"end mid-record", 0, 8, 100, "aaaaabcc"},
		{"start and end mid-record", 3, 18, 100, "aabcccccccdddee"},
		{"inside one record", 7, 10, 100, "ccc"},
		{"max truncates mid-record", 0, tail, 7, "aaaaabc"},
		{"max truncates at boundary", 0, tail, 6, "aaaaab"},
		{"max truncates from mid-record", 14, tail, 4, "ddee"},
		{"max of one byte", 9, tail, 1, "c"},
		{"max zero still returns one byte", 0, tail, 0, "a"},
		{"max larger than range", 13, 16, 1 << 30, "ddd"},
		{"from equals upto", 6, 6, 100, ""},
		{"from equals upto mid-record", 8, 8, 100, ""},
		{"from after upto", 10, 4, 100, ""},
		{"from at tail", tail, tail, 100, ""},
		{"upto beyond tail", 20, tail + 100, 100, "eeeeee"},
		{"from beyond tail", tail + 1, tail + 100, 100, ""},
		{"last byte", tail - 1, tail, 100, "e"},
	}
	forEachFS(t, func(t *testing.T, h *harness) {
		s := h.open()
		appendRecords(t, s, 1, 0, readRecs...)
		for _, tc := range tests {
			got := readBytes(t, s, 1, tc.from, tc.upto, tc.max)
			if string(got) != tc.want {
				t.Errorf("%s: ReadBytes(1, %d, %d, %d) = %q; want %q", tc.name, tc.from, tc.upto, tc.max, got, tc.want)
			}
		}
	})
}

// TestReadBytesExhaustive checks every range against a model of the log:
// ReadBytes(from, upto, max) is exactly log[from:min(upto, from+max, tail)],
// so it never returns a byte at or beyond upto.
func TestReadBytesExhaustive(t *testing.T) {
	forEachFS(t, func(t *testing.T, h *harness) {
		s := h.open()
		// Several batches, so records come from more than one commit.
		tail := appendRecords(t, s, 9, 0, readRecs[:2]...)
		appendRecords(t, s, 9, tail, readRecs[2:]...)
		all := concat(readRecs)
		n := uint64(len(all))
		for from := uint64(0); from <= n+1; from++ {
			for upto := uint64(0); upto <= n+2; upto++ {
				for _, max := range []int{1, 2, 3, 6, 11, 1 << 20} {
					got := readBytes(t, s, 9, from, upto, max)
					end := min(upto, from+uint64(max), n)
					var want []byte
					if from < end {
						want = all[from:end]
					}
					if !bytes.Equal(got, want) {
						t.Fatalf("ReadBytes(9, %d, %d, %d) = %q; want %q", from, upto, max, got, want)
					}
				}
			}
		}
	})
}

func TestReadBytesRandomBinary(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3} {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			forEachFS(t, func(t *testing.T, h *harness) {
				rng := rand.New(rand.NewPCG(seed, 0xd5))
				s := h.open()
				id := allocate(t, s)
				var recs [][]byte
				tail := uint64(0)
				for batch := 0; batch < 40; batch++ {
					var rs [][]byte
					for i := rng.IntN(5); i >= 0; i-- {
						rs = append(rs, randBytes(rng, 1+rng.IntN(5000)))
					}
					tail = appendRecords(t, s, id, tail, rs...)
					recs = append(recs, rs...)
				}
				all := concat(recs)
				if tail != uint64(len(all)) {
					t.Fatalf("tail %d != %d bytes written", tail, len(all))
				}
				if got := readBytes(t, s, id, 0, tail, len(all)); !bytes.Equal(got, all) {
					t.Fatalf("full read differs from written bytes (len %d vs %d)", len(got), len(all))
				}
				for i := 0; i < 500; i++ {
					from := rng.Uint64N(tail + 1)
					upto := from + rng.Uint64N(tail-from+1)
					max := 1 + rng.IntN(20000)
					got := readBytes(t, s, id, from, upto, max)
					end := min(upto, from+uint64(max))
					if !bytes.Equal(got, all[from:end]) {
						t.Fatalf("ReadBytes(%d, %d, %d): %d bytes differ from the %d written there", from, upto, max, len(got), end-from)
					}
				}
			})
		})
	}
}

func TestReadMessages(t *testing.T) {
	pos := starts(readRecs) // 0 5 6 13 16, tail 26
	tail := totalLen(readRecs)
	tests := []struct {
		name       string
		from, upto uint64
		max        int
		want       [][]byte
		end        uint64
	}{
		{"all records", 0, tail, 1 << 20, readRecs, tail},
		{"from a later boundary", pos[2], tail, 1 << 20, readRecs[2:], tail},
		{"upto a boundary", 0, pos[3], 1 << 20, readRecs[:3], pos[3]},
		{"single record range", pos[1], pos[2], 1 << 20, readRecs[1:2], pos[2]},
		{"max fits exactly two", 0, tail, 6, readRecs[:2], pos[2]},
		{"max stops before a record that would exceed it", 0, tail, 5, readRecs[:1], pos[1]},
		{"max smaller than first record still returns it", 0, tail, 1, readRecs[:1], pos[1]},
		{"max zero still returns one record", pos[4], tail, 0, readRecs[4:], tail},
		{"max from later boundary", pos[2], tail, 10, readRecs[2:4], pos[4]},
		{"from equals upto", pos[2], pos[2], 100, nil, pos[2]},
		{"from at tail", tail, tail + 10, 100, nil, tail},
		{"upto beyond tail", pos[3], tail + 10, 100, readRecs[3:], tail},
	}
	forEachFS(t, func(t *testing.T, h *harness) {
		s := h.open()
		appendRecords(t, s, 3, 0, readRecs...)
		for _, tc := range tests {
			got, end, err := s.ReadMessages(3, tc.from, tc.upto, tc.max)
			if err != nil {
				t.Errorf("%s: ReadMessages(3, %d, %d, %d): %v", tc.name, tc.from, tc.upto, tc.max, err)
				continue
			}
			if !sameRecords(got, tc.want) || end != tc.end {
				t.Errorf("%s: ReadMessages(3, %d, %d, %d) = %q, %d; want %q, %d", tc.name, tc.from, tc.upto, tc.max, got, end, tc.want, tc.end)
			}
		}
	})
}

func TestReadMessagesNotBoundary(t *testing.T) {
	forEachFS(t, func(t *testing.T, h *harness) {
		s := h.open()
		tail := appendRecords(t, s, 3, 0, readRecs...)
		boundary := map[uint64]bool{}
		for _, p := range starts(readRecs) {
			boundary[p] = true
		}
		for from := uint64(0); from < tail; from++ {
			msgs, end, err := s.ReadMessages(3, from, tail, 1<<20)
			if boundary[from] {
				if err != nil || len(msgs) == 0 || end != tail {
					t.Errorf("ReadMessages at boundary %d = %d msgs, end %d, %v; want the rest of the log", from, len(msgs), end, err)
				}
				continue
			}
			if !errors.Is(err, ErrNotBoundary) {
				t.Errorf("ReadMessages at %d (inside a record) = %q, %d, %v; want ErrNotBoundary", from, msgs, end, err)
			}
			if msgs != nil || end != from {
				t.Errorf("ReadMessages at %d returned %q, end %d with ErrNotBoundary; want nil, %d", from, msgs, end, from)
			}
		}
	})
}

// TestReadMessagesUptoInsideRecord: ReadMessages promises whole records
// "ending at or before upto", so a record that straddles upto is not
// returned and the reported end never passes upto.
func TestReadMessagesUptoInsideRecord(t *testing.T) {
	pos := starts(readRecs) // 0 5 6 13 16, tail 26
	tests := []struct {
		from, upto uint64
		want       [][]byte
		end        uint64
	}{
		{0, 10, readRecs[:2], pos[2]},
		{pos[2], pos[3] + 1, readRecs[2:3], pos[3]},
		{pos[3], 20, readRecs[3:4], pos[4]},
		{0, 3, nil, 0},
	}
	forEachFS(t, func(t *testing.T, h *harness) {
		s := h.open()
		appendRecords(t, s, 3, 0, readRecs...)
		for _, tc := range tests {
			got, end, err := s.ReadMessages(3, tc.from, tc.upto, 1<<20)
			if err != nil {
				t.Errorf("ReadMessages(3, %d, %d): %v", tc.from, tc.upto, err)
				continue
			}
			if end > tc.upto || !sameRecords(got, tc.want) || end != tc.end {
				t.Errorf("ReadMessages(3, %d, %d) = %q, end %d; want %q, end %d (records ending at or before upto)", tc.from, tc.upto, got, end, tc.want, tc.end)
			}
		}
	})
}

// TestReadMessagesPaginates walks a log in max-sized pages the way a
// catch-up reader does, resuming from each returned end.
func TestReadMessagesPaginates(t *testing.T) {
	forEachFS(t, func(t *testing.T, h *harness) {
		rng := rand.New(rand.NewPCG(7, 7))
		s := h.open()
		var recs [][]byte
		for i := 0; i < 200; i++ {
			recs = append(recs, randBytes(rng, 1+rng.IntN(300)))
		}
		tail := appendRecords(t, s, 4, 0, recs...)
		for _, max := range []int{0, 1, 100, 299, 1000, 1 << 20} {
			var got [][]byte
			for from := uint64(0); from < tail; {
				msgs, end, err := s.ReadMessages(4, from, tail, max)
				if err != nil {
					t.Fatalf("max %d: ReadMessages at %d: %v", max, from, err)
				}
				if len(msgs) == 0 || end <= from {
					t.Fatalf("max %d: ReadMessages at %d made no progress (end %d)", max, from, end)
				}
				if len(msgs) > 1 && int(totalLen(msgs)) > max {
					t.Fatalf("max %d: page of %d records holds %d bytes", max, len(msgs), totalLen(msgs))
				}
				if end-from != totalLen(msgs) {
					t.Fatalf("max %d: end %d - from %d != %d bytes returned", max, end, from, totalLen(msgs))
				}
				got = append(got, msgs...)
				from = end
			}
			if !sameRecords(got, recs) {
				t.Fatalf("max %d: paginated records differ from written ones", max)
			}
		}
	})
}

func TestReadResultsAreCopies(t *testing.T) {
	forEachFS(t, func(t *testing.T, h *harness) {
		s := h.open()
		tail := appendRecords(t, s, 2, 0, []byte("abc"), []byte("def"))
		b := readBytes(t, s, 2, 0, tail, 100)
		msgs, _, err := s.ReadMessages(2, 0, tail, 100)
		if err != nil {
			t.Fatal(err)
		}
		for i := range b {
			b[i] = 'X'
		}
		for _, m := range msgs {
			for i := range m {
				m[i] = 'Y'
			}
		}
		if got := readBytes(t, s, 2, 0, tail, 100); string(got) != "abcdef" {
			t.Fatalf("stored bytes changed through a returned slice: %q", got)
		}
	})
}

// streamIDs include neighbours and ids whose big-endian encodings differ
// only in one byte, or that are a byte-shift of one another, so a key
// layout mistake would make their ranges overlap.
var streamIDs = []uint64{1, 2, 255, 256, 257, 511, 512, 65535, 65536, 65537, 1 << 24, 1<<24 + 1, 1 << 32, 1<<32 + 1, 1 << 40, 1 << 56, 1<<56 + 1, 2 << 56}

func TestStreamsDoNotBleed(t *testing.T) {
	forEachFS(t, func(t *testing.T, h *harness) {
		s := h.open()
		type stream struct {
			path string
			recs [][]byte
			prod map[string]ProducerState
			tail uint64
		}
		streams := map[uint64]*stream{}
		for i, id := range streamIDs {
			streams[id] = &stream{
				// Paths that prefix each other.
				path: "s/" + strings.Repeat("a", i+1),
				prod: map[string]ProducerState{},
			}
		}
		// Interleave appends of all streams across batches, several streams
		// per batch.
		for round := 0; round < 4; round++ {
			commit(t, s, func(b *Batch) error {
				for _, id := range streamIDs {
					st := streams[id]
					if round == 0 {
						if err := b.PutMeta(st.path, &Meta{ID: id, ContentType: "text/plain"}); err != nil {
							return err
						}
					}
					rec := []byte(fmt.Sprintf("[%d:%d]", id, round))
					if err := b.Append(id, st.tail, rec); err != nil {
						return err
					}
					st.recs = append(st.recs, rec)
					st.tail += uint64(len(rec))
					// Producer names that prefix each other, shared across streams.
					name := strings.Repeat("p", round+1)
					ps := ProducerState{Epoch: id, LastSeq: uint64(round)}
					st.prod[name] = ps
					if err := b.PutProducer(id, name, ps); err != nil {
						return err
					}
				}
				return nil
			})
		}
		check := func(s *Store) {
			t.Helper()
			for _, id := range streamIDs {
				st := streams[id]
				got := load(t, s, st.path)
				want := &StreamState{Meta: Meta{ID: id, ContentType: "text/plain"}, Tail: st.tail, Producers: st.prod}
				if !sameState(got, want) {
					t.Errorf("stream %d: Load = %+v; want %+v", id, got, want)
				}
				// Reading far past the tail must stay inside the stream.
				if b := readBytes(t, s, id, 0, 1<<62, 1<<20); !bytes.Equal(b, concat(st.recs)) {
					t.Errorf("stream %d: ReadBytes = %q; want %q", id, b, concat(st.recs))
				}
				msgs, end, err := s.ReadMessages(id, 0, 1<<62, 1<<20)
				if err != nil || !sameRecords(msgs, st.recs) || end != st.tail {
					t.Errorf("stream %d: ReadMessages = %q, %d, %v; want %q, %d", id, msgs, end, err, st.recs, st.tail)
				}
			}
			// Ids next to live ones hold nothing.
			for _, id := range []uint64{0, 3, 254, 258, 65534, 65538, 1<<32 - 1, 1<<32 + 2, 1<<56 - 1, 3 << 56} {
				if b := readBytes(t, s, id, 0, 1<<62, 1<<20); len(b) != 0 {
					t.Errorf("stream %d has no records but ReadBytes returned %q", id, b)
				}
				if msgs, end, err := s.ReadMessages(id, 0, 1<<62, 1<<20); len(msgs) != 0 || end != 0 || err != nil {
					t.Errorf("stream %d has no records but ReadMessages returned %q, %d, %v", id, msgs, end, err)
				}
			}
		}
		check(s)
		check(h.reopen())
	})
}

func TestDeleteStream(t *testing.T) {
	forEachFS(t, func(t *testing.T, h *harness) {
		s := h.open()
		before := allocate(t, s)
		old := allocate(t, s)
		after := allocate(t, s)
		paths := map[uint64]string{before: "x/a", old: "x/ab", after: "x/abc"}
		for _, id := range []uint64{before, old, after} {
			commit(t, s, func(b *Batch) error {
				if err := b.PutMeta(paths[id], &Meta{ID: id, ContentType: "text/plain"}); err != nil {
					return err
				}
				for i := uint64(0); i < 3; i++ {
					if err := b.Append(id, i*4, []byte(fmt.Sprintf("o%02d%c", id, 'a'+i))); err != nil {
						return err
					}
				}
				return b.PutProducer(id, "prod", ProducerState{Epoch: 1, LastSeq: 2})
			})
		}
		commit(t, s, func(b *Batch) error { return b.DeleteStream("x/ab", old) })

		checkDeleted := func(s *Store, pathFree bool) {
			t.Helper()
			if st := load(t, s, "x/ab"); pathFree && st != nil {
				t.Fatalf("deleted stream still loads: %+v", st)
			}
			if b := readBytes(t, s, old, 0, 1<<40, 1<<20); len(b) != 0 {
				t.Fatalf("deleted stream's bytes still readable: %q", b)
			}
			if msgs, _, err := s.ReadMessages(old, 0, 1<<40, 1<<20); len(msgs) != 0 || err != nil {
				t.Fatalf("deleted stream's records still readable: %q, %v", msgs, err)
			}
			// Point some metadata at the old id to see its producers and tail.
			commit(t, s, func(b *Batch) error { return b.PutMeta("probe", &Meta{ID: old}) })
			if st := load(t, s, "probe"); st == nil || st.Tail != 0 || len(st.Producers) != 0 {
				t.Fatalf("deleted id still has state: %+v", st)
			}
			commit(t, s, func(b *Batch) error { return b.DeleteStream("probe", old) })
			// Neighbouring ids and prefix paths are untouched.
			for _, id := range []uint64{before, after} {
				st := load(t, s, paths[id])
				if st == nil || st.Meta.ID != id || st.Tail != 12 || st.Producers["prod"] != (ProducerState{Epoch: 1, LastSeq: 2}) {
					t.Fatalf("neighbour %d damaged by delete: %+v", id, st)
				}
			}
		}
		checkDeleted(s, true)
		checkDeleted(h.reopen(), true)
		s = h.s

		// A new stream at the same path gets a new id and never serves old data.
		fresh := allocate(t, s)
		if fresh == old {
			t.Fatalf("AllocateID reused deleted id %d", old)
		}
		commit(t, s, func(b *Batch) error {
			if err := b.PutMeta("x/ab", &Meta{ID: fresh, ContentType: "application/json"}); err != nil {
				return err
			}
			return b.Append(fresh, 0, []byte("new"))
		})
		checkNew := func(s *Store) {
			t.Helper()
			st := load(t, s, "x/ab")
			if st == nil || st.Meta.ID != fresh || st.Tail != 3 || len(st.Producers) != 0 {
				t.Fatalf("recreated stream Load = %+v; want id %d, tail 3, no producers", st, fresh)
			}
			if b := readBytes(t, s, st.Meta.ID, 0, 1<<40, 1<<20); string(b) != "new" {
				t.Fatalf("recreated stream reads %q; want %q", b, "new")
			}
		}
		checkNew(s)
		s = h.reopen()
		checkDeleted(s, false)
		checkNew(s)
	})
}

// TestDeleteAndRecreateInOneBatch: the delete's range tombstones must not
// hide writes that follow them in the same batch.
func TestDeleteAndRecreateInOneBatch(t *testing.T) {
	forEachFS(t, func(t *testing.T, h *harness) {
		s := h.open()
		oldID, newID := allocate(t, s), allocate(t, s)
		commit(t, s, func(b *Batch) error {
			if err := b.PutMeta("p", &Meta{ID: oldID}); err != nil {
				return err
			}
			if err := b.PutProducer(oldID, "w", ProducerState{Epoch: 4}); err != nil {
				return err
			}
			return b.Append(oldID, 0, []byte("old-data"))
		})
		commit(t, s, func(b *Batch) error {
			if err := b.DeleteStream("p", oldID); err != nil {
				return err
			}
			if err := b.PutMeta("p", &Meta{ID: newID}); err != nil {
				return err
			}
			if err := b.PutProducer(newID, "w", ProducerState{Epoch: 0, LastSeq: 1}); err != nil {
				return err
			}
			return b.Append(newID, 0, []byte("n"))
		})
		for i := 0; i < 2; i++ {
			st := load(t, s, "p")
			want := &StreamState{Meta: Meta{ID: newID}, Tail: 1, Producers: map[string]ProducerState{"w": {Epoch: 0, LastSeq: 1}}}
			if !sameState(st, want) {
				t.Fatalf("Load = %+v; want %+v", st, want)
			}
			if b := readBytes(t, s, oldID, 0, 100, 100); len(b) != 0 {
				t.Fatalf("old id still reads %q", b)
			}
			s = h.reopen()
		}
	})
}

func TestAllocateIDUniqueAcrossReopen(t *testing.T) {
	forEachFS(t, func(t *testing.T, h *harness) {
		s := h.open()
		seen := map[uint64]bool{}
		last := uint64(0)
		// Counts around the reservation block size, and more than one block
		// in a single session.
		for _, n := range []int{1, 5, 1023, 1024, 1025, 0, 2500, 3} {
			for i := 0; i < n; i++ {
				id := allocate(t, s)
				if id == 0 {
					t.Fatal("AllocateID returned 0")
				}
				if seen[id] {
					t.Fatalf("AllocateID repeated %d", id)
				}
				if id <= last {
					t.Fatalf("AllocateID returned %d after %d", id, last)
				}
				seen[id], last = true, id
			}
			s = h.reopen()
		}
		if len(seen) < 5000 {
			t.Fatalf("only %d ids allocated", len(seen))
		}
	})
}

func TestAllocateIDConcurrent(t *testing.T) {
	forEachFS(t, func(t *testing.T, h *harness) {
		s := h.open()
		const goroutines, each = 8, 300
		ids := make([][]uint64, goroutines)
		errs := make(chan error, goroutines)
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for range each {
					id, err := s.AllocateID()
					if err != nil {
						errs <- err
						return
					}
					ids[g] = append(ids[g], id)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		seen := map[uint64]bool{}
		for _, list := range ids {
			for i, id := range list {
				if seen[id] {
					t.Fatalf("id %d handed out twice", id)
				}
				if i > 0 && id <= list[i-1] {
					t.Fatalf("one caller saw ids go from %d to %d", list[i-1], id)
				}
				seen[id] = true
			}
		}
		if len(seen) != goroutines*each {
			t.Fatalf("%d unique ids; want %d", len(seen), goroutines*each)
		}
	})
}

// snapshot is everything a reader can observe of one stream.
type snapshot struct {
	state *StreamState
	data  []byte
	msgs  [][]byte
}

func takeSnapshot(tb testing.TB, s *Store, path string) snapshot {
	tb.Helper()
	st := load(tb, s, path)
	if st == nil {
		return snapshot{}
	}
	msgs, end, err := s.ReadMessages(st.Meta.ID, 0, st.Tail, 1<<30)
	if err != nil || end != st.Tail {
		tb.Fatalf("ReadMessages(%q) = end %d, %v; want end %d", path, end, err, st.Tail)
	}
	return snapshot{state: st, data: readBytes(tb, s, st.Meta.ID, 0, st.Tail, 1<<30), msgs: msgs}
}

func (a snapshot) equal(b snapshot) bool {
	return sameState(a.state, b.state) && bytes.Equal(a.data, b.data) && sameRecords(a.msgs, b.msgs)
}

func TestRestartRecoversIdenticalState(t *testing.T) {
	forEachFS(t, func(t *testing.T, h *harness) {
		rng := rand.New(rand.NewPCG(11, 12))
		s := h.open()
		paths := []string{"a", "a/b", "b", "closed", "deleted"}
		ids := map[string]uint64{}
		for i, p := range paths {
			id := allocate(t, s)
			ids[p] = id
			m := fullMeta(id)
			m.Closed = p == "closed"
			tail := uint64(0)
			for batch := 0; batch <= i*3; batch++ {
				commit(t, s, func(b *Batch) error {
					if err := b.PutMeta(p, &m); err != nil {
						return err
					}
					for j := rng.IntN(4); j >= 0; j-- {
						r := randBytes(rng, 1+rng.IntN(700))
						if err := b.Append(id, tail, r); err != nil {
							return err
						}
						tail += uint64(len(r))
					}
					return b.PutProducer(id, fmt.Sprintf("p%d", batch%3), ProducerState{Epoch: uint64(batch), LastSeq: uint64(batch * 2)})
				})
			}
		}
		commit(t, s, func(b *Batch) error { return b.DeleteStream("deleted", ids["deleted"]) })

		want := map[string]snapshot{}
		for _, p := range paths {
			want[p] = takeSnapshot(t, s, p)
		}
		if want["deleted"].state != nil {
			t.Fatal("deleted stream still present before restart")
		}
		lastID := allocate(t, s)

		for i := 0; i < 5; i++ {
			s = h.reopen()
			for _, p := range paths {
				if got := takeSnapshot(t, s, p); !got.equal(want[p]) {
					t.Fatalf("restart %d: stream %q recovered as %+v (%d bytes); want %+v (%d bytes)",
						i+1, p, got.state, len(got.data), want[p].state, len(want[p].data))
				}
			}
		}
		// Appends continue from the recovered tail, and ids stay fresh.
		st := load(t, s, "b")
		tail := appendRecords(t, s, st.Meta.ID, st.Tail, []byte("after-restart"))
		got := readBytes(t, s, st.Meta.ID, 0, tail, 1<<30)
		if !bytes.Equal(got, append(append([]byte(nil), want["b"].data...), "after-restart"...)) {
			t.Fatalf("append after restart reads back wrong (%d bytes)", len(got))
		}
		if id := allocate(t, s); id <= lastID {
			t.Fatalf("AllocateID after restarts = %d; want > %d", id, lastID)
		}
	})
}

// TestClosedStoreReturnsErrClosed: operations racing a shutdown (an HTTP
// read still in flight when main closes the store) must get ErrClosed, as
// the ErrClosed documentation promises, not bring the process down.
func TestClosedStoreReturnsErrClosed(t *testing.T) {
	forEachFS(t, func(t *testing.T, h *harness) {
		s := h.open()
		appendRecords(t, s, 1, 0, []byte("abc"))
		commit(t, s, func(b *Batch) error { return b.PutMeta("x", &Meta{ID: 1}) })
		h.close()

		ops := []struct {
			name string
			run  func() error
		}{
			{"Load", func() error { _, err := s.Load("x"); return err }},
			{"ReadBytes", func() error { _, err := s.ReadBytes(1, 0, 3, 10); return err }},
			{"ReadMessages", func() error { _, _, err := s.ReadMessages(1, 0, 3, 10); return err }},
			{"AllocateID", func() error {
				// Exhaust the reserved block so the high-water mark is written.
				for {
					if _, err := s.AllocateID(); err != nil {
						return err
					}
				}
			}},
			{"Commit", func() error {
				b := s.NewBatch()
				defer b.Close()
				if err := b.Append(1, 3, []byte("d")); err != nil {
					return err
				}
				return b.Commit()
			}},
		}
		for _, op := range ops {
			panicked, err := callRecovering(op.run)
			if panicked != nil {
				t.Errorf("%s on a closed store panicked (%v); want ErrClosed", op.name, panicked)
				continue
			}
			if !errors.Is(err, ErrClosed) {
				t.Errorf("%s on a closed store = %v; want ErrClosed", op.name, err)
			}
		}
	})
}

func callRecovering(f func() error) (panicked any, err error) {
	defer func() { panicked = recover() }()
	return nil, f()
}

// recordingHandler keeps every slog record for inspection.
type recordingHandler struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *recordingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (r *recordingHandler) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}
func (r *recordingHandler) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recordingHandler) WithGroup(string) slog.Handler      { return r }

func libAttr(rec slog.Record) string {
	lib := ""
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == "lib" {
			lib = a.Value.String()
		}
		return true
	})
	return lib
}

// TestPebbleLogger: Pebble's chatter is Debug so streamd is quiet by
// default; errors stay errors; Fatalf must still stop the caller.
func TestPebbleLogger(t *testing.T) {
	rh := &recordingHandler{}
	l := pebbleLogger{l: slog.New(rh)}
	l.Infof("found %d WALs", 3)
	l.Errorf("disk %s", "slow")
	func() {
		defer func() {
			if r := recover(); r != "bad 7" {
				t.Errorf("Fatalf panicked with %v; want %q", r, "bad 7")
			}
		}()
		l.Fatalf("bad %d", 7)
	}()
	want := []struct {
		level slog.Level
		msg   string
	}{{slog.LevelDebug, "found 3 WALs"}, {slog.LevelError, "disk slow"}, {slog.LevelError, "bad 7"}}
	if len(rh.recs) != len(want) {
		t.Fatalf("%d records logged; want %d", len(rh.recs), len(want))
	}
	for i, w := range want {
		r := rh.recs[i]
		if r.Level != w.level || r.Message != w.msg || libAttr(r) != "pebble" {
			t.Errorf("record %d = %v %q lib=%q; want %v %q lib=pebble", i, r.Level, r.Message, libAttr(r), w.level, w.msg)
		}
	}
}

func TestOpenRoutesPebbleLogsToLogger(t *testing.T) {
	rh := &recordingHandler{}
	opts := optionsFor(t, "disk")
	opts.Logger = slog.New(rh)
	h := newHarness(t, opts)
	s := h.open()
	appendRecords(t, s, 1, 0, []byte("x"))
	h.close()
	rh.mu.Lock()
	defer rh.mu.Unlock()
	for _, r := range rh.recs {
		if libAttr(r) != "pebble" {
			t.Errorf("record without lib=pebble: %v %q", r.Level, r.Message)
		}
		if r.Level > slog.LevelDebug {
			t.Errorf("routine open/close logged at %v: %q", r.Level, r.Message)
		}
	}
}

func TestOpenDefaultsAndReuse(t *testing.T) {
	// CacheSize 0 selects the default cache; a nil Logger discards.
	dir := t.TempDir()
	h := newHarness(t, Options{Dir: dir})
	s := h.open()
	id := allocate(t, s)
	if id != 1 {
		t.Fatalf("first id in a new database = %d; want 1", id)
	}
	appendRecords(t, s, id, 0, []byte("x"))
	// A second Open of a directory in use fails instead of sharing it.
	if s2, err := Open(Options{Dir: dir}); err == nil {
		s2.Close()
		t.Fatal("second Open of a locked directory succeeded")
	}
}

// TestSyncsCountWALSyncs: every synced commit syncs the WAL at least once,
// and concurrent commits may share syncs but never need more than one each.
func TestSyncsCountWALSyncs(t *testing.T) {
	forEachFS(t, func(t *testing.T, h *harness) {
		st := h.open()
		before := st.Syncs()
		const commits = 20
		for i := 0; i < commits; i++ {
			b := st.NewBatch()
			if err := b.Append(1, uint64(i), []byte("x")); err != nil {
				t.Fatal(err)
			}
			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
			b.Close()
		}
		after := st.Syncs()
		if got := after.WAL - before.WAL; got < commits {
			t.Errorf("WAL syncs for %d sequential synced commits = %d; want >= %d", commits, got, commits)
		}
		if after.All < after.WAL {
			t.Errorf("All syncs %d < WAL syncs %d", after.All, after.WAL)
		}
		if after.WALTime <= before.WALTime {
			t.Errorf("time in WAL syncs did not grow over %d syncs: %v -> %v", after.WAL-before.WAL, before.WALTime, after.WALTime)
		}
	})
}

// TestExpiryIndex: PutMeta indexes streams that expire, ExpiredEntries
// returns exactly the due ones in deadline order, and entries can be deleted.
func TestExpiryIndex(t *testing.T) {
	forEachFS(t, func(t *testing.T, h *harness) {
		st := h.open()
		base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		metas := map[string]*Meta{
			"ttl":     {ID: 1, ContentType: "text/plain", HasTTL: true, TTL: 10 * time.Second, CreatedAt: base, LastAccess: base.Add(5 * time.Second)},
			"expires": {ID: 2, ContentType: "text/plain", ExpiresAt: base.Add(2 * time.Second), CreatedAt: base},
			"forever": {ID: 3, ContentType: "text/plain", CreatedAt: base},
		}
		b := st.NewBatch()
		for path, m := range metas {
			if err := b.PutMeta(path, m); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		b.Close()
		tests := []struct {
			now   time.Time
			paths []string
		}{
			{base.Add(time.Second), nil},
			{base.Add(2 * time.Second), []string{"expires"}},
			{base.Add(15 * time.Second), []string{"expires", "ttl"}},
			{base.Add(time.Hour), []string{"expires", "ttl"}},
		}
		for _, tc := range tests {
			got, err := st.ExpiredEntries(tc.now, nil, 100)
			if err != nil {
				t.Fatal(err)
			}
			var paths []string
			for _, e := range got {
				paths = append(paths, e.Path)
				if d, _ := metas[e.Path].Deadline(); !d.Equal(e.Deadline) || e.ID != metas[e.Path].ID {
					t.Errorf("entry %+v does not match meta of %q", e, e.Path)
				}
			}
			if fmt.Sprint(paths) != fmt.Sprint(tc.paths) {
				t.Errorf("ExpiredEntries(%v) paths = %v; want %v", tc.now.Sub(base), paths, tc.paths)
			}
		}
		due, _ := st.ExpiredEntries(base.Add(time.Hour), nil, 1)
		if len(due) != 1 {
			t.Fatalf("limit 1: got %d entries", len(due))
		}
		b = st.NewBatch()
		if err := b.DeleteExpiryEntry(due[0]); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		b.Close()
		left, _ := st.ExpiredEntries(base.Add(time.Hour), nil, 100)
		if len(left) != 1 || left[0].Path != "ttl" {
			t.Errorf("after deleting %q: entries %+v; want only ttl", due[0].Path, left)
		}
	})
}

// TestExpiryIndexDeadlineRange: deadlines beyond what int64 Unix
// nanoseconds hold sort last instead of wrapping around (such an entry was
// due at once and forever, and kept the reaper busy); deadlines before 1970,
// or before 1678, are due at once.
func TestExpiryIndexDeadlineRange(t *testing.T) {
	forEachFS(t, func(t *testing.T, h *harness) {
		st := h.open()
		now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		metas := map[string]*Meta{
			"year-3000":  {ID: 1, ExpiresAt: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC), CreatedAt: now},
			"year-9999":  {ID: 2, ExpiresAt: time.Date(9999, 12, 31, 0, 0, 0, 0, time.UTC), CreatedAt: now},
			"year-2262":  {ID: 3, ExpiresAt: time.Date(2262, 4, 12, 0, 0, 0, 0, time.UTC), CreatedAt: now},
			"year-1969":  {ID: 4, ExpiresAt: time.Date(1969, 12, 31, 0, 0, 0, 0, time.UTC), CreatedAt: now},
			"year-1000":  {ID: 5, ExpiresAt: time.Date(1000, 1, 1, 0, 0, 0, 0, time.UTC), CreatedAt: now},
			"in-an-hour": {ID: 6, ExpiresAt: now.Add(time.Hour), CreatedAt: now},
		}
		b := st.NewBatch()
		for path, m := range metas {
			if err := b.PutMeta(path, m); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		b.Close()
		for _, tc := range []struct {
			now   time.Time
			paths []string
		}{
			// Both clamp to 1970, so they order by id.
			{now, []string{"year-1969", "year-1000"}},
			{now.Add(2 * time.Hour), []string{"year-1969", "year-1000", "in-an-hour"}},
			{time.Date(2262, 1, 1, 0, 0, 0, 0, time.UTC), []string{"year-1969", "year-1000", "in-an-hour"}},
		} {
			got, err := st.ExpiredEntries(tc.now, nil, 100)
			if err != nil {
				t.Fatal(err)
			}
			var paths []string
			for _, e := range got {
				paths = append(paths, e.Path)
			}
			if fmt.Sprint(paths) != fmt.Sprint(tc.paths) {
				t.Errorf("ExpiredEntries(%v) = %v; want %v", tc.now, paths, tc.paths)
			}
		}
	})
}

// TestExpiredEntriesPaging: after resumes strictly after the given entry,
// so a reaper can page past entries it skips.
func TestExpiredEntriesPaging(t *testing.T) {
	forEachFS(t, func(t *testing.T, h *harness) {
		st := h.open()
		base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
		b := st.NewBatch()
		for i := 1; i <= 7; i++ {
			// Two streams share each deadline, so paging must order by id too.
			m := &Meta{ID: uint64(i), ExpiresAt: base.Add(time.Duration(i/2) * time.Second), CreatedAt: base}
			if err := b.PutMeta(fmt.Sprintf("s%d", i), m); err != nil {
				t.Fatal(err)
			}
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		b.Close()
		var seen []string
		var after *ExpiryEntry
		for page := 0; page < 10; page++ {
			got, err := st.ExpiredEntries(base.Add(time.Hour), after, 3)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 0 {
				break
			}
			for _, e := range got {
				seen = append(seen, e.Path)
			}
			after = &got[len(got)-1]
		}
		if want := "[s1 s2 s3 s4 s5 s6 s7]"; fmt.Sprint(seen) != want {
			t.Errorf("paged entries = %v; want %v", seen, want)
		}
		if got, _ := st.ExpiredEntries(base.Add(time.Hour), after, 3); len(got) != 0 {
			t.Errorf("after the last entry: %+v; want none", got)
		}
	})
}
