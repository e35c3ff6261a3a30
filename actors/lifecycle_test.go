package actors

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/streamd/streamd/protocol"
)

func TestDelete(t *testing.T) {
	e := newEnv(t)
	old := e.createText("/s", "old data")
	e.append("/s", AppendRequest{ContentType: ctText, Records: recs("!"), Seq: "9", Producer: producer("p", 3, 0)})
	if err := e.s.Delete(opCtx(t), "/s"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, _, err := e.s.Open(opCtx(t), "/s"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open after delete: %v, want ErrNotFound", err)
	}
	if _, err := e.s.Append(opCtx(t), "/s", AppendRequest{ContentType: ctText, Records: recs("x")}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Append after delete: %v, want ErrNotFound", err)
	}
	if err := e.s.Delete(opCtx(t), "/s"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Delete: %v, want ErrNotFound", err)
	}
	if st, err := e.st.Load("/s"); err != nil || st != nil {
		t.Fatalf("store still holds the deleted stream: %+v, %v", st, err)
	}
	if b, err := e.st.ReadBytes(old.Snapshot.ID, 0, 100, 100); err != nil || len(b) != 0 {
		t.Fatalf("deleted stream's records remain: %q, %v", b, err)
	}

	// Recreating the path yields a new incarnation with none of the old
	// data, Stream-Seq or producer state.
	r := e.create("/s", CreateRequest{ContentType: ctJSON})
	if r.Outcome != Created || r.NextOffset != 0 || r.Snapshot.ID == old.Snapshot.ID {
		t.Fatalf("recreate = %+v (old id %d)", r, old.Snapshot.ID)
	}
	if got, snap := e.readAll("/s"); len(got) != 0 || snap.ContentType != ctJSON || snap.Closed {
		t.Fatalf("recreated stream holds %q, snapshot %+v", got, snap)
	}
	a := e.append("/s", AppendRequest{ContentType: ctJSON, Records: recs("1"), Seq: "1", Producer: producer("p", 0, 0)})
	if a.Outcome != Appended || a.NextOffset != 1 || a.ProducerEpoch != 0 {
		t.Fatalf("append to recreated stream = %+v", a)
	}
}

func TestDeleteMissing(t *testing.T) {
	e := newEnv(t)
	if err := e.s.Delete(opCtx(t), "/never"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Delete of a missing stream: %v", err)
	}
}

func TestDeleteOrdersAfterPipelinedAppends(t *testing.T) {
	// A delete queued behind appends runs after they commit; appends queued
	// behind the delete see no stream.
	e := newEnv(t)
	e.createText("/s")
	// Open fails once the delete commits, so locate the actor once.
	h, _ := e.open("/s")
	a := e.sendAppendTo(h, AppendRequest{ContentType: ctText, Records: recs("a")})
	del := make(chan Result, 1)
	if !h.send(e.s.root, &deleteMsg{reply: del}) {
		t.Fatal("actor retired")
	}
	b := e.sendAppendTo(h, AppendRequest{ContentType: ctText, Records: recs("b")})
	c := make(chan Result, 1)
	if !h.send(e.s.root, &createMsg{req: CreateRequest{ContentType: ctText}, reply: c}) {
		t.Fatal("actor retired")
	}
	d := e.sendAppendTo(h, AppendRequest{ContentType: ctText, Records: recs("d")})

	if r := recv(t, a, "append a"); r.Err != nil || r.NextOffset != 1 {
		t.Fatalf("append before delete: %+v", r)
	}
	if r := recv(t, del, "delete"); r.Err != nil {
		t.Fatalf("delete: %+v", r)
	}
	if r := recv(t, b, "append b"); !errors.Is(r.Err, ErrNotFound) {
		t.Fatalf("append between delete and create: %+v, want ErrNotFound", r)
	}
	if r := recv(t, c, "create"); r.Err != nil || r.Outcome != Created {
		t.Fatalf("create: %+v", r)
	}
	if r := recv(t, d, "append d"); r.Err != nil || r.NextOffset != 1 {
		t.Fatalf("append after recreate: %+v", r)
	}
	if got, _ := e.readAll("/s"); string(got) != "d" {
		t.Fatalf("stream = %q, want %q", got, "d")
	}
}

func TestExpiryFakeClock(t *testing.T) {
	ttl := protocol.Expiry{HasTTL: true, TTL: time.Second}
	type step struct {
		advance time.Duration
		touch   bool // a read refreshes the sliding TTL
		append  bool // so does a write
		alive   bool // expected state after advancing
	}
	tests := []struct {
		name   string
		expiry func(now time.Time) protocol.Expiry
		steps  []step
	}{
		{
			name:   "ttl lapses",
			expiry: func(time.Time) protocol.Expiry { return ttl },
			steps:  []step{{advance: 900 * time.Millisecond, alive: true}, {advance: 100 * time.Millisecond, alive: false}},
		},
		{
			name:   "reads slide the ttl",
			expiry: func(time.Time) protocol.Expiry { return ttl },
			steps: []step{
				{advance: 800 * time.Millisecond, touch: true, alive: true},
				{advance: 800 * time.Millisecond, touch: true, alive: true},
				{advance: 800 * time.Millisecond, alive: true},
				{advance: 300 * time.Millisecond, alive: false},
			},
		},
		{
			name:   "writes slide the ttl",
			expiry: func(time.Time) protocol.Expiry { return ttl },
			steps: []step{
				{advance: 800 * time.Millisecond, append: true, alive: true},
				{advance: 800 * time.Millisecond, append: true, alive: true},
				{advance: 999 * time.Millisecond, alive: true},
				{advance: time.Millisecond, alive: false},
			},
		},
		{
			name:   "expires-at is absolute",
			expiry: func(now time.Time) protocol.Expiry { return protocol.Expiry{ExpiresAt: now.Add(2 * time.Second)} },
			steps: []step{
				{advance: 900 * time.Millisecond, touch: true, append: true, alive: true},
				{advance: 900 * time.Millisecond, touch: true, append: true, alive: true},
				{advance: 200 * time.Millisecond, alive: false},
			},
		},
		{
			name:   "no expiry",
			expiry: func(time.Time) protocol.Expiry { return protocol.Expiry{} },
			steps:  []step{{advance: 1000 * time.Hour, alive: true}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clk := newFakeClock()
			e := newEnv(t, func(c *Config) { c.Now = clk.Now })
			e.create("/s", CreateRequest{ContentType: ctText, Expiry: tc.expiry(clk.Now()), Records: recs("x")})
			for i, st := range tc.steps {
				clk.Advance(st.advance)
				h, snap, err := e.s.Open(opCtx(t), "/s")
				if !st.alive {
					if !errors.Is(err, ErrNotFound) {
						t.Fatalf("step %d: Open = %+v, %v; want ErrNotFound", i, snap, err)
					}
					if _, err := e.s.Append(opCtx(t), "/s", AppendRequest{ContentType: ctText, Records: recs("y")}); !errors.Is(err, ErrNotFound) {
						t.Fatalf("step %d: Append to expired stream: %v, want ErrNotFound", i, err)
					}
					if _, err := e.s.Wait(opCtx(t), "/s", 1, time.Minute, nil); !errors.Is(err, ErrNotFound) {
						t.Fatalf("step %d: Wait on expired stream: %v, want ErrNotFound", i, err)
					}
					// The expired stream is deleted from storage.
					eventually(t, opTimeout, "expired stream to be deleted", func() bool {
						st, err := e.st.Load("/s")
						return err == nil && st == nil
					})
					return
				}
				if err != nil {
					t.Fatalf("step %d: Open: %v", i, err)
				}
				if st.touch {
					h.Touch(e.s.Now())
				}
				if st.append {
					e.appendText("/s", "y")
				}
			}
		})
	}
}

func TestExpiredPathCanBeRecreated(t *testing.T) {
	clk := newFakeClock()
	e := newEnv(t, func(c *Config) { c.Now = clk.Now })
	ttl := protocol.Expiry{HasTTL: true, TTL: time.Second}
	old := e.create("/s", CreateRequest{ContentType: ctText, Expiry: ttl, Records: recs("old")})
	clk.Advance(2 * time.Second)
	// PUT on an expired stream creates a new one, even with the same config.
	r := e.create("/s", CreateRequest{ContentType: ctText, Expiry: ttl, Records: recs("new")})
	if r.Outcome != Created || r.Snapshot.ID == old.Snapshot.ID || r.NextOffset != 3 {
		t.Fatalf("create over expired stream = %+v", r)
	}
	if got, _ := e.readAll("/s"); string(got) != "new" {
		t.Fatalf("stream = %q", got)
	}
	if b, _ := e.st.ReadBytes(old.Snapshot.ID, 0, 3, 3); len(b) != 0 {
		t.Fatalf("expired incarnation's data remains: %q", b)
	}
}

// No request touches the streams: the actor's own timer deletes them.
func TestExpiryRealClockDeletesFromStorage(t *testing.T) {
	t.Parallel() // runs for seconds of real time
	e := newEnv(t)
	e.create("/ttl", CreateRequest{ContentType: ctText, Expiry: protocol.Expiry{HasTTL: true, TTL: time.Second}, Records: recs("x")})
	e.create("/at", CreateRequest{ContentType: ctText, Expiry: protocol.Expiry{ExpiresAt: time.Now().Add(time.Second)}, Records: recs("y")})
	e.createText("/keep", "z")
	start := time.Now()
	for _, p := range []string{"/ttl", "/at"} {
		eventually(t, 3*time.Second, p+" to be deleted from storage", func() bool {
			st, err := e.st.Load(p)
			return err == nil && st == nil
		})
	}
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("streams deleted after %v, before their 1s lifetime", d)
	}
	if st, err := e.st.Load("/keep"); err != nil || st == nil {
		t.Fatalf("stream without expiry was deleted: %v", err)
	}
}

func TestExpiryNotifiesWaiters(t *testing.T) {
	// An absolute deadline: a sliding TTL is kept alive by the waiter
	// itself (TestLiveReadersKeepTTLStreamAlive).
	t.Parallel() // runs for seconds of real time
	e := newEnv(t)
	e.create("/s", CreateRequest{ContentType: ctText, Expiry: protocol.Expiry{ExpiresAt: time.Now().Add(time.Second)}})
	w := e.waitAsync(opCtx(t), "/s", 0)
	got := recv(t, w, "wait across expiry")
	if got.err != nil || got.d == nil || !got.d.Deleted {
		t.Fatalf("Wait across expiry = %+v, %v; want Deleted delta", got.d, got.err)
	}
}

func TestSlidingTTLSurvivesPassivation(t *testing.T) {
	clk := newFakeClock()
	e := newEnv(t, func(c *Config) {
		c.Now = clk.Now
		c.IdleTimeout = 30 * time.Millisecond
	})
	e.create("/s", CreateRequest{ContentType: ctText, Expiry: protocol.Expiry{HasTTL: true, TTL: 10 * time.Second}})
	clk.Advance(8 * time.Second)
	h, _ := e.open("/s")
	h.Touch(e.s.Now()) // a read at t=8s: the stream now lives until t=18s
	eventually(t, opTimeout, "actor to passivate", h.retired)
	clk.Advance(8 * time.Second) // t=16s
	h2, _ := e.open("/s")
	if h2 == h {
		t.Fatal("Open returned the retired handle")
	}
	clk.Advance(3 * time.Second) // t=19s
	if _, _, err := e.s.Open(opCtx(t), "/s"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open after the refreshed TTL lapsed: %v, want ErrNotFound", err)
	}
}

func TestHandleTouchOnlyMovesForward(t *testing.T) {
	clk := newFakeClock()
	e := newEnv(t, func(c *Config) { c.Now = clk.Now })
	if !e.s.Now().Equal(clk.Now()) {
		t.Fatalf("Streams.Now = %v, want the configured clock %v", e.s.Now(), clk.Now())
	}
	e.create("/s", CreateRequest{ContentType: ctText, Expiry: protocol.Expiry{HasTTL: true, TTL: time.Second}})
	h, _ := e.open("/s")
	t0 := clk.Now()
	if !h.LastAccess().Equal(t0) {
		t.Fatalf("LastAccess after create = %v, want %v", h.LastAccess(), t0)
	}
	// Concurrent handlers may record accesses out of order; a late, older
	// one must not shorten the TTL.
	h.Touch(t0.Add(900 * time.Millisecond))
	h.Touch(t0.Add(100 * time.Millisecond))
	if want := t0.Add(900 * time.Millisecond); !h.LastAccess().Equal(want) {
		t.Fatalf("LastAccess = %v, want %v", h.LastAccess(), want)
	}
	clk.Advance(1500 * time.Millisecond)
	if _, _, err := e.s.Open(opCtx(t), "/s"); err != nil {
		t.Fatalf("Open 600ms after the last access: %v", err)
	}
}

// TestLiveReadersKeepTTLStreamAlive: a subscriber or parked long-poll
// outlasting a short sliding TTL keeps the stream alive (§5.1); once the
// readers leave, the stream expires a TTL later.
func TestLiveReadersKeepTTLStreamAlive(t *testing.T) {
	t.Parallel() // runs for seconds of real time
	for _, kind := range []string{"subscriber", "waiter"} {
		t.Run(kind, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			e.create("/s", CreateRequest{ContentType: ctText, Expiry: protocol.Expiry{HasTTL: true, TTL: time.Second}})
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			leave := func() {}
			switch kind {
			case "subscriber":
				sub, err := e.s.Subscribe(ctx, "/s", 0)
				if err != nil {
					t.Fatal(err)
				}
				leave = sub.Close
			case "waiter":
				done := make(chan error, 1)
				go func() {
					_, err := e.s.Wait(ctx, "/s", 0, time.Minute, nil)
					done <- err
				}()
				waitersParked(t, 1)
				leave = func() { cancel(); <-done }
			}
			time.Sleep(2500 * time.Millisecond) // 2.5 TTLs with a live reader
			if _, _, err := e.s.Open(opCtx(t), "/s"); err != nil {
				t.Fatalf("Open with a live reader after 2.5 TTLs: %v", err)
			}
			leave()
			deadline := time.Now().Add(5 * time.Second)
			for {
				if _, _, err := e.s.Open(opCtx(t), "/s"); errors.Is(err, ErrNotFound) {
					return
				}
				if time.Now().After(deadline) {
					t.Fatal("stream still there 5 s after its last reader left")
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}
