package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/streamd/streamd/persistence"
)

// get fetches url and returns its status and body.
func get(t *testing.T, client *http.Client, method, url string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return res.StatusCode, string(b)
}

// freeAddr returns a local address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestOpsEndpoints(t *testing.T) {
	type check struct {
		method, path string
		status       int
		body         string // a substring the body must contain
	}
	ops := []check{
		{"GET", "/healthz", 200, "ok"},
		{"HEAD", "/healthz", 200, ""},
		{"GET", "/readyz", 200, "ok"},
		{"GET", "/metrics", 200, "streamd_http_requests_total{"},
		{"GET", "/metrics", 200, "go_goroutines"},
		{"GET", "/metrics", 200, "streamd_pebble_metrics_up 1"},
	}
	moved := []check{
		{"GET", "/healthz", 404, ""},
		{"GET", "/readyz", 404, ""},
		{"GET", "/metrics", 404, ""},
	}
	t.Run("on the main address by default", func(t *testing.T) {
		in := start(t, logFile(t), "--memory")
		in.expect(t, http.StatusCreated, "PUT", "s", nil, "Content-Type", "text/plain")
		for _, c := range ops {
			status, body := get(t, in.client, c.method, in.base+c.path)
			if status != c.status || !strings.Contains(body, c.body) {
				t.Errorf("%s %s: %d %q, want %d containing %q", c.method, c.path, status, truncated(body), c.status, c.body)
			}
		}
	})
	t.Run("on --admin-addr only", func(t *testing.T) {
		admin := freeAddr(t)
		in := start(t, logFile(t), "--memory", "--admin-addr", admin)
		in.expect(t, http.StatusCreated, "PUT", "s", nil, "Content-Type", "text/plain")
		for _, c := range ops {
			status, body := get(t, in.client, c.method, "http://"+admin+c.path)
			if status != c.status || !strings.Contains(body, c.body) {
				t.Errorf("admin %s %s: %d %q, want %d containing %q", c.method, c.path, status, truncated(body), c.status, c.body)
			}
		}
		for _, c := range moved {
			if status, body := get(t, in.client, c.method, in.base+c.path); status != c.status {
				t.Errorf("main %s %s: %d %q, want %d", c.method, c.path, status, truncated(body), c.status)
			}
		}
		if status, _ := get(t, in.client, "GET", "http://"+admin+"/v1/stream/s"); status != http.StatusNotFound {
			t.Errorf("admin address serves streams: %d", status)
		}
	})
}

func truncated(s string) string {
	if len(s) > 200 {
		return s[:200] + "..."
	}
	return s
}

func TestReadyz(t *testing.T) {
	cases := []struct {
		name        string
		draining    bool
		closedStore bool
		status      int
		body        string
	}{
		{name: "serving", status: 200, body: "ok\n"},
		{name: "draining", draining: true, status: 503, body: "shutting down\n"},
		{name: "store closed", closedStore: true, status: 503, body: "store cannot write: " + persistence.ErrClosed.Error() + "\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			store, err := persistence.Open(persistence.Options{FS: vfs.NewMem()})
			if err != nil {
				t.Fatal(err)
			}
			defer store.Close()
			draining := make(chan struct{})
			if c.draining {
				close(draining)
			}
			if c.closedStore {
				store.Close()
			}
			w := httptest.NewRecorder()
			readyz(store, draining).ServeHTTP(w, httptest.NewRequest("GET", "/readyz", nil))
			if w.Code != c.status || w.Body.String() != c.body {
				t.Errorf("got %d %q, want %d %q", w.Code, w.Body, c.status, c.body)
			}
		})
	}
}

// logLines returns the lines written to logOut so far.
func logLines(t *testing.T, logOut *os.File) []string {
	t.Helper()
	f, err := os.Open(logOut.Name())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if sc.Text() != "" {
			lines = append(lines, sc.Text())
		}
	}
	return lines
}

func TestLogFormatJSON(t *testing.T) {
	logOut := logFile(t)
	in := start(t, logOut, "--memory", "--log-format", "json", "--access-log")
	in.expect(t, http.StatusCreated, "PUT", "s", nil, "Content-Type", "text/plain")
	in.stop(t)
	lines := logLines(t, logOut)
	msgs := map[string]bool{}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("log line is not JSON: %q: %v", l, err)
		}
		msg, _ := rec["msg"].(string)
		msgs[msg] = true
		if msg == "request" && (rec["method"] != "PUT" || rec["path"] != "/v1/stream/s" || rec["status"] != float64(201)) {
			t.Errorf("access log line %q lacks method, path or status", l)
		}
	}
	for _, want := range []string{"streamd listening", "request", "streamd stopped"} {
		if !msgs[want] {
			t.Errorf("no %q line in %q", want, lines)
		}
	}
}
