package actors

import (
	"errors"
	"slices"
	"testing"

	"github.com/streamd/streamd/protocol"
)

func TestAppendAdvancesOffsetsByRecordLength(t *testing.T) {
	e := newEnv(t)
	e.createText("/s")
	steps := []struct {
		records []string
		want    uint64
	}{
		{[]string{"a"}, 1},
		{[]string{"bcd"}, 4},
		{[]string{"ef", "ghi"}, 9},
		{[]string{""}, 9},
		{[]string{"0123456789"}, 19},
	}
	for _, s := range steps {
		r := e.appendText("/s", s.records...)
		if r.Outcome != Appended || r.NextOffset != s.want || r.Closed {
			t.Fatalf("append %q = %+v, want Appended at %d", s.records, r, s.want)
		}
		if r.Snapshot == nil || r.Snapshot.Tail < r.NextOffset {
			t.Fatalf("append %q: reply snapshot %+v behind NextOffset %d", s.records, r.Snapshot, r.NextOffset)
		}
	}
	if got, _ := e.readAll("/s"); string(got) != "abcdefghi0123456789" {
		t.Fatalf("stream = %q", got)
	}
}

func TestAppendErrors(t *testing.T) {
	e := newEnv(t)
	e.createText("/s", "x")

	if _, err := e.s.Append(opCtx(t), "/missing", AppendRequest{ContentType: ctText, Records: recs("a")}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("append to missing stream: %v, want ErrNotFound", err)
	}
	if _, err := e.s.Append(opCtx(t), "/s", AppendRequest{ContentType: ctJSON, Records: recs("1")}); !errors.Is(err, ErrContentTypeMismatch) {
		t.Fatalf("append with wrong content type: %v, want ErrContentTypeMismatch", err)
	}
	// Content types compare by essence, ignoring case and parameters.
	if r := e.append("/s", AppendRequest{ContentType: "Text/Plain; charset=utf-8", Records: recs("y")}); r.NextOffset != 2 {
		t.Fatalf("append with equivalent content type = %+v", r)
	}
	// A rejected append writes nothing.
	if got, _ := e.readAll("/s"); string(got) != "xy" {
		t.Fatalf("stream = %q, want %q", got, "xy")
	}
}

func TestAppendStreamSeq(t *testing.T) {
	tests := []struct {
		name string
		seqs []string
		// ok[i] says whether seqs[i] is accepted.
		ok []bool
	}{
		{"increasing", []string{"1", "2", "3"}, []bool{true, true, true}},
		{"lexicographic not numeric", []string{"2", "10"}, []bool{true, false}},
		{"zero padded", []string{"09", "10"}, []bool{true, true}},
		{"equal rejected", []string{"a", "a"}, []bool{true, false}},
		{"lower rejected", []string{"b", "a", "c"}, []bool{true, false, true}},
		{"byte order", []string{"Z", "a", "aa", "b"}, []bool{true, true, true, true}},
		{"prefix sorts first", []string{"ab", "a"}, []bool{true, false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.createText("/s")
			var want string
			for i, seq := range tc.seqs {
				r, err := e.s.Append(opCtx(t), "/s", AppendRequest{ContentType: ctText, Records: recs(seq), Seq: seq})
				if tc.ok[i] {
					if err != nil || r.Outcome != Appended {
						t.Fatalf("seq %q: %+v, %v; want accepted", seq, r, err)
					}
					want += seq
				} else if !errors.Is(err, ErrSeqRegression) {
					t.Fatalf("seq %q: %v, want ErrSeqRegression", seq, err)
				}
			}
			if got, _ := e.readAll("/s"); string(got) != want {
				t.Fatalf("stream = %q, want %q", got, want)
			}
		})
	}
}

func TestAppendWithoutSeqDoesNotResetSeq(t *testing.T) {
	e := newEnv(t)
	e.createText("/s")
	e.append("/s", AppendRequest{ContentType: ctText, Records: recs("a"), Seq: "5"})
	e.appendText("/s", "b")
	if _, err := e.s.Append(opCtx(t), "/s", AppendRequest{ContentType: ctText, Records: recs("c"), Seq: "4"}); !errors.Is(err, ErrSeqRegression) {
		t.Fatalf("seq 4 after 5: %v, want ErrSeqRegression", err)
	}
}

func TestAppendClose(t *testing.T) {
	e := newEnv(t)
	e.createText("/s", "ab")

	r := e.append("/s", AppendRequest{ContentType: ctText, Records: recs("cd"), Close: true})
	if r.Outcome != Appended || !r.Closed || r.NextOffset != 4 || !r.Snapshot.Closed {
		t.Fatalf("append-and-close = %+v", r)
	}
	_, err := e.s.Append(opCtx(t), "/s", AppendRequest{ContentType: ctText, Records: recs("e")})
	var ce *ClosedError
	if !errors.As(err, &ce) || ce.Tail != 4 || !errors.Is(err, ErrStreamClosed) {
		t.Fatalf("append after close: %v, want *ClosedError{Tail: 4}", err)
	}
	// Append-and-close is not idempotent without producer headers.
	if _, err := e.s.Append(opCtx(t), "/s", AppendRequest{ContentType: ctText, Records: recs("cd"), Close: true}); !errors.As(err, &ce) {
		t.Fatalf("repeated append-and-close: %v, want *ClosedError", err)
	}
	// Close-only is idempotent, whatever its content type.
	for _, ct := range []string{"", ctText, ctJSON} {
		r := e.append("/s", AppendRequest{ContentType: ct, Close: true})
		if r.Outcome != AlreadyClosed || !r.Closed || r.NextOffset != 4 {
			t.Fatalf("close-only (ct %q) on closed stream = %+v", ct, r)
		}
	}
	if got, snap := e.readAll("/s"); string(got) != "abcd" || !snap.Closed {
		t.Fatalf("stream = %q closed=%v", got, snap.Closed)
	}
}

func TestCloseOnlyOnOpenStream(t *testing.T) {
	e := newEnv(t)
	e.createText("/s", "abc")
	// Content type is not checked when the body is empty.
	r := e.append("/s", AppendRequest{ContentType: ctJSON, Close: true})
	if r.Outcome != Appended || !r.Closed || r.NextOffset != 3 {
		t.Fatalf("close-only = %+v, want Appended, closed at 3", r)
	}
	if _, snap := e.open("/s"); !snap.Closed || snap.Tail != 3 {
		t.Fatalf("snapshot = %+v", snap)
	}
}

func TestAppendErrorPrecedence(t *testing.T) {
	e := newEnv(t)
	e.createText("/s", "x")
	e.append("/s", AppendRequest{Close: true, Seq: "5"})

	// Closed wins over content type mismatch and sequence regression.
	_, err := e.s.Append(opCtx(t), "/s", AppendRequest{ContentType: ctJSON, Records: recs("1"), Seq: "1"})
	var ce *ClosedError
	if !errors.As(err, &ce) || ce.Tail != 1 {
		t.Fatalf("closed + content type + seq: %v, want *ClosedError{Tail: 1}", err)
	}

	// Content type mismatch wins over sequence regression.
	e.createText("/t")
	e.append("/t", AppendRequest{ContentType: ctText, Records: recs("a"), Seq: "5"})
	if _, err := e.s.Append(opCtx(t), "/t", AppendRequest{ContentType: ctJSON, Records: recs("1"), Seq: "1"}); !errors.Is(err, ErrContentTypeMismatch) {
		t.Fatalf("content type + seq: %v, want ErrContentTypeMismatch", err)
	}
}

func TestErrorTypes(t *testing.T) {
	tests := []struct {
		err    error
		target error
		msg    string
	}{
		{&ClosedError{Tail: 7}, ErrStreamClosed, "stream is closed at 7"},
		{&StaleEpochError{Current: 3}, ErrStaleEpoch, "stale producer epoch; current epoch is 3"},
		{&SeqGapError{Expected: 2, Received: 5}, ErrSeqGap, "producer sequence gap: expected 2, received 5"},
	}
	for _, tc := range tests {
		if !errors.Is(tc.err, tc.target) {
			t.Errorf("%T does not match %v", tc.err, tc.target)
		}
		if errors.Is(tc.err, ErrNotFound) {
			t.Errorf("%T matches ErrNotFound", tc.err)
		}
		if tc.err.Error() != tc.msg {
			t.Errorf("%T.Error() = %q, want %q", tc.err, tc.err.Error(), tc.msg)
		}
	}
}

// TestUnsplitBodyOnJSONStream: a handler that judged a path from a snapshot
// older than the path's recreation as a JSON stream passes the body
// unsplit; the actor splits (and validates) it so JSON mode holds.
func TestUnsplitBodyOnJSONStream(t *testing.T) {
	cases := []struct {
		name    string
		ct      string
		body    string
		want    []string
		invalid bool
	}{
		{"JSON stream, array", ctJSON, `[1,{"a":2}]`, []string{`1`, `{"a":2}`}, false},
		{"JSON stream, value", ctJSON, `"x"`, []string{`"x"`}, false},
		{"JSON stream, invalid", ctJSON, `[1,`, nil, true},
		{"text stream", ctText, `[1,2]`, []string{`[1,2]`}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.create("/s", CreateRequest{ContentType: tc.ct})
			_, err := e.s.Append(opCtx(t), "/s", AppendRequest{ContentType: tc.ct, Records: recs(tc.body), Unsplit: true})
			if tc.invalid {
				if !protocol.IsBadRequest(err) {
					t.Fatalf("Append = %v, want a bad request", err)
				}
				if _, snap := e.open("/s"); snap.Tail != 0 {
					t.Fatalf("invalid body stored: tail %d", snap.Tail)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tc.ct == ctJSON {
				var got []string
				for _, m := range e.readMessages("/s") {
					got = append(got, string(m))
				}
				if !slices.Equal(got, tc.want) {
					t.Fatalf("messages %q, want %q", got, tc.want)
				}
			} else if b, _ := e.readAll("/s"); string(b) != tc.want[0] {
				t.Fatalf("stored %q, want %q", b, tc.want[0])
			}
		})
	}
}
