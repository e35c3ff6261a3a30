package protocol

import (
	"errors"
	"testing"
)

// FuzzOffset checks the offset wire rules on arbitrary query values and
// positions: ParseOffset never panics and rejects with ErrBadOffset; an
// accepted token is a sentinel or exactly what FormatOffsetIn gives for its
// segment and position; every position an offset can carry round-trips through
// FormatOffset; and formatted offsets compare as strings the way their
// positions compare as numbers (clients order offsets lexicographically).
func FuzzOffset(f *testing.F) {
	for _, s := range []string{
		"-1", "now", "", "NOW", "Now", "-2", "-0", "0", "42", " -1", "-1 ", "now\n",
		FormatOffset(0), FormatOffset(1), FormatOffset(42), FormatOffset(1 << 20), FormatOffset(MaxPosition),
		"0000000000000000_000000000000004a",  // hex digit
		"0000000000000001_0000000000000042",  // segment 1
		"0000000000000000-0000000000000042",  // wrong separator
		"0000000000000000_00000000000000420", // too long
		"0000000000000000_000000000000004",   // too short
		"0000000000000000_ 000000000000042",  // space
		"0000000000000000_+000000000000042",  // sign
		"0000000000000000_-000000000000042",
		"0000000000000000_\u0664\u0662",     // non-ASCII digits
		"０000000000000000_0000000000000042", // fullwidth digit
		"0_0", "_", "../../etc/passwd", "\xff\xfe",
	} {
		f.Add(s, uint64(0), uint64(1))
	}
	f.Add(FormatOffset(9), uint64(9), uint64(10))
	f.Add(FormatOffset(99), uint64(99), uint64(100))
	f.Add(FormatOffset(MaxPosition), MaxPosition, MaxPosition-1)
	f.Add("now", MaxPosition+1, uint64(1<<63))
	f.Add("-1", ^uint64(0), uint64(0))

	f.Fuzz(func(t *testing.T, s string, a, b uint64) {
		kind, seg, pos, err := ParseOffsetSegment(s)
		if err != nil {
			if !errors.Is(err, ErrBadOffset) {
				t.Fatalf("ParseOffset(%q): error %v does not wrap ErrBadOffset", s, err)
			}
			if kind != 0 || pos != 0 {
				t.Fatalf("ParseOffset(%q) = %v, %d with error %v", s, kind, pos, err)
			}
		} else {
			switch kind {
			case OffsetStart:
				if s != OffsetBeginning || pos != 0 {
					t.Fatalf("ParseOffset(%q) = start, %d", s, pos)
				}
			case OffsetTail:
				if s != OffsetNow || pos != 0 {
					t.Fatalf("ParseOffset(%q) = tail, %d", s, pos)
				}
			case OffsetAt:
				if pos > MaxPosition {
					t.Fatalf("ParseOffset(%q) = %d, beyond MaxPosition", s, pos)
				}
				if got := FormatOffsetIn(seg, pos); got != s {
					t.Fatalf("ParseOffsetSegment(%q) = %d, %d, which formats as %q", s, seg, pos, got)
				}
			default:
				t.Fatalf("ParseOffset(%q) returned kind %v", s, kind)
			}
		}

		// Positions beyond MaxPosition cannot be carried by a token; fold
		// them into range so the fuzzer's large values still test ordering.
		a, b = a%(MaxPosition+1), b%(MaxPosition+1)
		fa, fb := FormatOffset(a), FormatOffset(b)
		for _, c := range []struct {
			pos uint64
			tok string
		}{{a, fa}, {b, fb}} {
			k, p, err := ParseOffset(c.tok)
			if err != nil || k != OffsetAt || p != c.pos {
				t.Fatalf("ParseOffset(FormatOffset(%d) = %q) = %v, %d, %v", c.pos, c.tok, k, p, err)
			}
			if len(c.tok) != offsetLen {
				t.Fatalf("FormatOffset(%d) = %q: not %d bytes", c.pos, c.tok, offsetLen)
			}
			// The sentinels never collide with, and "-1" sorts before, every token.
			if c.tok == OffsetBeginning || c.tok == OffsetNow || !(OffsetBeginning < c.tok) {
				t.Fatalf("FormatOffset(%d) = %q does not sort after %q", c.pos, c.tok, OffsetBeginning)
			}
		}
		if (a < b) != (fa < fb) || (a == b) != (fa == fb) {
			t.Fatalf("order differs: %d vs %d but %q vs %q", a, b, fa, fb)
		}
		// Across segments, tokens order by segment, then position: a fork's
		// own tokens (a larger segment) sort after its inherited ones.
		sa, sb := b%(MaxSegment+1), a%(MaxSegment+1)
		ta, tb := FormatOffsetIn(sa, a), FormatOffsetIn(sb, b)
		if less := sa < sb || (sa == sb && a < b); less != (ta < tb) {
			t.Fatalf("order differs: (%d, %d) vs (%d, %d) but %q vs %q", sa, a, sb, b, ta, tb)
		}
	})
}
