package persistence

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// forEachFSBench is forEachFS for benchmarks: disk numbers include fsync,
// memory numbers show streamd's own overhead.
func forEachFSBench(b *testing.B, body func(b *testing.B, h *harness)) {
	for _, kind := range fsKinds {
		b.Run(kind, func(b *testing.B) {
			body(b, newHarness(b, optionsFor(b, kind)))
		})
	}
}

func BenchmarkBatchCommit(b *testing.B) {
	for _, n := range []int{1, 16} {
		b.Run(fmt.Sprintf("records=%d", n), func(b *testing.B) {
			forEachFSBench(b, func(b *testing.B, h *harness) {
				s := h.open()
				id := allocate(b, s)
				rec := randBytes(rand.New(rand.NewPCG(1, 1)), 256)
				meta := &Meta{ID: id, ContentType: "application/octet-stream"}
				pos := uint64(0)
				b.SetBytes(int64(n * len(rec)))
				b.ReportAllocs()
				for b.Loop() {
					batch := s.NewBatch()
					for range n {
						if err := batch.Append(id, pos, rec); err != nil {
							b.Fatal(err)
						}
						pos += uint64(len(rec))
					}
					if err := batch.PutMeta("bench", meta); err != nil {
						b.Fatal(err)
					}
					if err := batch.Commit(); err != nil {
						b.Fatal(err)
					}
					batch.Close()
				}
			})
		})
	}
}

func BenchmarkReadBytes1MiB(b *testing.B) {
	const size = 1 << 20
	forEachFSBench(b, func(b *testing.B, h *harness) {
		s := h.open()
		id := allocate(b, s)
		rng := rand.New(rand.NewPCG(2, 2))
		// 4 KiB records written 16 to a batch, like a busy stream's log.
		tail := uint64(0)
		for tail < size+4096 {
			recs := make([][]byte, 16)
			for i := range recs {
				recs[i] = randBytes(rng, 4096)
			}
			tail = appendRecords(b, s, id, tail, recs...)
		}
		b.SetBytes(size)
		b.ReportAllocs()
		for b.Loop() {
			// Start mid-record so the first and last records are split.
			got, err := s.ReadBytes(id, 100, 100+size, size)
			if err != nil {
				b.Fatal(err)
			}
			if len(got) != size {
				b.Fatalf("read %d bytes", len(got))
			}
		}
	})
}
