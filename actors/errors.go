package actors

import (
	"errors"
	"fmt"

	"github.com/streamd/streamd/protocol"
)

var (
	// ErrNotFound reports that no stream exists at the path (or it expired).
	ErrNotFound = errors.New("stream not found")
	// ErrConfigMismatch reports a create for an existing stream whose content
	// type, expiry or closure differs from the request.
	ErrConfigMismatch = errors.New("stream exists with a different configuration")
	// ErrStreamClosed reports an append to a closed stream; see ClosedError.
	ErrStreamClosed = errors.New("stream is closed")
	// ErrContentTypeMismatch reports an append whose content type differs
	// from the stream's.
	ErrContentTypeMismatch = errors.New("content type does not match the stream")
	// ErrSeqRegression reports a Stream-Seq not greater than the last one.
	ErrSeqRegression = errors.New("Stream-Seq must increase")
	// ErrStaleEpoch reports a producer epoch below the current one; see
	// StaleEpochError.
	ErrStaleEpoch = errors.New("stale producer epoch")
	// ErrEpochSeq reports a new producer epoch that does not start at seq 0.
	ErrEpochSeq = errors.New("a new producer epoch must start at Producer-Seq 0")
	// ErrSeqGap reports a producer sequence gap; see SeqGapError.
	ErrSeqGap = errors.New("producer sequence gap")
	// ErrBehind reports a live read whose offset is behind the durable tail:
	// the caller should read from storage instead of waiting.
	ErrBehind = errors.New("offset is behind the tail")
	// ErrWaitTimeout reports a Wait that saw no new data within its timeout.
	ErrWaitTimeout = errors.New("no new data within the long-poll timeout")
	// ErrOffsetBeyondTail reports a read offset past the stream's tail.
	ErrOffsetBeyondTail = errors.New("offset is beyond the tail of the stream")
	// ErrShuttingDown reports a request made while streamd stops.
	ErrShuttingDown = errors.New("streamd is shutting down")
	// ErrGone reports a stream deleted while forks still read its data
	// (soft-deleted): it answers 410, and its path cannot be created or
	// forked from until its forks are gone.
	ErrGone = errors.New("stream was deleted; its forks still read it")
	// ErrForkPoint reports a fork point the source cannot have: past its
	// tail, inside a JSON message, a sub-offset past the next data
	// boundary, or one making the fork chain deeper than allowed (400).
	ErrForkPoint = errors.New("invalid fork point")

	// errRetry tells a caller that the actor it reached is passivating or
	// gone; the caller locates the stream again and resends.
	errRetry = errors.New("stream actor retired")
)

// ClosedError is returned for appends to a closed stream.
type ClosedError struct {
	Tail    uint64
	Offsets protocol.OffsetSegments // renders Tail as a token
}

func (e *ClosedError) Error() string { return fmt.Sprintf("stream is closed at %d", e.Tail) }

// Is makes ClosedError match ErrStreamClosed.
func (e *ClosedError) Is(target error) bool { return target == ErrStreamClosed }

// StaleEpochError carries the producer's current epoch (§5.2.1, 403).
type StaleEpochError struct{ Current uint64 }

func (e *StaleEpochError) Error() string {
	return fmt.Sprintf("stale producer epoch; current epoch is %d", e.Current)
}

// Is makes StaleEpochError match ErrStaleEpoch.
func (e *StaleEpochError) Is(target error) bool { return target == ErrStaleEpoch }

// SeqGapError carries the expected and received producer sequence (§5.2.1, 409).
type SeqGapError struct{ Expected, Received uint64 }

func (e *SeqGapError) Error() string {
	return fmt.Sprintf("producer sequence gap: expected %d, received %d", e.Expected, e.Received)
}

// Is makes SeqGapError match ErrSeqGap.
func (e *SeqGapError) Is(target error) bool { return target == ErrSeqGap }

// ErrLimit is matched by every LimitError.
var ErrLimit = errors.New("limit reached")

// LimitError reports that a request would take a stream, or the server,
// past one of its configured bounds. Nothing was changed; the client may
// retry later (the HTTP layer answers 429 for a stream's bound, 503 for the
// server's, with Retry-After).
type LimitError struct {
	// Limit names the bound as its command-line flag does, e.g.
	// "max-pending-appends".
	Limit string
	// Server reports a bound on the whole server rather than one stream.
	Server bool
	// Max is the bound's value.
	Max int64
}

func (e *LimitError) Error() string {
	scope := "stream"
	if e.Server {
		scope = "server"
	}
	return fmt.Sprintf("%s limit reached: %s is %d", scope, e.Limit, e.Max)
}

// Is makes LimitError match ErrLimit.
func (e *LimitError) Is(target error) bool { return target == ErrLimit }

// Names of the bounds the stream actors keep (LimitError.Limit).
const (
	LimitLiveReaders         = "max-live-readers"
	LimitLiveReadersOfStream = "max-live-readers-per-stream"
	LimitPendingAppends      = "max-pending-appends"
	LimitProducers           = "max-producers-per-stream"
)
