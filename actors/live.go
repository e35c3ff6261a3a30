package actors

import (
	"context"
	"sync/atomic"
	"time"
)

// Wait parks until data beyond from becomes durable, the stream closes or
// is deleted, timeout passes or stop closes (ErrWaitTimeout either way), or
// ctx ends (§5.7). It
// returns ErrBehind when data at from is already durable (read it from
// storage instead).
//
// Waiters never enter the actor's mailbox: at a fan-out of thousands of
// long-polls, each re-poll would otherwise be a message, a map entry and a
// channel send by the one actor goroutine. Instead a waiter parks on the
// handle's current wakeup, which the actor closes after each commit with
// the commit's shared Delta. No wakeup is missed:
//
//   - the waiter counts itself in parked, then takes the current wakeup,
//     then checks retirement and the published snapshot;
//   - the actor publishes the snapshot, then, if parked is non-zero, swaps
//     the wakeup out and closes it (wakeWaiters); a stopping actor retires
//     its handle first and then closes the wakeup with no delta.
//
// With sequentially consistent atomics, a waiter the actor did not count,
// or that took the next wakeup, reads the new snapshot (or the retirement)
// and does not park; any other holds the wakeup that gets closed. A waiter
// may also take a wakeup just before the commit that brought the tail to
// from (or created the incarnation it checked) closes it; that delta ends
// at from (or is a deletion of an older incarnation), and the waiter parks
// again. The actor wakes waiters before it answers the writers, so a
// writer's own next long-poll never takes the wakeup of its write.
//
// The timeout is a plain timer rather than a derived context: on a
// many-reader wake-up every re-poll parks again, and context.WithTimeout
// costs a context, a timer and a registration in the parent context.
func (s *Streams) Wait(ctx context.Context, path string, from uint64, timeout time.Duration, stop <-chan struct{}) (*Delta, error) {
	if err := s.admitReader(); err != nil {
		return nil, err
	}
	defer s.liveReaders.Add(-1)
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		h, err := s.locate(ctx, path)
		if err != nil {
			return nil, err
		}
		if n := h.parked.Add(1); n+h.sse.Load() > s.cfg.MaxLiveReadersPerStream {
			h.parked.Add(-1)
			return nil, &LimitError{Limit: LimitLiveReadersOfStream, Max: s.cfg.MaxLiveReadersPerStream}
		}
		w := h.currentWakeup()
		snap, d, err := s.checkWait(h, from)
		if snap == nil {
			h.parked.Add(-1)
			if err == errRetry {
				continue
			}
			return d, err
		}
		h.waited.Store(time.Now().UnixNano())
		if snap.Expiry.HasTTL && !h.readersArmed.Load() && h.readersArmed.CompareAndSwap(false, true) {
			h.send(s.root, &parkedMsg{})
		}
		if timer == nil {
			timer = time.NewTimer(timeout)
		}
		if s.cfg.onPark != nil {
			s.cfg.onPark()
		}
		select {
		case <-w.ch:
			h.parked.Add(-1)
			d := w.delta
			switch {
			case d == nil:
				continue // the actor retired
			case d.Deleted:
				if cur := h.Snapshot(); cur.Exists && cur.ID == snap.ID {
					// The generation taken ended with the create of the
					// incarnation this waiter checked against, not with
					// its deletion: park on the next one.
					continue
				}
			case !d.Closed && d.End <= from:
				// The generation taken ended with the commit that reached
				// from (taken just before the actor swapped it out): the
				// waiter is still at the tail; park on the next one.
				continue
			}
			return d, nil
		case <-timer.C:
			h.parked.Add(-1)
			return nil, ErrWaitTimeout
		case <-stop:
			h.parked.Add(-1)
			return nil, ErrWaitTimeout
		case <-ctx.Done():
			h.parked.Add(-1)
			return nil, ctx.Err()
		}
	}
}

// checkWait decides, from the published snapshot, whether a waiter at from
// parks (it returns the snapshot) or is answered now (nil and d or err).
func (s *Streams) checkWait(h *Handle, from uint64) (*Snapshot, *Delta, error) {
	if h.retired() {
		return nil, nil, errRetry
	}
	snap := h.Snapshot()
	switch {
	case snap.SoftDeleted:
		return nil, nil, ErrGone
	case !snap.Exists || h.Expired(snap, s.cfg.Now()):
		return nil, nil, ErrNotFound
	case from < snap.Tail:
		return nil, nil, ErrBehind
	case from > snap.Tail:
		return nil, nil, ErrOffsetBeyondTail
	case snap.Closed:
		return nil, &Delta{Start: snap.Tail, End: snap.Tail, Closed: true, JSON: snap.JSON}, nil
	}
	return snap, nil, nil
}

// admitReader counts a live reader against MaxLiveReaders; the caller
// releases it with s.liveReaders.Add(-1).
func (s *Streams) admitReader() error {
	if s.liveReaders.Add(1) > s.cfg.MaxLiveReaders {
		s.liveReaders.Add(-1)
		return &LimitError{Limit: LimitLiveReaders, Server: true, Max: s.cfg.MaxLiveReaders}
	}
	return nil
}

// LiveSlot is an SSE response's place under the live reader bounds, held
// for the response's whole life (catching up and subscribed alike), so
// that a reader past a bound is refused before its response starts.
// Long-polls need none: Wait counts them while they wait.
type LiveSlot struct {
	h      *Handle
	s      *Streams
	closed bool
}

// OpenLive takes a live reader slot on path, or returns a *LimitError.
//
// The per-stream count lives on the stream's current handle. An SSE
// response that outlives its actor's incarnation (a crash, or passivation
// while it catches up) is not counted on the next one: the bound can be
// exceeded by such readers until they reconnect.
func (s *Streams) OpenLive(ctx context.Context, path string) (*LiveSlot, error) {
	h, err := s.locate(ctx, path)
	if err != nil {
		return nil, err
	}
	if err := s.admitReader(); err != nil {
		return nil, err
	}
	if n := h.sse.Add(1); n+h.parked.Load() > s.cfg.MaxLiveReadersPerStream {
		h.sse.Add(-1)
		s.liveReaders.Add(-1)
		return nil, &LimitError{Limit: LimitLiveReadersOfStream, Max: s.cfg.MaxLiveReadersPerStream}
	}
	s.counters.sseReaders.Add(1)
	return &LiveSlot{h: h, s: s}, nil
}

// Close gives the slot back; later calls do nothing.
func (l *LiveSlot) Close() {
	if l.closed {
		return
	}
	l.closed = true
	l.s.counters.sseReaders.Add(-1)
	l.h.sse.Add(-1)
	l.s.liveReaders.Add(-1)
}

// Subscription is a live SSE subscriber. C receives every committed Delta
// starting at the subscribed offset; the actor closes C when it drops the
// subscriber (it fell behind, or the stream closed, was deleted or its
// actor retired). After C is closed the caller resumes from storage and may
// subscribe again.
//
// The caller reports each delta it has written out with Done: deltas
// received and not yet done count against the subscriber's byte budget
// (Config.SubscriberBufferBytes), past which the actor drops it.
type Subscription struct {
	C   <-chan *Delta
	sub *subscriber
	h   *Handle
	s   *Streams
}

// subscriber is the actor's side of a Subscription.
type subscriber struct {
	id uint64
	ch chan *Delta
	// queued is the bytes of deltas sent and not yet done.
	queued atomic.Int64
}

// Subscribe registers a live subscriber at from, which must equal the
// durable tail (ErrBehind otherwise: catch up from storage first).
//
// Subscribers are not counted against the live reader bounds here: an SSE
// response holds a LiveSlot for its whole life instead.
func (s *Streams) Subscribe(ctx context.Context, path string, from uint64) (*Subscription, error) {
	sub := &subscriber{id: s.nextID.Add(1)}
	for {
		h, err := s.locate(ctx, path)
		if err != nil {
			return nil, err
		}
		sub.ch = make(chan *Delta, s.cfg.SubscriberBuffer)
		reply := make(chan error, 1)
		if !h.send(s.root, &subscribeMsg{sub: sub, from: from, reply: reply}) {
			continue
		}
		select {
		case err := <-reply:
			if err == errRetry {
				continue
			}
			if err != nil {
				return nil, err
			}
			return &Subscription{C: sub.ch, sub: sub, h: h, s: s}, nil
		case <-ctx.Done():
			h.send(s.root, &unsubscribeMsg{id: sub.id})
			return nil, ctx.Err()
		}
	}
}

// Done reports that d, received from C, has been written out.
func (sub *Subscription) Done(d *Delta) { sub.sub.queued.Add(-d.size()) }

// Close unregisters the subscriber.
func (sub *Subscription) Close() { sub.h.send(sub.s.root, &unsubscribeMsg{id: sub.sub.id}) }

func (a *streamActor) onSubscribe(m *subscribeMsg) {
	snap := a.snap
	switch {
	case snap.SoftDeleted:
		reply(m.reply, ErrGone)
	case !snap.Exists || a.h.Expired(snap, a.s.cfg.Now()):
		reply(m.reply, ErrNotFound)
	case m.from < snap.Tail || snap.Closed:
		reply(m.reply, ErrBehind)
	case m.from > snap.Tail:
		reply(m.reply, ErrOffsetBeyondTail)
	default:
		if a.subs == nil {
			a.subs = map[uint64]*subscriber{}
		}
		a.subs[m.sub.id] = m.sub
		a.armReadersTick()
		reply(m.reply, nil)
	}
}

// notifySubscribers hands a committed delta to every live subscriber. One
// that is too far behind (its channel full, or its byte budget used) is
// dropped; it catches up from storage.
func (a *streamActor) notifySubscribers(d *Delta) {
	size := d.size()
	for id, sub := range a.subs {
		if q := sub.queued.Load(); q > 0 && q+size > a.s.cfg.SubscriberBufferBytes {
			a.s.counters.subscribersBehind.Add(1)
			a.dropSubscriber(id)
			continue
		}
		sub.queued.Add(size)
		select {
		case sub.ch <- d:
			if d.Closed || d.Deleted {
				a.dropSubscriber(id)
			}
		default:
			a.s.counters.subscribersBehind.Add(1)
			a.dropSubscriber(id)
		}
	}
}

// dropSubscriber ends a subscriber's live feed (closing its channel).
func (a *streamActor) dropSubscriber(id uint64) {
	sub, ok := a.subs[id]
	if !ok {
		return
	}
	delete(a.subs, id)
	close(sub.ch)
}
