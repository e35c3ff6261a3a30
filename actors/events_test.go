package actors

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamd/streamd/persistence"
	"github.com/streamd/streamd/protocol"
)

// eventLog collects events from Config.OnEvent.
type eventLog struct {
	mu  sync.Mutex
	all []Event
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	l.all = append(l.all, e)
	l.mu.Unlock()
}

func (l *eventLog) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var s []string
	for _, e := range l.all {
		s = append(s, string(e.Type)+" "+e.Path)
	}
	return fmt.Sprint(s)
}

// registryMessages reads the registry stream's change messages.
func registryMessages(t *testing.T, e *env) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, m := range e.readMessages(RegistryPath) {
		var v map[string]any
		if err := json.Unmarshal(m, &v); err != nil {
			t.Fatalf("registry message %s: %v", m, err)
		}
		out = append(out, v)
	}
	return out
}

func summarize(msgs []map[string]any) string {
	var s []string
	for _, m := range msgs {
		h := m["headers"].(map[string]any)
		op := h["operation"].(string)
		if r, ok := h["reason"]; ok {
			op += "/" + r.(string)
		}
		op += "(" + h["event"].(string) + ")"
		s = append(s, op+" "+m["key"].(string))
	}
	return fmt.Sprint(s)
}

// TestLifecycleEvents: the hook sees every lifecycle change once it is
// durable, in order, and the registry stream records the same changes as
// State Protocol messages, across a restart and a power loss.
func TestLifecycleEvents(t *testing.T) {
	var log eventLog
	clock := newFakeClock()
	e := newCrashableEnv(t, func(c *Config) {
		c.OnEvent = log.add
		c.Registry = true
		c.Now = clock.Now
		c.ReapInterval = 20 * time.Millisecond
	})
	e.createText("/a", "x")
	e.append("/a", AppendRequest{Close: true})
	e.fork("/f", ForkRequest{Source: "/a", AtTail: true})
	if err := e.s.Delete(opCtx(t), "/a"); err != nil { // soft: /f reads it
		t.Fatal(err)
	}
	e.create("/ttl", CreateRequest{ContentType: ctJSON, Expiry: protocol.Expiry{HasTTL: true, TTL: time.Second}})
	clock.Advance(2 * time.Second)
	want := "[created /a closed /a created /f deleted /a created /ttl expired /ttl]"
	eventually(t, opTimeout, "the hook to see "+want, func() bool { return log.summary() == want })
	wantReg := "[insert(created) /a update(closed) /a insert(created) /f delete(deleted) /a insert(created) /ttl delete/expired(expired) /ttl]"
	for deadline := time.Now().Add(opTimeout); ; time.Sleep(5 * time.Millisecond) {
		got := summarize(registryMessages(t, e))
		if got == wantReg {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v the registry holds %s; want %s", opTimeout, got, wantReg)
		}
	}
	msgs := registryMessages(t, e)
	v := msgs[2]["value"].(map[string]any)
	if msgs[2]["type"] != "stream" || v["path"] != "/f" || v["contentType"] != ctText || v["forkedFrom"] != "/a" {
		t.Errorf("fork's created message: %v", msgs[2])
	}
	e.restart()
	e.createText("/b")
	c := e.crash()
	eventually(t, opTimeout, "the registry to keep its record across a restart and a power loss", func() bool {
		return summarize(registryMessages(t, c)) == "[insert(created) /a update(closed) /a insert(created) /f delete(deleted) /a insert(created) /ttl delete/expired(expired) /ttl insert(created) /b]"
	})
	if _, err := c.s.Append(opCtx(t), RegistryPath, AppendRequest{ContentType: ctJSON, Records: recs(`1`)}); err != nil {
		t.Logf("a write to the registry through the API is the HTTP layer's to refuse: %v", err)
	}
	if !c.s.Reserved(RegistryPath) || c.s.Reserved("/a") {
		t.Error("Reserved names the wrong paths")
	}
}

// TestRegistryOutboxSurvivesCrash: an event whose change committed but
// was not yet moved into the registry stream when the power went is moved
// there after the restart.
func TestRegistryOutboxSurvivesCrash(t *testing.T) {
	e := newCrashableEnv(t, func(c *Config) { c.Registry = true })
	for i := range 20 {
		e.createText(fmt.Sprintf("/s%d", i))
	}
	c := e.crash() // some events may still be in the outbox
	eventually(t, opTimeout, "all 20 creates in the registry", func() bool {
		return len(c.readMessages(RegistryPath)) == 20
	})
	if left, err := c.st.Outbox(10); err != nil || len(left) != 0 {
		t.Fatalf("outbox after the drain: %d entries, %v", len(left), err)
	}
	// An event left in the outbox for certain: written as a change's batch
	// writes it, with streamd stopped before any drain.
	c.stop()
	ev := Event{Type: EventCreated, Path: "/left", ContentType: ctText, CreatedAt: time.Now(), Time: time.Now()}
	// Numbered an hour ahead: events after the restart must still follow it.
	ahead := uint64(time.Now().Add(time.Hour).UnixNano())
	commitOffline(t, c.fs, func(b *persistence.Batch) error {
		return b.PutOutbox(ahead, 1<<40, outboxCreated, ev.registryMessage())
	})
	c.start()
	c.createText("/after")
	eventually(t, opTimeout, "the left event, then the next, in the registry after the restart", func() bool {
		msgs := c.readMessages(RegistryPath)
		return len(msgs) == 22 && json.Valid(msgs[20]) && string(msgs[20]) == string(ev.registryMessage()) &&
			strings.Contains(string(msgs[21]), `"key":"/after"`)
	})
}
