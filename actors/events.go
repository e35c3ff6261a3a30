package actors

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"time"

	"github.com/streamd/streamd/persistence"
)

// RegistryPath is the stream that records lifecycle events when
// Config.Registry is on (the reference server's __registry__ stream).
const RegistryPath = "__registry__"

// EventType is what happened to a stream.
type EventType string

// Lifecycle events, reported once the change is durable.
const (
	EventCreated EventType = "created"
	EventClosed  EventType = "closed"
	EventDeleted EventType = "deleted"
	EventExpired EventType = "expired"
)

// Event is one stream lifecycle change.
type Event struct {
	Type        EventType
	Path        string
	ContentType string
	// CreatedAt is when the stream incarnation was created; Time when this
	// event happened.
	CreatedAt, Time time.Time
	// ForkedFrom is a fork's source path (created events only).
	ForkedFrom string
}

// Outbox slots of one incarnation's events, in the order they happen.
const (
	outboxCreated byte = 1
	outboxClosed  byte = 2
	outboxGone    byte = 3 // deleted or expired
)

func (e *Event) outboxKind() byte {
	switch e.Type {
	case EventCreated:
		return outboxCreated
	case EventClosed:
		return outboxClosed
	}
	return outboxGone
}

// registryMessage is an event as the registry stream records it: a change
// message of the Durable Streams State Protocol, like the reference
// server's registry hooks write (type "stream", keyed by path), with the
// event's type and time in the headers.
func (e *Event) registryMessage() []byte {
	type value struct {
		Path        string `json:"path"`
		ContentType string `json:"contentType"`
		CreatedAt   int64  `json:"createdAt"`
		ForkedFrom  string `json:"forkedFrom,omitempty"`
		Closed      bool   `json:"closed,omitempty"`
	}
	msg := struct {
		Type    string            `json:"type"`
		Key     string            `json:"key"`
		Value   *value            `json:"value,omitempty"`
		Headers map[string]string `json:"headers"`
	}{Type: "stream", Key: e.Path, Headers: map[string]string{"event": string(e.Type), "timestamp": e.Time.UTC().Format(time.RFC3339Nano)}}
	v := &value{Path: e.Path, ContentType: e.ContentType, CreatedAt: e.CreatedAt.UnixMilli(), ForkedFrom: e.ForkedFrom}
	switch e.Type {
	case EventCreated:
		msg.Value, msg.Headers["operation"] = v, "insert"
	case EventClosed:
		v.Closed = true
		msg.Value, msg.Headers["operation"] = v, "update"
	case EventDeleted:
		msg.Headers["operation"] = "delete"
	case EventExpired:
		msg.Headers["operation"], msg.Headers["reason"] = "delete", "expired"
	}
	b, _ := json.Marshal(msg) // strings and numbers only: cannot fail
	return b
}

// events delivers lifecycle events to Config.OnEvent, in order, on its own
// goroutine, so a slow hook never stalls a stream. The queue is bounded;
// events past it are dropped and counted (the registry stream, not the
// hook, is the durable record).
type events struct {
	ch      chan Event
	dropped atomic.Int64
	done    chan struct{}
}

const eventQueue = 4096

func newEvents(hook func(Event)) *events {
	if hook == nil {
		return nil
	}
	ev := &events{ch: make(chan Event, eventQueue), done: make(chan struct{})}
	go func() {
		defer close(ev.done)
		for e := range ev.ch {
			hook(e)
		}
	}()
	return ev
}

// emit queues e for the hook; safe on a nil *events (no hook).
func (ev *events) emit(e Event) {
	if ev == nil {
		return
	}
	select {
	case ev.ch <- e:
	default:
		ev.dropped.Add(1)
	}
}

// close delivers what is queued and stops.
func (ev *events) close() {
	if ev == nil {
		return
	}
	close(ev.ch)
	<-ev.done
}

// DroppedEvents counts lifecycle events the hook missed because it fell
// behind by more than the queue.
func (s *Streams) DroppedEvents() int64 {
	if s.events == nil {
		return 0
	}
	return s.events.dropped.Load()
}

// drainMsg asks the registry stream's actor to move the outbox's events
// into its log.
type drainMsg struct{ to toldTo }

func (m *drainMsg) retry()                 { m.to.again(m) }
func (m *drainMsg) target() *toldTo        { return &m.to }
func (*drainMsg) IgnoreDeadLetterLogging() {}

// outboxPage bounds the events moved per registry commit.
const outboxPage = 1000

// onDrain appends waiting outbox events to the registry stream, deleting
// them from the outbox in the same batch. One drain is in flight at a
// time; another asked for meanwhile runs after it.
func (a *streamActor) onDrain() {
	if a.drain.inFlight {
		a.drain.again = true
		return
	}
	if !a.st.exists || a.exclusive() {
		return // created at start; a later event drains again
	}
	entries, err := a.s.store.Outbox(outboxPage)
	if err != nil {
		a.s.log.Warn("read the registry outbox", "err", err)
		return
	}
	if len(entries) == 0 {
		return
	}
	op := &writeOp{kind: opAppend, id: a.st.meta.ID, start: a.st.tail}
	for _, e := range entries {
		op.records = append(op.records, e.Event)
		op.outboxDone = append(op.outboxDone, e.Key)
		a.st.tail += uint64(len(e.Event))
	}
	a.drain.inFlight, a.drain.again = true, len(entries) == outboxPage
	a.pipe.add(op)
	a.flush()
}

// drainState tracks the registry actor's drain.
type drainState struct{ inFlight, again bool }

// drained is called when a drain's commit returned.
func (a *streamActor) drained() {
	again := a.drain.again
	a.drain = drainState{}
	if again {
		a.onDrain()
	}
}

// nextEventSeq numbers an outbox event as its batch is built. Numbers
// increase within a process and follow the wall clock in nanoseconds, so
// they keep increasing across restarts (startRegistry also starts above
// the events still waiting). An atomic, not a serial step: streams draw
// them concurrently, and an event whose batch was built after another's
// commit was acknowledged always draws a larger one.
func (s *Streams) nextEventSeq() uint64 {
	for {
		last := s.eventSeq.Load()
		next := max(uint64(max(time.Now().UnixNano(), 0)), last+1)
		if s.eventSeq.CompareAndSwap(last, next) {
			return next
		}
	}
}

// startRegistry creates the registry stream if needed and moves events
// left in the outbox (by a crash) into it.
func (s *Streams) startRegistry() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	last, err := s.cfg.Store.LastOutboxSeq()
	if err != nil {
		return err
	}
	s.eventSeq.Store(last)
	if _, err := s.Create(ctx, RegistryPath, CreateRequest{ContentType: "application/json"}); err != nil {
		return err
	}
	s.tell(RegistryPath, &drainMsg{})
	return nil
}

// event returns the lifecycle event op records, if any, stamped now.
func (a *streamActor) newEvent(t EventType, meta *persistence.Meta, now time.Time) *Event {
	if a.path == RegistryPath && a.s.cfg.Registry {
		return nil // the registry does not record itself
	}
	e := &Event{Type: t, Path: a.path, ContentType: meta.ContentType, CreatedAt: meta.CreatedAt, Time: now}
	if meta.Fork != nil {
		e.ForkedFrom = meta.Fork.SourcePath
	}
	return e
}
