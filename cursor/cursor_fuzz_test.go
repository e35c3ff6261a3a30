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
// always returns a decimal integer that is: the current interval for an
// absent, invalid or older client cursor; otherwise strictly greater than
// the client's cursor by at most the largest jitter (3600 s in intervals,
// at least one). The interval number never goes back as the clock advances.
func FuzzCursor(f *testing.F) {
	for _, c := range []string{"", "0", "-1", "1000", "1001", "+1000", "abc", " 1", "1 ", "1e3", "1.0", "0x10", "١",
		"9223372036854775807", "9223372036854775806", "9223372036854775808", "-9223372036854775808", "-9223372036854775809",
		"00000000000000000000000001000", "18446744073709551615"} {
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
		got := mustBig(t, g.Next(client))
		cur := big.NewInt(current)

		maxJitter := int64(time.Duration(maxJitterSeconds) * time.Second / interval)
		if time.Duration(maxJitterSeconds)*time.Second%interval != 0 {
			maxJitter++
		}
		maxJitter = max(maxJitter, 1)

		c, err := strconv.ParseInt(client, 10, 64)
		if err != nil || c < current {
			if got.Cmp(cur) != 0 {
				t.Fatalf("Next(%q) at interval %d = %s; want the current interval", client, current, got)
			}
		} else {
			d := new(big.Int).Sub(got, big.NewInt(c))
			if d.Sign() <= 0 || d.Cmp(big.NewInt(maxJitter)) > 0 {
				t.Fatalf("Next(%q) at interval %d (interval %v) = %s: step %s outside [1, %d]", client, current, interval, got, d, maxJitter)
			}
		}

		// The clock moving forward never moves the interval back.
		later := now.Add(time.Duration(advance & (1<<62 - 1)))
		if next := New(interval, epoch).WithClock(fixed(later), nil).Current(); next < current {
			t.Fatalf("interval went back from %d at %v to %d at %v", current, now, next, later)
		}
	})
}
