package cursor

import (
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"time"
)

// DefaultInterval is the interval length used by streamd for cursors.
const DefaultInterval = 20 * time.Second

// minJitterSeconds and maxJitterSeconds bound the random jitter, in seconds,
// added to a client's cursor when it is at or beyond the current interval.
const (
	minJitterSeconds = 1
	maxJitterSeconds = 3600
)

// DefaultEpoch returns the epoch used by streamd for cursors:
// 2024-10-09T00:00:00Z.
func DefaultEpoch() time.Time {
	return time.Date(2024, time.October, 9, 0, 0, 0, 0, time.UTC)
}

// Generator computes interval-based cursors. Safe for concurrent use.
//
// A Generator is never modified after construction; WithClock returns a new
// Generator rather than changing the receiver.
type Generator struct {
	interval time.Duration
	epoch    time.Time
	now      func() time.Time
	jitter   func(n int64) int64
}

// New returns a generator dividing time since epoch into intervals of the
// given length. interval must be > 0; New panics otherwise.
func New(interval time.Duration, epoch time.Time) *Generator {
	if interval <= 0 {
		panic("cursor: interval must be > 0, got " + interval.String())
	}
	return &Generator{
		interval: interval,
		epoch:    epoch,
		now:      time.Now,
		jitter:   randomJitter,
	}
}

// WithClock returns a copy using now() instead of time.Now and jitter(n)
// (returning a value in [1,n]) instead of math/rand/v2 — for tests.
// A nil argument keeps the receiver's corresponding function.
func (g *Generator) WithClock(now func() time.Time, jitter func(n int64) int64) *Generator {
	c := *g
	if now != nil {
		c.now = now
	}
	if jitter != nil {
		c.jitter = jitter
	}
	return &c
}

// Current returns the current interval number: the number of whole
// intervals elapsed since the epoch, rounded towards negative infinity
// (so instants before the epoch yield negative numbers).
func (g *Generator) Current() int64 {
	return g.intervalAt(g.now())
}

func (g *Generator) intervalAt(t time.Time) int64 {
	// time.Time.Sub saturates at the limits of time.Duration rather than
	// overflowing, so this is safe for any t.
	d := t.Sub(g.epoch)
	q := int64(d / g.interval)
	if d%g.interval < 0 {
		q-- // floor division for instants before the epoch
	}
	return q
}

// Next returns the cursor for a live response given the client's cursor
// query value ("" if absent):
//
//   - no/invalid client cursor or client cursor < current interval ->
//     current interval (decimal string);
//   - client cursor >= current -> client cursor + jitter, where jitter is
//     1..3600 seconds expressed in intervals (at least 1 interval), so the
//     result is strictly greater than the client's;
//   - except at the top of the range: a sum beyond MaxCursor is MaxCursor.
//
// A client cursor is valid when it is a base-10 integer, optionally signed.
// A positive one beyond the int64 range counts as MaxCursor; anything else
// that is not an int64 (empty, non-numeric, whitespace, fractional, too
// negative) is treated as absent. Every result is therefore an int64 that
// Next and Continue accept again, and feeding a result back never yields a
// smaller one: a cursor cannot grow past MaxCursor, so one that reached it
// stays there rather than wrapping or growing without bound.
func (g *Generator) Next(client string) string {
	current := g.Current()
	c, ok := parseCursor(client)
	if !ok || c < current {
		return strconv.FormatInt(current, 10)
	}
	j := g.jitterIntervals()
	if c > MaxCursor-j {
		return strconv.FormatInt(MaxCursor, 10)
	}
	return strconv.FormatInt(c+j, 10)
}

// Continue returns the cursor for a further live answer within one
// response (the next SSE control event), given the cursor the response
// last carried: that cursor, or the current interval once time has moved
// past it. No jitter is added, so the cursors one response carries never
// decrease and do not run away from the clock. An invalid prev yields the
// current interval.
func (g *Generator) Continue(prev string) string {
	current := g.Current()
	c, ok := parseCursor(prev)
	if !ok || c < current {
		return strconv.FormatInt(current, 10)
	}
	return strconv.FormatInt(c, 10)
}

// MaxCursor is the largest cursor returned: cursors saturate there rather
// than leave the int64 range, so every cursor returned parses again.
const MaxCursor = math.MaxInt64

// parseCursor reads a cursor value: a base-10 int64, or MaxCursor for a
// positive integer beyond the int64 range. ok is false for anything else.
func parseCursor(s string) (int64, bool) {
	c, err := strconv.ParseInt(s, 10, 64)
	if err == nil {
		return c, true
	}
	if errors.Is(err, strconv.ErrRange) && s[0] != '-' {
		return MaxCursor, true
	}
	return 0, false
}

// jitterIntervals draws a jitter of minJitterSeconds..maxJitterSeconds
// seconds and converts it to a whole number of intervals, rounding up, with
// a minimum of one interval.
func (g *Generator) jitterIntervals() int64 {
	const span = maxJitterSeconds - minJitterSeconds + 1
	// jitter(n) is documented to return a value in [1, n]; clamp anyway so
	// that a misbehaving injected function cannot break monotonicity.
	secs := min(max(g.jitter(span), 1), span) + minJitterSeconds - 1
	d := time.Duration(secs) * time.Second
	n := int64(d / g.interval)
	if d%g.interval != 0 {
		n++
	}
	return max(n, 1)
}

// randomJitter returns a uniformly random value in [1, n].
func randomJitter(n int64) int64 {
	return rand.Int64N(n) + 1
}
