package actors

import (
	"encoding/binary"
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"

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
		entries, err := e.st.ExpiredEntries(time.Now().Add(time.Hour), nil, 100)
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

// TestReaperCannotBeJammed: streams the reaper cannot handle do not stop
// it. Ahead of a stream that really expires, the expiry index holds 1,000
// entries written the way streamd wrote a Stream-Expires-At in the year
// 3000 before deadlines were clamped (the Unix nanoseconds overflowed, so
// they were due at once, forever) and 1,500 entries of streams whose
// metadata is corrupt, so they fail to load: more than a reaper pass
// hands out. The real expiry still happens on time, the far-future
// entries are repointed past 2262 once, and the broken ones are skipped
// rather than reloaded on every pass.
func TestReaperCannotBeJammed(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(c *Config) {
		c.IdleTimeout = 50 * time.Millisecond
		c.ReapInterval = 100 * time.Millisecond
	})
	far := time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)
	legacyNanos := uint64(max(far.UnixNano(), 0)) // what expiryKey wrote before it clamped
	if int64(legacyNanos) > time.Now().UnixNano() {
		t.Fatalf("the legacy key of %v is not due: the test would show nothing", far)
	}
	const broken, legacy = 1500, 1000
	ids := map[string]uint64{}
	for i := range broken {
		p := fmt.Sprintf("/broken/%d", i)
		ids[p] = e.create(p, CreateRequest{ContentType: ctText}).Snapshot.ID
	}
	for i := range legacy {
		p := fmt.Sprintf("/far/%d", i)
		ids[p] = e.create(p, CreateRequest{ContentType: ctText, Expiry: protocol.Expiry{ExpiresAt: far}, Records: recs("x")}).Snapshot.ID
	}
	e.stop()
	db, err := pebble.Open("", &pebble.Options{FS: e.fs, Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	due := uint64(time.Now().UnixNano())
	for p, id := range ids {
		k := make([]byte, 17)
		k[0] = 'x'
		binary.BigEndian.PutUint64(k[1:], legacyNanos)
		if strings.HasPrefix(p, "/broken/") {
			binary.BigEndian.PutUint64(k[1:], due)
			if err := db.Set([]byte("m"+p), []byte("{not json"), pebble.NoSync); err != nil {
				t.Fatal(err)
			}
		}
		binary.BigEndian.PutUint64(k[9:], id)
		if err := db.Set(k, []byte(p), pebble.NoSync); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	e.start()
	deadline := time.Now().Add(time.Second)
	e.create("/real", CreateRequest{ContentType: ctText, Expiry: protocol.Expiry{ExpiresAt: deadline}, Records: recs("r")})
	eventually(t, 10*time.Second, "/real to be reaped", func() bool {
		st, err := e.st.Load("/real")
		return err == nil && st == nil
	})
	late := time.Since(deadline)
	t.Logf("/real reaped %v after its deadline", late)
	// Jammed, the reaper never reaches /real (eventually fails above);
	// this bound leaves room for a loaded machine running tests in
	// parallel under the race detector.
	if late > 6*time.Second {
		t.Errorf("/real reaped %v after its deadline", late)
	}
	// Far-future entries now sort past 2262: nothing due but the broken.
	eventually(t, 10*time.Second, "far-future entries to be repointed", func() bool {
		due, err := e.st.ExpiredEntries(time.Now().Add(100*365*24*time.Hour), nil, 5000)
		return err == nil && len(due) == broken
	})
	for p := range ids {
		if !strings.HasPrefix(p, "/far/") {
			continue
		}
		if st, err := e.st.Load(p); err != nil || st == nil {
			t.Fatalf("%s was deleted: %v", p, err)
		}
	}
	// And the reaper has stopped reloading streams on every pass.
	time.Sleep(300 * time.Millisecond)
	loads := e.s.Stats().StoreLoads
	time.Sleep(time.Second)
	if n := e.s.Stats().StoreLoads - loads; n > 20 {
		t.Errorf("%d streams loaded in a quiet second; the reaper keeps reloading", n)
	}
}

// quietPebble discards the log lines of a Pebble opened by a test.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Errorf(string, ...any) {}
func (quietPebble) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}

// TestFarExpiryDoesNotSpin: the live actor of a stream expiring centuries
// from now sleeps. (Its expiry timer once overflowed, fired at once and
// re-armed itself forever, keeping a core busy per such stream.)
func TestFarExpiryDoesNotSpin(t *testing.T) {
	e := newEnv(t)
	e.create("/far", CreateRequest{ContentType: ctText, Expiry: protocol.Expiry{ExpiresAt: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}})
	e.open("/far")
	time.Sleep(100 * time.Millisecond)
	before := cpuTime(t)
	time.Sleep(500 * time.Millisecond)
	if used := cpuTime(t) - before; used > 200*time.Millisecond {
		t.Fatalf("%v of CPU in 500ms with one idle stream", used)
	}
	if _, err := e.s.Append(opCtx(t), "/far", AppendRequest{ContentType: ctText, Records: recs("x")}); err != nil {
		t.Fatalf("append: %v", err)
	}
}

func cpuTime(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Skipf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
