package protocol

import (
	"errors"
	"math/rand/v2"
	"testing"
)

func TestFormatOffsetIsFixedWidthAndOrdered(t *testing.T) {
	positions := []uint64{0, 1, 9, 10, 99, 1 << 20, 123456789, MaxPosition}
	prev := ""
	for _, p := range positions {
		s := FormatOffset(p)
		if len(s) != 33 {
			t.Fatalf("FormatOffset(%d) = %q: want 33 bytes", p, s)
		}
		if prev != "" && !(prev < s) {
			t.Fatalf("offsets not increasing: %q !< %q", prev, s)
		}
		prev = s
		kind, got, err := ParseOffset(s)
		if err != nil || kind != OffsetAt || got != p {
			t.Fatalf("ParseOffset(%q) = %v %d %v, want %d", s, kind, got, err, p)
		}
	}
}

func TestParseOffset(t *testing.T) {
	tests := []struct {
		in   string
		kind OffsetKind
		pos  uint64
		bad  bool
	}{
		{in: "-1", kind: OffsetStart},
		{in: "now", kind: OffsetTail},
		{in: "0000000000000000_0000000000000042", kind: OffsetAt, pos: 42},
		{in: "", bad: true},
		{in: "NOW", bad: true},
		{in: "-2", bad: true},
		{in: "42", bad: true},
		{in: "0000000000000000_000000000000004a", bad: true},
		{in: "0000000000000001_0000000000000042", kind: OffsetAt, pos: 42}, // segment 1: the caller checks it
		{in: "000000000000000a_0000000000000042", bad: true},
		{in: "0000000000000000-0000000000000042", bad: true},
		{in: "0000000000000000_00000000000000420", bad: true},
		{in: "0000000000000000_000000000000004,", bad: true},
		{in: "0000000000000000_ 000000000000042", bad: true},
		{in: "../../etc/passwd", bad: true},
	}
	for _, tc := range tests {
		kind, pos, err := ParseOffset(tc.in)
		if tc.bad {
			if !errors.Is(err, ErrBadOffset) {
				t.Errorf("ParseOffset(%q): want ErrBadOffset, got %v", tc.in, err)
			}
			continue
		}
		if err != nil || kind != tc.kind || pos != tc.pos {
			t.Errorf("ParseOffset(%q) = %v %d %v; want %v %d", tc.in, kind, pos, err, tc.kind, tc.pos)
		}
	}
}

func TestParseOffsetSegment(t *testing.T) {
	for _, tc := range []struct {
		in       string
		seg, pos uint64
	}{
		{"0000000000000000_0000000000000042", 0, 42},
		{"0000000000000007_0000000000000042", 7, 42},
		{"9999999999999999_9999999999999999", MaxSegment, MaxPosition},
	} {
		kind, seg, pos, err := ParseOffsetSegment(tc.in)
		if err != nil || kind != OffsetAt || seg != tc.seg || pos != tc.pos {
			t.Errorf("ParseOffsetSegment(%q) = %v %d %d %v; want %d %d", tc.in, kind, seg, pos, err, tc.seg, tc.pos)
		}
		if got := FormatOffsetIn(tc.seg, tc.pos); got != tc.in {
			t.Errorf("FormatOffsetIn(%d, %d) = %q; want %q", tc.seg, tc.pos, got, tc.in)
		}
	}
}

// TestOffsetSegments: a stream's own positions carry its segment; a fork's
// positions up to and including its fork point carry its source's, and a
// fork of a fork keeps its grandparent's below the first fork point.
func TestOffsetSegments(t *testing.T) {
	source := OffsetSegments{Own: 5}
	fork := OffsetSegments{Inherited: source.Cut(10), Own: 7}
	grandchild := OffsetSegments{Inherited: fork.Cut(12), Own: 9}
	atStart := OffsetSegments{Inherited: source.Cut(0), Own: 8}
	legacy := OffsetSegments{Own: OwnSegment(3, false)}
	ofLegacy := OffsetSegments{Inherited: legacy.Cut(4), Own: OwnSegment(11, true)}
	tests := []struct {
		name string
		o    OffsetSegments
		pos  uint64
		want uint64
	}{
		{"source", source, 0, 5},
		{"source past the fork point", source, 11, 5},
		{"fork, inherited", fork, 3, 5},
		{"fork, at the fork point", fork, 10, 5},
		{"fork, own", fork, 11, 7},
		{"grandchild, grandparent's", grandchild, 10, 5},
		{"grandchild, parent's", grandchild, 11, 7},
		{"grandchild, at its fork point", grandchild, 12, 7},
		{"grandchild, own", grandchild, 13, 9},
		{"fork at 0, the fork point", atStart, 0, 5},
		{"fork at 0, own", atStart, 1, 8},
		{"legacy", legacy, 9, 0},
		{"fork of a legacy stream, inherited", ofLegacy, 4, 0},
		{"fork of a legacy stream, own", ofLegacy, 5, 11},
	}
	for _, tt := range tests {
		if got := tt.o.At(tt.pos); got != tt.want {
			t.Errorf("%s: At(%d) = %d; want %d", tt.name, tt.pos, got, tt.want)
		}
	}
	// Tokens of one stream sort by position.
	for _, o := range []OffsetSegments{source, fork, grandchild, atStart, ofLegacy} {
		for p := uint64(0); p < 20; p++ {
			if !(o.Format(p) < o.Format(p+1)) {
				t.Errorf("%+v: %q !< %q", o, o.Format(p), o.Format(p+1))
			}
		}
	}
	for _, c := range []struct {
		o        OffsetSegments
		seg, pos uint64
		want     bool
	}{
		{fork, 5, 10, true}, {fork, 7, 10, false}, {fork, 7, 11, true}, {fork, 5, 11, false},
		{fork, 0, 0, true}, // the all-zero token is every stream's start
		{fork, 0, 1, false}, {fork, 5, 0, true}, {fork, 7, 0, false},
		{legacy, 0, 9, true}, {legacy, 3, 9, false},
	} {
		if got := c.o.Accepts(c.seg, c.pos); got != c.want {
			t.Errorf("%+v.Accepts(%d, %d) = %v; want %v", c.o, c.seg, c.pos, got, c.want)
		}
	}
	if got := OwnSegment(MaxSegment+5, true); got != MaxSegment {
		t.Errorf("OwnSegment beyond the token's range = %d; want MaxSegment", got)
	}
}

func BenchmarkFormatOffset(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		_ = FormatOffset(uint64(i))
	}
}

// TestOffsetOrderMatchesPositionOrder: clients compare offsets as strings
// (§8), so string order must equal position order everywhere, not only at
// the hand-picked positions above.
func TestOffsetOrderMatchesPositionOrder(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 10000; i++ {
		// Mix small and large positions so digit-count changes are covered.
		a := rng.Uint64N(MaxPosition + 1)
		b := rng.Uint64N(min(1<<(rng.IntN(54)+1), MaxPosition+1))
		sa, sb := FormatOffset(a), FormatOffset(b)
		if (a < b) != (sa < sb) || (a == b) != (sa == sb) {
			t.Fatalf("positions %d, %d format as %q, %q: string order differs", a, b, sa, sb)
		}
	}
}

func TestOffsetBounds(t *testing.T) {
	for _, tc := range []struct {
		in  string
		pos uint64
	}{
		{"0000000000000000_0000000000000000", 0},
		{"0000000000000000_9999999999999999", MaxPosition},
	} {
		if got := FormatOffset(tc.pos); got != tc.in {
			t.Errorf("FormatOffset(%d) = %q; want %q", tc.pos, got, tc.in)
		}
		kind, pos, err := ParseOffset(tc.in)
		if err != nil || kind != OffsetAt || pos != tc.pos {
			t.Errorf("ParseOffset(%q) = %v %d %v; want %d", tc.in, kind, pos, err, tc.pos)
		}
	}
	// Sentinels sort before every token, so "-1" never looks like a later offset.
	if !(OffsetBeginning < FormatOffset(0)) {
		t.Errorf("%q does not sort before %q", OffsetBeginning, FormatOffset(0))
	}
}

func FuzzParseOffset(f *testing.F) {
	for _, s := range []string{"-1", "now", "", FormatOffset(0), FormatOffset(42), FormatOffset(MaxPosition), "0000000000000000_000000000000004a", "x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		kind, pos, err := ParseOffset(s)
		if err != nil {
			if !errors.Is(err, ErrBadOffset) {
				t.Fatalf("ParseOffset(%q) error %v does not wrap ErrBadOffset", s, err)
			}
			return
		}
		switch kind {
		case OffsetStart:
			if s != OffsetBeginning {
				t.Fatalf("ParseOffset(%q) = start", s)
			}
		case OffsetTail:
			if s != OffsetNow {
				t.Fatalf("ParseOffset(%q) = tail", s)
			}
		case OffsetAt:
			// Only tokens streamd could have produced are accepted.
			if pos > MaxPosition || FormatOffset(pos) != s {
				t.Fatalf("ParseOffset(%q) = %d, which formats as %q", s, pos, FormatOffset(pos))
			}
		default:
			t.Fatalf("ParseOffset(%q) returned kind %v", s, kind)
		}
	})
}
