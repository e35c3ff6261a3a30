package actors

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/streamd/streamd/persistence"
	"github.com/streamd/streamd/protocol"
)

var stateNow = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// stateOf builds a live stream's state for the table tests.
func stateOf(tail uint64, edit ...func(*streamState)) *streamState {
	st := &streamState{exists: true, tail: tail, meta: persistence.Meta{ID: 7, ContentType: ctText, CreatedAt: stateNow.Add(-time.Hour)}}
	for _, f := range edit {
		f(st)
	}
	return st
}

func closedBy(p *persistence.ProducerRef) func(*streamState) {
	return func(st *streamState) { st.meta.Closed, st.meta.ClosedBy = true, p }
}

func withProducer(id string, epoch, seq uint64) func(*streamState) {
	return func(st *streamState) {
		if st.producers == nil {
			st.producers = map[string]persistence.ProducerState{}
		}
		st.producers[id] = persistence.ProducerState{Epoch: epoch, LastSeq: seq, Used: stateNow.Add(-time.Minute).Unix()}
	}
}

func withSeq(seq string) func(*streamState) { return func(st *streamState) { st.meta.LastSeq = seq } }

// TestPlanAppend is the append validation table (§5.2, §5.2.1, §5.3): for
// each state and request, the error, the answer without a write, or the
// write that results.
func TestPlanAppend(t *testing.T) {
	lim := stateLimits{maxProducers: 100, producerTTL: time.Hour}
	data := AppendRequest{ContentType: ctText, Records: recs("abc")}
	withP := func(req AppendRequest, id string, epoch, seq uint64) AppendRequest {
		req.Producer = producer(id, epoch, seq)
		return req
	}
	closing := func(req AppendRequest) AppendRequest { req.Close = true; return req }
	seqd := func(req AppendRequest, seq string) AppendRequest { req.Seq = seq; return req }
	tests := []struct {
		name    string
		st      *streamState
		req     AppendRequest
		expired bool
		wantErr error
		// answer: the outcome of an answer without a write (0: a write).
		answer Outcome
		// after, for a write: what applyAppend leaves.
		wantTail  uint64
		wantState func(*testing.T, *streamState)
	}{
		{name: "missing stream", st: &streamState{}, req: data, wantErr: ErrNotFound},
		{name: "expired stream", st: stateOf(3), req: data, expired: true, wantErr: ErrNotFound},
		{name: "plain append", st: stateOf(3), req: data, wantTail: 6},
		{name: "content type mismatch", st: stateOf(3), req: AppendRequest{ContentType: ctJSON, Records: recs("[1]")}, wantErr: ErrContentTypeMismatch},
		{name: "content type parameters ignored", st: stateOf(3), req: AppendRequest{ContentType: "Text/Plain; charset=utf-8", Records: recs("x")}, wantTail: 4},
		{name: "close-only ignores content type", st: stateOf(3), req: AppendRequest{ContentType: ctJSON, Close: true}, wantTail: 3,
			wantState: func(t *testing.T, st *streamState) {
				if !st.meta.Closed || st.meta.ClosedBy != nil {
					t.Errorf("closed %v by %+v; want closed by no producer", st.meta.Closed, st.meta.ClosedBy)
				}
			}},
		{name: "append to closed", st: stateOf(3, closedBy(nil)), req: data, wantErr: ErrStreamClosed},
		{name: "close closed", st: stateOf(3, closedBy(nil)), req: AppendRequest{Close: true}, answer: AlreadyClosed},
		{name: "producer close-only on stream closed without producer", st: stateOf(3, closedBy(nil)),
			req: AppendRequest{Close: true, Producer: producer("q", 0, 0)}, wantErr: ErrStreamClosed},
		{name: "other producer close-only on closed", st: stateOf(3, closedBy(&persistence.ProducerRef{ID: "p", Epoch: 1, Seq: 4})),
			req: AppendRequest{Close: true, Producer: producer("q", 0, 0)}, wantErr: ErrStreamClosed},
		{name: "closing producer close-only with another seq", st: stateOf(3, closedBy(&persistence.ProducerRef{ID: "p", Epoch: 1, Seq: 4})),
			req: AppendRequest{Close: true, Producer: producer("p", 1, 5)}, wantErr: ErrStreamClosed},
		{name: "retry of the closing producer close-only", st: stateOf(3, closedBy(&persistence.ProducerRef{ID: "p", Epoch: 1, Seq: 4})),
			req: AppendRequest{Close: true, Producer: producer("p", 1, 4)}, answer: Duplicate},
		{name: "append-and-close on closed", st: stateOf(3, closedBy(nil)), req: closing(data), wantErr: ErrStreamClosed},
		{name: "retry of the closing producer request", st: stateOf(3, closedBy(&persistence.ProducerRef{ID: "p", Epoch: 1, Seq: 4})),
			req: closing(withP(data, "p", 1, 4)), answer: Duplicate},
		{name: "other producer request on closed", st: stateOf(3, closedBy(&persistence.ProducerRef{ID: "p", Epoch: 1, Seq: 4})),
			req: withP(data, "p", 1, 5), wantErr: ErrStreamClosed},
		{name: "new producer at seq 0", st: stateOf(3), req: withP(data, "p", 2, 0), wantTail: 6,
			wantState: func(t *testing.T, st *streamState) {
				if ps := st.producers["p"]; ps.Epoch != 2 || ps.LastSeq != 0 || ps.Used != stateNow.Unix() {
					t.Errorf("producer state %+v; want epoch 2 seq 0 used now", ps)
				}
				if st.meta.NoProducers {
					t.Error("NoProducers still set")
				}
			}},
		{name: "new producer past seq 0", st: stateOf(3), req: withP(data, "p", 0, 3), wantErr: ErrSeqGap},
		{name: "next seq", st: stateOf(3, withProducer("p", 1, 4)), req: withP(data, "p", 1, 5), wantTail: 6},
		{name: "duplicate seq", st: stateOf(3, withProducer("p", 1, 4)), req: withP(data, "p", 1, 4), answer: Duplicate},
		{name: "older seq", st: stateOf(3, withProducer("p", 1, 4)), req: withP(data, "p", 1, 1), answer: Duplicate},
		{name: "seq gap", st: stateOf(3, withProducer("p", 1, 4)), req: withP(data, "p", 1, 6), wantErr: ErrSeqGap},
		{name: "stale epoch", st: stateOf(3, withProducer("p", 3, 0)), req: withP(data, "p", 2, 0), wantErr: ErrStaleEpoch},
		{name: "new epoch at seq 0", st: stateOf(3, withProducer("p", 1, 9)), req: withP(data, "p", 2, 0), wantTail: 6},
		{name: "new epoch past seq 0", st: stateOf(3, withProducer("p", 1, 9)), req: withP(data, "p", 2, 1), wantErr: ErrEpochSeq},
		{name: "first Stream-Seq", st: stateOf(3), req: seqd(data, "0001"), wantTail: 6,
			wantState: func(t *testing.T, st *streamState) {
				if st.meta.LastSeq != "0001" || !st.metaDirty {
					t.Errorf("LastSeq %q dirty %v; want 0001, dirty", st.meta.LastSeq, st.metaDirty)
				}
			}},
		{name: "Stream-Seq increases bytewise", st: stateOf(3, withSeq("9")), req: seqd(data, "10"), wantErr: ErrSeqRegression},
		{name: "Stream-Seq repeated", st: stateOf(3, withSeq("0002")), req: seqd(data, "0002"), wantErr: ErrSeqRegression},
		{name: "Stream-Seq greater", st: stateOf(3, withSeq("0002")), req: seqd(data, "0003"), wantTail: 6},
		{name: "unsplit JSON body is split", st: stateOf(0, func(st *streamState) { st.meta.ContentType = ctJSON }),
			req: AppendRequest{ContentType: ctJSON, Records: recs(`[{"a":1},{"b":2}]`), Unsplit: true}, wantTail: 14},
		{name: "unsplit invalid JSON", st: stateOf(0, func(st *streamState) { st.meta.ContentType = ctJSON }),
			req: AppendRequest{ContentType: ctJSON, Records: recs(`[{"a":`), Unsplit: true}, wantErr: protocol.ErrBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			last := stateNow.Add(-time.Second)
			if tc.expired {
				tc.st.meta.HasTTL, tc.st.meta.TTL = true, time.Second
				last = stateNow.Add(-2 * time.Second)
			}
			before := fmt.Sprintf("%+v", *tc.st)
			plan := planAppend(tc.st, tc.req, stateNow, last, lim)
			if after := fmt.Sprintf("%+v", *tc.st); after != before {
				t.Fatalf("planAppend changed the state:\n%s\n%s", before, after)
			}
			switch {
			case tc.wantErr != nil:
				if !errors.Is(plan.err, tc.wantErr) {
					t.Fatalf("err = %v; want %v", plan.err, tc.wantErr)
				}
				return
			case plan.err != nil:
				t.Fatalf("unexpected err %v", plan.err)
			case tc.answer != 0:
				if plan.answer == nil || plan.answer.Outcome != tc.answer {
					t.Fatalf("answer = %+v; want outcome %v", plan.answer, tc.answer)
				}
				return
			case plan.answer != nil:
				t.Fatalf("unexpected answer %+v", plan.answer)
			}
			start, res := tc.st.applyAppend(plan, stateNow)
			if start != 3 && start != 0 || res.NextOffset != tc.wantTail || tc.st.tail != tc.wantTail || res.Outcome != Appended {
				t.Fatalf("applyAppend: start %d, result %+v, tail %d; want tail %d", start, res, tc.st.tail, tc.wantTail)
			}
			if tc.wantState != nil {
				tc.wantState(t, tc.st)
			}
		})
	}
}

// TestPlanAppendProducerBound: a new producer on a stream at its producer
// bound replaces the producers idle for the TTL (all of them, in id order),
// or is refused when none is; known producers are never refused.
func TestPlanAppendProducerBound(t *testing.T) {
	lim := stateLimits{maxProducers: 3, producerTTL: time.Hour}
	idle := func(id string, age time.Duration) func(*streamState) {
		return func(st *streamState) {
			withProducer(id, 0, 0)(st)
			ps := st.producers[id]
			ps.Used = stateNow.Add(-age).Unix()
			st.producers[id] = ps
		}
	}
	req := func(id string) AppendRequest {
		return AppendRequest{ContentType: ctText, Records: recs("x"), Producer: producer(id, 0, 0)}
	}
	tests := []struct {
		name       string
		st         *streamState
		req        AppendRequest
		wantErr    bool
		wantForget []string
	}{
		{"room left", stateOf(0, idle("a", 0), idle("b", 0)), req("new"), false, nil},
		{"full, none idle", stateOf(0, idle("a", 0), idle("b", time.Minute), idle("c", 59*time.Minute)), req("new"), true, nil},
		{"full, some idle", stateOf(0, idle("c", 2*time.Hour), idle("a", time.Minute), idle("b", time.Hour)), req("new"), false, []string{"b", "c"}},
		{"full, known producer", stateOf(0, idle("a", 0), idle("b", 0), idle("c", 0)), AppendRequest{ContentType: ctText, Records: recs("x"), Producer: producer("a", 0, 1)}, false, nil},
		{"state without last use counts from creation", stateOf(0, idle("a", 0), idle("b", 0), func(st *streamState) {
			st.producers["old"] = persistence.ProducerState{}
			st.meta.CreatedAt = stateNow.Add(-2 * time.Hour)
		}), req("new"), false, []string{"old"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			plan := planAppend(tc.st, tc.req, stateNow, stateNow, lim)
			var limit *LimitError
			if tc.wantErr {
				if !errors.As(plan.err, &limit) || limit.Limit != LimitProducers || limit.Server {
					t.Fatalf("err = %v; want a stream LimitError for %s", plan.err, LimitProducers)
				}
				return
			}
			if plan.err != nil {
				t.Fatalf("err = %v", plan.err)
			}
			if !reflect.DeepEqual(plan.forget, tc.wantForget) {
				t.Fatalf("forget = %v; want %v", plan.forget, tc.wantForget)
			}
			tc.st.applyAppend(plan, stateNow)
			for _, id := range tc.wantForget {
				if _, ok := tc.st.producers[id]; ok {
					t.Errorf("producer %q still known", id)
				}
			}
			if len(tc.st.producers) > lim.maxProducers {
				t.Errorf("%d producers known; bound is %d", len(tc.st.producers), lim.maxProducers)
			}
			if !reflect.DeepEqual(tc.st.forgotten, append([]string{}, tc.wantForget...)) && len(tc.wantForget) > 0 {
				t.Errorf("forgotten = %v; want %v", tc.st.forgotten, tc.wantForget)
			}
		})
	}
}

// TestPlanCreate: a create confirms an identical live stream, refuses a
// different one, and replaces an expired one.
func TestPlanCreate(t *testing.T) {
	ttl := protocol.Expiry{HasTTL: true, TTL: time.Minute}
	tests := []struct {
		name     string
		st       *streamState
		req      CreateRequest
		expired  bool
		want     createPlan
		wantErrs error
	}{
		{name: "no stream", st: &streamState{}, req: CreateRequest{ContentType: ctText}, want: createPlan{}},
		{name: "identical", st: stateOf(3), req: CreateRequest{ContentType: "text/plain; charset=utf-8"}, want: createPlan{existed: true}},
		{name: "other content type", st: stateOf(3), req: CreateRequest{ContentType: ctJSON}, wantErrs: ErrConfigMismatch},
		{name: "other TTL", st: stateOf(3), req: CreateRequest{ContentType: ctText, Expiry: ttl}, wantErrs: ErrConfigMismatch},
		{name: "other closure", st: stateOf(3), req: CreateRequest{ContentType: ctText, Closed: true}, wantErrs: ErrConfigMismatch},
		{name: "expired is replaced", st: stateOf(3), req: CreateRequest{ContentType: ctJSON}, expired: true, want: createPlan{replaces: 7}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			last := stateNow
			if tc.expired {
				tc.st.meta.HasTTL, tc.st.meta.TTL = true, time.Second
				last = stateNow.Add(-time.Hour)
			}
			got := planCreate(tc.st, tc.req, stateNow, last)
			if tc.wantErrs != nil {
				if !errors.Is(got.err, tc.wantErrs) {
					t.Fatalf("err = %v; want %v", got.err, tc.wantErrs)
				}
				return
			}
			if got != tc.want {
				t.Fatalf("planCreate = %+v; want %+v", got, tc.want)
			}
		})
	}
}

// TestWriteChangesForgetsBeforePutting: a producer forgotten and seen again
// before the batch is built ends up stored.
func TestWriteChangesForgetsBeforePutting(t *testing.T) {
	e := newEnv(t)
	st := stateOf(0, withProducer("a", 0, 0), withProducer("b", 0, 0))
	st.meta.NoProducers, st.metaDirty = false, true
	lim := stateLimits{maxProducers: 2, producerTTL: time.Nanosecond}
	for _, id := range []string{"c", "a"} { // c makes room by forgetting a and b; then a comes back
		plan := planAppend(st, AppendRequest{ContentType: ctText, Records: recs("x"), Producer: producer(id, 0, 0)}, stateNow.Add(time.Hour), stateNow, lim)
		if plan.err != nil {
			t.Fatalf("producer %s: %v", id, plan.err)
		}
		st.applyAppend(plan, stateNow.Add(time.Hour))
	}
	b := e.st.NewBatch()
	if err := st.writeChanges(b, func(b *persistence.Batch, m *persistence.Meta) error { return b.PutMeta("/s", m) }); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	b.Close()
	loaded, err := e.st.Load("/s")
	if err != nil || loaded == nil {
		t.Fatalf("Load: %v, %v", loaded, err)
	}
	if _, ok := loaded.Producers["a"]; !ok || len(loaded.Producers) != len(st.producers) {
		t.Fatalf("stored producers %v; want those in memory %v", loaded.Producers, st.producers)
	}
}
