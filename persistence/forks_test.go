package persistence

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// writeRecords commits records for stream id starting at pos and returns
// the position after them.
func writeRecords(t *testing.T, st *Store, id, pos uint64, recs ...string) uint64 {
	t.Helper()
	b := st.NewBatch()
	defer b.Close()
	for _, r := range recs {
		if err := b.Append(id, pos, []byte(r)); err != nil {
			t.Fatal(err)
		}
		pos += uint64(len(r))
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	return pos
}

// TestForkChain: a fork's chain is its source's layout cut at the fork
// point, wherever in the source's own chain that point is.
func TestForkChain(t *testing.T) {
	src := Layout{Chain: []Segment{{ID: 1, End: 10}, {ID: 2, End: 15}}, ID: 3}
	tests := []struct {
		base uint64
		want []Segment
	}{
		{0, nil},
		{4, []Segment{{1, 4}}},
		{10, []Segment{{1, 10}}},
		{12, []Segment{{1, 10}, {2, 12}}},
		{15, []Segment{{1, 10}, {2, 15}}},
		{20, []Segment{{1, 10}, {2, 15}, {3, 20}}},
	}
	for _, tc := range tests {
		if got := src.ForkChain(tc.base); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ForkChain(%d) = %v; want %v", tc.base, got, tc.want)
		}
	}
	if got := (Layout{ID: 7}).ForkChain(5); !reflect.DeepEqual(got, []Segment{{7, 5}}) {
		t.Errorf("fork of an unforked stream: %v", got)
	}
}

// TestLayoutReads: bytes and messages read through a chain are those of
// the right stream for each range, cut at fork points, for every start and
// end and chunk bound.
func TestLayoutReads(t *testing.T) {
	forEachFS(t, func(t *testing.T, h *harness) {
		st := h.open()
		// Stream 1: "abcdefgh" in two records; fork 2 takes "abcde" (cut
		// inside a record) and adds "XYZ"; fork 3 takes fork 2's "abcdeXY"
		// and adds "12". The data past each fork point in the source is
		// not the fork's.
		writeRecords(t, st, 1, 0, "abcd", "efgh")
		writeRecords(t, st, 2, 5, "XYZ", "tail-not-inherited")
		writeRecords(t, st, 3, 7, "12")
		l3 := Layout{Chain: []Segment{{1, 5}, {2, 7}}, ID: 3}
		want := "abcdeXY12"
		for from := 0; from <= len(want); from++ {
			for upto := from; upto <= len(want); upto++ {
				for _, max := range []int{1, 2, 3, 100} {
					got, err := st.AppendBytesLayout(nil, l3, uint64(from), uint64(upto), max)
					if err != nil {
						t.Fatal(err)
					}
					exp := want[from:min(upto, from+max)]
					if string(got) != exp {
						t.Fatalf("bytes [%d,%d) max %d = %q; want %q", from, upto, max, got, exp)
					}
				}
			}
		}

		// JSON-like: one record per message; fork points on boundaries.
		writeRecords(t, st, 11, 0, `1`, `22`, `333`)
		writeRecords(t, st, 12, 3, `"x"`, `"yy"`)
		l := Layout{Chain: []Segment{{11, 3}}, ID: 12}
		msgs, end, err := st.ReadMessagesLayout(l, 0, 10, 100)
		if err != nil || end != 10 || fmt.Sprintf("%s", msgs) != `[1 22 "x" "yy"]` {
			t.Fatalf("all messages = %s, %d, %v", msgs, end, err)
		}
		msgs, end, err = st.ReadMessagesLayout(l, 1, 10, 4)
		if err != nil || end != 3 || fmt.Sprintf("%s", msgs) != `[22]` {
			t.Fatalf("messages from 1, max 4 = %s, %d, %v; want [22] up to 3 (\"x\" would pass max)", msgs, end, err)
		}
		msgs, end, err = st.ReadMessagesLayout(l, 3, 10, 1)
		if err != nil || end != 6 || fmt.Sprintf("%s", msgs) != `["x"]` {
			t.Fatalf("one oversized message = %s, %d, %v", msgs, end, err)
		}
		if _, _, err := st.ReadMessagesLayout(l, 2, 10, 100); !errors.Is(err, ErrNotBoundary) {
			t.Fatalf("messages from inside one: %v; want ErrNotBoundary", err)
		}
	})
}

// TestRecordBoundaries: RecordEnd and MessagesEnd see records as the
// layout does (a record inherited up to a fork point ends there).
func TestRecordBoundaries(t *testing.T) {
	forEachFS(t, func(t *testing.T, h *harness) {
		st := h.open()
		writeRecords(t, st, 1, 0, "hello", "world")
		l := Layout{Chain: []Segment{{1, 7}}, ID: 2} // "hellowo", then its own
		writeRecords(t, st, 2, 7, "!!")
		tail := uint64(9)
		for _, tc := range []struct{ pos, want uint64 }{{0, 5}, {3, 5}, {5, 7}, {6, 7}, {7, 9}, {9, 9}} {
			if got, err := st.RecordEnd(l, tc.pos, tail); err != nil || got != tc.want {
				t.Errorf("RecordEnd(%d) = %d, %v; want %d", tc.pos, got, err, tc.want)
			}
		}
		for _, tc := range []struct {
			pos, n, want uint64
			err          error
		}{
			{0, 0, 0, nil}, {0, 1, 5, nil}, {0, 2, 7, nil}, {0, 3, 9, nil}, {0, 4, 0, ErrShortSource},
			{5, 1, 7, nil}, {7, 1, 9, nil}, {9, 0, 9, nil}, {9, 1, 0, ErrShortSource},
			{3, 1, 0, ErrNotBoundary}, {10, 0, 0, ErrShortSource},
		} {
			got, err := st.MessagesEnd(l, tc.pos, tc.n, tail)
			if !errors.Is(err, tc.err) || (tc.err == nil && got != tc.want) {
				t.Errorf("MessagesEnd(%d, %d) = %d, %v; want %d, %v", tc.pos, tc.n, got, err, tc.want, tc.err)
			}
		}
	})
}

// TestForkRefsAndSoftDeleted: references and the soft-deleted list are
// written and removed by batches, survive a reopen, and list in order.
func TestForkRefsAndSoftDeleted(t *testing.T) {
	forEachFS(t, func(t *testing.T, h *harness) {
		st := h.open()
		commit := func(f func(b *Batch) error) {
			t.Helper()
			b := st.NewBatch()
			defer b.Close()
			if err := f(b); err != nil {
				t.Fatal(err)
			}
			if err := b.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		commit(func(b *Batch) error {
			if err := b.PutForkRef(5, 9, "f9"); err != nil {
				return err
			}
			if err := b.PutForkRef(5, 10, "f10"); err != nil {
				return err
			}
			for _, id := range []uint64{3, 5, 300} {
				if err := b.PutSoftDeleted(id, fmt.Sprintf("s%d", id)); err != nil {
					return err
				}
			}
			return nil
		})
		st = h.reopen()
		for id, want := range map[uint64]bool{4: false, 5: true, 6: false, 9: false} {
			if got, err := st.HasForkRefs(id); err != nil || got != want {
				t.Errorf("HasForkRefs(%d) = %v, %v; want %v", id, got, err, want)
			}
		}
		got, err := st.SoftDeleted(3, 10)
		if err != nil || fmt.Sprint(got) != "[{5 s5} {300 s300}]" {
			t.Fatalf("SoftDeleted after 3 = %v, %v", got, err)
		}
		commit(func(b *Batch) error {
			if err := b.DeleteForkRef(5, 9); err != nil {
				return err
			}
			if err := b.DeleteForkRef(5, 10); err != nil {
				return err
			}
			return b.DeleteSoftDeleted(5)
		})
		if has, _ := st.HasForkRefs(5); has {
			t.Error("references remain after deleting both")
		}
		if got, _ := st.SoftDeleted(0, 10); fmt.Sprint(got) != "[{3 s3} {300 s300}]" {
			t.Errorf("SoftDeleted = %v", got)
		}
	})
}

// TestLoadFork: a fork's metadata round-trips, and a fork with no data of
// its own has its base as its tail.
func TestLoadFork(t *testing.T) {
	forEachFS(t, func(t *testing.T, h *harness) {
		st := h.open()
		m := &Meta{ID: 8, ContentType: "text/plain", Fork: &ForkInfo{SourcePath: "src", SourceID: 3, Offset: 2, SubOffset: 3, Base: 5,
			Chain: []Segment{{3, 5}}}}
		b := st.NewBatch()
		if err := b.PutMeta("f", m); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
		b.Close()
		got, err := st.Load("f")
		if err != nil || got == nil {
			t.Fatalf("Load: %v, %v", got, err)
		}
		if got.Tail != 5 || !reflect.DeepEqual(got.Meta.Fork, m.Fork) {
			t.Fatalf("loaded tail %d fork %+v; want 5 and %+v", got.Tail, got.Meta.Fork, m.Fork)
		}
		writeRecords(t, st, 8, 5, strings.Repeat("x", 4))
		if got, _ := st.Load("f"); got.Tail != 9 {
			t.Fatalf("tail after own data = %d; want 9", got.Tail)
		}
	})
}
