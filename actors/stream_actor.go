package actors

import (
	"bytes"
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/streamd/streamd/persistence"
	"github.com/streamd/streamd/protocol"
)

type opKind int

const (
	opAppend  opKind = iota // records and/or state changes
	opNoWrite               // a reply that must wait for earlier commits
	opCreate                // barrier: replaces the stream's identity
	opDelete                // barrier: removes the stream
)

// writeOp is one accepted request travelling through the commit pipeline.
type writeOp struct {
	kind    opKind
	reply   chan Result
	res     Result
	id      uint64 // stream id the records belong to
	start   uint64
	records [][]byte
	oldID   uint64 // create/delete: id of the incarnation to remove (0: none)
}

// streamActor is the single writer of one stream path.
//
// State comes in two layers. The speculative layer (exists, meta, producers,
// tail) includes every accepted write, committed or not, and is what new
// requests are validated against, so that pipelined writes see each other.
// The durable layer is snap: it changes only when a commit has been synced,
// and it is all that readers and waiters ever see.
type streamActor struct {
	s    *Streams
	path string
	h    *Handle
	self *actor.PID

	exists    bool
	meta      persistence.Meta
	producers map[string]persistence.ProducerState
	tail      uint64

	snap *Snapshot

	pending        []*writeOp
	inflight       bool
	metaDirty      bool
	dirtyProducers map[string]struct{}
	// barrierActive is set while a create or delete is pending or in flight;
	// every write arriving meanwhile waits in queued, in order.
	barrierActive bool
	queued        []any

	// indexed is the expiry index entry of the stream's persisted metadata
	// (nil if it never expires); unindex lists stale entries to drop in the
	// next batch.
	indexed *persistence.ExpiryEntry
	unindex []persistence.ExpiryEntry

	// commit is the batch commit in flight, if any.
	commit   *commitDone
	stopping bool

	// Maps are allocated on first use: most actors of a node with many
	// streams never see a producer or a subscriber.
	subs     map[uint64]*subscribeMsg
	ttlTimer *time.Timer
	// Idle detection uses its own timer rather than protoactor's receive
	// timeout, whose timer is reset and cancelled from two goroutines
	// without synchronisation (a data race under -race).
	idleTimer  *time.Timer
	lastActive time.Time
	// renewTimer, when set, re-checks for read renewals to persist; see
	// onRenew.
	renewTimer *time.Timer
	// readersTimer, when set, renews a sliding TTL while live readers are
	// parked; see keepAliveForReaders.
	readersTimer *time.Timer
	retired      bool
	failed       error
	loaded       bool // h.ready is closed
	// passivated is set when the actor retires for being idle; it then
	// hands its state to the next incarnation (handover).
	passivated bool
	// rest is the state handed over by the previous incarnation, used
	// instead of Store.Load by the first load only; handover is what this
	// one leaves for the next (set by stop after a clean passivation).
	rest     *restHandover
	handover *restHandover
}

func newStreamActor(s *Streams, path string, h *Handle, rest *restHandover) *streamActor {
	return &streamActor{
		s: s, path: path, h: h, rest: rest,
	}
}

func (a *streamActor) Receive(c actor.Context) {
	defer func() {
		if r := recover(); r != nil {
			a.crash(c, r)
		}
	}()
	a.receive(c)
}

// crash retires an actor that panicked, the way passivation does: the
// handle first (no new message reaches the mailbox), then a Poison queued
// behind every message already there, each of which is answered with a
// retry while the actor drains (a.retired). The next incarnation reloads
// the stream from Pebble. Letting the panic reach protoactor instead would
// stop the actor with a system message, and protoactor drops the user
// messages still queued behind it, leaving their callers waiting.
func (a *streamActor) crash(c actor.Context, r any) {
	a.s.log.Error("stream actor failed; retiring it", "path", a.path, "panic", r, "stack", string(debug.Stack()))
	if a.failed == nil {
		a.failed = fmt.Errorf("%w: %v", errActorFailed, r)
	}
	if m, ok := c.Message().(retrier); ok {
		// The request that hit the bug would otherwise wait forever.
		a.fail(m)
	}
	if !a.loaded {
		a.loaded = true
		a.h.loadErr = a.failed
		close(a.h.ready)
	}
	if a.retired {
		return // already draining or stopping
	}
	a.retired = true
	a.h.retireWhenIdle()
	c.Poison(a.self)
}

func (a *streamActor) receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		a.self = c.Self()
		a.h.loadErr = a.load()
		a.loaded = true
		close(a.h.ready)
		a.lastActive = time.Now()
		a.armIdle(a.s.idleTimeout())
	case *actor.Stopping:
		a.stop()
	case *actor.Stopped:
		// Sent after protoactor unregistered the actor: the supervisor may
		// now spawn the next incarnation.
		a.s.root.Send(a.s.sup, &actorStopped{id: a.self.Id, rest: a.handover})
	case *idleTick:
		a.onIdleTick(c)
	case *commitDone:
		a.onCommitDone(m)
	case *expireTick:
		if !a.retired {
			a.onExpireTick()
		}
	case *readersTick:
		a.readersTimer = nil
		// Cleared before keepAliveForReaders reads parked: a long-poll
		// parking from now on asks for the renewal again (Streams.Wait).
		a.h.readersArmed.Store(false)
		if !a.retired && a.failed == nil {
			a.keepAliveForReaders()
		}
	case *renewMsg:
		if m.recheck {
			a.renewTimer = nil
		}
		if !a.retired && a.failed == nil && !a.barrierActive && len(a.queued) == 0 {
			a.onRenew() // when busy, the write in progress persists it
		}
	case *reapMsg:
		if !a.retired && a.failed == nil && !a.barrierActive && len(a.queued) == 0 {
			a.onReap(m.entry) // when busy, the next reaper pass comes back
		}
	case *parkedMsg:
		if !a.retired && a.failed == nil {
			a.armReadersTick()
		}
	case *unsubscribeMsg:
		if sub, ok := a.subs[m.id]; ok {
			delete(a.subs, m.id)
			close(sub.ch)
		}
	case retrier:
		a.lastActive = time.Now()
		switch {
		case a.retired:
			m.retry()
		case a.failed != nil:
			a.fail(m)
		default:
			if hook := a.s.cfg.beforeDispatch; hook != nil {
				hook(m)
			}
			a.dispatch(m)
		}
	}
}

// errActorFailed answers the request during which a stream actor panicked.
var errActorFailed = errors.New("stream actor failed")

func (a *streamActor) dispatch(m retrier) {
	switch m := m.(type) {
	case *subscribeMsg:
		a.onSubscribe(m)
	default:
		if len(a.queued) > 0 || a.barrierActive || !a.runWrite(m) {
			a.queued = append(a.queued, m)
		}
	}
}

func (a *streamActor) fail(m retrier) {
	switch m := m.(type) {
	case *createMsg:
		reply(m.reply, Result{Err: a.failed})
	case *appendMsg:
		reply(m.reply, Result{Err: a.failed})
	case *deleteMsg:
		reply(m.reply, Result{Err: a.failed})
	case *subscribeMsg:
		reply(m.reply, a.failed)
	}
}

// load (re)derives all state from storage, or from the state the previous
// incarnation handed over.
func (a *streamActor) load() error {
	var st *persistence.StreamState
	var err error
	if a.rest != nil {
		st, a.rest = a.rest.state, nil
		a.s.restingLoads.Add(1)
	} else {
		st, err = a.s.store.Load(a.path)
		a.s.storeLoads.Add(1)
	}
	if err != nil {
		a.failed = err
		a.s.log.Error("load stream", "path", a.path, "err", err)
		a.publish(&Snapshot{})
		return err
	}
	a.exists, a.meta, a.producers, a.tail = false, persistence.Meta{}, nil, 0
	if st != nil {
		a.exists, a.meta, a.producers, a.tail = true, st.Meta, st.Producers, st.Tail
		last := st.Meta.LastAccess
		if last.IsZero() {
			last = st.Meta.CreatedAt
		}
		a.h.lastAccess.Store(last.UnixNano())
	}
	a.indexed = nil
	if d, ok := a.meta.Deadline(); ok && a.exists {
		a.indexed = &persistence.ExpiryEntry{Deadline: d, ID: a.meta.ID, Path: a.path}
	}
	a.publish(a.speculativeSnapshot())
	a.armTTL()
	return nil
}

func (a *streamActor) speculativeSnapshot() *Snapshot {
	if !a.exists {
		return &Snapshot{}
	}
	return &Snapshot{
		Exists:      true,
		ID:          a.meta.ID,
		ContentType: a.meta.ContentType,
		JSON:        protocol.IsJSON(a.meta.ContentType),
		Expiry:      a.meta.Expiry(),
		Closed:      a.meta.Closed,
		Tail:        a.tail,
	}
}

func (a *streamActor) publish(s *Snapshot) {
	a.snap = s
	a.h.snap.Store(s)
}

func (a *streamActor) expired(now time.Time) bool {
	if !a.exists {
		return false
	}
	// Checked on every write: read the expiry straight from the metadata
	// rather than building a snapshot.
	d, ok := a.meta.Expiry().Deadline(a.h.LastAccess())
	return ok && !now.Before(d)
}

// runWrite executes a write request; it returns false if the request must
// wait for the commit pipeline to drain (barriers need an exclusive batch).
func (a *streamActor) runWrite(m retrier) bool {
	switch m := m.(type) {
	case *createMsg:
		if a.inflight || len(a.pending) > 0 {
			return false
		}
		a.onCreate(m)
	case *deleteMsg:
		if a.inflight || len(a.pending) > 0 {
			return false
		}
		a.onDelete(m)
	case *appendMsg:
		a.onAppend(m)
	}
	return true
}

func (a *streamActor) drainQueued() {
	for len(a.queued) > 0 && !a.barrierActive {
		if !a.runWrite(a.queued[0].(retrier)) {
			return
		}
		a.queued = a.queued[1:]
	}
}

func (a *streamActor) onCreate(m *createMsg) {
	now := a.s.cfg.Now()
	req := m.req
	if a.exists && !a.expired(now) {
		if !a.sameConfig(req) {
			reply(m.reply, Result{Err: ErrConfigMismatch})
			return
		}
		a.h.Touch(now)
		reply(m.reply, Result{Outcome: Existed, NextOffset: a.tail, Closed: a.meta.Closed, Snapshot: a.snap})
		return
	}
	id, err := a.s.store.AllocateID()
	if err != nil {
		reply(m.reply, Result{Err: err})
		return
	}
	op := &writeOp{kind: opCreate, reply: m.reply, id: id, records: req.Records}
	if a.exists {
		op.oldID = a.meta.ID // expired: remove it in the same batch
	}
	a.exists = true
	a.meta = persistence.Meta{
		ID: id, ContentType: req.ContentType, TTL: req.Expiry.TTL, HasTTL: req.Expiry.HasTTL,
		ExpiresAt: req.Expiry.ExpiresAt, CreatedAt: now, LastAccess: now, Closed: req.Closed,
		NoProducers: true,
	}
	a.producers = nil
	clear(a.dirtyProducers)
	a.tail = 0
	for _, r := range req.Records {
		a.tail += uint64(len(r))
	}
	a.metaDirty = true
	a.h.lastAccess.Store(now.UnixNano())
	op.res = Result{Outcome: Created, NextOffset: a.tail, Closed: a.meta.Closed}
	a.barrierActive = true
	a.pending = append(a.pending, op)
	a.flush()
}

func (a *streamActor) sameConfig(req CreateRequest) bool {
	return protocol.SameContentType(req.ContentType, a.meta.ContentType) &&
		req.Expiry.HasTTL == a.meta.HasTTL && req.Expiry.TTL == a.meta.TTL &&
		req.Expiry.ExpiresAt.Equal(a.meta.ExpiresAt) &&
		req.Closed == a.meta.Closed
}

func (a *streamActor) onDelete(m *deleteMsg) {
	if !a.exists {
		reply(m.reply, Result{Err: ErrNotFound})
		return
	}
	res := Result{}
	if a.expired(a.s.cfg.Now()) {
		res.Err = ErrNotFound // it is deleted all the same
	}
	op := &writeOp{kind: opDelete, reply: m.reply, oldID: a.meta.ID, res: res}
	a.exists, a.meta, a.tail = false, persistence.Meta{}, 0
	a.producers = nil
	clear(a.dirtyProducers)
	a.metaDirty = false
	a.barrierActive = true
	a.pending = append(a.pending, op)
	a.flush()
}

func (a *streamActor) onAppend(m *appendMsg) {
	now := a.s.cfg.Now()
	req := m.req
	if !a.exists || a.expired(now) {
		reply(m.reply, Result{Err: ErrNotFound})
		if a.exists {
			a.expireNow()
		}
		return
	}
	p := req.Producer
	if a.meta.Closed {
		cb := a.meta.ClosedBy
		switch {
		case p != nil && cb != nil && cb.ID == p.ID && cb.Epoch == p.Epoch && cb.Seq == p.Seq:
			a.replyAfterCommits(m.reply, Result{Outcome: Duplicate, NextOffset: a.tail, Closed: true, ProducerEpoch: p.Epoch, ProducerSeq: p.Seq})
		case len(req.Records) == 0 && req.Close:
			a.replyAfterCommits(m.reply, Result{Outcome: AlreadyClosed, NextOffset: a.tail, Closed: true})
		default:
			reply(m.reply, Result{Err: &ClosedError{Tail: a.tail}})
		}
		return
	}
	if len(req.Records) > 0 && !protocol.SameContentType(req.ContentType, a.meta.ContentType) {
		reply(m.reply, Result{Err: ErrContentTypeMismatch})
		return
	}
	if req.Unsplit && len(req.Records) > 0 && protocol.IsJSON(a.meta.ContentType) {
		// The handler judged the stream from a snapshot taken before the
		// path was deleted and recreated as a JSON stream: split the body
		// into messages here (rare; normally handlers do this work).
		msgs, err := protocol.SplitJSON(bytes.Join(req.Records, nil), false)
		if err != nil {
			reply(m.reply, Result{Err: err})
			return
		}
		req.Records = msgs
	}
	var next persistence.ProducerState
	if p != nil {
		cur, known := a.producers[p.ID]
		switch {
		case !known && p.Seq != 0:
			reply(m.reply, Result{Err: &SeqGapError{Expected: 0, Received: p.Seq}})
			return
		case !known:
			next = persistence.ProducerState{Epoch: p.Epoch}
		case p.Epoch < cur.Epoch:
			reply(m.reply, Result{Err: &StaleEpochError{Current: cur.Epoch}})
			return
		case p.Epoch > cur.Epoch && p.Seq != 0:
			reply(m.reply, Result{Err: ErrEpochSeq})
			return
		case p.Epoch > cur.Epoch:
			next = persistence.ProducerState{Epoch: p.Epoch}
		case p.Seq <= cur.LastSeq:
			a.replyAfterCommits(m.reply, Result{Outcome: Duplicate, NextOffset: a.tail, Closed: a.meta.Closed, ProducerEpoch: cur.Epoch, ProducerSeq: cur.LastSeq})
			return
		case p.Seq == cur.LastSeq+1:
			next = persistence.ProducerState{Epoch: cur.Epoch, LastSeq: p.Seq}
		default:
			reply(m.reply, Result{Err: &SeqGapError{Expected: cur.LastSeq + 1, Received: p.Seq}})
			return
		}
	}
	if req.Seq != "" && a.meta.LastSeq != "" && req.Seq <= a.meta.LastSeq {
		reply(m.reply, Result{Err: ErrSeqRegression})
		return
	}

	op := &writeOp{kind: opAppend, reply: m.reply, id: a.meta.ID, start: a.tail, records: req.Records}
	for _, r := range req.Records {
		a.tail += uint64(len(r))
	}
	if req.Seq != "" {
		a.meta.LastSeq = req.Seq
		a.metaDirty = true
	}
	if p != nil {
		if a.producers == nil {
			a.producers = map[string]persistence.ProducerState{}
		}
		if a.meta.NoProducers { // committed with the producer state
			a.meta.NoProducers = false
			a.metaDirty = true
		}
		if a.dirtyProducers == nil {
			a.dirtyProducers = map[string]struct{}{}
		}
		a.producers[p.ID] = next
		a.dirtyProducers[p.ID] = struct{}{}
	}
	if req.Close {
		a.meta.Closed = true
		if p != nil {
			a.meta.ClosedBy = &persistence.ProducerRef{ID: p.ID, Epoch: p.Epoch, Seq: p.Seq}
		}
		a.metaDirty = true
	}
	if a.meta.HasTTL {
		a.meta.LastAccess = now
		a.metaDirty = true
	}
	a.h.Touch(now)
	op.res = Result{Outcome: Appended, NextOffset: a.tail, Closed: a.meta.Closed}
	if p != nil {
		op.res.ProducerEpoch, op.res.ProducerSeq = next.Epoch, next.LastSeq
	}
	a.pending = append(a.pending, op)
	a.flush()
}

// replyAfterCommits answers a request that writes nothing but whose answer
// relies on speculative state (a duplicate of a write still in flight, say):
// it is answered only once every earlier write is durable.
func (a *streamActor) replyAfterCommits(ch chan Result, res Result) {
	if !a.inflight && len(a.pending) == 0 {
		res.Snapshot = a.snap
		reply(ch, res)
		return
	}
	a.pending = append(a.pending, &writeOp{kind: opNoWrite, reply: ch, res: res})
}

// flush starts committing the pending writes unless a commit is in flight.
// At most one commit per stream is in flight; everything accepted meanwhile
// forms the next batch, which is how concurrent writers share fsyncs.
func (a *streamActor) flush() {
	if a.inflight || len(a.pending) == 0 {
		return
	}
	if a.stopping {
		for _, op := range a.pending {
			reply(op.reply, Result{Err: ErrShuttingDown})
		}
		a.pending = nil
		return
	}
	ops := a.pending
	a.pending = nil
	writes := false
	for _, op := range ops {
		if op.kind != opNoWrite {
			writes = true
			break
		}
	}
	if !writes {
		for _, op := range ops {
			op.res.Snapshot = a.snap
			reply(op.reply, op.res)
		}
		return
	}
	b := a.s.store.NewBatch()
	err := a.fillBatch(b, ops)
	if err != nil {
		b.Close()
		a.onCommitDone(&commitDone{ops: ops, err: err})
		return
	}
	a.inflight = true
	done := &commitDone{ops: ops, snap: a.speculativeSnapshot(), finished: make(chan struct{})}
	a.commit = done
	root, self := a.s.root, a.self
	a.s.commits.Add(1)
	go func() {
		defer a.s.commits.Done()
		done.err = b.Commit()
		b.Close()
		close(done.finished)
		root.Send(self, done)
	}()
}

func (a *streamActor) fillBatch(b *persistence.Batch, ops []*writeOp) error {
	for _, e := range a.unindex {
		if err := b.DeleteExpiryEntry(e); err != nil {
			return err
		}
	}
	a.unindex = nil
	for _, op := range ops {
		if op.oldID != 0 {
			if err := b.DeleteStream(a.path, op.oldID); err != nil {
				return err
			}
			if a.indexed != nil && a.indexed.ID == op.oldID {
				if err := b.DeleteExpiryEntry(*a.indexed); err != nil {
					return err
				}
				a.indexed = nil
			}
		}
		pos := op.start
		for _, r := range op.records {
			if err := b.Append(op.id, pos, r); err != nil {
				return err
			}
			pos += uint64(len(r))
		}
	}
	if a.exists && a.metaDirty {
		if err := a.putMeta(b, &a.meta); err != nil {
			return err
		}
	}
	for id := range a.dirtyProducers {
		if err := b.PutProducer(a.meta.ID, id, a.producers[id]); err != nil {
			return err
		}
	}
	a.metaDirty = false
	clear(a.dirtyProducers)
	return nil
}

// putMeta writes the stream's metadata and keeps the expiry index pointing
// at its current deadline only (a TTL stream's deadline moves with every
// write; stale entries would otherwise pile up).
func (a *streamActor) putMeta(b *persistence.Batch, m *persistence.Meta) error {
	if err := b.PutMeta(a.path, m); err != nil {
		return err
	}
	d, ok := m.Deadline()
	if old := a.indexed; old != nil && (!ok || old.ID != m.ID || old.Deadline.UnixNano() != d.UnixNano()) {
		if err := b.DeleteExpiryEntry(*old); err != nil {
			return err
		}
	}
	a.indexed = nil
	if ok {
		a.indexed = &persistence.ExpiryEntry{Deadline: d, ID: m.ID, Path: a.path}
	}
	return nil
}

// onReap acts on an expiry index entry that came due: delete the stream if
// it has expired, otherwise repoint the index at the stream's real
// deadline (it was read since), or drop an entry of a stream that is gone.
func (a *streamActor) onReap(e persistence.ExpiryEntry) {
	if a.exists && a.meta.ID == e.ID {
		if a.expired(a.s.cfg.Now()) {
			a.expireNow()
			return
		}
		if a.meta.HasTTL {
			a.meta.LastAccess = a.h.LastAccess()
		}
		a.metaDirty = true
	}
	if a.indexed == nil || a.indexed.ID != e.ID || a.indexed.Deadline.UnixNano() != e.Deadline.UnixNano() {
		a.unindex = append(a.unindex, e)
	}
	a.commitMetadata()
}

// commitMetadata commits the metadata and expiry index changes made so far
// through the ordinary commit pipeline: an append-kind op without records
// carries them, ordered and group committed with the stream's writes.
func (a *streamActor) commitMetadata() {
	a.pending = append(a.pending, &writeOp{kind: opAppend})
	a.flush()
}

func (a *streamActor) onCommitDone(d *commitDone) {
	if d != a.commit && d.finished != nil {
		return // already handled by stop
	}
	a.commit = nil
	a.inflight = false
	if d.err != nil {
		a.s.log.Error("commit failed; reloading stream state", "path", a.path, "err", d.err)
		for _, op := range append(d.ops, a.pending...) {
			reply(op.reply, Result{Err: d.err})
		}
		a.pending = nil
		a.barrierActive = false
		if err := a.load(); err != nil {
			a.failed = err
		}
		a.drainQueued()
		return
	}
	prev := a.snap
	a.publish(d.snap)
	structural := false
	var records [][]byte
	for _, op := range d.ops {
		switch op.kind {
		case opCreate, opDelete:
			structural = true
		case opAppend:
			records = append(records, op.records...)
		}
	}
	var delta *Delta
	if structural {
		// Waiters belonged to the previous incarnation of the path.
		delta = &Delta{Deleted: true}
	} else if d.snap.Tail > prev.Tail || (d.snap.Closed && !prev.Closed) {
		delta = &Delta{Start: prev.Tail, End: d.snap.Tail, Records: records, Closed: d.snap.Closed, JSON: d.snap.JSON}
	}
	// Long-polls are woken before the writers are answered, so that a
	// writer's next long-poll parks on the next wakeup, not this one.
	if delta != nil {
		a.h.wakeWaiters(delta)
	}
	for _, op := range d.ops {
		op.res.Snapshot = d.snap
		reply(op.reply, op.res)
	}
	if delta != nil {
		a.notifySubscribers(delta)
	}
	a.barrierActive = false
	a.flush()
	a.drainQueued()
	a.armTTL()
}

// notifySubscribers hands a committed delta to every live subscriber.
func (a *streamActor) notifySubscribers(d *Delta) {
	for id, sub := range a.subs {
		select {
		case sub.ch <- d:
			if d.Closed || d.Deleted {
				delete(a.subs, id)
				close(sub.ch)
			}
		default:
			// Too far behind: drop it; it catches up from storage.
			delete(a.subs, id)
			close(sub.ch)
		}
	}
}

func (a *streamActor) onSubscribe(m *subscribeMsg) {
	snap := a.snap
	switch {
	case !snap.Exists || a.h.Expired(snap, a.s.cfg.Now()):
		reply(m.reply, ErrNotFound)
	case m.from < snap.Tail || snap.Closed:
		reply(m.reply, ErrBehind)
	case m.from > snap.Tail:
		reply(m.reply, ErrOffsetBeyondTail)
	default:
		if a.subs == nil {
			a.subs = map[uint64]*subscribeMsg{}
		}
		a.subs[m.id] = m
		a.armReadersTick()
		reply(m.reply, nil)
	}
}

func (a *streamActor) armTTL() {
	if a.ttlTimer != nil {
		a.ttlTimer.Stop()
		a.ttlTimer = nil
	}
	if !a.snap.Exists {
		return
	}
	deadline, ok := a.snap.Expiry.Deadline(a.h.LastAccess())
	if !ok {
		return
	}
	root, self := a.s.root, a.self
	d := max(deadline.Sub(a.s.cfg.Now()), 0) + time.Millisecond
	a.ttlTimer = time.AfterFunc(d, func() { root.Send(self, &expireTick{}) })
}

func (a *streamActor) onExpireTick() {
	if a.expired(a.s.cfg.Now()) {
		a.expireNow()
		return
	}
	a.armTTL() // a read refreshed the TTL meanwhile
}

// expireNow deletes an expired stream through the pipeline, like DELETE.
func (a *streamActor) expireNow() {
	for _, q := range a.queued {
		if d, ok := q.(*deleteMsg); ok && d.reply == nil {
			return // already scheduled
		}
	}
	a.dispatch(&deleteMsg{})
}

func (a *streamActor) armIdle(d time.Duration) {
	root, self := a.s.root, a.self
	a.idleTimer = time.AfterFunc(d, func() { root.Send(self, &idleTick{}) })
}

func (a *streamActor) onIdleTick(c actor.Context) {
	if a.retired {
		return
	}
	idle := a.s.idleTimeout()
	last := a.lastActive
	if w := a.h.waited.Load(); w > last.UnixNano() {
		last = time.Unix(0, w) // long-polls park without messages
	}
	if rest := idle - time.Since(last); rest > 0 {
		a.armIdle(rest)
		return
	}
	a.maybePassivate(c)
	if !a.retired {
		a.armIdle(idle)
	}
}

// maybePassivate retires an idle actor. It persists the sliding-TTL anchor
// first so the stream's remaining lifetime survives passivation.
func (a *streamActor) maybePassivate(c actor.Context) {
	if a.retired || a.inflight || len(a.pending) > 0 || len(a.queued) > 0 || a.h.parked.Load() > 0 || len(a.subs) > 0 {
		return
	}
	if !a.persistAccess() {
		return
	}
	if !a.h.tryRetire() {
		return // a handler is sending right now; try again next idle period
	}
	a.retired = true
	a.passivated = true
	c.Poison(a.self)
}

// renewed reports whether reads moved the sliding-TTL anchor past the
// persisted one, and returns the new anchor.
func (a *streamActor) renewed() (time.Time, bool) {
	if !a.exists || !a.meta.HasTTL {
		return time.Time{}, false
	}
	last := a.h.LastAccess()
	return last, last.After(a.meta.LastAccess)
}

// onRenew persists a read-renewed anchor through the commit pipeline.
//
// Streams.Touch sends at most one renewMsg per renewInterval, so reads
// later in that interval would stay in memory only; after persisting, the
// actor therefore checks once more an interval later (and again while
// reads keep renewing), so every read's renewal is durable within about
// renewInterval.
func (a *streamActor) onRenew() {
	last, ok := a.renewed()
	if !ok {
		return
	}
	a.meta.LastAccess = last
	a.metaDirty = true
	a.commitMetadata()
	if a.renewTimer == nil {
		root, self := a.s.root, a.self
		a.renewTimer = time.AfterFunc(renewInterval, func() { root.Send(self, &renewMsg{recheck: true}) })
	}
}

// armReadersTick starts renewing a sliding TTL on behalf of live readers
// (long-poll waiters, SSE subscribers), every half TTL while any remain.
// A live read renews the TTL when it starts (§5.1), but an SSE response or
// a long-poll may outlast a short TTL, and "a stream with active live
// readers will not expire".
func (a *streamActor) armReadersTick() {
	if a.readersTimer != nil || !a.exists || !a.meta.HasTTL {
		return
	}
	root, self := a.s.root, a.self
	a.readersTimer = time.AfterFunc(max(a.meta.TTL/2, 100*time.Millisecond), func() { root.Send(self, &readersTick{}) })
	a.h.readersArmed.Store(true)
}

// keepAliveForReaders renews the TTL if live readers remain, and keeps
// doing so while they do.
func (a *streamActor) keepAliveForReaders() {
	if a.h.parked.Load() == 0 && len(a.subs) == 0 {
		return
	}
	a.h.Touch(a.s.cfg.Now())
	if !a.barrierActive && len(a.queued) == 0 {
		a.onRenew()
	}
	a.armTTL()
	a.armReadersTick()
}

// persistAccess writes a read-renewed anchor directly, for an actor about
// to stop with no commit in flight; it reports success.
func (a *streamActor) persistAccess() bool {
	last, ok := a.renewed()
	if !ok {
		return true
	}
	meta := a.meta
	meta.LastAccess = last
	b := a.s.store.NewBatch()
	defer b.Close()
	err := a.putMeta(b, &meta)
	if err == nil {
		err = b.Commit()
	}
	if err != nil {
		a.s.log.Warn("persist stream access time", "path", a.path, "err", err)
		return false
	}
	a.meta = meta
	return true
}

func (a *streamActor) stop() {
	a.retired = true
	a.stopping = true
	a.h.forceRetire()
	// The commitDone message of a commit in flight would arrive after the
	// actor stopped and be dropped: wait for the commit here and answer its
	// writes, which are durable (or failed) by then.
	// With nothing pending, the metadata is what the commit in flight (if
	// any) makes durable; otherwise it holds unacknowledged changes that
	// must not be written here.
	settled := len(a.pending) == 0
	if d := a.commit; d != nil {
		<-d.finished
		a.onCommitDone(d)
	}
	if settled && a.failed == nil && a.exists {
		a.persistAccess() // reads since the last write renewed the TTL
	}
	if a.ttlTimer != nil {
		a.ttlTimer.Stop()
	}
	if a.idleTimer != nil {
		a.idleTimer.Stop()
	}
	if a.renewTimer != nil {
		a.renewTimer.Stop()
	}
	if a.readersTimer != nil {
		a.readersTimer.Stop()
	}
	a.h.wakeWaiters(nil) // after forceRetire: parked waiters relocate
	for id, sub := range a.subs {
		close(sub.ch)
		delete(a.subs, id)
	}
	for _, q := range a.queued {
		q.(retrier).retry()
	}
	a.queued = nil
	// A passivated actor with every write committed holds exactly the
	// durable state (persistAccess updates meta only once written): hand
	// it to the next incarnation.
	if a.passivated && settled && a.failed == nil && !a.inflight && !a.metaDirty && len(a.dirtyProducers) == 0 {
		a.handover = &restHandover{state: a.durableState()}
	}
}

// durableState is the stream's state as Store.Load would return it; valid
// only while nothing is pending or in flight.
func (a *streamActor) durableState() *persistence.StreamState {
	if !a.exists {
		return nil
	}
	return &persistence.StreamState{Meta: a.meta, Tail: a.tail, Producers: a.producers}
}
