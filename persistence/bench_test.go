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

// BenchmarkReadForkChain reads a stream of 32 MiB, in 1 MiB chunks as
// catch-up readers do, laid out as one unforked stream or as the end of a
// fork chain of depth 50 (each of the 50 streams holding an equal part of
// the range, the way a chain of forks each appending to their own part
// does). The chain costs one more iterator per segment crossed.
func BenchmarkReadForkChain(b *testing.B) {
	const size, rec, chunk = 32 << 20, 16 << 10, 1 << 20
	for _, depth := range []int{0, 50} {
		b.Run(fmt.Sprintf("depth=%d", depth), func(b *testing.B) {
			forEachFSBench(b, func(b *testing.B, h *harness) {
				s := h.open()
				rng := rand.New(rand.NewPCG(3, 3))
				data := randBytes(rng, rec)
				streams := depth + 1
				var l Layout
				for i := range streams {
					id := allocate(b, s)
					from, to := uint64(i*size/streams), uint64((i+1)*size/streams)
					// Written 1 MiB to a batch, the same for either layout.
					for lo := from; lo < to; lo += 1 << 20 {
						batch := s.NewBatch()
						for pos := lo; pos < min(lo+1<<20, to); pos += rec {
							if err := batch.Append(id, pos, data[:min(rec, to-pos)]); err != nil {
								b.Fatal(err)
							}
						}
						if err := batch.Commit(); err != nil {
							b.Fatal(err)
						}
						batch.Close()
					}
					if i < streams-1 {
						l.Chain = append(l.Chain, Segment{ID: id, End: to})
					} else {
						l.ID = id
					}
				}
				// Both read from sstables, not the memtable.
				if err := s.db.Flush(); err != nil {
					b.Fatal(err)
				}
				buf := make([]byte, 0, chunk)
				b.SetBytes(size)
				b.ReportAllocs()
				for b.Loop() {
					for pos := uint64(0); pos < size; pos += chunk {
						out, err := s.AppendBytesLayout(buf[:0], l, pos, size, chunk)
						if err != nil || len(out) != chunk {
							b.Fatalf("read at %d: %d bytes, %v", pos, len(out), err)
						}
					}
				}
			})
		})
	}
}
