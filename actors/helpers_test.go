package actors

import (
	"bytes"
	"context"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"

	"github.com/streamd/streamd/persistence"
	"github.com/streamd/streamd/protocol"
)

const (
	ctText   = "text/plain"
	ctJSON   = "application/json"
	ctBinary = "application/octet-stream"

	// opTimeout bounds every single request a test makes, so a lost reply
	// fails the test instead of hanging it.
	opTimeout = 5 * time.Second
)

// fakeClock is a Config.Now that only moves when told to.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock() *fakeClock {
	c := &fakeClock{}
	c.ns.Store(time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC).UnixNano())
	return c
}

func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// env is one Streams over one Pebble store on an in-memory filesystem.
type env struct {
	t  testing.TB
	fs *vfs.MemFS
	// wrapFS, if set, wraps fs for the store (fault and latency injection).
	wrapFS  func(vfs.FS) vfs.FS
	cfg     Config
	st      *persistence.Store
	s       *Streams
	stopped bool
}

// newEnv starts streamd's actors on a fresh in-memory store; cfg may adjust
// the Config (Store is filled in).
func newEnv(t testing.TB, cfg ...func(*Config)) *env {
	t.Helper()
	return newEnvFS(t, nil, cfg...)
}

// newEnvFS is newEnv with the store's filesystem wrapped by wrap.
func newEnvFS(t testing.TB, wrap func(vfs.FS) vfs.FS, cfg ...func(*Config)) *env {
	t.Helper()
	return startEnv(t, &env{t: t, fs: vfs.NewMem(), wrapFS: wrap}, cfg...)
}

// newCrashableEnv is newEnv on a filesystem that can simulate a power loss
// (see crash); it is slower, as every sync snapshots the synced data.
func newCrashableEnv(t testing.TB, cfg ...func(*Config)) *env {
	t.Helper()
	return startEnv(t, &env{t: t, fs: vfs.NewCrashableMem()}, cfg...)
}

func startEnv(t testing.TB, e *env, cfg ...func(*Config)) *env {
	t.Helper()
	for _, f := range cfg {
		f(&e.cfg)
	}
	e.start()
	t.Cleanup(e.stop)
	return e
}

// start opens the store on e.fs (keeping whatever it holds) and starts a
// new Streams on it.
func (e *env) start() {
	e.t.Helper()
	var fs vfs.FS = e.fs
	if e.wrapFS != nil {
		fs = e.wrapFS(fs)
	}
	st, err := persistence.Open(persistence.Options{FS: fs})
	if err != nil {
		e.t.Fatalf("open store: %v", err)
	}
	cfg := e.cfg
	cfg.Store = st
	s, err := Start(cfg)
	if err != nil {
		st.Close()
		e.t.Fatalf("start streams: %v", err)
	}
	e.st, e.s, e.stopped = st, s, false
}

// stop shuts the actors down and closes the store, in streamd's order.
func (e *env) stop() {
	if e.stopped {
		return
	}
	e.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	if err := e.s.Shutdown(ctx); err != nil {
		e.t.Errorf("shutdown: %v", err)
	}
	if d := e.cfg.IdleTimeout; d > 0 && d < time.Second {
		// An actor's idle timer may fire just as the actor stops; let it
		// fire while this test runs, so its effects stay with this test.
		time.Sleep(2*d + 10*time.Millisecond)
	}
	if err := e.st.Close(); err != nil {
		e.t.Errorf("close store: %v", err)
	}
}

// restart simulates a process restart on the same data.
func (e *env) restart() {
	e.t.Helper()
	e.stop()
	e.start()
}

func opCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	t.Cleanup(cancel)
	return ctx
}

func (e *env) create(path string, req CreateRequest) Result {
	e.t.Helper()
	r, err := e.s.Create(opCtx(e.t), path, req)
	if err != nil {
		e.t.Fatalf("Create(%q): %v", path, err)
	}
	return r
}

func (e *env) createText(path string, records ...string) Result {
	e.t.Helper()
	return e.create(path, CreateRequest{ContentType: ctText, Records: recs(records...)})
}

func (e *env) append(path string, req AppendRequest) Result {
	e.t.Helper()
	r, err := e.s.Append(opCtx(e.t), path, req)
	if err != nil {
		e.t.Fatalf("Append(%q): %v", path, err)
	}
	return r
}

func (e *env) appendText(path string, records ...string) Result {
	e.t.Helper()
	return e.append(path, AppendRequest{ContentType: ctText, Records: recs(records...)})
}

func (e *env) open(path string) (*Handle, *Snapshot) {
	e.t.Helper()
	h, snap, err := e.s.Open(opCtx(e.t), path)
	if err != nil {
		e.t.Fatalf("Open(%q): %v", path, err)
	}
	return h, snap
}

// readAll returns the stream's durable bytes, read from Pebble exactly as
// catch-up readers do: bounded by the published snapshot's tail.
func (e *env) readAll(path string) ([]byte, *Snapshot) {
	e.t.Helper()
	_, snap := e.open(path)
	b, err := e.st.ReadBytes(snap.ID, 0, snap.Tail, 1<<40)
	if err != nil {
		e.t.Fatalf("ReadBytes(%q): %v", path, err)
	}
	if uint64(len(b)) != snap.Tail {
		e.t.Fatalf("ReadBytes(%q) returned %d bytes, snapshot tail is %d", path, len(b), snap.Tail)
	}
	return b, snap
}

// readMessages returns a stream's durable records (JSON messages).
func (e *env) readMessages(path string) [][]byte {
	e.t.Helper()
	_, snap := e.open(path)
	msgs, end, err := e.st.ReadMessages(snap.ID, 0, snap.Tail, 1<<40)
	if err != nil {
		e.t.Fatalf("ReadMessages(%q): %v", path, err)
	}
	if end != snap.Tail {
		e.t.Fatalf("ReadMessages(%q) ended at %d, snapshot tail is %d", path, end, snap.Tail)
	}
	return msgs
}

// handleOf returns the handle currently cached for path (nil if none).
func (e *env) handleOf(path string) *Handle {
	if v, ok := e.s.cache.Load(path); ok {
		return v.(*Handle)
	}
	return nil
}

func recs(rs ...string) [][]byte {
	out := make([][]byte, len(rs))
	for i, r := range rs {
		out[i] = []byte(r)
	}
	return out
}

func producer(id string, epoch, seq uint64) *protocol.Producer {
	return &protocol.Producer{ID: id, Epoch: epoch, Seq: seq}
}

// eventually polls cond until it holds or d passes.
func eventually(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// parkedIn counts goroutines blocked in a select whose innermost non-runtime
// frame is fn. A goroutine parked in Streams.Wait's own select holds the
// wakeup that the next commit closes.
func parkedIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		lines := bytes.Split(g, []byte("\n"))
		if len(lines) < 2 || !bytes.Contains(lines[0], []byte("[select")) {
			continue
		}
		for i := 1; i < len(lines); i += 2 {
			if bytes.HasPrefix(lines[i], []byte("runtime.")) {
				continue
			}
			if bytes.Contains(lines[i], []byte(fn)) {
				count++
			}
			break
		}
	}
	return count
}

// goroutinesIn counts goroutines with a frame whose name contains fn.
func goroutinesIn(fn string) int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	count := 0
	for _, g := range bytes.Split(buf, []byte("\n\n")) {
		if bytes.Contains(g, []byte(fn)) {
			count++
		}
	}
	return count
}

// commitFrame names the goroutine a stream actor commits a batch on.
const commitFrame = "actors.(*commitPipeline).flush.func"

// slowSync holds WAL syncs while its gate is closed, keeping stream commits
// in flight for as long as a test needs to observe what happens meanwhile.
type slowSync struct {
	mu      sync.Mutex
	gate    chan struct{} // nil: syncs pass
	syncing atomic.Int32  // syncs currently held
	entered chan struct{}
}

// newSlowEnv starts an env whose WAL syncs ss can hold.
func newSlowEnv(t testing.TB, cfg ...func(*Config)) (*env, *slowSync) {
	t.Helper()
	ss := &slowSync{entered: make(chan struct{}, 1)}
	e := newEnvFS(t, ss.wrap, cfg...)
	// Registered after newEnv's cleanup, so it runs first: a held sync
	// would block closing the store.
	t.Cleanup(ss.release)
	return e, ss
}

func (s *slowSync) wrap(fs vfs.FS) vfs.FS {
	return errorfs.Wrap(fs, errorfs.InjectorFunc(func(op errorfs.Op) error {
		switch op.Kind {
		case errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
		default:
			return nil
		}
		s.mu.Lock()
		g := s.gate
		s.mu.Unlock()
		if g == nil || !strings.HasSuffix(op.Path, ".log") {
			return nil
		}
		s.syncing.Add(1)
		defer s.syncing.Add(-1)
		select {
		case s.entered <- struct{}{}:
		default:
		}
		<-g
		return nil
	}))
}

// hold makes WAL syncs from now on wait for release.
func (s *slowSync) hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate == nil {
		s.gate = make(chan struct{})
	}
	select {
	case <-s.entered:
	default:
	}
}

// release lets held and future syncs proceed.
func (s *slowSync) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
}

// awaitSync waits until a commit is held in its WAL sync.
func (s *slowSync) awaitSync(t testing.TB) {
	t.Helper()
	recv(t, s.entered, "a commit to reach its WAL sync")
}

const waitFrame = "actors.(*Streams).Wait("

// waitersParked waits until n goroutines are parked inside Streams.Wait.
func waitersParked(t testing.TB, n int) {
	t.Helper()
	eventually(t, opTimeout, "waiters to park", func() bool { return parkedIn(waitFrame) >= n })
}

// asyncWait is the outcome of a Streams.Wait run by waitAsync.
type asyncWait struct {
	d   *Delta
	err error
}

// waitAsync runs Streams.Wait on its own goroutine.
func (e *env) waitAsync(ctx context.Context, path string, from uint64) <-chan asyncWait {
	ch := make(chan asyncWait, 1)
	go func() {
		d, err := e.s.Wait(ctx, path, from, time.Minute, nil)
		ch <- asyncWait{d, err}
	}()
	return ch
}

func recv[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(opTimeout):
		t.Fatalf("timed out waiting for %s", what)
		var zero T
		return zero
	}
}

// collector gathers results from concurrent goroutines.
type collector[T any] struct {
	mu  sync.Mutex
	all []T
}

func (c *collector[T]) add(v T) {
	c.mu.Lock()
	c.all = append(c.all, v)
	c.mu.Unlock()
}

// crash simulates a power loss: a new env on a copy of the filesystem
// holding only synced data. The old env keeps running on the original
// until the test ends.
func (e *env) crash() *env {
	e.t.Helper()
	c := &env{t: e.t, fs: e.fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0}), wrapFS: e.wrapFS, cfg: e.cfg}
	c.start()
	e.t.Cleanup(c.stop)
	return c
}

// commitOffline commits one batch to the store on fs while streamd is
// stopped, as an actor would have written it just before a crash.
func commitOffline(t *testing.T, fs vfs.FS, fill func(b *persistence.Batch) error) {
	t.Helper()
	st, err := persistence.Open(persistence.Options{FS: fs})
	if err != nil {
		t.Fatal(err)
	}
	b := st.NewBatch()
	defer b.Close()
	if err := fill(b); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
}
