package actors

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/streamd/streamd/protocol"
)

func TestRestartKeepsState(t *testing.T) {
	exp := time.Date(2031, 1, 1, 0, 0, 0, 0, time.UTC)
	clk := newFakeClock()
	e := newEnv(t, func(c *Config) { c.Now = clk.Now })

	e.create("/text", CreateRequest{ContentType: ctText, Records: recs("hello")})
	e.append("/text", AppendRequest{ContentType: ctText, Records: recs(" world"), Seq: "0005", Producer: producer("p", 2, 0)})
	e.append("/text", AppendRequest{ContentType: ctText, Records: recs("!"), Producer: producer("p", 2, 1)})
	e.append("/text", AppendRequest{ContentType: ctText, Records: recs("?"), Producer: producer("q", 0, 0)})

	e.create("/json", CreateRequest{ContentType: ctJSON, Records: recs(`{"a":1}`), Expiry: protocol.Expiry{ExpiresAt: exp}})
	e.append("/json", AppendRequest{ContentType: ctJSON, Records: recs(`2`, `3`), Producer: producer("p", 0, 0), Close: true})

	e.create("/ttl", CreateRequest{ContentType: ctBinary, Records: recs("\x00\x01"), Expiry: protocol.Expiry{HasTTL: true, TTL: time.Minute}})
	e.create("/gone", CreateRequest{ContentType: ctText, Records: recs("bye")})
	if err := e.s.Delete(opCtx(t), "/gone"); err != nil {
		t.Fatalf("Delete: %v", err)
	}

	paths := []string{"/text", "/json", "/ttl"}
	before := map[string]Snapshot{}
	data := map[string]string{}
	for _, p := range paths {
		b, snap := e.readAll(p)
		before[p], data[p] = *snap, string(b)
	}
	ids := map[uint64]bool{}
	for _, s := range before {
		ids[s.ID] = true
	}

	// Restart twice: recovery must be repeatable.
	for round := range 2 {
		e.restart()
		for _, p := range paths {
			b, snap := e.readAll(p)
			want := before[p]
			if snap.ID != want.ID || snap.ContentType != want.ContentType || snap.JSON != want.JSON ||
				snap.Closed != want.Closed || snap.Tail != want.Tail || snap.Expiry.HasTTL != want.Expiry.HasTTL ||
				snap.Expiry.TTL != want.Expiry.TTL || !snap.Expiry.ExpiresAt.Equal(want.Expiry.ExpiresAt) {
				t.Fatalf("round %d %s: snapshot %+v, before restart %+v", round, p, snap, want)
			}
			if string(b) != data[p] {
				t.Fatalf("round %d %s: data %q, before restart %q", round, p, b, data[p])
			}
		}
		if _, _, err := e.s.Open(opCtx(t), "/gone"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("round %d: deleted stream after restart: %v", round, err)
		}
	}

	// Producer dedup, fencing and Stream-Seq survive.
	if r := e.append("/text", AppendRequest{ContentType: ctText, Records: recs("!"), Producer: producer("p", 2, 1)}); r.Outcome != Duplicate || r.ProducerEpoch != 2 || r.ProducerSeq != 1 {
		t.Fatalf("retry of last producer seq after restart = %+v", r)
	}
	if r := e.append("/text", AppendRequest{ContentType: ctText, Records: recs("?"), Producer: producer("q", 0, 0)}); r.Outcome != Duplicate {
		t.Fatalf("retry of producer q after restart = %+v", r)
	}
	var stale *StaleEpochError
	if _, err := e.s.Append(opCtx(t), "/text", AppendRequest{ContentType: ctText, Records: recs("z"), Producer: producer("p", 1, 0)}); !errors.As(err, &stale) || stale.Current != 2 {
		t.Fatalf("stale epoch after restart: %v", err)
	}
	var gap *SeqGapError
	if _, err := e.s.Append(opCtx(t), "/text", AppendRequest{ContentType: ctText, Records: recs("z"), Producer: producer("p", 2, 5)}); !errors.As(err, &gap) || gap.Expected != 2 {
		t.Fatalf("gap after restart: %v", err)
	}
	if _, err := e.s.Append(opCtx(t), "/text", AppendRequest{ContentType: ctText, Records: recs("z"), Seq: "0004"}); !errors.Is(err, ErrSeqRegression) {
		t.Fatalf("Stream-Seq after restart: %v", err)
	}
	// Closure and the closing producer request survive.
	if r := e.append("/json", AppendRequest{ContentType: ctJSON, Records: recs(`2`, `3`), Producer: producer("p", 0, 0), Close: true}); r.Outcome != Duplicate || !r.Closed {
		t.Fatalf("retry of closing request after restart = %+v", r)
	}
	var ce *ClosedError
	if _, err := e.s.Append(opCtx(t), "/json", AppendRequest{ContentType: ctJSON, Records: recs(`4`)}); !errors.As(err, &ce) || ce.Tail != before["/json"].Tail {
		t.Fatalf("append to closed stream after restart: %v", err)
	}
	if got := e.readMessages("/json"); len(got) != 3 || string(got[2]) != "3" {
		t.Fatalf("JSON messages after restart: %q", got)
	}
	// New ids never reuse old ones, even across restarts.
	r := e.create("/new", CreateRequest{ContentType: ctText})
	if ids[r.Snapshot.ID] || r.Snapshot.ID == 0 {
		t.Fatalf("new stream got id %d, already used by %v", r.Snapshot.ID, ids)
	}
	// Appends continue at the recovered tail.
	if r := e.append("/text", AppendRequest{ContentType: ctText, Records: recs("+"), Producer: producer("p", 2, 2)}); r.Outcome != Appended || r.NextOffset != before["/text"].Tail+1 {
		t.Fatalf("append after restart = %+v", r)
	}
}

func TestRestartKeepsSlidingTTLAnchor(t *testing.T) {
	clk := newFakeClock()
	e := newEnv(t, func(c *Config) { c.Now = clk.Now })
	e.create("/s", CreateRequest{ContentType: ctText, Expiry: protocol.Expiry{HasTTL: true, TTL: 10 * time.Second}})
	clk.Advance(6 * time.Second)
	e.appendText("/s", "a") // a write at t=6s persists the access time
	e.restart()
	expectAnchoredAt6s(t, e, clk, "a write")
}

// expectAnchoredAt6s checks that the 10 s sliding TTL of /s counts from
// t=6s (the clock reads t=6s): the stream is alive at t=12s and gone at
// t=17s.
func expectAnchoredAt6s(t *testing.T, e *env, clk *fakeClock, what string) {
	t.Helper()
	clk.Advance(6 * time.Second) // t=12s: alive only if the anchor survived
	if _, _, err := e.s.Open(opCtx(t), "/s"); err != nil {
		t.Fatalf("Open at t=12s after %s at t=6s: %v", what, err)
	}
	clk.Advance(5 * time.Second) // t=17s
	if _, _, err := e.s.Open(opCtx(t), "/s"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open at t=17s: %v, want ErrNotFound", err)
	}
}

func TestRequestsAfterShutdown(t *testing.T) {
	e := newEnv(t)
	e.createText("/s", "x")
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := e.s.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, err := e.s.Append(ctx, "/s", AppendRequest{ContentType: ctText, Records: recs("y")}); !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("Append after Shutdown: %v", err)
	}
	if _, _, err := e.s.Open(ctx, "/s"); !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("Open after Shutdown: %v", err)
	}
	if _, err := e.s.Wait(ctx, "/s", 1, time.Minute, nil); !errors.Is(err, ErrShuttingDown) {
		t.Fatalf("Wait after Shutdown: %v", err)
	}
}

func TestShutdownEndsWaitersAndSubscribers(t *testing.T) {
	e := newEnv(t)
	e.createText("/s", "x")
	w := e.waitAsync(opCtx(t), "/s", 1)
	waitersParked(t, 1)
	sub, err := e.s.Subscribe(opCtx(t), "/s", 1)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	e.stop()
	if got := recv(t, w, "wait across shutdown"); !errors.Is(got.err, ErrShuttingDown) {
		t.Fatalf("Wait across Shutdown = %+v, %v; want ErrShuttingDown", got.d, got.err)
	}
	select {
	case _, ok := <-sub.C:
		if ok {
			t.Fatal("subscription delivered a delta at shutdown")
		}
	case <-time.After(opTimeout):
		t.Fatal("subscription not closed by Shutdown")
	}
}

// shutdownAnswer is the outcome of one append racing Shutdown.
type shutdownAnswer struct {
	payload string
	r       Result
	err     error
}

// appendAsync starts n appends to path, each bounded by 2s (far more than
// any real reply needs), and returns their outcomes as they finish.
func (e *env) appendAsync(path string, n int) <-chan shutdownAnswer {
	answers := make(chan shutdownAnswer, n)
	for w := range n {
		go func() {
			p := fmt.Sprintf("<%d>", w)
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			r, err := e.s.Append(ctx, path, AppendRequest{ContentType: ctText, Records: recs(p)})
			answers <- shutdownAnswer{p, r, err}
		}()
	}
	return answers
}

// checkShutdownAnswers asserts that each of n appends racing Shutdown was
// answered, either acknowledged or refused with ErrShuttingDown, and that
// every acknowledged one survives a restart.
func (e *env) checkShutdownAnswers(answers <-chan shutdownAnswer, n int) {
	t := e.t
	t.Helper()
	var acks []ack
	var lost []string
	for range n {
		a := recv(t, answers, "append")
		switch {
		case a.err == nil:
			acks = append(acks, ack{a.payload, a.r.NextOffset})
		case errors.Is(a.err, ErrShuttingDown):
		default:
			lost = append(lost, fmt.Sprintf("%s: %v", a.payload, a.err))
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d of %d appends were never answered across Shutdown, e.g. %s", len(lost), n, lost[0])
	}
	if err := e.st.Close(); err != nil {
		t.Fatalf("close store: %v", err)
	}
	e.stopped = true
	e.start()
	data, _ := e.readAll("/s")
	for _, a := range acks {
		start := a.next - uint64(len(a.payload))
		if a.next > uint64(len(data)) || string(data[start:a.next]) != a.payload {
			t.Fatalf("acknowledged append %q at %d missing after restart", a.payload, a.next)
		}
	}
}

func (e *env) shutdownAsync() <-chan error {
	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		shut <- e.s.Shutdown(ctx)
	}()
	return shut
}

// TestShutdownAnswersInFlightAppends: appends racing Shutdown must each be
// answered; none may be left waiting for a reply that never comes. One
// commit is held in its WAL sync so that, when Shutdown begins, one append
// is being committed and the others are accepted and wait behind it.
func TestShutdownAnswersInFlightAppends(t *testing.T) {
	e, ss := newSlowEnv(t)
	e.createText("/s")
	h := e.handleOf("/s")
	const writers = 32
	ss.hold()
	answers := e.appendAsync("/s", writers)
	ss.awaitSync(t)
	eventually(t, opTimeout, "all appends to be sent", func() bool { return parkedIn("actors.call[") >= writers })
	// A probe answered at once, queued behind the appends: once it is
	// answered the actor has taken every append out of its mailbox.
	probe := make(chan error, 1)
	if !h.send(e.s.root, &subscribeMsg{sub: &subscriber{id: e.s.nextID.Add(1), ch: make(chan *Delta, 1)}, from: 1 << 40, reply: probe}) {
		t.Fatal("actor retired")
	}
	recv(t, probe, "probe")

	shut := e.shutdownAsync()
	eventually(t, opTimeout, "the stream actor to stop", h.retired)
	ss.release()
	if err := recv(t, shut, "Shutdown"); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	e.checkShutdownAnswers(answers, writers)
}

// TestShutdownAnswersRequestsStillInMailbox: requests that have entered a
// stream actor's mailbox but not been handled when Shutdown stops the actor
// must be answered too. The actor is kept busy inside one message (a create
// whose stream id allocation waits for a held WAL sync) while the appends
// queue behind it and Shutdown begins.
func TestShutdownAnswersRequestsStillInMailbox(t *testing.T) {
	e, ss := newSlowEnv(t)
	ss.hold()
	created := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := e.s.Create(ctx, "/s", CreateRequest{ContentType: ctText})
		created <- err
	}()
	ss.awaitSync(t) // the actor is blocked handling the create
	const writers = 8
	answers := e.appendAsync("/s", writers)
	eventually(t, opTimeout, "all requests to be sent", func() bool { return parkedIn("actors.call[") >= writers+1 })

	shut := e.shutdownAsync()
	// The supervisor stops its children at once; give it time to do so
	// while the stream actor is still busy with the create.
	time.Sleep(100 * time.Millisecond)
	ss.release()
	if err := recv(t, shut, "Shutdown"); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := recv(t, created, "create"); err != nil && !errors.Is(err, ErrShuttingDown) {
		t.Errorf("create across Shutdown: %v", err)
	}
	e.checkShutdownAnswers(answers, writers)
}

// TestShutdownWaitsForInFlightCommit: streamd closes the store right after
// Shutdown returns, so Shutdown must not return while a stream commit is
// still running (a commit reaching a closed Pebble panics), and the write
// being committed must be answered.
func TestShutdownWaitsForInFlightCommit(t *testing.T) {
	e, ss := newSlowEnv(t)
	e.createText("/s", "x")
	ss.hold()
	res := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_, err := e.s.Append(ctx, "/s", AppendRequest{ContentType: ctText, Records: recs("y")})
		res <- err
	}()
	ss.awaitSync(t)
	if goroutinesIn(commitFrame) == 0 {
		t.Fatalf("no goroutine in %s while a commit is held: the frame name is stale", commitFrame)
	}

	shut := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		shut <- e.s.Shutdown(ctx)
	}()
	select {
	case err := <-shut:
		t.Errorf("Shutdown returned (%v) while a commit was still in its WAL sync; closing the store now would race that commit", err)
	case <-time.After(200 * time.Millisecond):
	}
	ss.release()
	if err := recv(t, shut, "Shutdown"); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if n := goroutinesIn(commitFrame); n > 0 {
		t.Errorf("Shutdown returned with %d commit goroutine(s) still running", n)
	}
	if err := recv(t, res, "append"); err != nil && !errors.Is(err, ErrShuttingDown) {
		t.Errorf("append committed across Shutdown was never answered: %v", err)
	}
	// Let any stray commit finish before the cleanup closes the store.
	eventually(t, opTimeout, "commits to finish", func() bool { return goroutinesIn(commitFrame) == 0 })
}

// TestReadRenewalSurvivesRestart: a read renews a sliding TTL, and the
// renewal outlives a graceful restart and a crash (only synced data kept)
// even though the stream was never written after its creation.
func TestReadRenewalSurvivesRestart(t *testing.T) {
	for _, crash := range []bool{false, true} {
		t.Run(map[bool]string{false: "graceful", true: "crash"}[crash], func(t *testing.T) {
			clk := newFakeClock()
			e := newCrashableEnv(t, func(c *Config) { c.Now = clk.Now })
			e.create("/s", CreateRequest{ContentType: ctText, Expiry: protocol.Expiry{HasTTL: true, TTL: 10 * time.Second}})
			clk.Advance(6 * time.Second)
			h, snap := e.open("/s")
			e.s.Touch(h, snap) // a read at t=6s
			waitPersistedAccess(t, e, "/s", clk.Now())
			if crash {
				e = e.crash()
			} else {
				e.restart()
			}
			expectAnchoredAt6s(t, e, clk, "a read")
		})
	}
}

// TestGracefulStopPersistsRecentRenewal: a renewal newer than the
// persisted one by less than renewInterval is written when the actor stops.
func TestGracefulStopPersistsRecentRenewal(t *testing.T) {
	clk := newFakeClock()
	e := newEnv(t, func(c *Config) { c.Now = clk.Now })
	e.create("/s", CreateRequest{ContentType: ctText, Expiry: protocol.Expiry{HasTTL: true, TTL: 10 * time.Second}})
	h, snap := e.open("/s")
	clk.Advance(2 * time.Second)
	e.s.Touch(h, snap) // persisted through the actor
	waitPersistedAccess(t, e, "/s", clk.Now())
	clk.Advance(600 * time.Millisecond)
	e.s.Touch(h, snap) // within renewInterval of the last request: memory only
	e.restart()
	st, err := e.st.Load("/s")
	if err != nil || !st.Meta.LastAccess.Equal(clk.Now()) {
		t.Fatalf("after restart: anchor %v (%v), want %v", st.Meta.LastAccess, err, clk.Now())
	}
}

// waitPersistedAccess waits until the stored TTL anchor of path is want.
func waitPersistedAccess(t *testing.T, e *env, path string, want time.Time) {
	t.Helper()
	deadline := time.Now().Add(opTimeout)
	for {
		st, err := e.st.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Meta.LastAccess.Equal(want) {
			// Pebble shows a batch before its WAL is synced: wait for the
			// commit to return, or a simulated power loss may drop it.
			eventually(t, opTimeout, "the renewal's commit to return", func() bool { return goroutinesIn(commitFrame) == 0 })
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("anchor never persisted: %v, want %v", st.Meta.LastAccess, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestActorFailureAnswersAndRecovers: a request during which the stream
// actor panics gets an error at once (not silence), and the next request
// is served by a fresh incarnation that reloaded the stream.
func TestActorFailureAnswersAndRecovers(t *testing.T) {
	e, armed := newEnvFailingOnce(t)
	e.createText("/s")
	e.appendText("/s", "a")
	armed.Store(true)
	_, err := e.s.Append(opCtx(t), "/s", AppendRequest{ContentType: ctText, Records: recs("b")})
	if !errors.Is(err, errActorFailed) {
		t.Fatalf("Append during the failure = %v, want errActorFailed", err)
	}
	if r := e.appendText("/s", "c"); r.NextOffset != 2 {
		t.Fatalf("append after the failure = %+v, want next offset 2", r)
	}
	if b, _ := e.readAll("/s"); string(b) != "ac" {
		t.Fatalf("stream holds %q, want %q", b, "ac")
	}
}

// newEnvFailingOnce starts an env whose stream actor panics on the first
// append it handles after armed is set.
func newEnvFailingOnce(t *testing.T) (*env, *atomic.Bool) {
	t.Helper()
	armed := new(atomic.Bool)
	e := newEnv(t, func(c *Config) {
		c.beforeDispatch = func(m any) {
			if _, ok := m.(*appendMsg); ok && armed.CompareAndSwap(true, false) {
				panic("injected failure")
			}
		}
	})
	return e, armed
}

// TestActorFailureRetriesQueuedRequests: requests already queued in the
// mailbox of an actor that panics are served by the next incarnation, not
// dropped with the failed actor.
func TestActorFailureRetriesQueuedRequests(t *testing.T) {
	const queued = 8
	var armed atomic.Bool
	var wg sync.WaitGroup
	var e *env
	errs := make(chan error, queued)
	e = newEnv(t, func(c *Config) {
		c.beforeDispatch = func(m any) {
			if _, ok := m.(*appendMsg); !ok || !armed.CompareAndSwap(true, false) {
				return
			}
			// Queue more appends behind this one, then fail.
			for range queued {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, err := e.s.Append(opCtx(t), "/s", AppendRequest{ContentType: ctText, Records: recs("q")})
					errs <- err
				}()
			}
			time.Sleep(100 * time.Millisecond)
			panic("injected failure")
		}
	})
	e.createText("/s")
	armed.Store(true)
	if _, err := e.s.Append(opCtx(t), "/s", AppendRequest{ContentType: ctText, Records: recs("b")}); !errors.Is(err, errActorFailed) {
		t.Fatalf("Append during the failure = %v, want errActorFailed", err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("queued append: %v", err)
		}
	}
	if b, _ := e.readAll("/s"); string(b) != strings.Repeat("q", queued) {
		t.Fatalf("stream holds %q, want %d queued appends", b, queued)
	}
}

// TestRenewalLaterInTheIntervalIsPersisted: Touch sends one renewal per
// interval; a read later in that interval is persisted by the actor's
// follow-up check, so it too survives a power loss.
func TestRenewalLaterInTheIntervalIsPersisted(t *testing.T) {
	clk := newFakeClock()
	e := newCrashableEnv(t, func(c *Config) { c.Now = clk.Now })
	e.create("/s", CreateRequest{ContentType: ctText, Expiry: protocol.Expiry{HasTTL: true, TTL: 10 * time.Second}})
	h, snap := e.open("/s")
	clk.Advance(2 * time.Second)
	e.s.Touch(h, snap) // t=2s: sent to the actor and persisted
	waitPersistedAccess(t, e, "/s", clk.Now())
	clk.Advance(500 * time.Millisecond)
	e.s.Touch(h, snap)                         // t=2.5s: within the interval, memory only
	waitPersistedAccess(t, e, "/s", clk.Now()) // until the follow-up check
	e = e.crash()
	clk.Advance(9 * time.Second) // t=11.5s: alive only if the t=2.5s read survived
	if _, _, err := e.s.Open(opCtx(t), "/s"); err != nil {
		t.Fatalf("Open at t=11.5s after a read at t=2.5s: %v", err)
	}
}
