package actors

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func TestWaitWakesOnAppend(t *testing.T) {
	e := newEnv(t)
	e.createText("/s", "abc")
	w := e.waitAsync(opCtx(t), "/s", 3)
	waitersParked(t, 1)
	select {
	case r := <-w:
		t.Fatalf("Wait returned before any append: %+v", r)
	case <-time.After(20 * time.Millisecond):
	}
	r := e.appendText("/s", "de", "f")
	got := recv(t, w, "wait")
	if got.err != nil {
		t.Fatalf("Wait: %v", got.err)
	}
	d := got.d
	if d.Start != 3 || d.End != r.NextOffset || d.End != 6 || d.Closed || d.Deleted || d.JSON {
		t.Fatalf("delta = %+v, want [3, 6) open", d)
	}
	if string(d.Body()) != "def" {
		t.Fatalf("delta body = %q, want %q", d.Body(), "def")
	}
}

func TestWaitJSONDeltaIsArray(t *testing.T) {
	e := newEnv(t)
	e.create("/j", CreateRequest{ContentType: ctJSON, Records: recs(`{"a":1}`)})
	w := e.waitAsync(opCtx(t), "/j", 7)
	waitersParked(t, 1)
	e.append("/j", AppendRequest{ContentType: ctJSON, Records: recs(`{"b":2}`, `[3]`)})
	got := recv(t, w, "wait")
	if got.err != nil || !got.d.JSON {
		t.Fatalf("Wait: %+v", got)
	}
	if string(got.d.Body()) != `[{"b":2},[3]]` {
		t.Fatalf("JSON delta body = %s", got.d.Body())
	}
	if got.d.Start != 7 || got.d.End != 7+7+3 {
		t.Fatalf("delta range [%d, %d)", got.d.Start, got.d.End)
	}
}

func TestWaitDeltaCoversWholeBatch(t *testing.T) {
	// Appends committed together wake a waiter once with all their records.
	e := newEnv(t)
	e.createText("/s")
	w := e.waitAsync(opCtx(t), "/s", 0)
	waitersParked(t, 1)
	a := e.sendAppend("/s", AppendRequest{ContentType: ctText, Records: recs("a")})
	b := e.sendAppend("/s", AppendRequest{ContentType: ctText, Records: recs("bc")})
	recv(t, a, "append a")
	rb := recv(t, b, "append b")
	got := recv(t, w, "wait")
	if got.err != nil || got.d.Start != 0 {
		t.Fatalf("Wait: %+v", got)
	}
	// The first commit may hold "a" alone or both appends.
	switch string(got.d.Body()) {
	case "a":
		if got.d.End != 1 {
			t.Fatalf("delta %+v", got.d)
		}
	case "abc":
		if got.d.End != rb.NextOffset {
			t.Fatalf("delta %+v", got.d)
		}
	default:
		t.Fatalf("delta body %q", got.d.Body())
	}
}

func TestWaitFanOutSharesOneDelta(t *testing.T) {
	e := newEnv(t)
	e.createText("/s", "x")
	const n = 1000
	results := make([]asyncWait, n)
	var wg sync.WaitGroup
	ctx := opCtx(t)
	for i := range n {
		wg.Go(func() {
			d, err := e.s.Wait(ctx, "/s", 1, time.Minute, nil)
			results[i] = asyncWait{d, err}
		})
	}
	waitersParked(t, n)
	r := e.appendText("/s", "payload")
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	recv(t, done, "all waiters")
	first := results[0].d
	if first == nil {
		t.Fatalf("waiter 0: %v", results[0].err)
	}
	for i, res := range results {
		if res.err != nil {
			t.Fatalf("waiter %d: %v", i, res.err)
		}
		if res.d != first {
			t.Fatalf("waiter %d got delta %p, waiter 0 got %p: deltas must be shared", i, res.d, first)
		}
	}
	if first.Start != 1 || first.End != r.NextOffset || string(first.Body()) != "payload" {
		t.Fatalf("delta = %+v body %q", first, first.Body())
	}
}

func TestWaitOffsetChecks(t *testing.T) {
	e := newEnv(t)
	e.createText("/s", "abcd")
	tests := []struct {
		name string
		path string
		from uint64
		want error
	}{
		{"behind tail", "/s", 0, ErrBehind},
		{"one behind", "/s", 3, ErrBehind},
		{"beyond tail", "/s", 5, ErrOffsetBeyondTail},
		{"far beyond", "/s", 1 << 40, ErrOffsetBeyondTail},
		{"missing stream", "/nope", 0, ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d, err := e.s.Wait(opCtx(t), tc.path, tc.from, time.Minute, nil)
			if !errors.Is(err, tc.want) || d != nil {
				t.Fatalf("Wait(%s, %d) = %+v, %v; want %v", tc.path, tc.from, d, err, tc.want)
			}
		})
	}
}

func TestWaitOnClosedStreamReturnsAtOnce(t *testing.T) {
	e := newEnv(t)
	e.create("/s", CreateRequest{ContentType: ctJSON, Records: recs(`1`), Closed: true})
	d, err := e.s.Wait(opCtx(t), "/s", 1, time.Minute, nil)
	if err != nil || d == nil || !d.Closed || d.Start != 1 || d.End != 1 || d.Deleted || !d.JSON {
		t.Fatalf("Wait on closed stream = %+v, %v; want closed delta at 1", d, err)
	}
	if len(d.Body()) != 2 || string(d.Body()) != "[]" {
		t.Fatalf("closed JSON delta body = %q, want []", d.Body())
	}
}

func TestWaitWokenByClose(t *testing.T) {
	e := newEnv(t)
	e.createText("/s", "ab")
	w := e.waitAsync(opCtx(t), "/s", 2)
	waitersParked(t, 1)
	e.append("/s", AppendRequest{Close: true})
	got := recv(t, w, "wait")
	if got.err != nil || !got.d.Closed || got.d.Start != 2 || got.d.End != 2 || len(got.d.Body()) != 0 {
		t.Fatalf("Wait woken by close-only = %+v, %v", got.d, got.err)
	}

	// Append-and-close wakes with the data and the closure together.
	e.createText("/t")
	w = e.waitAsync(opCtx(t), "/t", 0)
	waitersParked(t, 1)
	e.append("/t", AppendRequest{ContentType: ctText, Records: recs("end"), Close: true})
	got = recv(t, w, "wait")
	if got.err != nil || !got.d.Closed || got.d.Start != 0 || got.d.End != 3 || string(got.d.Body()) != "end" {
		t.Fatalf("Wait woken by append-and-close = %+v, %v", got.d, got.err)
	}
}

func TestWaitWokenByDelete(t *testing.T) {
	e := newEnv(t)
	e.createText("/s", "ab")
	const n = 3
	ws := make([]<-chan asyncWait, n)
	for i := range ws {
		ws[i] = e.waitAsync(opCtx(t), "/s", 2)
	}
	waitersParked(t, n)
	if err := e.s.Delete(opCtx(t), "/s"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	for _, w := range ws {
		got := recv(t, w, "wait")
		if got.err != nil || got.d == nil || !got.d.Deleted {
			t.Fatalf("Wait across delete = %+v, %v; want Deleted delta", got.d, got.err)
		}
	}
}

func TestWaitNotWokenByIneffectiveWrites(t *testing.T) {
	// Producer duplicates, rejected appends and idempotent creates change
	// nothing a reader can see and must not end a long-poll.
	e := newEnv(t)
	e.createText("/s")
	e.append("/s", AppendRequest{ContentType: ctText, Records: recs("a"), Producer: producer("p", 0, 0)})
	w := e.waitAsync(opCtx(t), "/s", 1)
	waitersParked(t, 1)
	e.append("/s", AppendRequest{ContentType: ctText, Records: recs("a"), Producer: producer("p", 0, 0)})
	e.s.Append(opCtx(t), "/s", AppendRequest{ContentType: ctJSON, Records: recs("1")})
	e.createText("/s")
	select {
	case got := <-w:
		t.Fatalf("Wait woken by a write that changed nothing: %+v, %v", got.d, got.err)
	case <-time.After(50 * time.Millisecond):
	}
	e.appendText("/s", "b")
	if got := recv(t, w, "wait"); got.err != nil || string(got.d.Body()) != "b" {
		t.Fatalf("Wait = %+v, %v", got.d, got.err)
	}
}

func TestWaitCancelRemovesWaiter(t *testing.T) {
	// The waiter is cancelled well before the first idle timeout, so the
	// actor passivates then only if the cancellation removed the waiter
	// (a parked waiter keeps an actor alive).
	e := newEnv(t, func(c *Config) { c.IdleTimeout = 250 * time.Millisecond })
	e.createText("/s", "x")
	ctx, cancel := context.WithCancel(context.Background())
	w := e.waitAsync(ctx, "/s", 1)
	waitersParked(t, 1)
	h := e.handleOf("/s")
	cancel()
	if got := recv(t, w, "cancelled wait"); !errors.Is(got.err, context.Canceled) || got.d != nil {
		t.Fatalf("cancelled Wait = %+v, %v", got.d, got.err)
	}
	eventually(t, 3*time.Second, "stream actor to passivate after its waiter left", h.retired)
	// The stream is intact afterwards.
	if got, _ := e.readAll("/s"); string(got) != "x" {
		t.Fatalf("stream = %q", got)
	}
}

func TestWaitTimeoutThenAppendDoesNotDeliverToStaleWaiter(t *testing.T) {
	// A waiter that gave up (its timeout passed or its context ended) is
	// gone: a new Wait at the same offset receives the next delta, and
	// nothing blocks.
	cases := []struct {
		name    string
		ctx     time.Duration // context deadline
		timeout time.Duration // Wait's own timeout
		want    error
	}{
		{"wait timeout", time.Minute, 30 * time.Millisecond, ErrWaitTimeout},
		{"context deadline", 30 * time.Millisecond, time.Minute, context.DeadlineExceeded},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.createText("/s")
			ctx, cancel := context.WithTimeout(context.Background(), tc.ctx)
			defer cancel()
			if _, err := e.s.Wait(ctx, "/s", 0, tc.timeout, nil); !errors.Is(err, tc.want) {
				t.Fatalf("Wait = %v, want %v", err, tc.want)
			}
			w := e.waitAsync(opCtx(t), "/s", 0)
			waitersParked(t, 1)
			e.appendText("/s", "z")
			if got := recv(t, w, "wait"); got.err != nil || string(got.d.Body()) != "z" {
				t.Fatalf("Wait = %+v, %v", got.d, got.err)
			}
		})
	}
}

// TestWaitersFollowAppendsExactly: long-poll waiters re-parking at their
// new offset while a writer appends as fast as it can always get a delta
// that starts where they wait (or are told to read storage), never an
// empty or stale one, and together see every byte in order. Exercises the
// lock-free parking protocol at Streams.Wait under -race.
func TestWaitersFollowAppendsExactly(t *testing.T) {
	const waiters, appends = 16, 400
	e := newEnv(t)
	e.createText("/s")
	ctx := opCtx(t)
	var wg sync.WaitGroup
	errs := make(chan error, waiters)
	for range waiters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var from uint64
			for from < appends {
				d, err := e.s.Wait(ctx, "/s", from, time.Minute, nil)
				switch {
				case errors.Is(err, ErrBehind):
					// Data is durable already; a reader would read it from
					// storage. Skip to the published tail.
					_, snap := e.open("/s")
					from = snap.Tail
					continue
				case err != nil:
					errs <- err
					return
				case d.Start != from || d.End <= from || len(d.Body()) != int(d.End-d.Start):
					errs <- fmt.Errorf("waiter at %d got delta [%d, %d) with %d bytes", from, d.Start, d.End, len(d.Body()))
					return
				}
				from = d.End
			}
		}()
	}
	for range appends {
		e.appendText("/s", "x")
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestWaiterFollowsStreamAcrossIncarnations: a long-poll parked when its
// stream's actor retires (here: fails) is moved to the next incarnation and
// woken by the next append there, not left on the dead one until its own
// timeout. Should the append commit before the waiter has parked again,
// the waiter is told it is behind (ErrBehind: read from storage), which
// serves the same bytes.
func TestWaiterFollowsStreamAcrossIncarnations(t *testing.T) {
	e, armed := newEnvFailingOnce(t)
	e.createText("/s", "a")
	w := e.waitAsync(opCtx(t), "/s", 1) // Wait's own timeout is a minute
	waitersParked(t, 1)
	armed.Store(true)
	if _, err := e.s.Append(opCtx(t), "/s", AppendRequest{ContentType: ctText, Records: recs("x")}); !errors.Is(err, errActorFailed) {
		t.Fatalf("Append during the failure = %v, want errActorFailed", err)
	}
	r := e.appendText("/s", "b")
	got := recv(t, w, "the waiter after the actor failed")
	if errors.Is(got.err, ErrBehind) {
		if b, _ := e.readAll("/s"); string(b[1:]) != "b" {
			t.Fatalf("waiter told it is behind, but storage holds %q after offset 1", b[1:])
		}
		return
	}
	if got.err != nil || got.d.Start != 1 || got.d.End != r.NextOffset || string(got.d.Body()) != "b" {
		t.Fatalf("waiter got %+v (%v), want [1, %d) %q", got.d, got.err, r.NextOffset, "b")
	}
}

// TestWaitRightAfterCreate: a long-poll sent as soon as a create is
// answered parks on the new stream; it is not woken by the create's own
// commit (which ends the previous incarnation's waiters) and told the
// stream was deleted. Many creates race their waits to hit the window.
func TestWaitRightAfterCreate(t *testing.T) {
	const goroutines, each = 16, 25
	e := newEnv(t)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				path := fmt.Sprintf("/c/%d/%d", g, i)
				e.createText(path)
				d, err := e.s.Wait(opCtx(t), path, 0, 10*time.Millisecond, nil)
				if !errors.Is(err, ErrWaitTimeout) {
					errs <- fmt.Errorf("Wait right after creating %s = %+v, %v; want a timeout", path, d, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}
