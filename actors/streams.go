package actors

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/streamd/streamd/persistence"
)

// Config configures Streams.
type Config struct {
	Store *persistence.Store
	// IdleTimeout is how long a stream actor with nothing to do stays in
	// memory before passivating (default 60s).
	IdleTimeout time.Duration
	// ActorSoftLimit is a soft limit on stream actors in memory (default
	// 100,000). Above it, actors passivate after one idle second instead of
	// IdleTimeout, so a burst touching a million streams does not keep a
	// million actors (a few KiB each) for a whole IdleTimeout.
	ActorSoftLimit int64
	// SubscriberBuffer is how many undelivered deltas a live subscriber may
	// lag before it is dropped to catch up from storage (default 256).
	SubscriberBuffer int
	// ReapInterval is how often expired streams nobody touches are looked
	// for in the expiry index and deleted (default 1s).
	ReapInterval time.Duration
	// RestingStateBytes bounds the memory holding the state of passivated
	// streams, so that reactivating one skips storage (see resting.go);
	// about 120 bytes per stream. 0 means the default,
	// 256 MiB; negative disables it.
	RestingStateBytes int64
	Logger            *slog.Logger
	// Now returns the current time (default time.Now); tests override it.
	Now func() time.Time
	// beforeDispatch, if set, sees every request a stream actor handles;
	// tests use it to make an actor fail.
	beforeDispatch func(m any)
	// onPark, if set, is called by Wait just before a waiter blocks;
	// benchmarks use it to append only once every waiter is parked.
	onPark func()
}

// Streams is the entry point to the stream actors: it owns the actor system
// and the supervisor and offers a blocking, context-aware API to handlers.
type Streams struct {
	cfg   Config
	log   *slog.Logger
	sys   *actor.ActorSystem
	root  *actor.RootContext
	sup   *actor.PID
	store *persistence.Store
	cache sync.Map     // path -> *Handle, written only by the supervisor
	live  atomic.Int64 // stream actors spawned and not yet terminated
	// resting mirrors the supervisor's resting entry count; storeLoads and
	// restingLoads count activations by where the state came from.
	resting, storeLoads, restingLoads atomic.Int64
	nextID                            atomic.Uint64
	closed                            atomic.Bool
	// commits counts batch commits in flight, so Shutdown can wait for them
	// before the caller closes the store underneath them.
	commits sync.WaitGroup

	// failureStrategy stops a stream actor whose panic escaped its own
	// recovery (streamActor.crash); its next request spawns a fresh
	// incarnation that reloads from Pebble.
	failureStrategy actor.SupervisorStrategy

	shutdownOnce sync.Once
	shutdownErr  error
	stopReaper   chan struct{}
	reaperDone   chan struct{}
}

// Start creates the actor system and the supervisor.
func Start(cfg Config) (*Streams, error) {
	if cfg.Store == nil {
		return nil, errors.New("actors: Config.Store is required")
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = 60 * time.Second
	}
	if cfg.ActorSoftLimit <= 0 {
		cfg.ActorSoftLimit = 100_000
	}
	if cfg.SubscriberBuffer <= 0 {
		cfg.SubscriberBuffer = 256
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.ReapInterval <= 0 {
		cfg.ReapInterval = time.Second
	}
	if cfg.RestingStateBytes == 0 {
		cfg.RestingStateBytes = 256 << 20
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sys := actor.NewActorSystem(
		actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
			// protoactor logs lifecycle chatter at Info; keep it below
			// streamd's default level unless debugging.
			return slog.New(demoteHandler{log.Handler()}).With("lib", "protoactor")
		}),
		actor.WithDeadLetterRequestLogging(false),
	)
	s := &Streams{cfg: cfg, log: log, sys: sys, root: sys.Root, store: cfg.Store}
	s.failureStrategy = actor.NewOneForOneStrategy(0, time.Second, func(reason any) actor.Directive {
		log.Error("stream actor failed; stopping it", "reason", reason)
		return actor.StopDirective
	})
	// A request sent to an actor that has already stopped becomes a dead
	// letter; answer it so the caller relocates the stream at once.
	sys.EventStream.Subscribe(func(evt any) {
		if dl, ok := evt.(*actor.DeadLetterEvent); ok {
			if r, ok := dl.Message.(retrier); ok {
				r.retry()
			}
		}
	})
	props := actor.PropsFromProducer(func() actor.Actor { return newSupervisor(s) })
	pid, err := sys.Root.SpawnNamed(props, "streams")
	if err != nil {
		return nil, fmt.Errorf("spawn stream supervisor: %w", err)
	}
	s.sup = pid
	s.stopReaper, s.reaperDone = make(chan struct{}), make(chan struct{})
	go s.reap()
	return s, nil
}

// reapBatch bounds the entries handled per reaper pass.
const reapBatch = 1000

// reap periodically hands expiry index entries that came due to their
// stream actors (spawning passivated ones), so expired streams are deleted
// and their space reclaimed even if no request touches them again. There
// is no timer per stream kept in memory for this.
func (s *Streams) reap() {
	defer close(s.reaperDone)
	t := time.NewTicker(s.cfg.ReapInterval)
	defer t.Stop()
	var mem memoryReleaser
	for {
		select {
		case <-s.stopReaper:
			return
		case <-t.C:
		}
		s.maybeReleaseMemory(&mem)
		entries, err := s.store.ExpiredEntries(s.cfg.Now(), reapBatch)
		if err != nil {
			s.log.Warn("scan expiry index", "err", err)
			continue
		}
		for _, e := range entries {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			h, err := s.locate(ctx, e.Path)
			cancel()
			if err != nil {
				break // shutting down or overloaded: the next pass retries
			}
			h.send(s.root, &reapMsg{entry: e})
		}
	}
}

// Shutdown stops every stream actor after the messages already queued, then
// returns; later calls return the first call's result. HTTP intake must already be stopped; the store is closed by the
// caller afterwards.
func (s *Streams) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() { s.shutdownErr = s.shutdown(ctx) })
	return s.shutdownErr
}

func (s *Streams) shutdown(ctx context.Context) error {
	s.closed.Store(true)
	close(s.stopReaper)
	<-s.reaperDone
	// Stop the stream actors with Poison, not Stop: Stop (what a stopping
	// parent does to its children) drops queued messages unanswered.
	drained := make(chan struct{})
	s.root.Send(s.sup, &shutdownMsg{done: drained})
	select {
	case <-drained:
	case <-ctx.Done():
		return fmt.Errorf("stop stream actors: %w", ctx.Err())
	}
	f := s.root.PoisonFuture(s.sup)
	done := make(chan error, 1)
	go func() { done <- f.Wait() }()
	select {
	case err := <-done:
		if err != nil && !errors.Is(err, actor.ErrTimeout) {
			return fmt.Errorf("stop stream actors: %w", err)
		}
		s.commits.Wait()
		return nil
	case <-ctx.Done():
		return fmt.Errorf("stop stream actors: %w", ctx.Err())
	}
}

// overLimitIdleTimeout is the idle timeout while more actors than
// ActorSoftLimit are in memory.
const overLimitIdleTimeout = time.Second

// idleTimeout is the idle time after which a stream actor passivates now.
// Actors check it when spawned and at each idle tick, so over the limit,
// new and newly idle actors go quickly while the limit's worth armed
// earlier keep their full timeout.
func (s *Streams) idleTimeout() time.Duration {
	if s.live.Load() > s.cfg.ActorSoftLimit {
		return min(s.cfg.IdleTimeout, overLimitIdleTimeout)
	}
	return s.cfg.IdleTimeout
}

// ActorStats counts stream actor activity since Start.
type ActorStats struct {
	// Live is the number of stream actors in memory.
	Live int64 `json:"live"`
	// Resting is the number of passivated streams whose state is kept in
	// memory for their next activation.
	Resting int64 `json:"resting"`
	// StoreLoads counts activations that loaded the stream from storage;
	// RestingLoads those that took the state kept at passivation.
	StoreLoads   int64 `json:"storeLoads"`
	RestingLoads int64 `json:"restingLoads"`
}

// Stats returns the current ActorStats.
func (s *Streams) Stats() ActorStats {
	return ActorStats{Live: s.live.Load(), Resting: s.resting.Load(), StoreLoads: s.storeLoads.Load(), RestingLoads: s.restingLoads.Load()}
}

// renewInterval bounds how often reads of one stream persist its renewed
// sliding-TTL anchor, and so how much renewal a crash can take back.
const renewInterval = time.Second

// Touch records a read of the stream behind h (snap is its snapshot): it
// refreshes a sliding TTL at once (in memory, so the read never waits), and
// at most once per renewInterval asks the actor to persist the new anchor
// through its ordinary commit pipeline. A crash therefore loses at most about a
// second of read renewals; without this, a stream only read (never
// written) since its creation would come back from a crash with its TTL
// counted from the creation.
func (s *Streams) Touch(h *Handle, snap *Snapshot) {
	now := s.cfg.Now()
	h.Touch(now)
	if !snap.Expiry.HasTTL {
		return
	}
	n, sent := now.UnixNano(), h.renewSent.Load()
	if n-sent >= int64(renewInterval) && h.renewSent.CompareAndSwap(sent, n) {
		h.send(s.root, &renewMsg{})
	}
}

// Now returns the clock used for expiry.
func (s *Streams) Now() time.Time { return s.cfg.Now() }

// locate returns a loaded handle for path: from the lock-free cache when
// the actor is live, otherwise from the supervisor, which spawns it.
func (s *Streams) locate(ctx context.Context, path string) (*Handle, error) {
	if s.closed.Load() {
		return nil, ErrShuttingDown
	}
	var h *Handle
	if v, ok := s.cache.Load(path); ok && !v.(*Handle).retired() {
		h = v.(*Handle)
	} else {
		reply := make(chan *Handle, 1)
		s.root.Send(s.sup, &locateMsg{path: path, reply: reply})
		select {
		case h = <-reply:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if h == nil {
			return nil, ErrShuttingDown
		}
	}
	select {
	case <-h.ready:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	if h.loadErr != nil {
		return nil, h.loadErr
	}
	return h, nil
}

// call sends a request built around a fresh reply channel to path's actor
// and waits for the answer, relocating the actor if it retired meanwhile.
func call[T any](ctx context.Context, s *Streams, path string, build func(chan T) any, isRetry func(T) bool) (T, error) {
	var zero T
	for {
		h, err := s.locate(ctx, path)
		if err != nil {
			return zero, err
		}
		ch := make(chan T, 1)
		if !h.send(s.root, build(ch)) {
			continue
		}
		select {
		case v := <-ch:
			if isRetry(v) {
				continue
			}
			return v, nil
		case <-ctx.Done():
			return zero, ctx.Err()
		}
	}
}

func resultIsRetry(r Result) bool { return r.Err == errRetry }

// Create creates the stream at path, or confirms an identical one (§5.1).
func (s *Streams) Create(ctx context.Context, path string, req CreateRequest) (Result, error) {
	r, err := call(ctx, s, path, func(ch chan Result) any { return &createMsg{req: req, reply: ch} }, resultIsRetry)
	if err != nil {
		return r, err
	}
	return r, r.Err
}

// Append appends to and/or closes the stream at path (§5.2, §5.3).
func (s *Streams) Append(ctx context.Context, path string, req AppendRequest) (Result, error) {
	r, err := call(ctx, s, path, func(ch chan Result) any { return &appendMsg{req: req, reply: ch} }, resultIsRetry)
	if err != nil {
		return r, err
	}
	return r, r.Err
}

// Delete deletes the stream at path (§5.4).
func (s *Streams) Delete(ctx context.Context, path string) error {
	r, err := call(ctx, s, path, func(ch chan Result) any { return &deleteMsg{reply: ch} }, resultIsRetry)
	if err != nil {
		return err
	}
	return r.Err
}

// Open returns the handle and durable snapshot of an existing, unexpired
// stream without entering its mailbox (for HEAD and catch-up reads).
func (s *Streams) Open(ctx context.Context, path string) (*Handle, *Snapshot, error) {
	h, err := s.locate(ctx, path)
	if err != nil {
		return nil, nil, err
	}
	snap := h.Snapshot()
	if !snap.Exists {
		return nil, nil, ErrNotFound
	}
	if h.Expired(snap, s.cfg.Now()) {
		h.send(s.root, &expireTick{})
		return nil, nil, ErrNotFound
	}
	return h, snap, nil
}

// Wait parks until data beyond from becomes durable, the stream closes or
// is deleted, timeout passes (ErrWaitTimeout) or ctx ends (§5.7). It
// returns ErrBehind when data at from is already durable (read it from
// storage instead).
//
// Waiters never enter the actor's mailbox: at a fan-out of thousands of
// long-polls, each re-poll would otherwise be a message, a map entry and a
// channel send by the one actor goroutine. Instead a waiter parks on the
// handle's current wakeup, which the actor closes after each commit with
// the commit's shared Delta. No wakeup is missed:
//
//   - the waiter counts itself in parked, then takes the current wakeup,
//     then checks retirement and the published snapshot;
//   - the actor publishes the snapshot, then, if parked is non-zero, swaps
//     the wakeup out and closes it (wakeWaiters); a stopping actor retires
//     its handle first and then closes the wakeup with no delta.
//
// With sequentially consistent atomics, a waiter the actor did not count,
// or that took the next wakeup, reads the new snapshot (or the retirement)
// and does not park; any other holds the wakeup that gets closed. A waiter
// may also take a wakeup just before the commit that brought the tail to
// from (or created the incarnation it checked) closes it; that delta ends
// at from (or is a deletion of an older incarnation), and the waiter parks
// again. The actor wakes waiters before it answers the writers, so a
// writer's own next long-poll never takes the wakeup of its write.
//
// The timeout is a plain timer rather than a derived context: on a
// many-reader wake-up every re-poll parks again, and context.WithTimeout
// costs a context, a timer and a registration in the parent context.
func (s *Streams) Wait(ctx context.Context, path string, from uint64, timeout time.Duration) (*Delta, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		h, err := s.locate(ctx, path)
		if err != nil {
			return nil, err
		}
		h.parked.Add(1)
		w := h.currentWakeup()
		snap, d, err := s.checkWait(h, from)
		if snap == nil {
			h.parked.Add(-1)
			if err == errRetry {
				continue
			}
			return d, err
		}
		h.waited.Store(time.Now().UnixNano())
		if snap.Expiry.HasTTL && !h.readersArmed.Load() && h.readersArmed.CompareAndSwap(false, true) {
			h.send(s.root, &parkedMsg{})
		}
		if timer == nil {
			timer = time.NewTimer(timeout)
		}
		if s.cfg.onPark != nil {
			s.cfg.onPark()
		}
		select {
		case <-w.ch:
			h.parked.Add(-1)
			d := w.delta
			switch {
			case d == nil:
				continue // the actor retired
			case d.Deleted:
				if cur := h.Snapshot(); cur.Exists && cur.ID == snap.ID {
					// The generation taken ended with the create of the
					// incarnation this waiter checked against, not with
					// its deletion: park on the next one.
					continue
				}
			case !d.Closed && d.End <= from:
				// The generation taken ended with the commit that reached
				// from (taken just before the actor swapped it out): the
				// waiter is still at the tail; park on the next one.
				continue
			}
			return d, nil
		case <-timer.C:
			h.parked.Add(-1)
			return nil, ErrWaitTimeout
		case <-ctx.Done():
			h.parked.Add(-1)
			return nil, ctx.Err()
		}
	}
}

// checkWait decides, from the published snapshot, whether a waiter at from
// parks (it returns the snapshot) or is answered now (nil and d or err).
func (s *Streams) checkWait(h *Handle, from uint64) (*Snapshot, *Delta, error) {
	if h.retired() {
		return nil, nil, errRetry
	}
	snap := h.Snapshot()
	switch {
	case !snap.Exists || h.Expired(snap, s.cfg.Now()):
		return nil, nil, ErrNotFound
	case from < snap.Tail:
		return nil, nil, ErrBehind
	case from > snap.Tail:
		return nil, nil, ErrOffsetBeyondTail
	case snap.Closed:
		return nil, &Delta{Start: snap.Tail, End: snap.Tail, Closed: true, JSON: snap.JSON}, nil
	}
	return snap, nil, nil
}

// Subscription is a live SSE subscriber. C receives every committed Delta
// starting at the subscribed offset; the actor closes C when it drops the
// subscriber (it fell behind, or the stream closed, was deleted or its
// actor retired). After C is closed the caller resumes from storage and may
// subscribe again.
type Subscription struct {
	C  <-chan *Delta
	id uint64
	h  *Handle
	s  *Streams
}

// Subscribe registers a live subscriber at from, which must equal the
// durable tail (ErrBehind otherwise: catch up from storage first).
func (s *Streams) Subscribe(ctx context.Context, path string, from uint64) (*Subscription, error) {
	id := s.nextID.Add(1)
	for {
		h, err := s.locate(ctx, path)
		if err != nil {
			return nil, err
		}
		ch := make(chan *Delta, s.cfg.SubscriberBuffer)
		reply := make(chan error, 1)
		if !h.send(s.root, &subscribeMsg{id: id, from: from, ch: ch, reply: reply}) {
			continue
		}
		select {
		case err := <-reply:
			if err == errRetry {
				continue
			}
			if err != nil {
				return nil, err
			}
			return &Subscription{C: ch, id: id, h: h, s: s}, nil
		case <-ctx.Done():
			h.send(s.root, &unsubscribeMsg{id: id})
			return nil, ctx.Err()
		}
	}
}

// Close unregisters the subscriber.
func (sub *Subscription) Close() { sub.h.send(sub.s.root, &unsubscribeMsg{id: sub.id}) }

// actorStopped tells the supervisor that the stream actor with this PID id
// has stopped for good (passivated, failed or shut down).
type actorStopped struct {
	id string
	// rest is the stream's settled state when the actor passivated cleanly
	// (rest.state nil: no stream at the path), nil otherwise.
	rest *restHandover
}

// restHandover carries a stream's state from one actor incarnation to the
// next through the supervisor; see resting.go.
type restHandover struct{ state *persistence.StreamState }

// locateMsg asks the supervisor for path's current handle.
type locateMsg struct {
	path  string
	reply chan *Handle
}

// supervisor spawns stream actors and keeps the lock-free cache current. It
// is the only writer of Streams.cache.
type supervisor struct {
	s        *Streams
	drained  chan struct{}      // set once shutdown began
	live     map[string]*Handle // current incarnation per path (may be retired)
	paths    map[string]string  // child PID id -> path
	awaiting map[string][]chan *Handle
	resting  *restingStates
}

func newSupervisor(s *Streams) *supervisor {
	return &supervisor{s: s, live: map[string]*Handle{}, paths: map[string]string{}, awaiting: map[string][]chan *Handle{},
		resting: newRestingStates(s.cfg.RestingStateBytes)}
}

func (sv *supervisor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *shutdownMsg:
		sv.drained = m.done
		for _, h := range sv.live {
			// Once retired, no handler can enqueue behind the Poison, so
			// everything before it is processed and answered.
			h.retireWhenIdle()
			c.Poison(h.pid)
		}
		sv.answerAwaiting()
		sv.maybeDrained()
	case *locateMsg:
		if sv.drained != nil {
			m.reply <- nil
			return
		}
		h := sv.live[m.path]
		switch {
		case h == nil:
			m.reply <- sv.spawn(m.path)
		case h.retired():
			// The previous incarnation is still draining; a new one may only
			// start after it terminates, or two actors would write one stream.
			sv.awaiting[m.path] = append(sv.awaiting[m.path], m.reply)
		default:
			m.reply <- h
		}
	case *actorStopped:
		path, ok := sv.paths[m.id]
		if !ok {
			return
		}
		delete(sv.paths, m.id)
		sv.s.live.Add(-1)
		if m.rest != nil {
			sv.resting.put(path, m.rest.state)
		} else {
			sv.resting.forget(path)
		}
		sv.s.resting.Store(int64(sv.resting.len()))
		if h := sv.live[path]; h != nil && h.pid.Id == m.id {
			h.forceRetire()
			delete(sv.live, path)
			sv.s.cache.CompareAndDelete(path, h)
		}
		if sv.drained != nil {
			sv.maybeDrained()
			return
		}
		if waiting := sv.awaiting[path]; len(waiting) > 0 {
			delete(sv.awaiting, path)
			h := sv.spawn(path)
			for _, ch := range waiting {
				ch <- h
			}
		}
	case *actor.Stopping:
		sv.answerAwaiting()
	}
}

// answerAwaiting tells every caller waiting for a respawn that streamd is
// shutting down.
func (sv *supervisor) answerAwaiting() {
	for path, waiting := range sv.awaiting {
		for _, ch := range waiting {
			ch <- nil
		}
		delete(sv.awaiting, path)
	}
}

func (sv *supervisor) maybeDrained() {
	if len(sv.live) == 0 && sv.drained != nil {
		select {
		case <-sv.drained:
		default:
			close(sv.drained)
		}
	}
}

// spawn starts an actor for path.
//
// Stream actors are spawned from the root context, not as children, and
// report their own end (actorStopped) instead of being watched: protoactor's
// child set keeps removed PIDs in its slice's spare capacity, and a PID
// caches its process, so every passivated actor up to the peak count would
// stay reachable (measured: ~1 KiB each); a watch costs each actor a
// watcher set (~600 B). Memory per live actor matters on a node where a
// burst touches hundreds of thousands of streams.
func (sv *supervisor) spawn(path string) *Handle {
	h := newHandle()
	var rest *restHandover
	if st, ok := sv.resting.take(path); ok {
		rest = &restHandover{state: st}
		sv.s.resting.Store(int64(sv.resting.len()))
	}
	props := actor.PropsFromProducer(func() actor.Actor { return newStreamActor(sv.s, path, h, rest) },
		actor.WithGuardian(sv.s.failureStrategy),
		// A linked queue costs a few bytes while empty; the default
		// mailbox preallocates a ring per actor.
		actor.WithMailbox(actor.UnboundedLockfree()))
	h.pid = sv.s.root.Spawn(props)
	sv.s.live.Add(1)
	sv.live[path] = h
	sv.paths[h.pid.Id] = path
	sv.s.cache.Store(path, h)
	return h
}
