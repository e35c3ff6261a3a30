package actors

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// nextDelta reads one delta; ok is false once the channel is closed.
func nextDelta(t *testing.T, sub *Subscription) (*Delta, bool) {
	t.Helper()
	select {
	case d, ok := <-sub.C:
		return d, ok
	case <-time.After(opTimeout):
		t.Fatal("timed out waiting for a delta")
		return nil, false
	}
}

func TestSubscribeDeltasInOrderAndContiguous(t *testing.T) {
	e := newEnv(t)
	e.createText("/s", "start;")
	sub, err := e.s.Subscribe(opCtx(t), "/s", 6)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	defer sub.Close()

	const writers, perWriter = 8, 10
	var acks collector[ack]
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				p := fmt.Sprintf("%d.%d;", w, i)
				r, err := e.s.Append(opCtx(t), "/s", AppendRequest{ContentType: ctText, Records: recs(p)})
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				acks.add(ack{p, r.NextOffset})
			}
		})
	}
	wg.Wait()
	_, snap := e.open("/s")

	var got []byte
	pos := uint64(6)
	for pos < snap.Tail {
		d, ok := nextDelta(t, sub)
		if !ok {
			t.Fatalf("subscription closed at %d before the tail %d", pos, snap.Tail)
		}
		if d.Start != pos || d.End <= d.Start || uint64(len(d.Body())) != d.End-d.Start {
			t.Fatalf("delta [%d, %d) with %d bytes after position %d", d.Start, d.End, len(d.Body()), pos)
		}
		got = append(got, d.Body()...)
		pos = d.End
	}
	if pos != snap.Tail {
		t.Fatalf("deltas end at %d, tail is %d", pos, snap.Tail)
	}
	all, _ := e.readAll("/s")
	if !bytes.Equal(got, all[6:]) {
		t.Fatalf("deltas carry %q, stream holds %q", got, all[6:])
	}
	// Acks are stream offsets; the deltas start after the initial content.
	for i := range acks.all {
		acks.all[i].next -= 6
	}
	checkAcksMatchStream(t, got, acks.all)
}

func TestSubscribeSlowSubscriberDropped(t *testing.T) {
	const buf = 4
	e := newEnv(t, func(c *Config) { c.SubscriberBuffer = buf })
	e.createText("/s")
	slow, err := e.s.Subscribe(opCtx(t), "/s", 0)
	if err != nil {
		t.Fatalf("Subscribe slow: %v", err)
	}
	fast, err := e.s.Subscribe(opCtx(t), "/s", 0)
	if err != nil {
		t.Fatalf("Subscribe fast: %v", err)
	}
	defer fast.Close()

	// Each append is its own commit and its own delta; the fast subscriber
	// reads each before the next append, the slow one never reads.
	const total = 3 * buf
	for i := range total {
		r := e.appendText("/s", fmt.Sprintf("%02d", i))
		d, ok := nextDelta(t, fast)
		if !ok || d.End != r.NextOffset || string(d.Body()) != fmt.Sprintf("%02d", i) {
			t.Fatalf("fast subscriber, append %d: delta %+v ok=%v", i, d, ok)
		}
	}
	// The slow subscriber holds exactly the first buf deltas, then its
	// channel is closed: it must catch up from storage.
	for i := range buf {
		d, ok := nextDelta(t, slow)
		if !ok || string(d.Body()) != fmt.Sprintf("%02d", i) {
			t.Fatalf("slow subscriber delta %d = %+v ok=%v", i, d, ok)
		}
	}
	if d, ok := nextDelta(t, slow); ok {
		t.Fatalf("slow subscriber still open after overflow, got %+v", d)
	}
	slow.Close() // harmless after the actor dropped it
	// The fast subscriber is unaffected.
	r := e.appendText("/s", "zz")
	if d, ok := nextDelta(t, fast); !ok || d.End != r.NextOffset {
		t.Fatalf("fast subscriber after drop: %+v ok=%v", d, ok)
	}
}

func TestSubscriptionCloseUnregisters(t *testing.T) {
	e := newEnv(t)
	e.createText("/s")
	sub, err := e.s.Subscribe(opCtx(t), "/s", 0)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	other, err := e.s.Subscribe(opCtx(t), "/s", 0)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	defer other.Close()
	sub.Close()
	if d, ok := nextDelta(t, sub); ok {
		t.Fatalf("closed subscription delivered %+v", d)
	}
	e.appendText("/s", "a")
	if d, ok := nextDelta(t, other); !ok || string(d.Body()) != "a" {
		t.Fatalf("other subscriber: %+v ok=%v", d, ok)
	}
	sub.Close() // closing twice is harmless
}

func TestSubscriptionCloseAllowsPassivation(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.IdleTimeout = 250 * time.Millisecond })
	e.createText("/s")
	sub, err := e.s.Subscribe(opCtx(t), "/s", 0)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	h := e.handleOf("/s")
	sub.Close()
	eventually(t, 3*time.Second, "stream actor to passivate after its subscriber left", h.retired)
	if _, ok := <-sub.C; ok {
		t.Fatal("subscription channel open after Close")
	}
}

func TestSubscribeOffsetChecks(t *testing.T) {
	e := newEnv(t)
	e.createText("/s", "abc")
	e.create("/closed", CreateRequest{ContentType: ctText, Records: recs("x"), Closed: true})
	tests := []struct {
		path string
		from uint64
		want error
	}{
		{"/s", 0, ErrBehind},
		{"/s", 2, ErrBehind},
		{"/s", 4, ErrOffsetBeyondTail},
		{"/nope", 0, ErrNotFound},
		// A closed stream has nothing live to offer: readers finish from storage.
		{"/closed", 1, ErrBehind},
	}
	for _, tc := range tests {
		sub, err := e.s.Subscribe(opCtx(t), tc.path, tc.from)
		if !errors.Is(err, tc.want) || sub != nil {
			t.Errorf("Subscribe(%s, %d) = %v, %v; want %v", tc.path, tc.from, sub, err, tc.want)
		}
	}
}

func TestSubscriptionEndsOnCloseAndDelete(t *testing.T) {
	e := newEnv(t)
	e.createText("/s", "a")
	sub, err := e.s.Subscribe(opCtx(t), "/s", 1)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	e.append("/s", AppendRequest{ContentType: ctText, Records: recs("b"), Close: true})
	d, ok := nextDelta(t, sub)
	if !ok || !d.Closed || string(d.Body()) != "b" || d.Start != 1 || d.End != 2 {
		t.Fatalf("closing delta = %+v ok=%v", d, ok)
	}
	if d, ok := nextDelta(t, sub); ok {
		t.Fatalf("subscription open after the stream closed: %+v", d)
	}

	e.createText("/t")
	sub, err = e.s.Subscribe(opCtx(t), "/t", 0)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	if err := e.s.Delete(opCtx(t), "/t"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	d, ok = nextDelta(t, sub)
	if !ok || !d.Deleted {
		t.Fatalf("delete delta = %+v ok=%v", d, ok)
	}
	if d, ok := nextDelta(t, sub); ok {
		t.Fatalf("subscription open after the stream was deleted: %+v", d)
	}
}

func TestWaitersAndSubscribersShareDelta(t *testing.T) {
	e := newEnv(t)
	e.createText("/s")
	sub, err := e.s.Subscribe(opCtx(t), "/s", 0)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	defer sub.Close()
	w := e.waitAsync(opCtx(t), "/s", 0)
	waitersParked(t, 1)
	e.appendText("/s", "q")
	got := recv(t, w, "wait")
	d, ok := nextDelta(t, sub)
	if got.err != nil || !ok || d != got.d {
		t.Fatalf("waiter got %p (%v), subscriber %p: one commit must yield one shared delta", got.d, got.err, d)
	}
}
