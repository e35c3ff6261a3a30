package actors

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/streamd/streamd/persistence"
)

// pipelineRig drives a commitPipeline the way a stream actor does, on a
// real in-memory store, with commits that wait until the test releases
// them.
type pipelineRig struct {
	t       *testing.T
	store   *persistence.Store
	p       commitPipeline
	release chan error // one value per commit: its result
	done    chan *commitDone
	filled  [][]*writeOp // ops of each batch built
	spec    *Snapshot    // what snapshot() returns now
	pub     *Snapshot    // what published() returns now
	wg      sync.WaitGroup
	fillErr error
}

func newPipelineRig(t *testing.T) *pipelineRig {
	st, err := persistence.Open(persistence.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	r := &pipelineRig{t: t, store: st, release: make(chan error), done: make(chan *commitDone, 16),
		spec: &Snapshot{Tail: 0}, pub: &Snapshot{Tail: 0}}
	r.p.env = commitEnv{
		newBatch: st.NewBatch,
		fill: func(b *persistence.Batch, ops []*writeOp) error {
			r.filled = append(r.filled, ops)
			for _, op := range ops {
				pos := op.start
				for _, rec := range op.records {
					if err := b.Append(1, pos, rec); err != nil {
						return err
					}
					pos += uint64(len(rec))
				}
			}
			return r.fillErr
		},
		commit: func(b *persistence.Batch) error {
			if err := <-r.release; err != nil {
				return err
			}
			return b.Commit()
		},
		snapshot:  func() *Snapshot { return r.spec },
		published: func() *Snapshot { return r.pub },
		done:      func(d *commitDone) { r.done <- d },
		inflight:  &r.wg,
	}
	t.Cleanup(func() {
		r.wg.Wait()
		st.Close()
	})
	return r
}

// op queues an append of rec answered on a fresh channel.
func (r *pipelineRig) op(start uint64, rec string) chan Result {
	ch := make(chan Result, 1)
	r.p.add(&writeOp{kind: opAppend, reply: ch, id: 1, start: start, records: recs(rec),
		res: Result{Outcome: Appended, NextOffset: start + uint64(len(rec))}})
	return ch
}

// finish takes the next commitDone and answers its ops as the actor does.
func (r *pipelineRig) finish() *commitDone {
	r.t.Helper()
	d := recv(r.t, r.done, "commitDone")
	if !r.p.finish(d) {
		r.t.Fatal("finish refused the commit in flight")
	}
	if d.err == nil {
		r.pub = d.snap
	}
	for _, op := range d.ops {
		op.res.Snapshot, op.res.Err = d.snap, d.err
		reply(op.reply, op.res)
	}
	return d
}

func unanswered(t *testing.T, chs ...chan Result) {
	t.Helper()
	for i, ch := range chs {
		select {
		case r := <-ch:
			t.Fatalf("op %d answered before its commit returned: %+v", i, r)
		default:
		}
	}
}

// TestPipelineOneCommitInFlight: ops accepted while a commit is in flight
// wait, and all of them form the next batch.
func TestPipelineOneCommitInFlight(t *testing.T) {
	r := newPipelineRig(t)
	a := r.op(0, "a")
	r.p.flush()
	if !r.p.inflight() {
		t.Fatal("no commit in flight after flush")
	}
	b, c := r.op(1, "b"), r.op(2, "c")
	r.p.flush() // a commit is in flight: nothing starts
	if len(r.filled) != 1 {
		t.Fatalf("%d batches built while one was in flight; want 1", len(r.filled))
	}
	unanswered(t, a, b, c)
	r.release <- nil
	r.finish()
	if recv(t, a, "a").Err != nil {
		t.Fatal("a failed")
	}
	unanswered(t, b, c)
	r.p.flush()
	if len(r.filled) != 2 || len(r.filled[1]) != 2 {
		t.Fatalf("second batch = %d ops; want b and c together", len(r.filled[len(r.filled)-1]))
	}
	r.release <- nil
	r.finish()
	recv(t, b, "b")
	recv(t, c, "c")
	if !r.p.idle() {
		t.Fatal("pipeline not idle after its last commit")
	}
}

// TestPipelineSnapshotOfTheBatch: a commit carries the speculative
// snapshot of when its batch was built, not a later one, so publishing it
// never shows readers bytes of a later, unsynced batch.
func TestPipelineSnapshotOfTheBatch(t *testing.T) {
	r := newPipelineRig(t)
	r.spec = &Snapshot{Tail: 1}
	r.op(0, "a")
	r.p.flush()
	r.spec = &Snapshot{Tail: 2} // accepted meanwhile
	r.op(1, "b")
	r.release <- nil
	d := r.finish()
	if d.snap.Tail != 1 {
		t.Fatalf("commit of batch 1 carries tail %d; want 1", d.snap.Tail)
	}
	got, err := r.store.ReadBytes(1, 0, d.snap.Tail, 100)
	if err != nil || string(got) != "a" {
		t.Fatalf("durable bytes below the published tail = %q, %v; want a", got, err)
	}
}

// TestPipelineAnswerAfterCommits: an answer that writes nothing (a
// duplicate, say) waits for the writes accepted before it, and is given at
// once when there are none.
func TestPipelineAnswerAfterCommits(t *testing.T) {
	r := newPipelineRig(t)
	now := make(chan Result, 1)
	r.p.answerAfterCommits(now, Result{Outcome: Duplicate})
	if got := recv(t, now, "idle answer"); got.Outcome != Duplicate || got.Snapshot != r.pub {
		t.Fatalf("idle answer = %+v", got)
	}
	a := r.op(0, "a")
	r.p.flush()
	dup := make(chan Result, 1)
	r.p.answerAfterCommits(dup, Result{Outcome: Duplicate})
	r.p.flush()
	unanswered(t, a, dup)
	r.release <- nil
	r.finish()
	recv(t, a, "a")
	unanswered(t, dup)
	r.p.flush() // only answers: no batch, answered at once
	if len(r.filled) != 1 {
		t.Fatalf("%d batches; a batch of answers only must not be committed", len(r.filled))
	}
	if got := recv(t, dup, "duplicate"); got.Outcome != Duplicate {
		t.Fatalf("duplicate answered %+v", got)
	}
}

// TestPipelineFailures: a failed commit fails every op of its batch; a
// batch that cannot be built is returned by flush, uncommitted; a closed
// pipeline refuses what is pending.
func TestPipelineFailures(t *testing.T) {
	r := newPipelineRig(t)
	a, b := r.op(0, "a"), r.op(1, "b")
	r.p.flush()
	r.release <- errors.New("disk on fire")
	d := r.finish()
	for _, ch := range []chan Result{a, b} {
		if got := recv(t, ch, "failed op"); got.Err == nil {
			t.Fatalf("op of a failed commit answered %+v", got)
		}
	}
	if d.err == nil || r.p.inflight() {
		t.Fatalf("after a failed commit: err %v, in flight %v", d.err, r.p.inflight())
	}

	r.fillErr = errors.New("cannot encode")
	r.op(0, "c")
	failed := r.p.flush()
	if failed == nil || failed.err != r.fillErr || r.p.inflight() {
		t.Fatalf("flush of an unbuildable batch = %+v (in flight %v); want it back with its error", failed, r.p.inflight())
	}
	r.fillErr = nil

	r.p.closed = true
	e := r.op(0, "e")
	r.p.flush()
	if got := recv(t, e, "op on a closed pipeline"); !errors.Is(got.Err, ErrShuttingDown) {
		t.Fatalf("op on a closed pipeline answered %+v", got)
	}
}

// TestPipelineAwaitFlight: a stopping actor takes the commit in flight
// itself; the commitDone message arriving later is refused.
func TestPipelineAwaitFlight(t *testing.T) {
	r := newPipelineRig(t)
	r.op(0, "a")
	r.p.flush()
	go func() {
		time.Sleep(10 * time.Millisecond)
		r.release <- nil
	}()
	d := r.p.awaitFlight()
	if d == nil || !r.p.finish(d) || r.p.inflight() {
		t.Fatal("awaitFlight did not hand over the commit in flight")
	}
	late := recv(t, r.done, "late commitDone")
	if r.p.finish(late) {
		t.Fatal("the late commitDone of a commit already taken was accepted")
	}
}
