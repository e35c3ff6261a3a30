package actors

import (
	"sync"
	"time"

	"github.com/streamd/streamd/persistence"
)

type opKind int

const (
	opAppend     opKind = iota // records and/or state changes
	opNoWrite                  // an answer that must wait for earlier commits
	opCreate                   // barrier: replaces the stream's identity
	opDelete                   // barrier: removes the stream
	opSoftDelete               // marks the stream deleted while forks read it
)

// writeOp is one accepted request travelling through the commit pipeline.
type writeOp struct {
	kind    opKind
	reply   chan Result
	res     Result
	id      uint64 // stream id the records belong to
	start   uint64
	records [][]byte
	// gone is the incarnation a create or delete removes (nil: none).
	gone *incarnation
	// fork, on a create, is the fork's source; pin holds that source until
	// the create is answered.
	fork *persistence.ForkInfo
	pin  *sourcePin
	// event is the lifecycle event the op makes, of incarnation eventID:
	// recorded in the outbox with it (Config.Registry) and reported once
	// durable. outboxDone lists outbox events a registry drain moves.
	event      *Event
	eventID    uint64
	outboxDone [][]byte
	// arrived is when an append was sent to the actor (zero unless commit
	// latency is observed).
	arrived time.Time
}

// incarnation is what removing one incarnation of a path must undo.
type incarnation struct {
	id   uint64
	fork *persistence.ForkInfo // its source, if it is a fork
	soft bool                  // it was soft-deleted
}

// answer replies to the op's request; a pinned fork source learns whether
// the fork was created.
func (op *writeOp) answer(res Result) {
	op.pin.release(res.Err == nil && op.kind == opCreate, op.id)
	reply(op.reply, res)
}

// writes reports whether any of ops writes to storage.
func writes(ops []*writeOp) bool {
	for _, op := range ops {
		if op.kind != opNoWrite {
			return true
		}
	}
	return false
}

// commitDone reports the end of a batch commit to the actor that started it.
type commitDone struct {
	ops  []*writeOp
	snap *Snapshot
	err  error
	// finished is closed when the commit returned, before the message is sent.
	finished chan struct{}
	// synced is when the commit returned.
	synced time.Time
}

// commitEnv is what a commit pipeline needs from its stream actor.
type commitEnv struct {
	newBatch func() *persistence.Batch
	// fill writes ops, and the state changes accepted with them, into b.
	fill func(b *persistence.Batch, ops []*writeOp) error
	// commit makes b durable; nil means b.Commit. Tests slow or fail it.
	commit func(b *persistence.Batch) error
	// snapshot is what readers may see once everything accepted so far is
	// durable; published is what they see now.
	snapshot, published func() *Snapshot
	// done hands a finished commit back to the actor's mailbox.
	done func(*commitDone)
	// inflight counts commits running, so a shutdown can wait for them.
	inflight *sync.WaitGroup
}

// commitPipeline turns one stream's accepted writes into synced Pebble
// batches. It belongs to the stream's actor and is used from its goroutine
// only, except for the commit itself, which runs on its own goroutine.
//
// Invariants:
//
//  1. At most one commit is in flight. Writes accepted meanwhile wait in
//     pending and form the next batch when it returns, so concurrent
//     writers share fsyncs and their offsets (assigned in acceptance
//     order) are committed in order.
//  2. An op is answered only after the commit carrying it returned (the
//     actor answers from the commitDone), and an op that writes nothing
//     only after every earlier commit did: acknowledged means synced.
//  3. The snapshot travelling with a commit is the speculative state as of
//     building its batch; the actor publishes it only from that commit's
//     commitDone, so readers never see bytes that are not yet durable
//     (Pebble makes a batch visible before its WAL is synced).
type commitPipeline struct {
	env     commitEnv
	pending []*writeOp
	flight  *commitDone // the commit in flight, if any
	closed  bool        // stopping: pending ops are refused
}

// add queues op for the next batch; flush starts it.
func (p *commitPipeline) add(op *writeOp) { p.pending = append(p.pending, op) }

// idle reports whether nothing is pending or in flight.
func (p *commitPipeline) idle() bool { return p.flight == nil && len(p.pending) == 0 }

// inflight reports whether a commit is in flight.
func (p *commitPipeline) inflight() bool { return p.flight != nil }

// ops counts the ops pending or in flight.
func (p *commitPipeline) ops() int {
	n := len(p.pending)
	if p.flight != nil {
		n += len(p.flight.ops)
	}
	return n
}

// answerAfterCommits answers res on ch once every write accepted before it
// is durable: at once when nothing is pending or in flight.
func (p *commitPipeline) answerAfterCommits(ch chan Result, res Result) {
	if p.idle() {
		res.Snapshot = p.env.published()
		reply(ch, res)
		return
	}
	p.add(&writeOp{kind: opNoWrite, reply: ch, res: res})
}

// flush starts committing the pending ops unless a commit is in flight. A
// batch that fails to build is not committed: flush returns it, with its
// error, for the actor to finish at once.
func (p *commitPipeline) flush() (failed *commitDone) {
	if p.flight != nil || len(p.pending) == 0 {
		return nil
	}
	ops := p.pending
	p.pending = nil
	if p.closed {
		for _, op := range ops {
			op.answer(Result{Err: ErrShuttingDown})
		}
		return nil
	}
	if !writes(ops) {
		snap := p.env.published()
		for _, op := range ops {
			op.res.Snapshot = snap
			op.answer(op.res)
		}
		return nil
	}
	b := p.env.newBatch()
	if err := p.env.fill(b, ops); err != nil {
		b.Close()
		return &commitDone{ops: ops, err: err}
	}
	d := &commitDone{ops: ops, snap: p.env.snapshot(), finished: make(chan struct{})}
	p.flight = d
	commit := p.env.commit
	if commit == nil {
		commit = (*persistence.Batch).Commit
	}
	p.env.inflight.Add(1)
	go func() {
		defer p.env.inflight.Done()
		d.err = commit(b)
		d.synced = time.Now()
		b.Close()
		close(d.finished)
		p.env.done(d)
	}()
	return nil
}

// finish takes a commitDone back. It reports false for one already taken
// (by awaitFlight, when the actor stopped).
func (p *commitPipeline) finish(d *commitDone) bool {
	if d.finished != nil && d != p.flight {
		return false
	}
	if d == p.flight {
		p.flight = nil
	}
	return true
}

// awaitFlight waits for the commit in flight, if any, and returns it for
// the actor to finish: a stopping actor receives no more messages, so its
// commitDone would be lost.
func (p *commitPipeline) awaitFlight() *commitDone {
	d := p.flight
	if d != nil {
		<-d.finished
	}
	return d
}

// takePending removes and returns the ops not yet committing.
func (p *commitPipeline) takePending() []*writeOp {
	ops := p.pending
	p.pending = nil
	return ops
}
