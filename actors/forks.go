package actors

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/streamd/streamd/persistence"
	"github.com/streamd/streamd/protocol"
)

// Forks (PROTOCOL.md §4.2). A fork reads its source's data through its
// chain instead of copying it (persistence/forks.go), so the source's data
// must stay while any fork reads it:
//
//   - Creating a fork writes, in the fork's own creation batch, a
//     reference key on its source ('r' | source id | fork id). A reference
//     therefore exists exactly while its fork does.
//   - The source decides alone whether a delete removes it or soft-deletes
//     it: soft when references exist or a fork creation is in flight.
//     Creations in flight hold a pin, taken in the source's actor (ordered
//     with its writes) before the fork is validated and released once the
//     fork's creation is decided; pins live in memory, as do the creations
//     they guard, so a crash loses both together.
//   - A soft-deleted stream is collected (fully deleted, in one batch that
//     also drops its own reference on its source) when it has neither pins
//     nor references. Forks being deleted tell their source (childGoneMsg);
//     a message lost to a crash or shutdown is made up for by the reaper,
//     which hands every soft-deleted stream to its actor at start and every
//     few minutes.
//
// Each state change is one batch built by the actor of the stream it
// changes: the fork's creation and deletion by the fork's actor, soft
// deletion and collection by the source's.

// ForkRequest is a PUT with Stream-Forked-From.
type ForkRequest struct {
	// Source is the path of the stream to fork.
	Source string
	// Offset is Stream-Fork-Offset resolved to a position; AtTail (the
	// header was absent, or "now") forks at the source's tail instead.
	Offset uint64
	AtTail bool
	// OffsetIsToken says Offset came as an offset token (not "-1"), whose
	// segment, OffsetSegment, must be the source's at that position.
	OffsetIsToken bool
	OffsetSegment uint64
	// SubOffset is Stream-Fork-Sub-Offset: bytes, or JSON messages, past
	// Offset.
	SubOffset uint64
	// ContentType must match the source's; empty inherits it.
	ContentType string
	// Expiry is the fork's own; without one (HasExpiry false) the fork
	// inherits its source's TTL or Expires-At.
	Expiry    protocol.Expiry
	HasExpiry bool
	Closed    bool
	// Body is the fork's initial data, appended after the inherited data.
	Body []byte
}

// Fork creates a fork of req.Source at path, or confirms an identical one.
func (s *Streams) Fork(ctx context.Context, path string, req ForkRequest) (Result, error) {
	for {
		pin, src, err := s.pinSource(ctx, req.Source)
		if err != nil {
			return Result{}, err
		}
		creq, err := s.resolveFork(src, req)
		if err != nil {
			pin.release(false, 0)
			return Result{}, err
		}
		h, err := s.locate(ctx, path)
		if err != nil {
			pin.release(false, 0)
			return Result{}, err
		}
		ch := make(chan Result, 1)
		// Once the message is in the mailbox it owns the pin: the actor
		// releases it when it answers, or retry does.
		if !h.send(s.root, &createMsg{req: creq, reply: ch, pin: pin}) {
			pin.release(false, 0)
			continue
		}
		select {
		case r := <-ch:
			if r.Err == errRetry {
				continue
			}
			return r, r.Err
		case <-ctx.Done():
			return Result{}, ctx.Err()
		}
	}
}

// resolveFork checks a fork request against its source's snapshot and
// resolves it into a create request. The source's data below the
// snapshot's tail is durable and never changes, so reading it here is safe
// while the pin holds the source.
func (s *Streams) resolveFork(src *Snapshot, req ForkRequest) (CreateRequest, error) {
	ct := src.ContentType
	if req.ContentType != "" {
		if !protocol.SameContentType(req.ContentType, src.ContentType) {
			return CreateRequest{}, ErrContentTypeMismatch
		}
		ct = req.ContentType
	}
	offset := req.Offset
	if req.AtTail {
		offset = src.Tail
	} else if req.OffsetIsToken && !src.Offsets.Accepts(req.OffsetSegment, offset) {
		return CreateRequest{}, fmt.Errorf("%w: Stream-Fork-Offset is from another incarnation of the source stream", ErrForkPoint)
	}
	if offset > src.Tail {
		return CreateRequest{}, fmt.Errorf("%w: Stream-Fork-Offset is beyond the source's tail", ErrForkPoint)
	}
	layout := src.Layout()
	base := offset
	switch {
	case src.JSON:
		end, err := s.store.MessagesEnd(layout, offset, req.SubOffset, src.Tail)
		switch {
		case errors.Is(err, persistence.ErrNotBoundary):
			return CreateRequest{}, fmt.Errorf("%w: Stream-Fork-Offset is not a message boundary", ErrForkPoint)
		case errors.Is(err, persistence.ErrShortSource):
			return CreateRequest{}, fmt.Errorf("%w: Stream-Fork-Sub-Offset is past the source's messages", ErrForkPoint)
		case err != nil:
			return CreateRequest{}, err
		}
		base = end
	case req.SubOffset > 0:
		end, err := s.store.RecordEnd(layout, offset, src.Tail)
		if err != nil {
			return CreateRequest{}, err
		}
		if offset+req.SubOffset > end {
			return CreateRequest{}, fmt.Errorf("%w: Stream-Fork-Sub-Offset is past the next data boundary", ErrForkPoint)
		}
		base = offset + req.SubOffset
	}
	chain := layout.ForkChain(base)
	if len(chain) > s.cfg.MaxForkDepth {
		return CreateRequest{}, fmt.Errorf("%w: the fork chain would be deeper than %d", ErrForkPoint, s.cfg.MaxForkDepth)
	}
	expiry := req.Expiry
	if !req.HasExpiry {
		// §4.2: a fork without its own expiry inherits its source's TTL
		// value (its own sliding window) or Expires-At.
		expiry = src.Expiry
	}
	var recs [][]byte
	switch {
	case protocol.IsJSON(ct):
		if len(req.Body) > 0 {
			var err error
			if recs, err = protocol.SplitJSON(req.Body, true); err != nil {
				return CreateRequest{}, err
			}
		}
	case len(req.Body) > 0:
		recs = [][]byte{req.Body}
	}
	return CreateRequest{
		ContentType: ct, Expiry: expiry, Closed: req.Closed, Records: recs,
		Fork: &persistence.ForkInfo{SourcePath: req.Source, SourceID: src.ID, Offset: offset, SubOffset: req.SubOffset,
			Base: base, Chain: chain, Offsets: src.Offsets.Cut(base)},
	}, nil
}

// sourcePin holds a source stream from a fork's validation until its
// creation is decided. It is released exactly once.
type sourcePin struct {
	s        *Streams
	path     string
	h        *Handle // the source's actor when pinned
	id       uint64  // pin id
	released atomic.Bool
}

// release ends the pin, telling the source whether the fork (child) was
// created. Safe to call on a nil pin and more than once. It reaches the
// source's mailbox before the fork's creator is answered (a pinned source
// does not passivate, so its actor is still there), so a delete of the
// source the creator sends next finds the pin gone.
func (p *sourcePin) release(created bool, child uint64) {
	if p == nil || !p.released.CompareAndSwap(false, true) {
		return
	}
	msg := &releaseMsg{pin: p.id, created: created, child: child, to: toldTo{s: p.s, path: p.path}}
	if !p.h.send(p.s.root, msg) {
		p.s.tell(p.path, msg) // the actor failed meanwhile
	}
}

// pinMsg asks a source's actor to pin it for a fork; it answers with the
// source's durable snapshot.
type pinMsg struct {
	id    uint64
	reply chan pinResult
}

type pinResult struct {
	snap *Snapshot
	err  error
}

// releaseMsg ends a pin (sourcePin.release).
type releaseMsg struct {
	to      toldTo
	pin     uint64
	created bool
	child   uint64
}

// childGoneMsg tells a stream that a fork reading it was deleted.
type childGoneMsg struct {
	to     toldTo
	source uint64 // the incarnation the fork read
}

// collectMsg asks a soft-deleted stream to collect itself if it can.
type collectMsg struct {
	to toldTo
	id uint64
}

func (m *pinMsg) retry() { reply(m.reply, pinResult{err: errRetry}) }

// Messages told (Streams.tell) that reach a retired actor, or none, are
// told again, to the next incarnation.
func (m *releaseMsg) retry()   { m.to.again(m) }
func (m *childGoneMsg) retry() { m.to.again(m) }
func (m *collectMsg) retry()   { m.to.again(m) }

func (m *releaseMsg) target() *toldTo   { return &m.to }
func (m *childGoneMsg) target() *toldTo { return &m.to }
func (m *collectMsg) target() *toldTo   { return &m.to }

func (*pinMsg) IgnoreDeadLetterLogging()       {}
func (*releaseMsg) IgnoreDeadLetterLogging()   {}
func (*childGoneMsg) IgnoreDeadLetterLogging() {}
func (*collectMsg) IgnoreDeadLetterLogging()   {}

// toldMsg is a message sent with Streams.tell: no reply, delivered in the
// background.
type toldMsg interface {
	retrier
	target() *toldTo
}

// toldTo is where a told message goes, so it can be told again.
type toldTo struct {
	s    *Streams
	path string
}

func (t toldTo) again(m toldMsg) { t.s.tell(t.path, m) }

// pinSource pins the stream at path for a fork and returns its snapshot.
func (s *Streams) pinSource(ctx context.Context, path string) (*sourcePin, *Snapshot, error) {
	id := s.nextID.Add(1)
	for {
		h, err := s.locate(ctx, path)
		if err != nil {
			return nil, nil, err
		}
		ch := make(chan pinResult, 1)
		if !h.send(s.root, &pinMsg{id: id, reply: ch}) {
			continue
		}
		select {
		case r := <-ch:
			switch {
			case r.err == errRetry:
				continue
			case r.err != nil:
				return nil, nil, r.err
			}
			return &sourcePin{s: s, path: path, h: h, id: id}, r.snap, nil
		case <-ctx.Done():
			// The pin may be taken after all: give it back.
			(&sourcePin{s: s, path: path, h: h, id: id}).release(false, 0)
			return nil, nil, ctx.Err()
		}
	}
}

// tellTimeout bounds how long a told message tries to reach its actor.
const tellTimeout = 10 * time.Second

// tell delivers msg to path's actor in the background, locating (and
// spawning) it as needed; streamd shutting down drops it. Messages told
// must be safe to lose to a crash (the reaper's sweep makes up for them).
func (s *Streams) tell(path string, msg toldMsg) {
	if s.closed.Load() {
		return
	}
	*msg.target() = toldTo{s: s, path: path}
	s.telling.Add(1)
	go func() {
		defer s.telling.Done()
		ctx, cancel := context.WithTimeout(context.Background(), tellTimeout)
		defer cancel()
		for {
			h, err := s.locate(ctx, path)
			if err != nil {
				if !errors.Is(err, ErrShuttingDown) {
					s.log.Warn("cannot reach stream actor; the reaper's sweep will retry", "path", path, "err", err)
				}
				return
			}
			if h.send(s.root, msg) {
				return
			}
		}
	}()
}

// onPin pins the stream for a fork being created (in order with the
// stream's writes, so a delete accepted before it is seen).
func (a *streamActor) onPin(m *pinMsg) {
	switch {
	case !a.st.exists || a.expired(a.s.cfg.Now()):
		reply(m.reply, pinResult{err: ErrNotFound})
		if a.st.exists {
			a.expireNow()
		}
	case a.st.meta.SoftDeleted:
		reply(m.reply, pinResult{err: ErrGone})
	default:
		if a.pins == nil {
			a.pins = map[uint64]struct{}{}
		}
		a.pins[m.id] = struct{}{}
		reply(m.reply, pinResult{snap: a.snap})
	}
}

// onRelease ends a pin; a soft-deleted stream may now be collectable.
func (a *streamActor) onRelease(m *releaseMsg) {
	delete(a.pins, m.pin)
	a.maybeCollect()
}

// referenced reports whether forks read the stream: created ones (their
// reference keys) or ones being created (pins).
func (a *streamActor) referenced() (bool, error) {
	if len(a.pins) > 0 {
		return true, nil
	}
	refs, err := a.s.store.HasForkRefs(a.st.meta.ID)
	if err != nil {
		return false, fmt.Errorf("read fork references of %q: %w", a.path, err)
	}
	return refs, nil
}

// maybeCollect removes a soft-deleted stream once nothing reads it: no
// pins, and (checked by the delete itself) no references.
func (a *streamActor) maybeCollect() {
	if a.phase != serving || !a.st.exists || !a.st.meta.SoftDeleted || len(a.pins) > 0 {
		return
	}
	if wait := a.s.collectWait(a.path); wait > 0 {
		if a.timers.collect == nil {
			a.timers.collect = a.after(wait, &collectMsg{id: a.st.meta.ID, to: toldTo{s: a.s, path: a.path}})
		}
		return
	}
	a.dispatch(&deleteMsg{collect: true})
}

// collectGrace is how long after a stream actor failed its path's next
// incarnation waits before collecting: the failed one's pins are gone,
// and a fork creation it had pinned may still be committing.
const collectGrace = 5 * time.Second

// collectWait is how much longer collection at path must wait.
func (s *Streams) collectWait(path string) time.Duration {
	v, ok := s.crashed.Load(path)
	if !ok {
		return 0
	}
	wait := collectGrace - time.Since(v.(time.Time))
	if wait <= 0 {
		s.crashed.CompareAndDelete(path, v)
		return 0
	}
	return wait
}
