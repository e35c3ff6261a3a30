package actors

import (
	"testing"
	"time"
)

func TestMemoryReleaser(t *testing.T) {
	t0 := time.Unix(1_000_000, 0)
	steps := []struct {
		live int64
		at   time.Duration
		want bool
	}{
		{0, 0, false},
		{50_000, time.Second, false},      // growing
		{45_000, 2 * time.Second, false},  // 5k gone: too few
		{24_000, 3 * time.Second, true},   // 26k gone, more than half the peak
		{0, 4 * time.Second, false},       // 24k more gone, but within the interval
		{0, 14 * time.Second, true},       // interval passed, still 24k below the peak
		{0, 30 * time.Second, false},      // nothing new since
		{15_000, 31 * time.Second, false}, // growing again
		{4_000, 45 * time.Second, true},   // 11k gone, over half of 15k
		{1_000_000, 46 * time.Second, false},
		{600_000, 60 * time.Second, false}, // 400k gone but not half the peak
		{400_000, 61 * time.Second, true},
	}
	var m memoryReleaser
	for i, st := range steps {
		if got := m.shouldRelease(st.live, t0.Add(st.at)); got != st.want {
			t.Errorf("step %d (live %d at %v): release = %v, want %v", i, st.live, st.at, got, st.want)
		}
	}
}
