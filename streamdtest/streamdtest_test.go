package streamdtest_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/streamd/streamd/actors"
	"github.com/streamd/streamd/httpapi"
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

// TestInjectFault: a fault armed from Go fires for its count, never
// changes what is stored, and the HTTP API is there only when asked for.
func TestInjectFault(t *testing.T) {
	srv := streamdtest.New(t, streamdtest.Options{})
	url := srv.StreamURL("s")
	send(t, http.MethodPut, url, "", "Content-Type", "text/plain")
	retry := 2
	if err := srv.InjectFault("s", httpapi.Fault{Status: http.StatusServiceUnavailable, RetryAfter: &retry, Count: 2, Method: http.MethodPost}); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		code, _ := send(t, http.MethodPost, url, "x", "Content-Type", "text/plain")
		want := http.StatusServiceUnavailable
		if i == 2 {
			want = http.StatusNoContent
		}
		if code != want {
			t.Errorf("append %d: %d; want %d", i, code, want)
		}
	}
	if code, body := send(t, http.MethodGet, url, ""); code != http.StatusOK || body != "x" {
		t.Errorf("read: %d %q; want only the append that was not refused", code, body)
	}
	if err := srv.InjectFault("s", httpapi.Fault{Status: 42}); !errors.Is(err, httpapi.ErrInvalidFault) {
		t.Errorf("bad fault: %v; want ErrInvalidFault", err)
	}
	if err := srv.InjectFault("s", httpapi.Fault{Status: http.StatusInternalServerError}); err != nil {
		t.Fatal(err)
	}
	srv.ClearFaults()
	if code, _ := send(t, http.MethodGet, url, ""); code != http.StatusOK {
		t.Errorf("after ClearFaults: %d", code)
	}
	if code, _ := send(t, http.MethodPost, srv.URL+"/_test/inject-error", `{"path":"/v1/stream/s","status":500}`); code != http.StatusNotFound {
		t.Errorf("fault API without TestEndpoints: %d; want 404", code)
	}
	withAPI := streamdtest.New(t, streamdtest.Options{TestEndpoints: true})
	send(t, http.MethodPut, withAPI.StreamURL("a/b"), "", "Content-Type", "text/plain")
	// Client suites post relative to their base URL, the stream prefix.
	if code, _ := send(t, http.MethodPost, withAPI.URL+"/v1/stream/_test/inject-error", `{"path":"/a/b","status":502}`, "Content-Type", "application/json"); code != http.StatusOK {
		t.Fatalf("arming over HTTP: %d", code)
	}
	if code, _ := send(t, http.MethodGet, withAPI.StreamURL("a/b"), ""); code != http.StatusBadGateway {
		t.Errorf("read with a fault armed over HTTP: %d; want 502", code)
	}
}
