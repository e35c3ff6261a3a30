package actors

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamd/streamd/protocol"
)

func TestPassivationKeepsState(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.IdleTimeout = 50 * time.Millisecond })
	e.create("/s", CreateRequest{ContentType: ctJSON, Records: recs(`1`), Expiry: protocol.Expiry{HasTTL: true, TTL: time.Hour}})
	e.append("/s", AppendRequest{ContentType: ctJSON, Records: recs(`2`), Seq: "b", Producer: producer("p", 1, 0)})
	e.append("/s", AppendRequest{ContentType: ctJSON, Records: recs(`3`), Producer: producer("p", 1, 1), Close: true})
	e.create("/t", CreateRequest{ContentType: ctText})
	e.append("/t", AppendRequest{ContentType: ctText, Records: recs("x"), Seq: "b", Producer: producer("q", 2, 0)})

	h, before := e.open("/s")
	ht, beforeT := e.open("/t")
	eventually(t, opTimeout, "actors to passivate", func() bool { return h.retired() && ht.retired() })

	h2, after := e.open("/s")
	if h2 == h || h2.retired() {
		t.Fatal("Open after passivation did not respawn the actor")
	}
	if !reflect.DeepEqual(*after, *before) {
		t.Fatalf("snapshot after respawn %+v, before %+v", after, before)
	}
	_, afterT := e.open("/t")
	if !reflect.DeepEqual(*afterT, *beforeT) {
		t.Fatalf("snapshot after respawn %+v, before %+v", afterT, beforeT)
	}
	// Closure, ClosedBy, Stream-Seq and producer state were reloaded.
	if r := e.append("/s", AppendRequest{ContentType: ctJSON, Records: recs(`3`), Producer: producer("p", 1, 1), Close: true}); r.Outcome != Duplicate || !r.Closed {
		t.Fatalf("retry of the closing request after respawn = %+v", r)
	}
	if r := e.append("/t", AppendRequest{ContentType: ctText, Records: recs("x"), Producer: producer("q", 2, 0)}); r.Outcome != Duplicate {
		t.Fatalf("producer retry after respawn = %+v", r)
	}
	if _, err := e.s.Append(opCtx(t), "/t", AppendRequest{ContentType: ctText, Records: recs("y"), Producer: producer("q", 1, 0)}); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("stale epoch after respawn: %v", err)
	}
	if _, err := e.s.Append(opCtx(t), "/t", AppendRequest{ContentType: ctText, Records: recs("y"), Seq: "a"}); !errors.Is(err, ErrSeqRegression) {
		t.Fatalf("Stream-Seq after respawn: %v", err)
	}
	if r := e.appendText("/t", "z"); r.NextOffset != 2 {
		t.Fatalf("append after respawn = %+v", r)
	}
}

// TestIdleTimeoutsDuringLoad keeps an actor busy (a live subscriber) with
// the shortest idle timeout while appends stream in, so idle timeouts keep
// firing between and during messages. Nothing may be lost or reordered,
// and under -race the idle timer must not race the actor's mailbox.
func TestIdleTimeoutsDuringLoad(t *testing.T) {
	e := newEnv(t, func(c *Config) {
		c.IdleTimeout = time.Millisecond
		c.SubscriberBuffer = 1 << 16 // read only at the end
	})
	e.createText("/s")
	sub, err := e.s.Subscribe(opCtx(t), "/s", 0)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	defer sub.Close()
	h := e.handleOf("/s")
	var want []byte
	deadline := time.Now().Add(300 * time.Millisecond)
	for i := 0; time.Now().Before(deadline); i++ {
		p := fmt.Sprintf("%d;", i)
		r := e.appendText("/s", p)
		want = append(want, p...)
		if r.NextOffset != uint64(len(want)) {
			t.Fatalf("append %d acknowledged at %d, want %d", i, r.NextOffset, len(want))
		}
		if i%8 == 0 {
			time.Sleep(time.Millisecond) // let idle timeouts fire
		}
	}
	var got []byte
	for uint64(len(got)) < uint64(len(want)) {
		d, ok := nextDelta(t, sub)
		if !ok {
			t.Fatalf("subscription dropped after %d of %d bytes", len(got), len(want))
		}
		got = append(got, d.Body()...)
	}
	if string(got) != string(want) {
		t.Fatalf("subscriber got %q, want %q", got, want)
	}
	if h.retired() {
		t.Fatal("actor passivated with a live subscriber")
	}
}

func TestPassivatesAfterBusyIdleTimeout(t *testing.T) {
	// An actor that is busy (a parked waiter, a live subscriber) when its
	// idle timeout fires must passivate once it becomes idle later;
	// otherwise every stream ever long-polled stays in memory for good.
	tests := []struct {
		name string
		hold func(t *testing.T, e *env) (release func())
	}{
		{"waiter", func(t *testing.T, e *env) func() {
			ctx, cancel := context.WithCancel(context.Background())
			w := e.waitAsync(ctx, "/s", 1)
			waitersParked(t, 1)
			return func() {
				cancel()
				recv(t, w, "cancelled wait")
			}
		}},
		{"subscriber", func(t *testing.T, e *env) func() {
			sub, err := e.s.Subscribe(opCtx(t), "/s", 1)
			if err != nil {
				t.Fatalf("Subscribe: %v", err)
			}
			return sub.Close
		}},
		{"waiter woken by append", func(t *testing.T, e *env) func() {
			w := e.waitAsync(opCtx(t), "/s", 1)
			waitersParked(t, 1)
			return func() {
				e.appendText("/s", "y")
				recv(t, w, "wait")
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, func(c *Config) { c.IdleTimeout = 50 * time.Millisecond })
			e.createText("/s", "x")
			h := e.handleOf("/s")
			release := tc.hold(t, e)
			time.Sleep(150 * time.Millisecond) // several idle timeouts while busy
			if h.retired() {
				t.Fatal("actor passivated while busy")
			}
			release()
			eventually(t, 2*time.Second, "actor to passivate once idle", h.retired)
		})
	}
}

// TestPassivationStress mixes appends, producer appends and opens on a few
// streams with pauses around the idle timeout, so that requests keep racing
// actor passivation and respawn. No request may be lost, answered twice or
// answered by a second live incarnation.
func TestPassivationStress(t *testing.T) {
	if testing.Short() {
		t.Skip("stress test")
	}
	const (
		idle     = 20 * time.Millisecond
		streams  = 3
		workers  = 12
		duration = 2 * time.Second
	)
	e := newEnv(t, func(c *Config) { c.IdleTimeout = idle })
	paths := make([]string, streams)
	for i := range paths {
		paths[i] = fmt.Sprintf("/stress/%d", i)
		e.createText(paths[i])
	}
	acks := make([]collector[ack], streams)
	handles := make([]sync.Map, streams) // distinct incarnations observed
	var ops atomic.Int64
	// failed stops the workers on the first wrong answer; t.Failed() is not
	// used so that a race report does not end the run before the final
	// consistency checks.
	var failed atomic.Bool
	errorf := func(format string, args ...any) {
		failed.Store(true)
		t.Errorf(format, args...)
	}

	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 42))
			lastSeen := make([]uint64, streams)
			for i := 0; time.Now().Before(deadline) && !failed.Load(); i++ {
				time.Sleep(time.Duration(rng.Int64N(int64(2 * idle))))
				s := rng.IntN(streams)
				ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
				if rng.IntN(3) == 0 {
					h, snap, err := e.s.Open(ctx, paths[s])
					if err != nil {
						errorf("worker %d: Open: %v", w, err)
					} else {
						handles[s].Store(h, true)
						if snap.Tail < lastSeen[s] {
							errorf("worker %d: tail went back from %d to %d", w, lastSeen[s], snap.Tail)
						}
						lastSeen[s] = snap.Tail
					}
				} else {
					p := fmt.Sprintf("<%d.%d>", w, i)
					r, err := e.s.Append(ctx, paths[s], AppendRequest{ContentType: ctText, Records: recs(p)})
					switch {
					case err != nil:
						errorf("worker %d: Append: %v", w, err)
					case r.Outcome != Appended || r.NextOffset <= lastSeen[s]:
						errorf("worker %d: Append = %+v after seeing tail %d", w, r, lastSeen[s])
					default:
						acks[s].add(ack{p, r.NextOffset})
						lastSeen[s] = r.NextOffset
					}
				}
				cancel()
				ops.Add(1)
			}
		})
	}
	// One idempotent producer per stream, retrying every request once: the
	// retry must be a duplicate even when an incarnation change separates it
	// from the original.
	for s := range streams {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(s), 7))
			for seq := uint64(0); time.Now().Before(deadline) && !failed.Load(); seq++ {
				p := fmt.Sprintf("{p%d.%d}", s, seq)
				req := AppendRequest{ContentType: ctText, Records: recs(p), Producer: producer("prod", 0, seq)}
				ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
				r, err := e.s.Append(ctx, paths[s], req)
				if err != nil || r.Outcome != Appended || r.ProducerSeq != seq {
					errorf("producer %d seq %d: %+v, %v", s, seq, r, err)
					cancel()
					return
				}
				acks[s].add(ack{p, r.NextOffset})
				time.Sleep(time.Duration(rng.Int64N(int64(2 * idle))))
				d, err := e.s.Append(ctx, paths[s], req)
				if err != nil || d.Outcome != Duplicate || d.ProducerSeq != seq {
					errorf("producer %d retry of seq %d: %+v, %v", s, seq, d, err)
				}
				cancel()
				ops.Add(2)
			}
		})
	}
	// One long-poll waiter per stream, pausing between polls so actors can
	// still passivate: a waiter parked when its actor retires must be
	// relocated to the next incarnation, and every delta it gets must start
	// where it waits.
	var wakes atomic.Int64
	for s := range streams {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(s), 11))
			var from uint64
			for time.Now().Before(deadline) && !failed.Load() {
				time.Sleep(time.Duration(rng.Int64N(int64(2 * idle))))
				ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
				d, err := e.s.Wait(ctx, paths[s], from, 3*idle, nil)
				cancel()
				switch {
				case errors.Is(err, ErrWaitTimeout):
				case errors.Is(err, ErrBehind):
					_, snap := e.open(paths[s])
					if snap.Tail < from {
						errorf("waiter %d: tail went back from %d to %d", s, from, snap.Tail)
					}
					from = snap.Tail
				case err != nil:
					errorf("waiter %d: Wait at %d: %v", s, from, err)
				case d.Deleted || d.Start != from || d.End <= from:
					errorf("waiter %d at %d woken with delta %+v", s, from, d)
				default:
					wakes.Add(1)
					from = d.End
				}
				ops.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() {
		return
	}
	if wakes.Load() == 0 {
		t.Fatal("no long-poll waiter was ever woken: the test did not exercise waits")
	}
	incarnations := 0
	for s := range streams {
		data, _ := e.readAll(paths[s])
		checkAcksMatchStream(t, data, acks[s].all)
		handles[s].Range(func(any, any) bool { incarnations++; return true })
	}
	t.Logf("%d operations, %d incarnations observed by Open, %d long-poll wakes", ops.Load(), incarnations, wakes.Load())
	if incarnations <= streams {
		t.Fatalf("only %d incarnations for %d streams: the test did not exercise passivation", incarnations, streams)
	}
}

func TestActorSoftLimit(t *testing.T) {
	// Over the soft limit, idle actors go after a second instead of the
	// idle timeout; the actors spawned while under it keep theirs.
	cases := []struct {
		name       string
		limit      int64
		wantAtMost int64
	}{
		{"under the limit", 100, 10},
		{"over the limit", 3, 4}, // the spawn racing the third may still see 3 live
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Config) {
				c.IdleTimeout = time.Minute
				c.ActorSoftLimit = tc.limit
			})
			for i := range 10 {
				e.createText(fmt.Sprintf("/s%d", i))
			}
			if got := e.s.Stats().Live; got != 10 {
				t.Fatalf("live actors after creating 10 streams: %d", got)
			}
			deadline := time.Now().Add(5 * time.Second)
			for e.s.Stats().Live > tc.wantAtMost && time.Now().Before(deadline) {
				time.Sleep(50 * time.Millisecond)
			}
			time.Sleep(1500 * time.Millisecond) // nothing more goes
			if got := e.s.Stats().Live; got > tc.wantAtMost || got < 3 {
				t.Fatalf("live actors = %d, want 3..%d", got, tc.wantAtMost)
			}
			for i := range 10 { // passivated streams answer as before
				if _, snap := e.open(fmt.Sprintf("/s%d", i)); !snap.Exists {
					t.Fatalf("/s%d lost", i)
				}
			}
		})
	}
}
