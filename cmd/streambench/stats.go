package main

import (
	"math"
	"slices"
	"time"
)

// percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest sample with at least p% of the samples
// at or below it. Exact over the full sample, no approximation.
func percentile(sorted []time.Duration, p float64) time.Duration {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	// p*n is exact for the integral p used here, so 99% of 100 is rank 99.
	rank := int(math.Ceil(p * float64(n) / 100))
	rank = max(1, min(rank, n))
	return sorted[rank-1]
}

// summary is the latency distribution of one sample.
type summary struct {
	n             int
	p50, p99, max time.Duration
	mean          time.Duration
}

// summarize sorts samples in place and summarises them.
func summarize(samples []time.Duration) summary {
	if len(samples) == 0 {
		return summary{}
	}
	slices.Sort(samples)
	var sum time.Duration
	for _, d := range samples {
		sum += d
	}
	return summary{
		n:    len(samples),
		p50:  percentile(samples, 50),
		p99:  percentile(samples, 99),
		max:  samples[len(samples)-1],
		mean: sum / time.Duration(len(samples)),
	}
}

// ms renders a duration as fractional milliseconds for the JSON output.
func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// perSecond is n per elapsed second, 0 when nothing elapsed (JSON has no
// NaN or Inf).
func perSecond(n float64, elapsed time.Duration) float64 {
	if elapsed <= 0 {
		return 0
	}
	return round3(n / elapsed.Seconds())
}

func round3(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return math.Round(f*1000) / 1000
}

// median of a small float sample (sorted in place); 0 when empty.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	if len(xs)%2 == 1 {
		return xs[len(xs)/2]
	}
	return (xs[len(xs)/2-1] + xs[len(xs)/2]) / 2
}
