package streamdtest_test

import (
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamd/streamd/actors"
	"github.com/streamd/streamd/streamdtest"
)

func send(t *testing.T, method, url, body string, header ...string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestDirSurvivesRestart: a server on a directory finds its streams again.
func TestDirSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	a := streamdtest.New(t, streamdtest.Options{Dir: dir})
	send(t, http.MethodPut, a.StreamURL("s"), "", "Content-Type", "text/plain")
	send(t, http.MethodPost, a.StreamURL("s"), "kept", "Content-Type", "text/plain")
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	b := streamdtest.New(t, streamdtest.Options{Dir: dir})
	if code, body := send(t, http.MethodGet, b.StreamURL("s"), ""); code != http.StatusOK || body != "kept" {
		t.Errorf("after restart: %d %q; want 200 \"kept\"", code, body)
	}
}

// TestClearWithForks: Clear removes streams, forks and fork sources, and
// every path can be created again at once.
func TestClearWithForks(t *testing.T) {
	srv := streamdtest.New(t, streamdtest.Options{})
	for _, p := range []string{"src", "a/b", "c%2Fd"} {
		if code, _ := send(t, http.MethodPut, srv.StreamURL(p), "", "Content-Type", "text/plain"); code != http.StatusCreated {
			t.Fatalf("PUT %s: %d", p, code)
		}
	}
	send(t, http.MethodPost, srv.StreamURL("src"), "x", "Content-Type", "text/plain")
	if code, _ := send(t, http.MethodPut, srv.StreamURL("fork"), "", "Stream-Forked-From", "/v1/stream/src"); code != http.StatusCreated {
		t.Fatalf("fork: %d", code)
	}
	if err := srv.Clear(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"src", "fork", "a/b", "c%2Fd"} {
		if code, _ := send(t, http.MethodGet, srv.StreamURL(p), ""); code != http.StatusNotFound {
			t.Errorf("GET %s after Clear: %d; want 404", p, code)
		}
		if code, _ := send(t, http.MethodPut, srv.StreamURL(p), "", "Content-Type", "text/plain"); code != http.StatusCreated {
			t.Errorf("PUT %s after Clear: %d; want 201", p, code)
		}
	}
}

// TestHooksAndRegistry: OnEvent sees the lifecycle, and the registry
// stream records it.
func TestHooksAndRegistry(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	srv := streamdtest.New(t, streamdtest.Options{Registry: true, OnEvent: func(e actors.Event) {
		mu.Lock()
		seen = append(seen, string(e.Type)+" "+e.Path)
		mu.Unlock()
	}})
	send(t, http.MethodPut, srv.StreamURL("s"), "", "Content-Type", "text/plain")
	send(t, http.MethodPost, srv.StreamURL("s"), "", "Stream-Closed", "true")
	send(t, http.MethodDelete, srv.StreamURL("s"), "")
	want := "created s,closed s,deleted s"
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		got := strings.Join(seen, ",")
		mu.Unlock()
		_, reg := send(t, http.MethodGet, srv.StreamURL("__registry__")+"?offset=-1", "")
		if got == want && strings.Count(reg, `"key":"s"`) == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events %q, registry %s; want %q and three registry messages", got, reg, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestLongPollTimeout: the option reaches the server.
func TestLongPollTimeout(t *testing.T) {
	srv := streamdtest.New(t, streamdtest.Options{LongPollTimeout: 50 * time.Millisecond})
	send(t, http.MethodPut, srv.StreamURL("s"), "", "Content-Type", "text/plain")
	if code, _ := send(t, http.MethodGet, srv.StreamURL("s")+"?offset=now&live=long-poll", ""); code != http.StatusNoContent {
		t.Errorf("long-poll: %d; want 204 after the short timeout", code)
	}
}
