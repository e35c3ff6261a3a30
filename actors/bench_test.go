package actors

import (
	"bytes"
	"context"
	"fmt"
	"testing"
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

// BenchmarkWaitFanOut parks n waiters at the tail and wakes them all with
// one append. Waiters are queued directly on the actor (as Streams.Wait
// does) so that every one is registered before the append arrives.
func BenchmarkWaitFanOut(b *testing.B) {
	for _, n := range []int{1, 100, 1000} {
		b.Run(fmt.Sprintf("waiters=%d", n), func(b *testing.B) {
			e := newEnv(b)
			r := e.createText("/s")
			tail := r.NextOffset
			h, _ := e.open("/s")
			ctx := context.Background()
			req := AppendRequest{ContentType: ctText, Records: recs("x")}
			chans := make([]chan waitResult, n)
			b.ReportAllocs()
			for b.Loop() {
				for i := range chans {
					chans[i] = make(chan waitResult, 1)
					if !h.send(e.s.root, &waitMsg{id: e.s.nextID.Add(1), from: tail, reply: chans[i]}) {
						b.Fatal("stream actor retired")
					}
				}
				ar, err := e.s.Append(ctx, "/s", req)
				if err != nil {
					b.Fatal(err)
				}
				for _, ch := range chans {
					if wr := <-ch; wr.err != nil || wr.delta.End != ar.NextOffset {
						b.Fatalf("waiter: %+v", wr)
					}
				}
				tail = ar.NextOffset
			}
		})
	}
}

func BenchmarkDeltaSSEData(b *testing.B) {
	text := bytes.Repeat([]byte("0123456789abcde\n"), 16) // 256 bytes, 16 lines
	bin := make([]byte, 256)
	for i := range bin {
		bin[i] = byte(i)
	}
	for _, tc := range []struct {
		name    string
		payload []byte
		textual bool
	}{{"text256", text, true}, {"binary256", bin, false}} {
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
	text := bytes.Repeat([]byte("0123456789abcde\n"), 16)
	bin := make([]byte, 256)
	for i := range bin {
		bin[i] = byte(i)
	}
	for _, tc := range []struct {
		name    string
		payload []byte
		textual bool
	}{{"text256", text, true}, {"binary256", bin, false}} {
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
