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
	// SubscriberBufferBytes bounds the bytes of those deltas (default 4
	// MiB); a single larger delta is still delivered to a subscriber that
	// has nothing else queued.
	SubscriberBufferBytes int64
	// MaxLiveReaders bounds waiting long-polls plus SSE subscribers in
	// total (default 100,000), MaxLiveReadersPerStream those of one stream
	// (default 60,000). Past either, Wait and Subscribe return a
	// *LimitError.
	MaxLiveReaders, MaxLiveReadersPerStream int64
	// MaxPendingAppends bounds the appends one stream has accepted and not
	// yet committed (default 4,096); past it appends get a *LimitError.
	MaxPendingAppends int
	// MaxProducers bounds the idempotent producers one stream remembers
	// (default 10,000). A new producer past it replaces producers idle for
	// ProducerTTL (default 7 days, §5.2.1) or gets a *LimitError.
	MaxProducers int
	ProducerTTL  time.Duration
	// MaxForkDepth bounds a fork's chain (default 1,000 segments): its
	// metadata holds the chain, and a read crosses up to that many
	// streams.
	MaxForkDepth int
	// OnEvent, if set, is told every stream lifecycle event (created,
	// closed, deleted, expired) once it is durable, in order, on a
	// goroutine of its own; events past a queue of 4,096 are dropped
	// (DroppedEvents).
	OnEvent func(Event)
	// ObserveCommitLatency, if set, is told for each append how long it
	// took from its request reaching the stream's actor to its batch's
	// sync returning; called from actor goroutines, so it must be cheap.
	ObserveCommitLatency func(time.Duration)
	// Registry records every lifecycle event in the JSON stream at
	// RegistryPath, in the batch of the change it records (events wait in
	// an outbox there until the registry stream takes them in).
	Registry bool
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
	// liveReaders counts waiting long-polls and SSE subscribers.
	liveReaders atomic.Int64
	events      *events
	eventSeq    atomic.Uint64 // last outbox sequence number drawn (nextEventSeq)
	// telling counts messages being told in the background (Streams.tell);
	// crashed records when paths' actors failed (path -> time.Time), which
	// delays collection of soft-deleted streams (collectWait).
	telling sync.WaitGroup
	crashed sync.Map
	limits  stateLimits
	// resting mirrors the supervisor's resting entry count; storeLoads and
	// restingLoads count activations by where the state came from.
	resting, storeLoads, restingLoads atomic.Int64
	// counters are totals for metrics (counters.go).
	counters counters
	nextID   atomic.Uint64
	closed   atomic.Bool
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
	if cfg.SubscriberBufferBytes <= 0 {
		cfg.SubscriberBufferBytes = 4 << 20
	}
	if cfg.MaxLiveReaders <= 0 {
		cfg.MaxLiveReaders = 100_000
	}
	if cfg.MaxLiveReadersPerStream <= 0 {
		cfg.MaxLiveReadersPerStream = 60_000
	}
	if cfg.MaxPendingAppends <= 0 {
		cfg.MaxPendingAppends = 4096
	}
	if cfg.MaxProducers <= 0 {
		cfg.MaxProducers = 10_000
	}
	if cfg.ProducerTTL <= 0 {
		cfg.ProducerTTL = 7 * 24 * time.Hour
	}
	if cfg.MaxForkDepth <= 0 {
		cfg.MaxForkDepth = 1000
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
	s := &Streams{cfg: cfg, log: log, sys: sys, root: sys.Root, store: cfg.Store,
		limits: stateLimits{maxProducers: cfg.MaxProducers, producerTTL: cfg.ProducerTTL}}
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
	s.events = newEvents(cfg.OnEvent)
	if cfg.Registry {
		if err := s.startRegistry(); err != nil {
			_ = s.Shutdown(context.Background())
			return nil, fmt.Errorf("start the registry stream: %w", err)
		}
	}
	return s, nil
}

// Reserved reports whether clients may not write to path: the registry
// stream, when on.
func (s *Streams) Reserved(path string) bool { return s.cfg.Registry && path == RegistryPath }

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
		s.telling.Wait()
		s.events.close()
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
	var sent time.Time
	if s.cfg.ObserveCommitLatency != nil {
		sent = time.Now()
	}
	r, err := call(ctx, s, path, func(ch chan Result) any { return &appendMsg{req: req, reply: ch, sent: sent} }, resultIsRetry)
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
	switch {
	case !snap.Exists:
		return nil, nil, ErrNotFound
	case snap.SoftDeleted:
		return nil, nil, ErrGone
	}
	if h.Expired(snap, s.cfg.Now()) {
		h.send(s.root, &expireTick{})
		return nil, nil, ErrNotFound
	}
	return h, snap, nil
}
