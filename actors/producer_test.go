package actors

import (
	"errors"
	"fmt"
	"testing"

	"github.com/streamd/streamd/protocol"
)

// producerStep is one request of an idempotent producer scenario (§5.2.1).
type producerStep struct {
	p     *protocol.Producer
	close bool
	// Expected outcome: either an error check or a result.
	wantErr     error // matched with errors.Is
	wantGap     *SeqGapError
	wantStale   *StaleEpochError
	wantOutcome Outcome
	wantEpoch   uint64
	wantSeq     uint64
	wantClosed  bool
}

func TestIdempotentProducerValidation(t *testing.T) {
	P := producer
	tests := []struct {
		name  string
		steps []producerStep
		// want is the stream's final content: one "id/epoch/seq;" record per
		// accepted request.
		want string
	}{
		{
			name: "first request epoch 0 seq 0",
			steps: []producerStep{
				{p: P("a", 0, 0), wantOutcome: Appended, wantEpoch: 0, wantSeq: 0},
			},
			want: "a/0/0;",
		},
		{
			name: "sequential seqs",
			steps: []producerStep{
				{p: P("a", 0, 0), wantOutcome: Appended},
				{p: P("a", 0, 1), wantOutcome: Appended, wantSeq: 1},
				{p: P("a", 0, 2), wantOutcome: Appended, wantSeq: 2},
			},
			want: "a/0/0;a/0/1;a/0/2;",
		},
		{
			name: "duplicate reports highest accepted seq",
			steps: []producerStep{
				{p: P("a", 0, 0), wantOutcome: Appended},
				{p: P("a", 0, 1), wantOutcome: Appended, wantSeq: 1},
				{p: P("a", 0, 2), wantOutcome: Appended, wantSeq: 2},
				{p: P("a", 0, 1), wantOutcome: Duplicate, wantSeq: 2},
				{p: P("a", 0, 2), wantOutcome: Duplicate, wantSeq: 2},
				{p: P("a", 0, 0), wantOutcome: Duplicate, wantSeq: 2},
				{p: P("a", 0, 3), wantOutcome: Appended, wantSeq: 3},
			},
			want: "a/0/0;a/0/1;a/0/2;a/0/3;",
		},
		{
			name: "gap",
			steps: []producerStep{
				{p: P("a", 0, 0), wantOutcome: Appended},
				{p: P("a", 0, 2), wantGap: &SeqGapError{Expected: 1, Received: 2}},
				{p: P("a", 0, 1), wantOutcome: Appended, wantSeq: 1},
			},
			want: "a/0/0;a/0/1;",
		},
		{
			name: "unknown producer must start at seq 0",
			steps: []producerStep{
				{p: P("a", 0, 3), wantGap: &SeqGapError{Expected: 0, Received: 3}},
				{p: P("a", 0, 0), wantOutcome: Appended},
			},
			want: "a/0/0;",
		},
		{
			name: "stale epoch fenced",
			steps: []producerStep{
				{p: P("a", 0, 0), wantOutcome: Appended},
				{p: P("a", 1, 0), wantOutcome: Appended, wantEpoch: 1},
				{p: P("a", 0, 1), wantStale: &StaleEpochError{Current: 1}},
				{p: P("a", 0, 0), wantStale: &StaleEpochError{Current: 1}},
			},
			want: "a/0/0;a/1/0;",
		},
		{
			name: "epoch bump must start at seq 0",
			steps: []producerStep{
				{p: P("a", 0, 0), wantOutcome: Appended},
				{p: P("a", 1, 1), wantErr: ErrEpochSeq},
				{p: P("a", 2, 5), wantErr: ErrEpochSeq},
				// The rejected bumps did not move the epoch.
				{p: P("a", 0, 1), wantOutcome: Appended, wantSeq: 1},
			},
			want: "a/0/0;a/0/1;",
		},
		{
			name: "epoch bump with seq 0 resets the sequence",
			steps: []producerStep{
				{p: P("a", 0, 0), wantOutcome: Appended},
				{p: P("a", 0, 1), wantOutcome: Appended, wantSeq: 1},
				{p: P("a", 0, 2), wantOutcome: Appended, wantSeq: 2},
				{p: P("a", 5, 0), wantOutcome: Appended, wantEpoch: 5, wantSeq: 0},
				{p: P("a", 5, 0), wantOutcome: Duplicate, wantEpoch: 5, wantSeq: 0},
				{p: P("a", 5, 1), wantOutcome: Appended, wantEpoch: 5, wantSeq: 1},
				{p: P("a", 5, 3), wantGap: &SeqGapError{Expected: 2, Received: 3}},
				{p: P("a", 4, 0), wantStale: &StaleEpochError{Current: 5}},
			},
			want: "a/0/0;a/0/1;a/0/2;a/5/0;a/5/1;",
		},
		{
			name: "auto-claim: fresh producer at a higher epoch",
			steps: []producerStep{
				{p: P("a", 3, 0), wantOutcome: Appended, wantEpoch: 3},
				{p: P("a", 0, 0), wantStale: &StaleEpochError{Current: 3}},
				{p: P("a", 4, 0), wantOutcome: Appended, wantEpoch: 4},
			},
			want: "a/3/0;a/4/0;",
		},
		{
			name: "independent producers",
			steps: []producerStep{
				{p: P("a", 0, 0), wantOutcome: Appended},
				{p: P("b", 0, 0), wantOutcome: Appended},
				{p: P("a", 0, 1), wantOutcome: Appended, wantSeq: 1},
				{p: P("b", 2, 0), wantOutcome: Appended, wantEpoch: 2},
				{p: P("a", 0, 1), wantOutcome: Duplicate, wantSeq: 1},
				{p: P("b", 2, 0), wantOutcome: Duplicate, wantEpoch: 2},
				{p: P("b", 1, 0), wantStale: &StaleEpochError{Current: 2}},
				{p: P("a", 0, 2), wantOutcome: Appended, wantSeq: 2},
			},
			want: "a/0/0;b/0/0;a/0/1;b/2/0;a/0/2;",
		},
		{
			name: "close by producer then retry is a duplicate",
			steps: []producerStep{
				{p: P("a", 0, 0), wantOutcome: Appended},
				{p: P("a", 0, 1), close: true, wantOutcome: Appended, wantSeq: 1, wantClosed: true},
				{p: P("a", 0, 1), close: true, wantOutcome: Duplicate, wantSeq: 1, wantClosed: true},
				{p: P("a", 0, 1), wantOutcome: Duplicate, wantSeq: 1, wantClosed: true},
				// Any other tuple meets the closed stream.
				{p: P("a", 0, 2), wantErr: ErrStreamClosed},
				{p: P("a", 0, 0), wantErr: ErrStreamClosed},
				{p: P("a", 1, 0), wantErr: ErrStreamClosed},
				{p: P("b", 0, 0), wantErr: ErrStreamClosed},
				{p: nil, wantErr: ErrStreamClosed},
			},
			want: "a/0/0;a/0/1;",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.createText("/s")
			for i, st := range tc.steps {
				rec := "anon;"
				if st.p != nil {
					rec = fmt.Sprintf("%s/%d/%d;", st.p.ID, st.p.Epoch, st.p.Seq)
				}
				r, err := e.s.Append(opCtx(t), "/s", AppendRequest{ContentType: ctText, Records: recs(rec), Producer: st.p, Close: st.close})
				checkProducerStep(t, i, st, r, err)
			}
			if got, _ := e.readAll("/s"); string(got) != tc.want {
				t.Fatalf("stream = %q, want %q", got, tc.want)
			}
		})
	}
}

func checkProducerStep(t *testing.T, i int, st producerStep, r Result, err error) {
	t.Helper()
	switch {
	case st.wantGap != nil:
		var g *SeqGapError
		if !errors.As(err, &g) || *g != *st.wantGap || !errors.Is(err, ErrSeqGap) {
			t.Fatalf("step %d %+v: %v, want %#v", i, st.p, err, st.wantGap)
		}
	case st.wantStale != nil:
		var s *StaleEpochError
		if !errors.As(err, &s) || *s != *st.wantStale || !errors.Is(err, ErrStaleEpoch) {
			t.Fatalf("step %d %+v: %v, want %#v", i, st.p, err, st.wantStale)
		}
	case st.wantErr != nil:
		if !errors.Is(err, st.wantErr) {
			t.Fatalf("step %d %+v: %v, want %v", i, st.p, err, st.wantErr)
		}
	default:
		if err != nil {
			t.Fatalf("step %d %+v: %v", i, st.p, err)
		}
		if r.Outcome != st.wantOutcome || r.ProducerEpoch != st.wantEpoch || r.ProducerSeq != st.wantSeq || r.Closed != st.wantClosed {
			t.Fatalf("step %d %+v: outcome %v epoch %d seq %d closed %v; want %v %d %d %v",
				i, st.p, r.Outcome, r.ProducerEpoch, r.ProducerSeq, r.Closed, st.wantOutcome, st.wantEpoch, st.wantSeq, st.wantClosed)
		}
		if r.Snapshot == nil || r.Snapshot.Tail < r.NextOffset {
			t.Fatalf("step %d: snapshot %+v behind NextOffset %d", i, r.Snapshot, r.NextOffset)
		}
	}
}

func TestProducerDuplicateReportsCurrentTail(t *testing.T) {
	e := newEnv(t)
	e.createText("/s")
	first := e.append("/s", AppendRequest{ContentType: ctText, Records: recs("abc"), Producer: producer("p", 0, 0)})
	e.appendText("/s", "de")
	dup := e.append("/s", AppendRequest{ContentType: ctText, Records: recs("abc"), Producer: producer("p", 0, 0)})
	if dup.Outcome != Duplicate || first.NextOffset != 3 || dup.NextOffset != 5 {
		t.Fatalf("first %+v, duplicate %+v", first, dup)
	}
}

func TestProducerCloseOnly(t *testing.T) {
	e := newEnv(t)
	e.createText("/s", "x")
	r := e.append("/s", AppendRequest{Producer: producer("p", 0, 0), Close: true})
	if r.Outcome != Appended || !r.Closed || r.NextOffset != 1 || r.ProducerSeq != 0 {
		t.Fatalf("producer close-only = %+v", r)
	}
	dup := e.append("/s", AppendRequest{Producer: producer("p", 0, 0), Close: true})
	if dup.Outcome != Duplicate || !dup.Closed || dup.NextOffset != 1 {
		t.Fatalf("retried producer close-only = %+v, want Duplicate", dup)
	}
	// A close-only by another producer, or by the closing producer with
	// another seq, is a write to a closed stream: it conflicts.
	for _, p := range []*protocol.Producer{producer("q", 0, 0), producer("p", 0, 1)} {
		_, err := e.s.Append(opCtx(t), "/s", AppendRequest{Producer: p, Close: true})
		var ce *ClosedError
		if !errors.As(err, &ce) || ce.Tail != 1 {
			t.Fatalf("close-only by %+v on a stream closed by p/0/0: %v, want ClosedError at 1", p, err)
		}
	}
	// Without producer headers a close-only stays idempotent.
	if r := e.append("/s", AppendRequest{Close: true}); r.Outcome != AlreadyClosed || !r.Closed {
		t.Fatalf("plain close-only = %+v, want AlreadyClosed", r)
	}
}

func TestProducerRejectedSeqRegressionKeepsProducerState(t *testing.T) {
	e := newEnv(t)
	e.createText("/s")
	e.append("/s", AppendRequest{ContentType: ctText, Records: recs("a"), Seq: "b"})
	// Producer validation passes but Stream-Seq fails: the producer's seq
	// must not advance, or its retry would be lost as a "duplicate".
	_, err := e.s.Append(opCtx(t), "/s", AppendRequest{ContentType: ctText, Records: recs("b"), Seq: "a", Producer: producer("p", 0, 0)})
	if !errors.Is(err, ErrSeqRegression) {
		t.Fatalf("regressing seq: %v", err)
	}
	r := e.append("/s", AppendRequest{ContentType: ctText, Records: recs("b"), Seq: "c", Producer: producer("p", 0, 0)})
	if r.Outcome != Appended {
		t.Fatalf("retry with a good seq = %+v, want Appended", r)
	}
}
