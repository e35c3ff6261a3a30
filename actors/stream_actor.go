package actors

import (
	"errors"
	"fmt"
	"runtime/debug"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/streamd/streamd/persistence"
)

// phase is where a stream actor is in its life; each phase answers
// requests its own way (see receive).
type phase int

const (
	// loading: before *actor.Started has loaded the stream. No request
	// arrives yet (the handle is not ready).
	loading phase = iota
	// serving: requests are validated, queued and committed.
	serving
	// broken: loading the stream failed; requests get that error.
	broken
	// retired: the handle is retired (idle, failed or shutting down), so no
	// new message arrives; the ones already queued are answered with
	// errRetry and relocate to the next incarnation.
	retired
)

// streamActor is the single writer of one stream path.
//
// State comes in two layers. The speculative layer (st) includes every
// accepted write, committed or not, and is what new requests are validated
// against, so that pipelined writes see each other. The durable layer is
// snap: it changes only when a commit has been synced (commitPipeline), and
// it is all that readers and waiters ever see.
type streamActor struct {
	s    *Streams
	path string
	h    *Handle
	self *actor.PID

	phase phase
	// err is why the actor is broken, or the panic that retired it.
	err error
	// idleRetired is set when the actor retired for being idle; it then
	// hands its state to the next incarnation (handover).
	idleRetired bool

	st   streamState
	snap *Snapshot
	pipe commitPipeline
	// queued holds requests that arrived while a create or delete (which
	// replaces the stream's identity, so needs the pipeline to itself) was
	// pending or in flight; they run in order once it is done.
	queued []retrier

	// indexed is the expiry index entry of the stream's persisted metadata
	// (nil if it never expires); unindex lists stale entries to drop in the
	// next batch.
	indexed *persistence.ExpiryEntry
	unindex []persistence.ExpiryEntry

	// subs is allocated on first use: most actors of a node with many
	// streams never see a subscriber. pins are the forks of this stream
	// being created (forks.go).
	subs map[uint64]*subscriber
	pins map[uint64]struct{}
	// drain tracks moving outbox events into the registry stream (only the
	// registry stream's actor drains).
	drain  drainState
	timers streamTimers
	// lastActive is when the actor last handled a request (for idling).
	lastActive time.Time

	// rest is the state handed over by the previous incarnation, used
	// instead of Store.Load by the first load only; handover is what this
	// one leaves for the next (set by stop after a clean passivation).
	rest     *restHandover
	handover *restHandover
}

func newStreamActor(s *Streams, path string, h *Handle, rest *restHandover) *streamActor {
	a := &streamActor{s: s, path: path, h: h, rest: rest}
	a.pipe.env = commitEnv{
		newBatch:  s.store.NewBatch,
		fill:      a.fillBatch,
		snapshot:  a.st.snapshot,
		published: func() *Snapshot { return a.snap },
		done:      func(d *commitDone) { s.root.Send(a.self, d) },
		inflight:  &s.commits,
	}
	return a
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
// retry while the actor drains. The next incarnation reloads the stream
// from Pebble. Letting the panic reach protoactor instead would stop the
// actor with a system message, and protoactor drops the user messages
// still queued behind it, leaving their callers waiting.
func (a *streamActor) crash(c actor.Context, r any) {
	a.s.log.Error("stream actor failed; retiring it", "path", a.path, "panic", r, "stack", string(debug.Stack()))
	a.s.crashed.Store(a.path, time.Now()) // its pins are lost with it
	if a.err == nil {
		a.err = fmt.Errorf("%w: %v", errActorFailed, r)
	}
	if m, ok := c.Message().(retrier); ok {
		// The request that hit the bug would otherwise wait forever.
		answerErr(m, a.err)
	}
	if a.phase == loading {
		a.h.loadErr = a.err
		close(a.h.ready)
	}
	if a.phase == retired {
		return // already draining or stopping
	}
	a.phase = retired
	a.h.retireWhenIdle()
	c.Poison(a.self)
}

// errActorFailed answers the request during which a stream actor panicked.
var errActorFailed = errors.New("stream actor failed")

func (a *streamActor) receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		a.self = c.Self()
		err := a.load()
		a.h.loadErr = err
		close(a.h.ready)
		// Only now: a panic while loading must still close ready (crash).
		a.afterLoad(err)
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
		if a.pipe.finish(m) {
			a.onCommitDone(m)
		}
	case *unsubscribeMsg:
		a.dropSubscriber(m.id)
	case retrier:
		a.lastActive = time.Now()
		switch a.phase {
		case retired:
			m.retry()
		case broken:
			answerErr(m, a.err)
		default:
			if hook := a.s.cfg.beforeDispatch; hook != nil {
				hook(m)
			}
			a.dispatch(m)
		}
	default:
		if a.phase == serving {
			a.receiveHousekeeping(m)
		}
	}
}

// receiveHousekeeping handles the actor's own timers and the reaper.
func (a *streamActor) receiveHousekeeping(m any) {
	switch m := m.(type) {
	case *expireTick:
		a.onExpireTick()
	case *readersTick:
		a.timers.readers = nil
		// Cleared before keepAliveForReaders reads parked: a long-poll
		// parking from now on asks for the renewal again (Streams.Wait).
		a.h.readersArmed.Store(false)
		a.keepAliveForReaders()
	case *renewMsg:
		if m.recheck {
			a.timers.renew = nil
		}
		if !a.exclusive() {
			a.onRenew() // when busy, the write in progress persists it
		}
	case *reapMsg:
		if !a.exclusive() {
			a.onReap(m.entry) // when busy, the next reaper pass comes back
		}
	case *parkedMsg:
		a.armReadersTick()
	}
}

// dispatch handles a request in the serving phase.
func (a *streamActor) dispatch(m retrier) {
	switch m := m.(type) {
	case *subscribeMsg:
		a.onSubscribe(m)
		return
	case *releaseMsg:
		a.onRelease(m)
		return
	case *childGoneMsg:
		if a.st.exists && a.st.meta.ID == m.source {
			a.maybeCollect()
		}
		return
	case *collectMsg:
		if a.st.exists && a.st.meta.ID == m.id {
			a.timers.collect = nil
			a.maybeCollect()
		}
		return
	case *drainMsg:
		if a.path == RegistryPath && a.s.cfg.Registry {
			a.onDrain()
		}
		return
	case *appendMsg:
		if max := a.s.cfg.MaxPendingAppends; len(a.queued)+a.pipe.ops() >= max {
			reply(m.reply, Result{Err: &LimitError{Limit: LimitPendingAppends, Max: int64(max)}})
			return
		}
	}
	if a.exclusive() || !a.runWrite(m) {
		a.queued = append(a.queued, m)
	}
}

// exclusive reports whether requests must wait in queued: a create or
// delete is pending or in flight, or requests already wait.
func (a *streamActor) exclusive() bool { return len(a.queued) > 0 || a.barrier() }

// barrier reports whether a create or delete is pending or in flight.
func (a *streamActor) barrier() bool {
	if d := a.pipe.flight; d != nil && hasBarrier(d.ops) {
		return true
	}
	return hasBarrier(a.pipe.pending)
}

func hasBarrier(ops []*writeOp) bool {
	for _, op := range ops {
		if op.kind == opCreate || op.kind == opDelete {
			return true
		}
	}
	return false
}

// answerErr answers m with err.
func answerErr(m retrier, err error) {
	switch m := m.(type) {
	case *createMsg:
		reply(m.reply, Result{Err: err})
	case *appendMsg:
		reply(m.reply, Result{Err: err})
	case *deleteMsg:
		reply(m.reply, Result{Err: err})
	case *subscribeMsg:
		reply(m.reply, err)
	case *pinMsg:
		reply(m.reply, pinResult{err: err})
	}
	if m, ok := m.(*createMsg); ok {
		m.pin.release(false, 0)
	}
}

// load (re)derives all state from storage, or from the state the previous
// incarnation handed over; afterLoad then moves the actor to its phase.
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
		a.s.log.Error("load stream", "path", a.path, "err", err)
		a.publish(&Snapshot{})
		return err
	}
	a.st = streamState{}
	if st != nil {
		a.st = streamState{exists: true, meta: st.Meta, producers: st.Producers, tail: st.Tail}
		last := st.Meta.LastAccess
		if last.IsZero() {
			last = st.Meta.CreatedAt
		}
		a.h.lastAccess.Store(last.UnixNano())
	}
	a.indexed = nil
	if d, ok := a.st.meta.Deadline(); ok && a.st.exists {
		a.indexed = &persistence.ExpiryEntry{Deadline: d, ID: a.st.meta.ID, Path: a.path}
	}
	a.publish(a.st.snapshot())
	a.armTTL()
	return nil
}

// afterLoad enters serving, or broken if loading failed with err, unless
// the actor has retired (a stopping actor may reload after a failed
// commit; it stays retired).
func (a *streamActor) afterLoad(err error) {
	if a.phase == retired {
		return
	}
	a.phase = serving
	if err != nil {
		a.phase, a.err = broken, err
	}
}

func (a *streamActor) publish(s *Snapshot) {
	a.snap = s
	a.h.snap.Store(s)
}

func (a *streamActor) expired(now time.Time) bool {
	return a.st.expired(now, a.h.LastAccess())
}

func (a *streamActor) onIdleTick(c actor.Context) {
	if a.phase == retired {
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
	if a.phase != retired {
		a.armIdle(idle)
	}
}

// maybePassivate retires an idle actor. It persists the sliding-TTL anchor
// first so the stream's remaining lifetime survives passivation.
func (a *streamActor) maybePassivate(c actor.Context) {
	if !a.pipe.idle() || len(a.queued) > 0 || a.h.parked.Load() > 0 || len(a.subs) > 0 || len(a.pins) > 0 {
		return
	}
	if !a.persistAccess() {
		return
	}
	if !a.h.tryRetire() {
		return // a handler is sending right now; try again next idle period
	}
	a.phase = retired
	a.idleRetired = true
	c.Poison(a.self)
}

func (a *streamActor) stop() {
	a.phase = retired
	a.pipe.closed = true
	a.h.forceRetire()
	// With nothing pending, the metadata is what the commit in flight (if
	// any) makes durable; otherwise it holds unacknowledged changes that
	// must not be written here.
	settled := len(a.pipe.pending) == 0
	// The commitDone message of a commit in flight would arrive after the
	// actor stopped and be dropped: wait for the commit here and answer its
	// writes, which are durable (or failed) by then.
	if d := a.pipe.awaitFlight(); d != nil && a.pipe.finish(d) {
		a.onCommitDone(d)
	}
	if settled && a.err == nil && a.st.exists {
		a.persistAccess() // reads since the last write renewed the TTL
	}
	a.timers.stopAll()
	a.h.wakeWaiters(nil) // after forceRetire: parked waiters relocate
	for id := range a.subs {
		a.dropSubscriber(id)
	}
	for _, q := range a.queued {
		q.retry()
	}
	a.queued = nil
	// A passivated actor with every write committed holds exactly the
	// durable state (persistAccess updates meta only once written): hand
	// it to the next incarnation.
	if a.idleRetired && settled && a.err == nil && a.pipe.idle() && !a.st.changed() {
		a.handover = &restHandover{state: a.st.durable()}
	}
}
