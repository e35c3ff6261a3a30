package cursor

import (
	"math/big"
	"strconv"
	"testing"
	"time"
)

// FuzzCursor drives Next with arbitrary client cursors, interval lengths,
// clocks (including instants so far from the epoch that durations
// saturate) and jitter functions, and checks that it never panics and
// always returns an int64 decimal that parses again and is: the current
// interval for an absent, invalid or older client cursor; otherwise
// strictly greater than the client's cursor by at most the largest jitter
// (3600 s in intervals, at least one), or MaxCursor where that sum would
// pass it. Feeding the answer back (Next for the client's next request,
// Continue for the next SSE control event) never yields a smaller or
// unparseable cursor. The interval number never goes back as the clock
// advances.
func FuzzCursor(f *testing.F) {
	for _, c := range []string{"", "0", "-1", "1000", "1001", "+1000", "abc", " 1", "1 ", "1e3", "1.0", "0x10", "١",
		"9223372036854775807", "9223372036854775806", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
		"00000000000000000000000001000", "18446744073709551615", "99999999999999999999", "+99999999999999999999"} {
		f.Add(c, int64(DefaultInterval), int64(1000*20), int64(1), int64(0))
	}
	f.Add("1000", int64(time.Nanosecond), int64(0), int64(3600), int64(1))
	f.Add("1000", int64(time.Hour), int64(-1), int64(0), int64(-1))
	f.Add("9223372036854775807", int64(time.Nanosecond), int64(1<<62), int64(1<<62), int64(1<<40))
	f.Add("-5", int64(-1), int64(-1<<62), int64(-7), int64(1<<62))
	f.Add("", int64(1<<62), int64(1<<40), int64(3601), int64(0))

	epoch := DefaultEpoch()
	f.Fuzz(func(t *testing.T, client string, intervalNanos, nowSeconds, jitter, advance int64) {
		interval := time.Duration(intervalNanos)
		if interval <= 0 {
			interval = DefaultInterval // New refuses it, as documented
		}
		now := time.Unix(nowSeconds, 0)
		g := New(interval, epoch).WithClock(fixed(now), constJitter(jitter, nil))
		current := g.Current()
		answer := g.Next(client)
		got, err := strconv.ParseInt(answer, 10, 64)
		if err != nil {
			t.Fatalf("Next(%q) = %q: not an int64: %v", client, answer, err)
		}
		if got < current {
			t.Fatalf("Next(%q) = %d, behind the current interval %d", client, got, current)
		}

		maxJitter := int64(time.Duration(maxJitterSeconds) * time.Second / interval)
		if time.Duration(maxJitterSeconds)*time.Second%interval != 0 {
			maxJitter++
		}
		maxJitter = max(maxJitter, 1)

		c, valid := parseCursor(client)
		switch {
		case !valid || c < current:
			if got != current {
				t.Fatalf("Next(%q) at interval %d = %d; want the current interval", client, current, got)
			}
		case c > MaxCursor-maxJitter:
			if d := new(big.Int).Sub(big.NewInt(got), big.NewInt(c)); got != MaxCursor && (d.Sign() <= 0 || d.Cmp(big.NewInt(maxJitter)) > 0) {
				t.Fatalf("Next(%q) near the top = %d: neither MaxCursor nor a step in [1, %d]", client, got, maxJitter)
			}
		default:
			if d := got - c; d <= 0 || d > maxJitter {
				t.Fatalf("Next(%q) at interval %d (interval %v) = %d: step %d outside [1, %d]", client, current, interval, got, d, maxJitter)
			}
		}

		// Fed back, at the same instant or later, the answer never goes back.
		later := now.Add(time.Duration(advance & (1<<62 - 1)))
		g2 := New(interval, epoch).WithClock(fixed(later), constJitter(jitter, nil))
		for name, again := range map[string]string{"Next": g2.Next(answer), "Continue": g2.Continue(answer)} {
			n, err := strconv.ParseInt(again, 10, 64)
			if err != nil || n < got {
				t.Fatalf("%s(%q) = %q after Next(%q): smaller or unparseable", name, answer, again, client)
			}
		}

		// The clock moving forward never moves the interval back.
		if next := g2.Current(); next < current {
			t.Fatalf("interval went back from %d at %v to %d at %v", current, now, next, later)
		}
	})
}
