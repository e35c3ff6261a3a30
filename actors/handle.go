package actors

import (
	"math"
	"runtime"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

// retiredBit marks a Handle whose actor is passivating or gone.
const retiredBit = math.MinInt64

// Handle is the supervisor's record of one stream actor incarnation, shared
// with HTTP handlers through the lock-free cache.
//
// Passivation invariant: a message is only ever sent to the actor through
// send, which counts itself in gate; the actor retires only by swapping gate
// from 0 (no send in progress) to retiredBit. Hence after a successful
// retire no new message can reach the mailbox, every message already in it
// is answered with errRetry, and the caller relocates the stream through the
// supervisor, which does not spawn the next incarnation before this one has
// terminated. No request is lost or handled by two incarnations.
type Handle struct {
	pid   *actor.PID
	gate  atomic.Int64
	snap  atomic.Pointer[Snapshot]
	ready chan struct{} // closed once the actor has loaded its state
	// loadErr is written before ready is closed and read only after.
	loadErr error
	// lastAccess (unix nanoseconds) anchors the sliding TTL. Readers update it
	// directly so that reads refresh the TTL without a message.
	lastAccess atomic.Int64
	// renewSent (unix nanoseconds) is when a reader last asked the actor to
	// persist a renewed TTL anchor; see Streams.Touch.
	renewSent atomic.Int64

	// Long-polls park on wake without entering the actor's mailbox; see
	// Streams.Wait for the protocol. parked counts them (the actor does not
	// passivate while any are parked) and waited is when one last parked
	// (unix nanoseconds, wall clock), which counts as activity for idling.
	wake   atomic.Pointer[wakeup]
	parked atomic.Int64
	waited atomic.Int64
	// sse counts the SSE responses open on the stream (LiveSlot), for the
	// stream's live reader bound.
	sse atomic.Int64
	// readersArmed is set while the actor renews a sliding TTL for parked
	// readers (or a long-poll has asked it to), so that only the first
	// long-poll on a TTL stream sends the actor a parkedMsg, not every one.
	readersArmed atomic.Bool
}

// wakeup is one generation of long-poll waiters: the actor sets delta and
// closes ch after the commit that ends it. A nil delta means the actor
// retired: the waiters relocate the stream.
type wakeup struct {
	ch    chan struct{}
	delta *Delta
}

// currentWakeup returns the generation a waiter parks on, creating it if
// the last one was taken by the actor.
func (h *Handle) currentWakeup() *wakeup {
	for {
		if w := h.wake.Load(); w != nil {
			return w
		}
		w := &wakeup{ch: make(chan struct{})}
		if h.wake.CompareAndSwap(nil, w) {
			return w
		}
	}
}

// wakeWaiters ends the current generation of waiters with d (nil: relocate).
// Called by the actor after publishing the snapshot d leads to.
func (h *Handle) wakeWaiters(d *Delta) {
	if h.parked.Load() == 0 {
		return // a waiter arriving now sees the new snapshot
	}
	if w := h.wake.Swap(nil); w != nil {
		w.delta = d
		close(w.ch)
	}
}

func newHandle() *Handle { return &Handle{ready: make(chan struct{})} }

// send delivers msg to the actor unless it has retired.
func (h *Handle) send(root *actor.RootContext, msg any) bool {
	for {
		g := h.gate.Load()
		if g < 0 {
			return false
		}
		if h.gate.CompareAndSwap(g, g+1) {
			break
		}
	}
	root.Send(h.pid, msg)
	h.gate.Add(-1)
	return true
}

// tryRetire retires the handle if no send is in progress.
func (h *Handle) tryRetire() bool { return h.gate.CompareAndSwap(0, retiredBit) }

// retireWhenIdle retires the handle as soon as no send is in progress.
// Senders hold the gate only for the duration of one mailbox enqueue.
func (h *Handle) retireWhenIdle() {
	for {
		g := h.gate.Load()
		if g < 0 || (g == 0 && h.gate.CompareAndSwap(0, retiredBit)) {
			return
		}
		runtime.Gosched()
	}
}

// forceRetire retires the handle regardless of senders (actor failure path).
func (h *Handle) forceRetire() {
	for {
		g := h.gate.Load()
		if g < 0 || h.gate.CompareAndSwap(g, g|retiredBit) {
			return
		}
	}
}

func (h *Handle) retired() bool { return h.gate.Load() < 0 }

// Snapshot returns the stream's last committed state.
func (h *Handle) Snapshot() *Snapshot { return h.snap.Load() }

// Touch records an access that refreshes a sliding TTL (§5.1: reads and
// writes do, HEAD does not).
func (h *Handle) Touch(now time.Time) {
	n := now.UnixNano()
	for {
		old := h.lastAccess.Load()
		if old >= n || h.lastAccess.CompareAndSwap(old, n) {
			return
		}
	}
}

// LastAccess returns the last recorded access.
func (h *Handle) LastAccess() time.Time { return time.Unix(0, h.lastAccess.Load()) }

// Expired reports whether snap's stream has expired at now.
func (h *Handle) Expired(snap *Snapshot, now time.Time) bool {
	d, ok := snap.Expiry.Deadline(h.LastAccess())
	return ok && !now.Before(d)
}
