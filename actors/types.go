package actors

import (
	"encoding/base64"
	"sync"

	"github.com/streamd/streamd/persistence"
	"github.com/streamd/streamd/protocol"
)

// Snapshot is the durable state of a stream as last committed. Snapshots are
// immutable; a stream actor publishes a new one after every commit.
type Snapshot struct {
	Exists      bool
	ID          uint64 // internal id: differs between incarnations of a path
	ContentType string
	JSON        bool
	Expiry      protocol.Expiry
	Closed      bool
	// Tail is the durable tail position: every byte below it is synced.
	Tail uint64
	// Chain is a fork's inherited data (see persistence.Layout); nil for a
	// stream that is not a fork.
	Chain []persistence.Segment
	// SoftDeleted: deleted while forks still read it (410).
	SoftDeleted bool
	// Offsets says which segment each position's offset token carries.
	Offsets protocol.OffsetSegments
}

// Offset returns the offset token of pos in this stream.
func (s *Snapshot) Offset(pos uint64) string { return s.Offsets.Format(pos) }

// Layout is where the stream's bytes are.
func (s *Snapshot) Layout() persistence.Layout {
	return persistence.Layout{Chain: s.Chain, ID: s.ID}
}

// CreateRequest is a PUT.
type CreateRequest struct {
	ContentType string
	Expiry      protocol.Expiry
	Closed      bool
	// Records are the initial messages (one record for non-JSON bodies).
	Records [][]byte
	// Fork, for a fork, is where its inherited data comes from, resolved
	// against its source (Streams.Fork sets it).
	Fork *persistence.ForkInfo
}

// AppendRequest is a POST.
type AppendRequest struct {
	// ContentType is the request's Content-Type; checked only when Records
	// is non-empty (close-only requests may carry any or none).
	ContentType string
	Records     [][]byte
	// Unsplit says Records is one request body the caller did not split
	// into JSON messages (it judged the stream not to be a JSON stream); a
	// JSON stream splits it itself.
	Unsplit  bool
	Seq      string // Stream-Seq, "" if absent
	Producer *protocol.Producer
	Close    bool
}

// Outcome says what a write did.
type Outcome int

const (
	// Created: a new stream was created (201).
	Created Outcome = iota + 1
	// Existed: an identical stream already existed (200).
	Existed
	// Appended: data was appended and/or the stream closed.
	Appended
	// Duplicate: an idempotent producer retry; nothing was written.
	Duplicate
	// AlreadyClosed: a close-only request on a closed stream.
	AlreadyClosed
)

// Result is the answer to a write.
type Result struct {
	Outcome Outcome
	// NextOffset is the tail after this write; Offsets renders it as a
	// token.
	NextOffset uint64
	Offsets    protocol.OffsetSegments
	Closed     bool
	// ProducerEpoch and ProducerSeq echo the producer state (§5.2.1) when
	// the request carried producer headers.
	ProducerEpoch, ProducerSeq uint64
	Snapshot                   *Snapshot
	Err                        error
}

// Delta is the data made durable by one commit. It is shared, read-only, by
// every waiter and subscriber woken by that commit; encodings are computed
// once on first use.
type Delta struct {
	Start, End uint64
	// Records are the committed records in order (messages for JSON streams).
	Records [][]byte
	Closed  bool
	// Deleted reports that the stream was deleted or expired.
	Deleted bool
	JSON    bool

	bodyOnce sync.Once
	body     []byte
	sseOnce  sync.Once
	sse      []byte
}

// size is the delta's data in bytes (what a subscriber's budget counts).
func (d *Delta) size() int64 { return int64(d.End - d.Start) }

// Body returns the delta as a read response body: the concatenated bytes,
// or a JSON array for JSON streams.
func (d *Delta) Body() []byte {
	d.bodyOnce.Do(func() {
		if d.JSON {
			d.body = protocol.AppendJSONArray(nil, d.Records)
			return
		}
		n := 0
		for _, r := range d.Records {
			n += len(r)
		}
		d.body = make([]byte, 0, n)
		for _, r := range d.Records {
			d.body = append(d.body, r...)
		}
	})
	return d.body
}

// SSEData returns the delta's payload as the lines of an SSE data event
// (without the trailing control event), base64-encoding binary streams.
func (d *Delta) SSEData(textual bool) []byte {
	d.sseOnce.Do(func() {
		d.sse = AppendSSEData(nil, d.Body(), textual)
	})
	return d.sse
}

// AppendSSEData appends an "event: data" SSE event carrying payload. Text
// payloads are split into one data: line per line, so that CR or LF in the
// payload can never end the event early or inject fields; binary payloads
// are base64-encoded (§5.8).
func AppendSSEData(dst, payload []byte, textual bool) []byte {
	dst = append(dst, "event: data\n"...)
	if !textual {
		enc := base64.StdEncoding
		n := enc.EncodedLen(len(payload))
		dst = append(dst, "data:"...)
		start := len(dst)
		dst = append(dst, make([]byte, n)...)
		enc.Encode(dst[start:], payload)
		return append(dst, "\n\n"...)
	}
	line := 0
	for i := 0; i <= len(payload); i++ {
		if i == len(payload) || payload[i] == '\n' || payload[i] == '\r' {
			dst = append(dst, "data:"...)
			if i > line && payload[line] == ' ' {
				// SSE parsers strip one space after the colon; add one so
				// the payload's own leading space survives.
				dst = append(dst, ' ')
			}
			dst = append(dst, payload[line:i]...)
			dst = append(dst, '\n')
			if i < len(payload) && payload[i] == '\r' && i+1 < len(payload) && payload[i+1] == '\n' {
				i++
			}
			line = i + 1
		}
	}
	return append(dst, '\n')
}
