package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot count file descriptors: %v", err)
	}
	return len(ents)
}

// TestNoResourceLeaks drives many streams through their whole life on the
// real command (create, append, catch-up, long-poll timing out, SSE cut off
// by the client, delete), lets their actors passivate, and checks that
// file descriptors and goroutines come back to where they were: nothing a
// request or a stream leaves behind accumulates.
func TestNoResourceLeaks(t *testing.T) {
	for _, proto := range []string{"HTTP/1.1", "h2c"} {
		t.Run(proto, func(t *testing.T) {
			in := start(t, logFile(t), "--data-dir", t.TempDir(), "--actor-idle-timeout", "50ms", "--long-poll-timeout", "100ms")
			client, tr := in.client, in.tr
			if proto == "h2c" {
				// Streams of an HTTP/2 connection end by reset, not by
				// closing the connection: their handlers must end too.
				client, tr = h2cClient(new(atomic.Int32))
			}
			checkNoResourceLeaks(t, in, client, tr)
		})
	}
}

func checkNoResourceLeaks(t *testing.T, in *instance, client *http.Client, tr *http.Transport) {
	send := func(method, name, query, body string, want int) error {
		req, err := http.NewRequest(method, in.base+"/v1/stream/"+name+query, strings.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "text/plain")
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != want {
			return fmt.Errorf("%s %s%s: status %d, want %d", method, name, query, res.StatusCode, want)
		}
		return nil
	}
	// sseOnce reads the first bytes of an SSE response and goes away.
	sseOnce := func(name string) error {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, in.base+"/v1/stream/"+name+"?offset=-1&live=sse", nil)
		if err != nil {
			return err
		}
		res, err := client.Do(req)
		if err != nil {
			return err
		}
		defer res.Body.Close()
		if _, err := res.Body.Read(make([]byte, 64)); err != nil {
			return fmt.Errorf("SSE read: %w", err)
		}
		return nil
	}
	lifecycle := func(name string) error {
		steps := []func() error{
			func() error { return send(http.MethodPut, name, "", "a", http.StatusCreated) },
			func() error { return send(http.MethodPost, name, "", "b", http.StatusNoContent) },
			func() error { return send(http.MethodGet, name, "?offset=-1", "", http.StatusOK) },
			func() error {
				return send(http.MethodGet, name, "?offset=now&live=long-poll", "", http.StatusNoContent)
			},
			func() error { return sseOnce(name) },
			func() error { return send(http.MethodDelete, name, "", "", http.StatusNoContent) },
		}
		for _, step := range steps {
			if err := step(); err != nil {
				return err
			}
		}
		return nil
	}
	round := func(r int) {
		var wg sync.WaitGroup
		errs := make(chan error, 100)
		for i := range 100 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := lifecycle(fmt.Sprintf("leak/%d/%d", r, i)); err != nil {
					errs <- err
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		tr.CloseIdleConnections()
	}
	settled := func() (int, int) {
		time.Sleep(300 * time.Millisecond) // actors passivate, connections close
		return openFDs(t), runtime.NumGoroutine()
	}

	round(0) // warm up: pools, Pebble's files, runtime goroutines
	fds0, gs0 := settled()
	for r := 1; r <= 3; r++ {
		round(r)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		fds, gs := settled()
		if fds <= fds0+8 && gs <= gs0+10 {
			t.Logf("after 300 more streams: %d fds (were %d), %d goroutines (were %d)", fds, fds0, gs, gs0)
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<20)
			t.Fatalf("after 300 more streams: %d fds (were %d), %d goroutines (were %d)\n%s", fds, fds0, gs, gs0, buf[:runtime.Stack(buf, true)])
		}
	}
}
