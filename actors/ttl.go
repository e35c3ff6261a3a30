package actors

import (
	"time"

	"github.com/streamd/streamd/persistence"
)

// streamTimers are a stream actor's timers; each sends the actor a message.
// Idle detection uses its own timer rather than protoactor's receive
// timeout, whose timer is reset and cancelled from two goroutines without
// synchronisation (a data race under -race).
type streamTimers struct {
	ttl  *time.Timer // expiry of the stream (expireTick)
	idle *time.Timer // passivation check (idleTick)
	// renew, when set, re-checks for read renewals to persist (onRenew).
	renew *time.Timer
	// readers, when set, renews a sliding TTL while live readers are
	// parked (keepAliveForReaders).
	readers *time.Timer
	// collect, when set, retries collecting a soft-deleted stream
	// (maybeCollect).
	collect *time.Timer
}

func (t *streamTimers) stopAll() {
	for _, tm := range []*time.Timer{t.ttl, t.idle, t.renew, t.readers, t.collect} {
		if tm != nil {
			tm.Stop()
		}
	}
}

// after sends msg to the actor after d.
func (a *streamActor) after(d time.Duration, msg any) *time.Timer {
	root, self := a.s.root, a.self
	return time.AfterFunc(d, func() { root.Send(self, msg) })
}

func (a *streamActor) armTTL() {
	if a.timers.ttl != nil {
		a.timers.ttl.Stop()
		a.timers.ttl = nil
	}
	if !a.snap.Exists {
		return
	}
	deadline, ok := a.snap.Expiry.Deadline(a.h.LastAccess())
	if !ok {
		return
	}
	// A far deadline is checked again a day later instead: Sub saturates
	// for deadlines centuries away, and adding to the saturated value
	// would wrap around to a timer that fires at once, forever.
	d := min(max(deadline.Sub(a.s.cfg.Now()), 0), maxTTLTimer) + time.Millisecond
	a.timers.ttl = a.after(d, &expireTick{})
}

// maxTTLTimer bounds how far ahead a stream's expiry timer is set.
const maxTTLTimer = 24 * time.Hour

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
	a.timers.idle = a.after(d, &idleTick{})
}

// onReap acts on an expiry index entry that came due: delete the stream if
// it has expired, otherwise repoint the index at the stream's real
// deadline (it was read since), or drop an entry of a stream that is gone.
func (a *streamActor) onReap(e persistence.ExpiryEntry) {
	if a.st.exists && a.st.meta.ID == e.ID {
		if a.expired(a.s.cfg.Now()) {
			a.expireNow()
			return
		}
		if a.st.meta.HasTTL {
			a.st.meta.LastAccess = a.h.LastAccess()
		}
		a.st.metaDirty = true
	}
	if a.indexed == nil || !a.indexed.SameKey(e) {
		a.unindex = append(a.unindex, e)
	}
	a.commitMetadata()
}

// renewed reports whether reads moved the sliding-TTL anchor past the
// persisted one, and returns the new anchor.
func (a *streamActor) renewed() (time.Time, bool) {
	if !a.st.exists || !a.st.meta.HasTTL {
		return time.Time{}, false
	}
	last := a.h.LastAccess()
	return last, last.After(a.st.meta.LastAccess)
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
	a.st.meta.LastAccess = last
	a.st.metaDirty = true
	a.commitMetadata()
	if a.timers.renew == nil {
		a.timers.renew = a.after(renewInterval, &renewMsg{recheck: true})
	}
}

// armReadersTick starts renewing a sliding TTL on behalf of live readers
// (long-poll waiters, SSE subscribers), every half TTL while any remain.
// A live read renews the TTL when it starts (§5.1), but an SSE response or
// a long-poll may outlast a short TTL, and "a stream with active live
// readers will not expire".
func (a *streamActor) armReadersTick() {
	if a.timers.readers != nil || !a.st.exists || !a.st.meta.HasTTL {
		return
	}
	a.timers.readers = a.after(max(a.st.meta.TTL/2, 100*time.Millisecond), &readersTick{})
	a.h.readersArmed.Store(true)
}

// keepAliveForReaders renews the TTL if live readers remain, and keeps
// doing so while they do.
func (a *streamActor) keepAliveForReaders() {
	if a.h.parked.Load() == 0 && len(a.subs) == 0 {
		return
	}
	a.h.Touch(a.s.cfg.Now())
	if !a.exclusive() {
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
	meta := a.st.meta
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
	a.st.meta = meta
	return true
}
