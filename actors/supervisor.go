package actors

import (
	"github.com/asynkron/protoactor-go/actor"

	"github.com/streamd/streamd/persistence"
)

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
