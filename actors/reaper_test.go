package actors

import (
	"testing"
	"time"

	"github.com/streamd/streamd/protocol"
)

// TestReaperDeletesPassivatedExpiredStreams: an expired stream whose actor
// passivated long before its expiry is still deleted from storage, by the
// reaper driven by the expiry index; a stream kept alive by reads and one
// without expiry stay.
func TestReaperDeletesPassivatedExpiredStreams(t *testing.T) {
	t.Parallel() // runs for seconds of real time
	e := newEnv(t, func(c *Config) {
		c.IdleTimeout = 50 * time.Millisecond
		c.ReapInterval = 100 * time.Millisecond
	})
	ttl := protocol.Expiry{HasTTL: true, TTL: time.Second}
	e.create("/ttl", CreateRequest{ContentType: ctText, Expiry: ttl, Records: recs("x")})
	e.create("/at", CreateRequest{ContentType: ctText, Expiry: protocol.Expiry{ExpiresAt: time.Now().Add(time.Second)}, Records: recs("y")})
	e.create("/read", CreateRequest{ContentType: ctText, Expiry: ttl, Records: recs("r")})
	e.createText("/keep", "z")
	eventually(t, 2*time.Second, "actors to passivate", func() bool {
		return e.handleOf("/ttl") == nil && e.handleOf("/at") == nil
	})
	start := time.Now()
	stopReads := make(chan struct{})
	readsDone := make(chan struct{})
	go func() { // keep /read alive by touching it well within its TTL
		defer close(readsDone)
		for {
			select {
			case <-stopReads:
				return
			case <-time.After(200 * time.Millisecond):
				if h, _, err := e.s.Open(opCtx(t), "/read"); err == nil {
					h.Touch(time.Now())
				}
			}
		}
	}()
	for _, p := range []string{"/ttl", "/at"} {
		eventually(t, 4*time.Second, p+" to be deleted from storage", func() bool {
			st, err := e.st.Load(p)
			return err == nil && st == nil
		})
	}
	time.Sleep(500 * time.Millisecond) // /read is now past its first deadline
	close(stopReads)
	<-readsDone
	if d := time.Since(start); d < 900*time.Millisecond {
		t.Fatalf("streams deleted after %v, before their 1s lifetime", d)
	}
	for _, p := range []string{"/read", "/keep"} {
		if st, err := e.st.Load(p); err != nil || st == nil {
			t.Fatalf("%s was deleted: %v", p, err)
		}
	}
	// Deleted streams leave no index entries behind.
	eventually(t, 3*time.Second, "index to hold only /read", func() bool {
		entries, err := e.st.ExpiredEntries(time.Now().Add(time.Hour), 100)
		return err == nil && len(entries) == 1 && entries[0].Path == "/read"
	})
}

// TestReaperAfterRestart: a stream that expired while streamd was down is
// deleted after the restart without any request for it.
func TestReaperAfterRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) { c.ReapInterval = 100 * time.Millisecond })
	e.create("/gone", CreateRequest{ContentType: ctText, Expiry: protocol.Expiry{ExpiresAt: time.Now().Add(300 * time.Millisecond)}, Records: recs("x")})
	e.stop()
	time.Sleep(400 * time.Millisecond)
	e.start()
	eventually(t, 3*time.Second, "/gone to be deleted from storage", func() bool {
		st, err := e.st.Load("/gone")
		return err == nil && st == nil
	})
}
