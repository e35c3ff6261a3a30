package actors

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/streamd/streamd/persistence"
	"github.com/streamd/streamd/protocol"
)

func (e *env) fork(path string, req ForkRequest) Result {
	e.t.Helper()
	r, err := e.s.Fork(opCtx(e.t), path, req)
	if err != nil {
		e.t.Fatalf("Fork(%q from %q): %v", path, req.Source, err)
	}
	return r
}

// readLayout returns a stream's bytes read through its layout, as
// catch-up readers do.
func (e *env) readLayout(path string) string {
	e.t.Helper()
	_, snap := e.open(path)
	b, err := e.st.AppendBytesLayout(nil, snap.Layout(), 0, snap.Tail, 1<<30)
	if err != nil {
		e.t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

// TestForkReads: forks read their inherited data and their own, through
// chains with sub-offsets, never their sources' later appends; offsets are
// shared with the source up to the fork point.
func TestForkReads(t *testing.T) {
	e := newEnv(t)
	e.createText("/a", "abcd", "efgh")
	r := e.fork("/b", ForkRequest{Source: "/a", Offset: 4, SubOffset: 2}) // "abcd" + "ef"
	if r.Outcome != Created || r.NextOffset != 6 {
		t.Fatalf("fork /b: %+v; want created with tail 6", r)
	}
	e.appendText("/a", "IJ")
	e.appendText("/b", "XY")
	e.fork("/c", ForkRequest{Source: "/b", AtTail: true})
	e.appendText("/c", "!")
	e.appendText("/b", "Z")
	for path, want := range map[string]string{"/a": "abcdefghIJ", "/b": "abcdefXYZ", "/c": "abcdefXY!"} {
		if got := e.readLayout(path); got != want {
			t.Errorf("%s reads %q; want %q", path, got, want)
		}
	}
	// A fork starts open whatever its source, and inherits no writer state.
	e.append("/a", AppendRequest{ContentType: ctText, Records: recs("P"), Producer: producer("p", 3, 0), Seq: "5", Close: true})
	e.fork("/d", ForkRequest{Source: "/a", AtTail: true})
	if r := e.append("/d", AppendRequest{ContentType: ctText, Records: recs("q"), Producer: producer("p", 0, 0), Seq: "1"}); r.Outcome != Appended {
		t.Fatalf("first producer append on the fork: %+v", r)
	}
	if got := e.readLayout("/d"); got != "abcdefghIJPq" {
		t.Fatalf("/d reads %q", got)
	}
}

// TestForkRefusals: each way a fork request can be wrong.
func TestForkRefusals(t *testing.T) {
	e := newEnv(t)
	e.createText("/t", "hi")
	e.create("/j", CreateRequest{ContentType: ctJSON, Records: recs(`1`, `22`)})
	tests := []struct {
		name string
		req  ForkRequest
		want error
	}{
		{"missing source", ForkRequest{Source: "/none", AtTail: true}, ErrNotFound},
		{"content type", ForkRequest{Source: "/t", AtTail: true, ContentType: ctJSON}, ErrContentTypeMismatch},
		{"beyond the tail", ForkRequest{Source: "/t", Offset: 3}, ErrForkPoint},
		{"bytes past the record", ForkRequest{Source: "/t", Offset: 0, SubOffset: 3}, ErrForkPoint},
		{"sub-offset at the tail", ForkRequest{Source: "/t", Offset: 2, SubOffset: 1}, ErrForkPoint},
		{"inside a JSON message", ForkRequest{Source: "/j", Offset: 2}, ErrForkPoint},
		{"more JSON messages than there are", ForkRequest{Source: "/j", Offset: 0, SubOffset: 3}, ErrForkPoint},
	}
	for _, tc := range tests {
		if _, err := e.s.Fork(opCtx(t), "/f", ForkRequest(tc.req)); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v; want %v", tc.name, err, tc.want)
		}
	}
	// Refusals leave no reference behind: the sources delete fully.
	for _, p := range []string{"/t", "/j"} {
		if err := e.s.Delete(opCtx(t), p); err != nil {
			t.Fatal(err)
		}
		if st, err := e.st.Load(p); err != nil || st != nil {
			t.Fatalf("%s after delete: %+v, %v; want gone", p, st, err)
		}
	}
}

// TestForkIdempotence: re-creating a fork with the same request is 200;
// with another fork point, source, or as a plain stream, 409.
func TestForkIdempotence(t *testing.T) {
	e := newEnv(t)
	e.createText("/s", "hello")
	req := ForkRequest{Source: "/s", Offset: 0, SubOffset: 2}
	e.fork("/f", req)
	if r := e.fork("/f", req); r.Outcome != Existed || r.NextOffset != 2 {
		t.Fatalf("same fork again: %+v", r)
	}
	for _, other := range []ForkRequest{{Source: "/s", Offset: 0, SubOffset: 3}, {Source: "/s", AtTail: true}} {
		if _, err := e.s.Fork(opCtx(t), "/f", other); !errors.Is(err, ErrConfigMismatch) {
			t.Errorf("fork %+v over /f: %v; want a conflict", other, err)
		}
	}
	if _, err := e.s.Create(opCtx(t), "/f", CreateRequest{ContentType: ctText}); !errors.Is(err, ErrConfigMismatch) {
		t.Errorf("plain create over a fork: %v; want a conflict", err)
	}
}

// TestSoftDeleteAndCascade: a deleted source with forks is soft-deleted
// (410 for reads and writes, its path taken, no forks of it), its data
// still read by the forks; deleting the last fork collects it, and
// collection cascades up a chain.
func TestSoftDeleteAndCascade(t *testing.T) {
	e := newEnv(t)
	e.createText("/l0", "root")
	e.fork("/l1", ForkRequest{Source: "/l0", AtTail: true})
	e.appendText("/l1", "+1")
	e.fork("/l2", ForkRequest{Source: "/l1", AtTail: true})
	e.appendText("/l2", "+2")
	for _, p := range []string{"/l0", "/l1"} {
		if err := e.s.Delete(opCtx(t), p); err != nil {
			t.Fatalf("delete %s: %v", p, err)
		}
	}
	for _, p := range []string{"/l0", "/l1"} {
		if _, _, err := e.s.Open(opCtx(t), p); !errors.Is(err, ErrGone) {
			t.Errorf("Open %s: %v; want ErrGone", p, err)
		}
		if _, err := e.s.Append(opCtx(t), p, AppendRequest{ContentType: ctText, Records: recs("x")}); !errors.Is(err, ErrGone) {
			t.Errorf("Append %s: %v; want ErrGone", p, err)
		}
		if err := e.s.Delete(opCtx(t), p); !errors.Is(err, ErrGone) {
			t.Errorf("Delete %s again: %v; want ErrGone", p, err)
		}
		if _, err := e.s.Create(opCtx(t), p, CreateRequest{ContentType: ctText}); !errors.Is(err, ErrGone) {
			t.Errorf("Create %s: %v; want ErrGone", p, err)
		}
		if _, err := e.s.Fork(opCtx(t), "/new", ForkRequest{Source: p, AtTail: true}); !errors.Is(err, ErrGone) {
			t.Errorf("Fork of %s: %v; want ErrGone", p, err)
		}
	}
	if got := e.readLayout("/l2"); got != "root+1+2" {
		t.Fatalf("/l2 reads %q after its sources were deleted", got)
	}
	if err := e.s.Delete(opCtx(t), "/l2"); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/l2", "/l1", "/l0"} {
		eventually(t, opTimeout, p+" to be collected", func() bool {
			st, err := e.st.Load(p)
			return err == nil && st == nil
		})
	}
	if sd, _ := e.st.SoftDeleted(0, 10); len(sd) != 0 {
		t.Errorf("soft-deleted list after the cascade: %v", sd)
	}
	e.createText("/l0", "again") // the path is free
}

// TestForkDeleteRaces: forks created while their source is being deleted
// either fail or read their inherited data in full, never a stream whose
// data was collected underneath it.
func TestForkDeleteRaces(t *testing.T) {
	e := newEnv(t)
	const rounds = 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	forks := map[string]string{} // fork path -> its data
	for i := range rounds {
		src, data := fmt.Sprintf("/src/%d", i), fmt.Sprintf("data-%d", i)
		e.createText(src, data)
		wg.Add(3)
		for k := range 2 {
			go func() {
				defer wg.Done()
				f := fmt.Sprintf("/fork/%d/%d", i, k)
				if _, err := e.s.Fork(opCtx(t), f, ForkRequest{Source: src, AtTail: true}); err == nil {
					mu.Lock()
					forks[f] = data
					mu.Unlock()
				} else if !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrGone) {
					t.Errorf("fork of %s: %v", src, err)
				}
			}()
		}
		go func() {
			defer wg.Done()
			if err := e.s.Delete(opCtx(t), src); err != nil {
				t.Errorf("delete %s: %v", src, err)
			}
		}()
	}
	wg.Wait()
	time.Sleep(50 * time.Millisecond) // let releases and collections run
	for f, data := range forks {
		if got := e.readLayout(f); got != data {
			t.Errorf("%s reads %q; want %q", f, got, data)
		}
	}
	t.Logf("%d of %d forks created while their sources were deleted", len(forks), 2*rounds)
	// Deleting every fork collects every source.
	for f := range forks {
		if err := e.s.Delete(opCtx(t), f); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, opTimeout, "every source to be collected", func() bool {
		sd, err := e.st.SoftDeleted(0, 1000)
		return err == nil && len(sd) == 0
	})
}

// TestForksAcrossRestartAndPower: the fork relation survives passivation,
// a restart and a power loss.
func TestForksAcrossRestartAndPower(t *testing.T) {
	e := newCrashableEnv(t, func(c *Config) { c.IdleTimeout = 50 * time.Millisecond })
	e.create("/src", CreateRequest{ContentType: ctText, Records: recs("abc"), Expiry: protocol.Expiry{HasTTL: true, TTL: time.Hour}})
	e.fork("/f", ForkRequest{Source: "/src", Offset: 0, SubOffset: 2})
	e.appendText("/f", "Z")
	eventually(t, opTimeout, "actors to passivate", func() bool { return e.s.Stats().Live == 0 })
	if got := e.readLayout("/f"); got != "abZ" {
		t.Fatalf("/f after passivation reads %q", got)
	}
	_, snap := e.open("/f")
	if !snap.Expiry.HasTTL || snap.Expiry.TTL != time.Hour {
		t.Errorf("fork expiry %+v; want the source's TTL inherited", snap.Expiry)
	}
	if err := e.s.Delete(opCtx(t), "/src"); err != nil {
		t.Fatal(err)
	}
	e.restart()
	c := e.crash()
	if got := c.readLayout("/f"); got != "abZ" {
		t.Fatalf("/f after a restart and a power loss reads %q", got)
	}
	if _, _, err := c.s.Open(opCtx(t), "/src"); !errors.Is(err, ErrGone) {
		t.Fatalf("/src after a restart and a power loss: %v; want ErrGone", err)
	}
}

// TestSweepCollectsAfterLostNotice: a soft-deleted source whose last fork
// was deleted without telling it (the notice lost with the process) is
// collected by the reaper's sweep after a restart.
func TestSweepCollectsAfterLostNotice(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.ReapInterval = 50 * time.Millisecond })
	src := e.createText("/src", "abc").Snapshot.ID
	fork := e.fork("/f", ForkRequest{Source: "/src", AtTail: true}).Snapshot.ID
	if err := e.s.Delete(opCtx(t), "/src"); err != nil {
		t.Fatal(err)
	}
	e.stop()
	// The batch the fork's actor writes to delete it, without the notice.
	commitOffline(t, e.fs, func(b *persistence.Batch) error {
		if err := b.DeleteStream("/f", fork); err != nil {
			return err
		}
		return b.DeleteForkRef(src, fork)
	})
	e.start()
	eventually(t, opTimeout, "the sweep to collect /src", func() bool {
		st, err := e.st.Load("/src")
		return err == nil && st == nil
	})
	if sd, _ := e.st.SoftDeleted(0, 10); len(sd) != 0 {
		t.Errorf("soft-deleted list after collection: %v", sd)
	}
}

// TestForkExpiryThroughTheReaper: a source that expires while forks read
// it is soft-deleted by the reaper (the fork still reads it), and collected
// when the fork expires too.
func TestForkExpiryThroughTheReaper(t *testing.T) {
	clock := newFakeClock()
	e := newEnv(t, func(c *Config) {
		c.Now = clock.Now
		c.ReapInterval = 20 * time.Millisecond
		c.IdleTimeout = 30 * time.Millisecond
	})
	e.create("/src", CreateRequest{ContentType: ctText, Records: recs("abc"), Expiry: protocol.Expiry{HasTTL: true, TTL: time.Minute}})
	e.fork("/f", ForkRequest{Source: "/src", AtTail: true, Expiry: protocol.Expiry{HasTTL: true, TTL: time.Hour}, HasExpiry: true})
	clock.Advance(2 * time.Minute)
	eventually(t, opTimeout, "/src to be soft-deleted", func() bool {
		st, err := e.st.Load("/src")
		return err == nil && st != nil && st.Meta.SoftDeleted
	})
	if got := e.readLayout("/f"); got != "abc" {
		t.Fatalf("/f reads %q after its source expired", got)
	}
	clock.Advance(2 * time.Hour)
	for _, p := range []string{"/f", "/src"} {
		eventually(t, opTimeout, p+" to be gone", func() bool {
			st, err := e.st.Load(p)
			return err == nil && st == nil
		})
	}
}

// TestForkDepthBound: a fork whose chain would pass MaxForkDepth is
// refused; at the bound it is created.
func TestForkDepthBound(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.MaxForkDepth = 3 })
	e.createText("/0", "a")
	for i := 1; i <= 3; i++ {
		e.fork(fmt.Sprintf("/%d", i), ForkRequest{Source: fmt.Sprintf("/%d", i-1), AtTail: true})
		e.appendText(fmt.Sprintf("/%d", i), "b")
	}
	if _, err := e.s.Fork(opCtx(t), "/4", ForkRequest{Source: "/3", AtTail: true}); !errors.Is(err, ErrForkPoint) {
		t.Fatalf("fork past the depth bound: %v; want ErrForkPoint", err)
	}
	if got := e.readLayout("/3"); got != "abbb" {
		t.Fatalf("/3 reads %q", got)
	}
}
