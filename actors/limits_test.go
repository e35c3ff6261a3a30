package actors

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

// wantLimit checks that err is a LimitError for limit.
func wantLimit(t *testing.T, err error, limit string, server bool) {
	t.Helper()
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != limit || le.Server != server || !errors.Is(err, ErrLimit) {
		t.Fatalf("err = %v; want a LimitError for %s (server %v)", err, limit, server)
	}
}

// TestPendingAppendsBound: a stream accepts at most MaxPendingAppends
// appends it has not yet committed; more are refused at once (nothing
// written), and accepted ones are all committed.
func TestPendingAppendsBound(t *testing.T) {
	const bound, sent = 4, 12
	e, ss := newSlowEnv(t, func(c *Config) { c.MaxPendingAppends = bound })
	e.createText("/s")
	ss.hold()
	answers := e.appendAsync("/s", sent)
	ss.awaitSync(t) // one commit is in flight and held
	refused := 0
	for range sent - bound {
		a := recv(t, answers, "a refused append")
		wantLimit(t, a.err, LimitPendingAppends, false)
		refused++
	}
	ss.release()
	var acked []string
	for range bound {
		a := recv(t, answers, "an accepted append")
		if a.err != nil {
			t.Fatalf("accepted append failed: %v", a.err)
		}
		acked = append(acked, a.payload)
	}
	data, _ := e.readAll("/s")
	for _, p := range acked {
		if strings.Count(string(data), p) != 1 {
			t.Errorf("acknowledged %s appears %d times in %q", p, strings.Count(string(data), p), data)
		}
	}
	if len(data) != len(strings.Join(acked, "")) {
		t.Errorf("stream holds %q; want exactly the %d acknowledged appends", data, bound)
	}
	// Room again once committed.
	e.appendText("/s", "after")
}

// TestLiveReadersBound: waiting long-polls and open SSE responses
// (LiveSlot) of a stream count against MaxLiveReadersPerStream, all of
// them against MaxLiveReaders; a reader that leaves frees its slot.
func TestLiveReadersBound(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.MaxLiveReadersPerStream = 2
		c.MaxLiveReaders = 3
	})
	e.createText("/a", "x")
	e.createText("/b", "x")
	slot, err := e.s.OpenLive(opCtx(t), "/a")
	if err != nil {
		t.Fatal(err)
	}
	w1 := e.waitAsync(opCtx(t), "/a", 1)
	waitersParked(t, 1)
	_, err = e.s.Wait(opCtx(t), "/a", 1, time.Minute, nil)
	wantLimit(t, err, LimitLiveReadersOfStream, false)
	_, err = e.s.OpenLive(opCtx(t), "/a")
	wantLimit(t, err, LimitLiveReadersOfStream, false)
	w2 := e.waitAsync(opCtx(t), "/b", 1)
	waitersParked(t, 2)
	_, err = e.s.Wait(opCtx(t), "/b", 1, time.Minute, nil)
	wantLimit(t, err, LimitLiveReaders, true)
	_, err = e.s.OpenLive(opCtx(t), "/b")
	wantLimit(t, err, LimitLiveReaders, true)

	slot.Close()
	slot.Close() // a second Close changes nothing
	if slot, err = e.s.OpenLive(opCtx(t), "/a"); err != nil {
		t.Fatalf("slot after one was given back: %v", err)
	}
	e.appendText("/a", "y")
	e.appendText("/b", "z")
	for _, w := range []<-chan asyncWait{w1, w2} {
		if got := recv(t, w, "waiter"); got.err != nil {
			t.Fatalf("waiter: %v", got.err)
		}
	}
	slot.Close()
	if n := e.s.liveReaders.Load(); n != 0 {
		t.Fatalf("%d live readers counted after all left", n)
	}
}

// TestSubscriberByteBudget: deltas a subscriber has received and not yet
// written out count against SubscriberBufferBytes; past it the subscriber
// is dropped (to catch up from storage), while one that keeps up is not.
func TestSubscriberByteBudget(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.SubscriberBufferBytes = 1000 })
	e.createText("/s")
	slow, err := e.s.Subscribe(opCtx(t), "/s", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Close()
	fast, err := e.s.Subscribe(opCtx(t), "/s", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer fast.Close()
	chunk := strings.Repeat("b", 600)
	for i := range 3 {
		e.appendText("/s", chunk)
		d := recv(t, fast.C, fmt.Sprintf("delta %d for the subscriber that keeps up", i))
		fast.Done(d)
	}
	// The slow one got the first 600 bytes; the second would make 1200.
	if d, ok := <-slow.C; !ok || d.End != 600 {
		t.Fatalf("slow subscriber's first delta = %+v, %v; want [0, 600)", d, ok)
	}
	if d, ok := <-slow.C; ok {
		t.Fatalf("slow subscriber got %+v past its byte budget; want it dropped", d)
	}
	// A single delta larger than the budget still reaches a subscriber
	// with nothing queued.
	e.appendText("/s", strings.Repeat("c", 1500))
	if d := recv(t, fast.C, "an oversized delta"); d.End-d.Start != 1500 {
		t.Fatalf("oversized delta = [%d, %d)", d.Start, d.End)
	}
}

// TestProducerBoundAcrossRestart: a new producer on a stream at its
// producer bound is refused while every known producer is recent; once
// one has been idle for ProducerTTL it is forgotten to make room, durably:
// after a restart the forgotten producer starts over as new.
func TestProducerBoundAcrossRestart(t *testing.T) {
	clock := newFakeClock()
	e := newEnv(t, func(c *Config) {
		c.MaxProducers = 2
		c.ProducerTTL = time.Hour
		c.Now = clock.Now
	})
	e.createText("/s")
	write := func(id string, seq uint64) (Result, error) {
		return e.s.Append(opCtx(t), "/s", AppendRequest{ContentType: ctText, Records: recs(id), Producer: producer(id, 0, seq)})
	}
	for _, id := range []string{"old", "busy"} {
		if _, err := write(id, 0); err != nil {
			t.Fatal(err)
		}
	}
	_, err := write("new", 0)
	wantLimit(t, err, LimitProducers, false)
	clock.Advance(50 * time.Minute)
	if _, err := write("busy", 1); err != nil { // busy stays recent
		t.Fatal(err)
	}
	clock.Advance(20 * time.Minute) // old idle 70 minutes, busy 20
	if _, err := write("new", 0); err != nil {
		t.Fatalf("new producer once old was idle past the TTL: %v", err)
	}
	e.restart()
	if _, err := write("busy", 2); err != nil {
		t.Fatalf("busy after restart: %v", err)
	}
	if _, err := write("old", 1); !errors.Is(err, ErrSeqGap) {
		t.Fatalf("forgotten producer at seq 1 after restart: %v; want a gap (it is new again)", err)
	}
	clock.Advance(2 * time.Hour)
	if r, err := write("old", 0); err != nil || r.Outcome != Appended {
		t.Fatalf("forgotten producer starting over: %+v, %v", r, err)
	}
}
