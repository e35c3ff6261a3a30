//go:build linux

package persistence

import (
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
)

// BenchmarkFdatasync measures the disk under streamd's WAL, without Pebble:
// a 1,400-byte write (an fsync's worth of appends at 16 writers) then
// fdatasync, in a loop, on 1 or 4 files at once. "grow" appends to a new
// file, as a fresh WAL does; "overwrite" rewrites blocks already written,
// as a recycled WAL does. cpu-µs/op is the process's CPU (user+system) per
// sync: on a virtual disk a sync costs CPU, not only waiting.
func BenchmarkFdatasync(b *testing.B) {
	for _, mode := range []string{"grow", "overwrite"} {
		for _, files := range []int{1, 4} {
			b.Run(fmt.Sprintf("%s/files=%d", mode, files), func(b *testing.B) {
				benchFdatasync(b, mode == "overwrite", files)
			})
		}
	}
}

func benchFdatasync(b *testing.B, overwrite bool, files int) {
	dir := b.TempDir()
	fs := make([]*os.File, files)
	for i := range fs {
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("log-%d", i)))
		if err != nil {
			b.Fatal(err)
		}
		defer f.Close()
		if overwrite {
			if _, err := f.Write(make([]byte, 64<<20)); err != nil {
				b.Fatal(err)
			}
			if err := f.Sync(); err != nil {
				b.Fatal(err)
			}
			if _, err := f.Seek(0, 0); err != nil {
				b.Fatal(err)
			}
		}
		fs[i] = f
	}
	rec := make([]byte, 1400)
	cpu0 := processCPU()
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N/files + 1
	for _, f := range fs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range per {
				if _, err := f.Write(rec); err != nil {
					b.Error(err)
					return
				}
				if err := syscall.Fdatasync(int(f.Fd())); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.StopTimer()
	syncs := float64(per * files)
	b.ReportMetric(float64(processCPU()-cpu0)/1e3/syncs, "cpu-µs/op")
	b.ReportMetric(syncs/b.Elapsed().Seconds(), "syncs/s")
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
