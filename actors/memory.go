package actors

import (
	"runtime/debug"
	"time"
)

// Passivated actors are garbage, but Go collects only when the program
// allocates and returns freed pages to the OS only gradually, so after a
// burst (a mass reconnect touching many streams) a quiet node would keep
// its peak RSS for minutes. memoryReleaser returns that memory once many
// actors have passivated since the last release.
const (
	// releaseMinActors is how many actors must have gone since the peak.
	releaseMinActors = 10_000
	// releaseMinInterval bounds how often a release (a full GC) runs.
	releaseMinInterval = 10 * time.Second
)

type memoryReleaser struct {
	peak int64     // most live actors since the last release
	last time.Time // time of the last release
}

// shouldRelease records the current live actor count and reports whether
// to release memory now: at least releaseMinActors and half of the peak
// have passivated, and the last release is releaseMinInterval ago.
func (m *memoryReleaser) shouldRelease(live int64, now time.Time) bool {
	m.peak = max(m.peak, live)
	gone := m.peak - live
	if gone < releaseMinActors || gone < m.peak/2 || now.Sub(m.last) < releaseMinInterval {
		return false
	}
	m.peak, m.last = live, now
	return true
}

// maybeReleaseMemory is called by the reaper on every pass.
func (s *Streams) maybeReleaseMemory(m *memoryReleaser) {
	if m.shouldRelease(s.live.Load(), time.Now()) {
		t0 := time.Now()
		debug.FreeOSMemory()
		s.log.Debug("returned memory of passivated actors", "live", s.live.Load(), "took", time.Since(t0))
	}
}
