package protocol

import (
	"errors"
	"fmt"
)

// Offset tokens are "<segment>_<position>", each a zero-padded 16-digit
// decimal, so byte-wise order equals numeric order and tokens never collide
// with the sentinels "-1" and "now". The segment is always 0 today; it is
// reserved so a future storage layout can change without breaking ordering.
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

// FormatOffset renders a byte position in a stream as an opaque offset token.
func FormatOffset(pos uint64) string {
	var b [offsetLen]byte
	for i := 0; i < offsetDigits; i++ {
		b[i] = '0'
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

// ParseOffset parses an offset query value. The empty string is rejected:
// an absent parameter must be handled by the caller, an empty one is an error.
func ParseOffset(s string) (OffsetKind, uint64, error) {
	switch s {
	case OffsetBeginning:
		return OffsetStart, 0, nil
	case OffsetNow:
		return OffsetTail, 0, nil
	}
	if len(s) != offsetLen || s[offsetDigits] != '_' {
		return 0, 0, fmt.Errorf("%w: %q", ErrBadOffset, s)
	}
	for i := 0; i < offsetDigits; i++ {
		if s[i] != '0' {
			return 0, 0, fmt.Errorf("%w: %q", ErrBadOffset, s)
		}
	}
	var pos uint64
	for i := offsetDigits + 1; i < offsetLen; i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, 0, fmt.Errorf("%w: %q", ErrBadOffset, s)
		}
		pos = pos*10 + uint64(c-'0')
	}
	return OffsetAt, pos, nil
}

// MaxPosition is the largest byte position an offset token can carry.
const MaxPosition uint64 = maxPosition
