package actors

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamd/streamd/persistence"
)

// BenchmarkAppend is one append round trip on one stream: mailbox, batch,
// synced commit (in-memory FS), reply.
func BenchmarkAppend(b *testing.B) {
	e := newEnv(b)
	e.createText("/s")
	ctx := context.Background()
	req := AppendRequest{ContentType: ctText, Records: [][]byte{bytes.Repeat([]byte("x"), 64)}}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.s.Append(ctx, "/s", req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendParallel has concurrent writers on one stream share
// commits.
func BenchmarkAppendParallel(b *testing.B) {
	e := newEnv(b)
	e.createText("/s")
	ctx := context.Background()
	req := AppendRequest{ContentType: ctText, Records: [][]byte{bytes.Repeat([]byte("x"), 64)}}
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := e.s.Append(ctx, "/s", req); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkWaitFanOut parks n long-poll waiters (Streams.Wait) at the tail
// and wakes them all with one append.
func BenchmarkWaitFanOut(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("waiters=%d", n), func(b *testing.B) {
			var parked atomic.Int64
			e := newEnv(b, func(c *Config) { c.onPark = func() { parked.Add(1) } })
			r := e.createText("/s")
			tail := r.NextOffset
			ctx := context.Background()
			req := AppendRequest{ContentType: ctText, Records: recs("x")}
			results := make(chan *Delta, n)
			b.ReportAllocs()
			for b.Loop() {
				for range n {
					go func(from uint64) {
						d, err := e.s.Wait(ctx, "/s", from, time.Minute, nil)
						if err != nil {
							b.Error(err)
						}
						results <- d
					}(tail)
				}
				for parked.Load() < int64(n) {
					runtime.Gosched()
				}
				parked.Store(0)
				ar, err := e.s.Append(ctx, "/s", req)
				if err != nil {
					b.Fatal(err)
				}
				for range n {
					if d := <-results; d == nil || d.End != ar.NextOffset {
						b.Fatalf("waiter got %+v, want data up to %d", d, ar.NextOffset)
					}
				}
				tail = ar.NextOffset
			}
		})
	}
}

// ssePayloads are the 256-byte appends of the SSE encoding benchmarks:
// text (16 lines) and binary (base64-encoded for SSE).
func ssePayloads() []struct {
	name    string
	payload []byte
	textual bool
} {
	bin := make([]byte, 256)
	for i := range bin {
		bin[i] = byte(i)
	}
	return []struct {
		name    string
		payload []byte
		textual bool
	}{{"text256", bytes.Repeat([]byte("0123456789abcde\n"), 16), true}, {"binary256", bin, false}}
}

func BenchmarkDeltaSSEData(b *testing.B) {
	for _, tc := range ssePayloads() {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.payload)))
			for b.Loop() {
				// A fresh delta per op: the encoding is computed once per delta.
				d := &Delta{Records: [][]byte{tc.payload}}
				if len(d.SSEData(tc.textual)) == 0 {
					b.Fatal("empty encoding")
				}
			}
		})
	}
}

func BenchmarkAppendSSEData(b *testing.B) {
	for _, tc := range ssePayloads() {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(tc.payload)))
			buf := make([]byte, 0, 1024)
			for b.Loop() {
				// Reusing dst, as the SSE handler does with its buffer.
				buf = AppendSSEData(buf[:0], tc.payload, tc.textual)
			}
		})
	}
}

// BenchmarkAppendManyStreams appends to uniformly random streams of a node
// holding n of them, with 16 concurrent writers. With many streams nearly
// every append reaches a passivated stream: the supervisor spawns its
// actor, which loads the metadata from Pebble before appending. The
// streams are written to the store directly (setup, not measured).
func BenchmarkAppendManyStreams(b *testing.B) {
	for _, n := range []int{1_000, 100_000, 1_000_000} {
		b.Run(fmt.Sprintf("streams=%d", n), func(b *testing.B) {
			e := newEnv(b)
			populate(b, e.st, n)
			ctx := context.Background()
			body := bytes.Repeat([]byte("x"), 256)
			var seed atomic.Uint64
			b.ReportAllocs()
			b.SetParallelism(8) // 16 writers on 2 cores
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				rng := rand.New(rand.NewPCG(seed.Add(1), 7))
				for pb.Next() {
					path := fmt.Sprintf("/many/%d", rng.IntN(n))
					req := AppendRequest{ContentType: ctText, Records: [][]byte{body}}
					if _, err := e.s.Append(ctx, path, req); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(e.s.Stats().Live), "live-actors")
		})
	}
}

// populate writes n text streams /many/0 … /many/n-1, each holding 256
// bytes, straight into the store.
func populate(b *testing.B, st *persistence.Store, n int) {
	b.Helper()
	body := bytes.Repeat([]byte("y"), 256)
	now := time.Now()
	for start := 0; start < n; start += 10_000 {
		batch := st.NewBatch()
		for i := start; i < min(n, start+10_000); i++ {
			id, err := st.AllocateID()
			if err != nil {
				b.Fatal(err)
			}
			m := persistence.Meta{ID: id, ContentType: ctText, CreatedAt: now, NoProducers: true}
			if err := batch.PutMeta(fmt.Sprintf("/many/%d", i), &m); err != nil {
				b.Fatal(err)
			}
			if err := batch.Append(id, 0, body); err != nil {
				b.Fatal(err)
			}
		}
		if err := batch.Commit(); err != nil {
			b.Fatal(err)
		}
		batch.Close()
	}
}

// BenchmarkFork creates forks of a 128 MiB and of a 1 GiB stream (both
// flushed from Pebble's memtable), at the tail and 3 bytes into the last
// record (a sub-offset: that record is looked up). A fork writes its
// metadata and a reference key, whatever its source's size.
func BenchmarkFork(b *testing.B) {
	n := 0 // fork paths stay unique across the framework's repeated runs
	for _, mib := range []int{128, 1024} {
		e := newEnv(b)
		e.createText("/src")
		rec := bytes.Repeat([]byte("x"), 1<<20)
		for range mib {
			e.append("/src", AppendRequest{ContentType: ctText, Records: [][]byte{rec}})
		}
		last := uint64(mib-1) << 20
		time.Sleep(3 * time.Second) // let Pebble's flushes of the source finish
		for _, at := range []struct {
			name string
			req  ForkRequest
		}{
			{"tail", ForkRequest{Source: "/src", AtTail: true}},
			{"sub-offset", ForkRequest{Source: "/src", Offset: last, SubOffset: 3}},
		} {
			b.Run(fmt.Sprintf("source=%dMiB/at=%s", mib, at.name), func(b *testing.B) {
				ctx := context.Background()
				b.ReportAllocs()
				for b.Loop() {
					n++
					if _, err := e.s.Fork(ctx, fmt.Sprintf("/fork/%s/%d", at.name, n), at.req); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
