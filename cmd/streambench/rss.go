package main

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// parseVmRSS extracts the resident set size in bytes from the text of
// /proc/<pid>/status ("VmRSS:     1234 kB").
func parseVmRSS(status string) (int64, error) {
	sc := bufio.NewScanner(strings.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 {
			return 0, fmt.Errorf("malformed VmRSS line %q", sc.Text())
		}
		n, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("malformed VmRSS value %q", f[0])
		}
		switch strings.ToLower(f[1]) {
		case "kb":
			return n << 10, nil
		case "mb":
			return n << 20, nil
		case "gb":
			return n << 30, nil
		}
		return 0, fmt.Errorf("unknown VmRSS unit %q", f[1])
	}
	return 0, fmt.Errorf("no VmRSS line")
}

// readRSS returns the RSS of pid in bytes; 0 with no error when pid <= 0
// (sampling disabled).
func readRSS(pid int) (int64, error) {
	if pid <= 0 {
		return 0, nil
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	return parseVmRSS(string(b))
}

// rssSampler records the maximum RSS of a process, sampled periodically,
// so short peaks between the scenario's own samples are not missed.
type rssSampler struct {
	pid  int
	max  atomic.Int64
	stop chan struct{}
	wg   sync.WaitGroup
}

func startRSSSampler(pid int, every time.Duration) *rssSampler {
	s := &rssSampler{pid: pid, stop: make(chan struct{})}
	if pid <= 0 {
		return s
	}
	s.sample()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				s.sample()
			case <-s.stop:
				return
			}
		}
	}()
	return s
}

func (s *rssSampler) sample() {
	if v, err := readRSS(s.pid); err == nil && v > s.max.Load() {
		s.max.Store(v) // only the sampler goroutine and its starter write
	}
}

// Stop ends sampling and returns the maximum seen (0 when disabled).
func (s *rssSampler) Stop() int64 {
	select {
	case <-s.stop:
	default:
		close(s.stop)
	}
	s.wg.Wait()
	s.sample()
	return s.max.Load()
}
