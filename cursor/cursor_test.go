package cursor

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"sync"
	"testing"
	"time"
)

// fixed returns a clock that always reports t.
func fixed(t time.Time) func() time.Time { return func() time.Time { return t } }

// constJitter returns a jitter function that always returns v and records
// the n it was called with.
func constJitter(v int64, gotN *int64) func(int64) int64 {
	return func(n int64) int64 {
		if gotN != nil {
			*gotN = n
		}
		return v
	}
}

func mustBig(t *testing.T, s string) *big.Int {
	t.Helper()
	b, ok := new(big.Int).SetString(s, 10)
	if !ok {
		t.Fatalf("cursor %q is not a decimal integer", s)
	}
	return b
}

func TestDefaults(t *testing.T) {
	if DefaultInterval != 20*time.Second {
		t.Errorf("DefaultInterval = %v, want 20s", DefaultInterval)
	}
	want := time.Date(2024, 10, 9, 0, 0, 0, 0, time.UTC)
	got := DefaultEpoch()
	if !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("DefaultEpoch() = %v, want %v", got, want)
	}
	if got.Format(time.RFC3339) != "2024-10-09T00:00:00Z" {
		t.Errorf("DefaultEpoch() formats as %q", got.Format(time.RFC3339))
	}
	// DefaultEpoch must hand out independent values.
	a := DefaultEpoch()
	a = a.Add(time.Hour)
	if !DefaultEpoch().Equal(want) {
		t.Errorf("DefaultEpoch changed after modifying a returned value: %v", a)
	}
}

func TestCurrent(t *testing.T) {
	epoch := DefaultEpoch()
	tests := []struct {
		name     string
		interval time.Duration
		epoch    time.Time
		now      time.Time
		want     int64
	}{
		{"at epoch", DefaultInterval, epoch, epoch, 0},
		{"just before first boundary", DefaultInterval, epoch, epoch.Add(20*time.Second - time.Nanosecond), 0},
		{"at first boundary", DefaultInterval, epoch, epoch.Add(20 * time.Second), 1},
		{"one hour", DefaultInterval, epoch, epoch.Add(time.Hour), 180},
		{"one day", DefaultInterval, epoch, time.Date(2024, 10, 10, 0, 0, 0, 0, time.UTC), 4320},
		{"one day, non-UTC clock", DefaultInterval, epoch, time.Date(2024, 10, 10, 2, 0, 0, 0, time.FixedZone("CEST", 2*3600)), 4320},
		{"one ns before epoch", DefaultInterval, epoch, epoch.Add(-time.Nanosecond), -1},
		{"one interval before epoch", DefaultInterval, epoch, epoch.Add(-20 * time.Second), -1},
		{"just over one interval before epoch", DefaultInterval, epoch, epoch.Add(-20*time.Second - time.Nanosecond), -2},
		{"1s interval", time.Second, epoch, epoch.Add(90*time.Second + 999*time.Millisecond), 90},
		{"7s interval", 7 * time.Second, epoch, epoch.Add(50 * time.Second), 7},
		{"1ms interval", time.Millisecond, epoch, epoch.Add(1500 * time.Microsecond), 1},
		{"1ns interval", time.Nanosecond, epoch, epoch.Add(12345), 12345},
		{"1h interval", time.Hour, epoch, epoch.Add(25 * time.Hour), 25},
		{"unix epoch", time.Minute, time.Unix(0, 0), time.Unix(3600, 0), 60},
		{"custom epoch", 10 * time.Second, time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2000, 1, 1, 0, 1, 0, 0, time.UTC), 6},
		// time.Time.Sub saturates at ~292 years; Current must stay sane.
		{"far future saturates", time.Nanosecond, epoch, epoch.AddDate(1000, 0, 0), math.MaxInt64},
		{"far past saturates", time.Nanosecond, epoch, epoch.AddDate(-1000, 0, 0), math.MinInt64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := New(tt.interval, tt.epoch).WithClock(fixed(tt.now), nil)
			if got := g.Current(); got != tt.want {
				t.Errorf("Current() = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestNext(t *testing.T) {
	epoch := DefaultEpoch()
	now := epoch.Add(1000*DefaultInterval + 5*time.Second) // interval 1000
	const cur = int64(1000)
	tests := []struct {
		name     string
		interval time.Duration
		jitter   int64 // seconds returned by the injected jitter function
		client   string
		want     string
	}{
		// No or invalid client cursor: current interval.
		{"absent", DefaultInterval, 1, "", "1000"},
		{"non-numeric", DefaultInterval, 1, "abc", "1000"},
		{"numeric prefix", DefaultInterval, 1, "1000abc", "1000"},
		{"leading space", DefaultInterval, 1, " 1000", "1000"},
		{"trailing space", DefaultInterval, 1, "1000 ", "1000"},
		{"fraction", DefaultInterval, 1, "1000.5", "1000"},
		{"exponent", DefaultInterval, 1, "1e9", "1000"},
		{"hex", DefaultInterval, 1, "0x7fffffff", "1000"},
		{"underscore", DefaultInterval, 1, "1_000", "1000"},
		{"lone sign", DefaultInterval, 1, "-", "1000"},
		{"double sign", DefaultInterval, 1, "--5", "1000"},
		{"overflow negative, huge", DefaultInterval, 1, "-99999999999999999999999999999999999999", "1000"},
		{"overflow negative", DefaultInterval, 1, "-9223372036854775809", "1000"},
		{"unicode digits", DefaultInterval, 1, "١٠٠٠", "1000"},
		{"NUL byte", DefaultInterval, 1, "1000\x00", "1000"},

		// Client cursor behind the current interval: current interval.
		{"negative", DefaultInterval, 1, "-1", "1000"},
		{"min int64", DefaultInterval, 1, "-9223372036854775808", "1000"},
		{"zero", DefaultInterval, 1, "0", "1000"},
		{"one behind", DefaultInterval, 1, "999", "1000"},

		// Client cursor at or ahead of current: client + jitter intervals.
		{"equal, min jitter", DefaultInterval, 1, "1000", "1001"},
		{"equal, jitter one interval", DefaultInterval, 20, "1000", "1001"},
		{"equal, jitter just over one interval", DefaultInterval, 21, "1000", "1002"},
		{"equal, max jitter", DefaultInterval, 3600, "1000", "1180"},
		{"leading zeros", DefaultInterval, 1, "0001000", "1001"},
		{"plus sign", DefaultInterval, 1, "+1000", "1001"},
		{"ahead", DefaultInterval, 40, "1500", "1502"},
		{"near max int64, max jitter", DefaultInterval, 3600, "9223372036854775000", "9223372036854775180"},

		// At the top of the range cursors saturate, so the answer parses again.
		{"max int64 saturates", DefaultInterval, 1, "9223372036854775807", "9223372036854775807"},
		{"near max int64, jitter past it", DefaultInterval, 3600, "9223372036854775700", "9223372036854775807"},
		{"overflow positive", DefaultInterval, 1, "9223372036854775808", "9223372036854775807"},
		{"twenty digits", DefaultInterval, 1, "18446744073709551615", "9223372036854775807"},
		{"overflow huge", DefaultInterval, 1, "99999999999999999999999999999999999999", "9223372036854775807"},
		{"overflow, plus sign", DefaultInterval, 1, "+99999999999999999999", "9223372036854775807"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var gotN int64
			g := New(tt.interval, epoch).WithClock(fixed(now), constJitter(tt.jitter, &gotN))
			if c := g.Current(); c != cur {
				t.Fatalf("Current() = %d, want %d", c, cur)
			}
			got := g.Next(tt.client)
			if got != tt.want {
				t.Errorf("Next(%q) = %q, want %q", tt.client, got, tt.want)
			}
			if gotN != 0 && gotN != 3600 {
				t.Errorf("jitter called with n=%d, want 3600", gotN)
			}
		})
	}
}

// TestContinue checks the cursor of a further control event in the same
// response: the previous one until the clock passes it, never less.
func TestContinue(t *testing.T) {
	epoch := DefaultEpoch()
	now := epoch.Add(1000*DefaultInterval + 5*time.Second) // interval 1000
	tests := []struct {
		name, prev, want string
	}{
		{"absent", "", "1000"},
		{"invalid", "abc", "1000"},
		{"behind the clock", "990", "1000"},
		{"at the clock", "1000", "1000"},
		{"ahead, kept without new jitter", "1042", "1042"},
		{"leading zeros, canonical", "0001042", "1042"},
		{"max int64", "9223372036854775807", "9223372036854775807"},
		{"beyond int64 saturates", "99999999999999999999", "9223372036854775807"},
		{"too negative", "-99999999999999999999", "1000"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g := New(DefaultInterval, epoch).WithClock(fixed(now), constJitter(3600, nil))
			if got := g.Continue(tt.prev); got != tt.want {
				t.Errorf("Continue(%q) = %q, want %q", tt.prev, got, tt.want)
			}
		})
	}
}

// TestSequenceNeverDecreases follows a client through long-polls (each
// echoing the last cursor to Next) and an SSE response (Continue between
// control events) while the clock moves, from ordinary and extreme
// starting cursors: the cursors it sees never decrease and always parse.
func TestSequenceNeverDecreases(t *testing.T) {
	epoch := DefaultEpoch()
	for _, start := range []string{"", "5", "1000", "9223372036854775000", "9223372036854775807", "99999999999999999999"} {
		t.Run(start, func(t *testing.T) {
			clock := epoch.Add(1000 * DefaultInterval)
			var j int64
			g := New(DefaultInterval, epoch).WithClock(func() time.Time { return clock }, func(n int64) int64 { j = j%n + 1; return j })
			last, prev := start, int64(-1)
			for i := range 500 {
				if i%3 == 0 {
					last = g.Continue(last)
				} else {
					last = g.Next(last)
				}
				n, err := strconv.ParseInt(last, 10, 64)
				if err != nil || n < prev {
					t.Fatalf("step %d: cursor %q after %d", i, last, prev)
				}
				prev = n
				clock = clock.Add(time.Duration(i%7) * 7 * time.Second)
			}
		})
	}
}

// TestJitterIntervals checks the seconds-to-intervals conversion for
// several interval lengths: ceil(seconds/interval), at least 1.
func TestJitterIntervals(t *testing.T) {
	tests := []struct {
		interval time.Duration
		secs     int64
		want     int64
	}{
		{DefaultInterval, 1, 1},
		{DefaultInterval, 19, 1},
		{DefaultInterval, 20, 1},
		{DefaultInterval, 21, 2},
		{DefaultInterval, 3600, 180},
		{time.Second, 1, 1},
		{time.Second, 3600, 3600},
		{7 * time.Second, 15, 3},
		{time.Hour, 1, 1},
		{time.Hour, 3600, 1},
		{24 * time.Hour, 3600, 1},
		{time.Millisecond, 2, 2000},
		{time.Nanosecond, 3600, 3600 * int64(time.Second)},
		{1500 * time.Millisecond, 3, 2},
		{1500 * time.Millisecond, 4, 3},
	}
	for _, tt := range tests {
		g := New(tt.interval, DefaultEpoch()).WithClock(nil, constJitter(tt.secs, nil))
		if got := g.jitterIntervals(); got != tt.want {
			t.Errorf("interval %v, jitter %ds: got %d intervals, want %d", tt.interval, tt.secs, got, tt.want)
		}
	}
}

// TestMisbehavingJitter checks that an injected jitter function returning
// values outside [1,n] cannot make Next return a cursor that is not
// strictly greater than the client's.
func TestMisbehavingJitter(t *testing.T) {
	epoch := DefaultEpoch()
	now := epoch.Add(time.Hour) // interval 180
	for _, v := range []int64{math.MinInt64, -5, 0, 3601, math.MaxInt64} {
		g := New(DefaultInterval, epoch).WithClock(fixed(now), constJitter(v, nil))
		got := g.Next("180")
		n, err := strconv.ParseInt(got, 10, 64)
		if err != nil {
			t.Fatalf("jitter %d: Next = %q: %v", v, got, err)
		}
		if n <= 180 || n > 180+180 {
			t.Errorf("jitter %d: Next(\"180\") = %d, want in (180, 360]", v, n)
		}
	}
}

// TestRandomJitterBounds uses the real random source and checks that
// results are always strictly greater than the client's cursor and within
// the documented jitter bound.
func TestRandomJitterBounds(t *testing.T) {
	epoch := DefaultEpoch()
	for _, interval := range []time.Duration{time.Second, 7 * time.Second, DefaultInterval, time.Hour, 2 * time.Hour} {
		t.Run(interval.String(), func(t *testing.T) {
			now := epoch.Add(500 * interval)
			g := New(interval, epoch).WithClock(fixed(now), nil)
			maxJ := int64((3600*time.Second + interval - 1) / interval)
			maxJ = max(maxJ, 1)
			seen := map[int64]bool{}
			for i := 0; i < 20000; i++ {
				client := int64(500 + i%3)
				got, err := strconv.ParseInt(g.Next(strconv.FormatInt(client, 10)), 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				d := got - client
				if d < 1 || d > maxJ {
					t.Fatalf("client %d: got %d, jitter %d outside [1,%d]", client, got, d, maxJ)
				}
				seen[d] = true
			}
			// With 20000 draws the jitter should not be constant unless only one value is possible.
			if maxJ > 1 && len(seen) < 2 {
				t.Errorf("jitter never varied: %v", seen)
			}
		})
	}
}

func TestRandomJitterFunc(t *testing.T) {
	for _, n := range []int64{1, 2, 3600} {
		for i := 0; i < 10000; i++ {
			if v := randomJitter(n); v < 1 || v > n {
				t.Fatalf("randomJitter(%d) = %d", n, v)
			}
		}
	}
}

// TestMonotonicProgression simulates a client that echoes every cursor it
// receives while time moves slowly: the cursor must strictly increase on
// every response and never be behind the current interval.
func TestMonotonicProgression(t *testing.T) {
	epoch := DefaultEpoch()
	clock := epoch.Add(100 * DefaultInterval)
	g := New(DefaultInterval, epoch).WithClock(func() time.Time { return clock }, nil)
	client := ""
	prev := int64(math.MinInt64)
	for i := 0; i < 5000; i++ {
		got := g.Next(client)
		n, err := strconv.ParseInt(got, 10, 64)
		if err != nil {
			t.Fatalf("step %d: %q: %v", i, got, err)
		}
		if n <= prev {
			t.Fatalf("step %d: cursor went from %d to %d", i, prev, n)
		}
		if cur := g.Current(); n < cur {
			t.Fatalf("step %d: cursor %d behind current interval %d", i, n, cur)
		}
		prev, client = n, got
		clock = clock.Add(7 * time.Second)
	}
}

// TestClientBehindCatchesUp checks that an old cursor is replaced by the
// current interval without jitter.
func TestClientBehindCatchesUp(t *testing.T) {
	epoch := DefaultEpoch()
	called := false
	g := New(DefaultInterval, epoch).WithClock(fixed(epoch.Add(time.Hour)), func(n int64) int64 {
		called = true
		return 1
	})
	if got := g.Next("5"); got != "180" {
		t.Errorf("Next(\"5\") = %q, want \"180\"", got)
	}
	if called {
		t.Error("jitter drawn for a client cursor behind the current interval")
	}
}

func TestNewRejectsNonPositiveInterval(t *testing.T) {
	for _, d := range []time.Duration{0, -1, -time.Second} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("New(%v, ...) did not panic", d)
				}
			}()
			New(d, DefaultEpoch())
		}()
	}
}

func TestWithClockCopies(t *testing.T) {
	epoch := DefaultEpoch()
	g := New(DefaultInterval, epoch)
	h := g.WithClock(fixed(epoch.Add(time.Hour)), constJitter(1, nil))
	if h == g {
		t.Fatal("WithClock returned the receiver")
	}
	if got := h.Current(); got != 180 {
		t.Errorf("copy Current() = %d, want 180", got)
	}
	// The original still uses the real clock.
	want := int64(time.Since(epoch) / DefaultInterval)
	if got := g.Current(); got < want || got > want+1 {
		t.Errorf("original Current() = %d, want about %d", got, want)
	}
	// nil arguments keep the existing functions.
	k := h.WithClock(nil, nil)
	if got := k.Current(); got != 180 {
		t.Errorf("WithClock(nil, nil) Current() = %d, want 180", got)
	}
	if got := k.Next("180"); got != "181" {
		t.Errorf("WithClock(nil, nil) Next = %q, want \"181\"", got)
	}
}

func TestRealClock(t *testing.T) {
	g := New(DefaultInterval, DefaultEpoch())
	before := int64(time.Since(DefaultEpoch()) / DefaultInterval)
	got := g.Current()
	after := int64(time.Since(DefaultEpoch()) / DefaultInterval)
	if got < before || got > after {
		t.Errorf("Current() = %d, want in [%d,%d]", got, before, after)
	}
	if s := g.Next(""); mustBig(t, s).Int64() < got {
		t.Errorf("Next(\"\") = %s, behind %d", s, got)
	}
}

// TestConcurrentUse exercises a shared Generator from many goroutines;
// run with -race. Each goroutine behaves like a client echoing its cursor:
// since the clock never goes backwards, every response must be strictly
// greater than the cursor echoed.
func TestConcurrentUse(t *testing.T) {
	g := New(time.Millisecond, DefaultEpoch())
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := ""
			prev := int64(math.MinInt64)
			for i := 0; i < 2000; i++ {
				next, err := strconv.ParseInt(g.Next(client), 10, 64)
				if err != nil || next <= prev {
					errs <- fmt.Sprintf("cursor did not advance: %q -> %d (%v)", client, next, err)
					return
				}
				prev, client = next, strconv.FormatInt(next, 10)
				_ = g.Current()
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

// FuzzNext checks that Next never panics and always returns a decimal
// integer that is at least the current interval and, for a valid client
// cursor at or ahead of the current interval, strictly greater than it.
func FuzzNext(f *testing.F) {
	for _, s := range []string{"", "0", "-1", "1000", "1001", "+1000", "abc", "9223372036854775807",
		"9223372036854775808", "-9223372036854775808", "1e3", " 1", "١"} {
		f.Add(s, int64(1))
		f.Add(s, int64(3600))
	}
	epoch := DefaultEpoch()
	now := epoch.Add(1000 * DefaultInterval)
	f.Fuzz(func(t *testing.T, client string, j int64) {
		g := New(DefaultInterval, epoch).WithClock(fixed(now), constJitter(j, nil))
		got := mustBig(t, g.Next(client))
		if got.Cmp(big.NewInt(1000)) < 0 {
			t.Fatalf("Next(%q) = %s, behind current 1000", client, got)
		}
		if !got.IsInt64() {
			t.Fatalf("Next(%q) = %s, beyond int64", client, got)
		}
		if c, err := strconv.ParseInt(client, 10, 64); err == nil && c >= 1000 && c <= MaxCursor-180 {
			d := new(big.Int).Sub(got, big.NewInt(c))
			if d.Cmp(big.NewInt(1)) < 0 || d.Cmp(big.NewInt(180)) > 0 {
				t.Fatalf("Next(%q) = %s: jitter %s outside [1,180]", client, got, d)
			}
		}
	})
}
