package actors

import (
	"errors"

	"github.com/streamd/streamd/persistence"
)

// A stream actor's writes: each request is validated (state.go) and applied
// to the speculative state, queued in the commit pipeline (commit.go), and
// answered, with readers woken, when its commit returns.

// runWrite executes a write request; it returns false if the request must
// wait for the commit pipeline to drain (creates and deletes need a batch
// of their own).
func (a *streamActor) runWrite(m retrier) bool {
	switch m := m.(type) {
	case *createMsg:
		if !a.pipe.idle() {
			return false
		}
		a.onCreate(m)
	case *deleteMsg:
		if !a.pipe.idle() {
			return false
		}
		a.onDelete(m)
	case *appendMsg:
		a.onAppend(m)
	case *pinMsg:
		a.onPin(m)
	}
	return true
}

// drainQueued runs queued requests until one has to wait again.
func (a *streamActor) drainQueued() {
	switch a.phase {
	case retired:
		return // stop sends them to the next incarnation
	case broken:
		for _, q := range a.queued {
			answerErr(q, a.err)
		}
		a.queued = nil
		return
	}
	for len(a.queued) > 0 {
		if a.barrier() {
			return
		}
		if !a.runWrite(a.queued[0]) {
			return
		}
		a.queued = a.queued[1:]
	}
}

func (a *streamActor) onCreate(m *createMsg) {
	now := a.s.cfg.Now()
	plan := planCreate(&a.st, m.req, now, a.h.LastAccess())
	if plan.replaces != 0 && plan.err == nil {
		// The expired incarnation goes first; if forks read it, it is only
		// soft-deleted and its path stays taken.
		if referenced, err := a.referenced(); err != nil || referenced {
			plan.err = err
			if err == nil {
				plan.err = ErrGone
				a.expireNow()
			}
		}
	}
	switch {
	case plan.err != nil:
		m.pin.release(false, 0)
		reply(m.reply, Result{Err: plan.err})
		return
	case plan.existed:
		m.pin.release(false, 0)
		a.h.Touch(now)
		reply(m.reply, Result{Outcome: Existed, NextOffset: a.st.tail, Offsets: a.st.meta.OffsetSegments(), Closed: a.st.meta.Closed, Snapshot: a.snap})
		return
	}
	id, err := a.s.store.AllocateID()
	if err != nil {
		m.pin.release(false, 0)
		reply(m.reply, Result{Err: err})
		return
	}
	var gone *incarnation
	if plan.replaces != 0 {
		gone = a.incarnation()
	}
	res, start := a.st.applyCreate(m.req, id, now)
	a.h.lastAccess.Store(now.UnixNano())
	a.pipe.add(&writeOp{kind: opCreate, reply: m.reply, res: res, id: id, start: start, records: m.req.Records,
		gone: gone, fork: m.req.Fork, pin: m.pin, event: a.newEvent(EventCreated, &a.st.meta, now), eventID: id})
	a.flush()
}

// incarnation is the current incarnation, as its removal must undo it.
func (a *streamActor) incarnation() *incarnation {
	return &incarnation{id: a.st.meta.ID, fork: a.st.meta.Fork, soft: a.st.meta.SoftDeleted}
}

// onDelete deletes the stream, or soft-deletes it while forks read it. A
// collect (m.collect) removes a soft-deleted stream no fork reads any more.
func (a *streamActor) onDelete(m *deleteMsg) {
	switch {
	case !a.st.exists:
		reply(m.reply, Result{Err: ErrNotFound})
		return
	case m.collect != a.st.meta.SoftDeleted:
		if !m.collect {
			reply(m.reply, Result{Err: ErrGone})
		}
		return
	}
	now := a.s.cfg.Now()
	res := Result{}
	if !m.collect && a.expired(now) {
		res.Err = ErrNotFound // it is deleted all the same
	}
	referenced, err := a.referenced()
	if err != nil {
		reply(m.reply, Result{Err: err})
		return
	}
	// A collection was recorded as a deletion when the stream was
	// soft-deleted; a delete nobody asked for is an expiry.
	var event *Event
	switch {
	case m.collect:
	case m.reply == nil:
		event = a.newEvent(EventExpired, &a.st.meta, now)
	default:
		event = a.newEvent(EventDeleted, &a.st.meta, now)
	}
	if referenced {
		if !m.collect {
			a.st.meta.SoftDeleted = true
			a.st.metaDirty = true
			a.pipe.add(&writeOp{kind: opSoftDelete, reply: m.reply, res: res, id: a.st.meta.ID, event: event, eventID: a.st.meta.ID})
			a.flush()
		}
		return
	}
	op := &writeOp{kind: opDelete, reply: m.reply, res: res, gone: a.incarnation(), event: event, eventID: a.st.meta.ID}
	a.st.applyDelete()
	a.pipe.add(op)
	a.flush()
}

func (a *streamActor) onAppend(m *appendMsg) {
	now := a.s.cfg.Now()
	plan := planAppend(&a.st, m.req, now, a.h.LastAccess(), a.s.limits)
	switch {
	case plan.err != nil:
		reply(m.reply, Result{Err: plan.err})
		if errors.Is(plan.err, ErrNotFound) && a.st.exists {
			a.expireNow()
		}
		return
	case plan.answer != nil:
		a.pipe.answerAfterCommits(m.reply, *plan.answer)
		return
	}
	start, res := a.st.applyAppend(plan, now)
	a.h.Touch(now)
	op := &writeOp{kind: opAppend, reply: m.reply, res: res, id: a.st.meta.ID, start: start, records: plan.records, arrived: m.sent}
	if plan.close {
		op.event, op.eventID = a.newEvent(EventClosed, &a.st.meta, now), a.st.meta.ID
	}
	a.pipe.add(op)
	a.flush()
}

// flush starts the next commit if none is in flight.
func (a *streamActor) flush() {
	if d := a.pipe.flush(); d != nil {
		a.onCommitDone(d)
	}
}

// fillBatch writes a batch's ops and the state changes accepted with them
// (commitEnv.fill).
func (a *streamActor) fillBatch(b *persistence.Batch, ops []*writeOp) error {
	for _, e := range a.unindex {
		if err := b.DeleteExpiryEntry(e); err != nil {
			return err
		}
	}
	a.unindex = nil
	for _, op := range ops {
		if g := op.gone; g != nil {
			if err := a.removeIncarnation(b, g); err != nil {
				return err
			}
		}
		switch {
		case op.fork != nil:
			if err := b.PutForkRef(op.fork.SourceID, op.id, a.path); err != nil {
				return err
			}
		case op.kind == opSoftDelete:
			if err := b.PutSoftDeleted(op.id, a.path); err != nil {
				return err
			}
		}
		if e := op.event; e != nil && a.s.cfg.Registry {
			if err := b.PutOutbox(a.s.nextEventSeq(), op.eventID, e.outboxKind(), e.registryMessage()); err != nil {
				return err
			}
		}
		for _, k := range op.outboxDone {
			if err := b.DeleteOutbox(k); err != nil {
				return err
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
	return a.st.writeChanges(b, a.putMeta)
}

// removeIncarnation deletes incarnation g of the path: metadata, data,
// producers, its expiry entry, its reference on its fork source and its
// soft-deleted listing.
func (a *streamActor) removeIncarnation(b *persistence.Batch, g *incarnation) error {
	if err := b.DeleteStream(a.path, g.id); err != nil {
		return err
	}
	if a.indexed != nil && a.indexed.ID == g.id {
		if err := b.DeleteExpiryEntry(*a.indexed); err != nil {
			return err
		}
		a.indexed = nil
	}
	if g.fork != nil {
		if err := b.DeleteForkRef(g.fork.SourceID, g.id); err != nil {
			return err
		}
	}
	if g.soft {
		return b.DeleteSoftDeleted(g.id)
	}
	return nil
}

// putMeta writes the stream's metadata and keeps the expiry index pointing
// at its current deadline only (a TTL stream's deadline moves with every
// write; stale entries would otherwise pile up).
func (a *streamActor) putMeta(b *persistence.Batch, m *persistence.Meta) error {
	if err := b.PutMeta(a.path, m); err != nil {
		return err
	}
	var now *persistence.ExpiryEntry
	if d, ok := m.Deadline(); ok {
		now = &persistence.ExpiryEntry{Deadline: d, ID: m.ID, Path: a.path}
	}
	if old := a.indexed; old != nil && (now == nil || !old.SameKey(*now)) {
		if err := b.DeleteExpiryEntry(*old); err != nil {
			return err
		}
	}
	a.indexed = now
	return nil
}

// commitMetadata commits the metadata and expiry index changes made so far
// through the ordinary commit pipeline: an append-kind op without records
// carries them, ordered and group committed with the stream's writes.
func (a *streamActor) commitMetadata() {
	a.pipe.add(&writeOp{kind: opAppend})
	a.flush()
}

func (a *streamActor) onCommitDone(d *commitDone) {
	if d.err != nil {
		a.s.log.Error("commit failed; reloading stream state", "path", a.path, "err", d.err)
		for _, op := range append(d.ops, a.pipe.takePending()...) {
			op.answer(Result{Err: d.err})
		}
		a.drain = drainState{} // the next event drains the outbox again
		a.afterLoad(a.load())
		a.drainQueued()
		return
	}
	prev := a.snap
	a.publish(d.snap)
	a.s.countCommit(d)
	recorded, drained := false, false
	defer func() {
		if drained {
			a.drained()
		}
	}()
	structural := false
	var records [][]byte
	for _, op := range d.ops {
		switch op.kind {
		case opCreate, opDelete, opSoftDelete:
			structural = true
		case opAppend:
			records = append(records, op.records...)
		}
		if g := op.gone; g != nil && g.fork != nil {
			// Its source may now be collectable.
			a.s.tell(g.fork.SourcePath, &childGoneMsg{source: g.fork.SourceID})
		}
		if op.event != nil {
			a.s.events.emit(*op.event)
			recorded = a.s.cfg.Registry
		}
		drained = drained || op.outboxDone != nil
	}
	if recorded {
		a.s.tell(RegistryPath, &drainMsg{})
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
		op.answer(op.res)
	}
	if delta != nil {
		a.notifySubscribers(delta)
	}
	a.flush()
	a.drainQueued()
	a.armTTL()
}
