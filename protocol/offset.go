package protocol

import (
	"errors"
	"fmt"
)

// Offset tokens are "<segment>_<position>", each a zero-padded 16-digit
// decimal, so byte-wise order equals numeric order and tokens never collide
// with the sentinels "-1" and "now". The segment names the incarnation that
// minted the position (see OffsetSegments), so a path deleted and created
// again never reuses a URL and offset of its previous life; streams created
// before segments were introduced use segment 0 throughout.
const (
	// OffsetBeginning is the sentinel for the start of a stream.
	OffsetBeginning = "-1"
	// OffsetNow is the sentinel for the current tail of a stream.
	OffsetNow = "now"

	offsetDigits = 16
	offsetLen    = 2*offsetDigits + 1
	maxPosition  = 9_999_999_999_999_999 // largest 16-digit decimal
)

// ErrBadOffset reports an offset token that is neither a sentinel nor a
// token streamd could have produced.
var ErrBadOffset = errors.New("malformed offset")

// FormatOffset renders a byte position as an offset token of segment 0.
func FormatOffset(pos uint64) string { return FormatOffsetIn(0, pos) }

// FormatOffsetIn renders a byte position in a stream as an opaque offset
// token of the given segment (at most MaxSegment).
func FormatOffsetIn(segment, pos uint64) string {
	var b [offsetLen]byte
	for i := offsetDigits - 1; i >= 0; i-- {
		b[i] = byte('0' + segment%10)
		segment /= 10
	}
	b[offsetDigits] = '_'
	for i := offsetLen - 1; i > offsetDigits; i-- {
		b[i] = byte('0' + pos%10)
		pos /= 10
	}
	return string(b[:])
}

// OffsetKind tells what a parsed offset query value designates.
type OffsetKind int

const (
	// OffsetAt designates an explicit position.
	OffsetAt OffsetKind = iota
	// OffsetStart designates the beginning of the stream ("-1" or absent).
	OffsetStart
	// OffsetTail designates the current tail ("now").
	OffsetTail
)

// ParseOffset parses an offset query value, ignoring the token's segment
// (see ParseOffsetSegment).
func ParseOffset(s string) (OffsetKind, uint64, error) {
	kind, _, pos, err := ParseOffsetSegment(s)
	return kind, pos, err
}

// ParseOffsetSegment parses an offset query value into its kind, segment
// and position. The empty string is rejected: an absent parameter must be
// handled by the caller, an empty one is an error. Whether the segment is
// the stream's own is for the caller to check (OffsetSegments.At).
func ParseOffsetSegment(s string) (kind OffsetKind, segment, pos uint64, err error) {
	switch s {
	case OffsetBeginning:
		return OffsetStart, 0, 0, nil
	case OffsetNow:
		return OffsetTail, 0, 0, nil
	}
	if len(s) != offsetLen || s[offsetDigits] != '_' {
		return 0, 0, 0, fmt.Errorf("%w: %q", ErrBadOffset, s)
	}
	for i := 0; i < offsetLen; i++ {
		if i == offsetDigits {
			continue
		}
		c := s[i]
		if c < '0' || c > '9' {
			return 0, 0, 0, fmt.Errorf("%w: %q", ErrBadOffset, s)
		}
		if i < offsetDigits {
			segment = segment*10 + uint64(c-'0')
		} else {
			pos = pos*10 + uint64(c-'0')
		}
	}
	return OffsetAt, segment, pos, nil
}

// MaxPosition is the largest byte position an offset token can carry.
const MaxPosition uint64 = maxPosition

// MaxSegment is the largest segment an offset token can carry.
const MaxSegment uint64 = maxPosition

// SegmentEnd says that the offset tokens of the positions up to and
// including End (and past the previous SegmentEnd's End) carry Segment.
type SegmentEnd struct {
	Segment uint64 `json:"seg"`
	End     uint64 `json:"end"`
}

// OffsetSegments says which segment each position's offset token of one
// stream carries. A stream's own positions carry its incarnation's id
// (Own), so two incarnations of a path never share a token; a fork's
// positions up to and including its fork point carry what its source's
// tokens carry there (Inherited), since a fork shares its source's offsets
// up to the fork point (§4.2). Ids grow along a fork chain, so segments
// never decrease with the position and tokens of one stream compare
// byte-wise in position order.
type OffsetSegments struct {
	Inherited []SegmentEnd
	Own       uint64
}

// OwnSegment is the segment of an incarnation's own positions: its id,
// capped at MaxSegment (never reached in practice; capping keeps the order),
// or 0 for streams created before offsets carried segments.
func OwnSegment(id uint64, segmented bool) uint64 {
	if !segmented {
		return 0
	}
	return min(id, MaxSegment)
}

// At returns the segment of the token for pos.
func (o OffsetSegments) At(pos uint64) uint64 {
	for _, s := range o.Inherited {
		if pos <= s.End {
			return s.Segment
		}
	}
	return o.Own
}

// Accepts reports whether a token of segment and pos names a position of
// this stream: the segment the stream gives pos, or the all-zero token,
// which names the start of every stream as "-1" does (clients of servers
// whose offsets have no segment write it for the start, and position 0 is
// the same in every incarnation).
func (o OffsetSegments) Accepts(segment, pos uint64) bool {
	return o.At(pos) == segment || (segment == 0 && pos == 0)
}

// Format returns the offset token for pos.
func (o OffsetSegments) Format(pos uint64) string { return FormatOffsetIn(o.At(pos), pos) }

// Cut returns the inherited segments of a fork at base: the positions up to
// and including base keep the segments they have here.
func (o OffsetSegments) Cut(base uint64) []SegmentEnd {
	var out []SegmentEnd
	for _, s := range o.Inherited {
		if s.End >= base {
			break
		}
		out = append(out, s)
	}
	return append(out, SegmentEnd{Segment: o.At(base), End: base})
}
