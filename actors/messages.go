package actors

import (
	"time"

	"github.com/streamd/streamd/persistence"
)

// retrier is implemented by every request that carries a reply channel, so
// a request that reaches a retired actor, or becomes a dead letter, is
// answered with errRetry instead of being lost.
type retrier interface{ retry() }

type createMsg struct {
	req   CreateRequest
	reply chan Result
	// pin, for a fork, holds the source until the fork's creation is
	// decided; whoever answers the message releases it.
	pin *sourcePin
}

type appendMsg struct {
	req   AppendRequest
	reply chan Result
	sent  time.Time // set only when commit latency is observed
}

type deleteMsg struct {
	reply chan Result // nil for expiry-driven deletes
	// collect removes a soft-deleted stream whose last fork has gone.
	collect bool
}

// parkedMsg tells the actor of a TTL stream that a long-poll parked, so it
// keeps the TTL alive while readers wait (see armReadersTick).
type parkedMsg struct{}

type subscribeMsg struct {
	sub   *subscriber
	from  uint64
	reply chan error
}

type unsubscribeMsg struct{ id uint64 }

// expireTick asks the actor to check its stream's expiry.
type expireTick struct{}

// reapMsg hands a stream actor an expiry index entry that came due.
type reapMsg struct{ entry persistence.ExpiryEntry }

// idleTick asks the actor whether it has been idle long enough to passivate.
type idleTick struct{}

// shutdownMsg asks the supervisor to stop every stream actor gracefully
// (after the messages already in their mailboxes); done is closed once all
// have terminated.
type shutdownMsg struct{ done chan struct{} }

func reply[T any](ch chan T, v T) {
	if ch == nil {
		return
	}
	select {
	case ch <- v:
	default: // already answered (buffer of one); never block an actor
	}
}

func (m *createMsg) retry() {
	m.pin.release(false, 0) // the next attempt pins the source again
	reply(m.reply, Result{Err: errRetry})
}
func (m *appendMsg) retry()    { reply(m.reply, Result{Err: errRetry}) }
func (m *deleteMsg) retry()    { reply(m.reply, Result{Err: errRetry}) }
func (m *subscribeMsg) retry() { reply(m.reply, errRetry) }

// A locate that reaches a stopped supervisor means streamd is shutting down.
func (m *locateMsg) retry() { reply(m.reply, nil) }

// Messages whose loss is harmless or handled by retry are not worth a
// dead-letter log line.
func (*createMsg) IgnoreDeadLetterLogging()      {}
func (*appendMsg) IgnoreDeadLetterLogging()      {}
func (*deleteMsg) IgnoreDeadLetterLogging()      {}
func (*parkedMsg) IgnoreDeadLetterLogging()      {}
func (*subscribeMsg) IgnoreDeadLetterLogging()   {}
func (*unsubscribeMsg) IgnoreDeadLetterLogging() {}
func (*expireTick) IgnoreDeadLetterLogging()     {}
func (*idleTick) IgnoreDeadLetterLogging()       {}
func (*reapMsg) IgnoreDeadLetterLogging()        {}
func (*locateMsg) IgnoreDeadLetterLogging()      {}
func (*commitDone) IgnoreDeadLetterLogging()     {}

// renewMsg asks a stream actor to persist its sliding-TTL anchor, renewed
// by reads (Streams.Touch); recheck marks the actor's own follow-up.
type renewMsg struct{ recheck bool }

// readersTick renews a sliding TTL while live readers are parked.
type readersTick struct{}
