package httpapi_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/streamd/streamd/httpapi"
)

// linesWith returns the log lines containing every one of parts.
func linesWith(log string, parts ...string) []string {
	var out []string
next:
	for _, l := range strings.Split(log, "\n") {
		for _, p := range parts {
			if !strings.Contains(l, p) {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

func TestAccessLog(t *testing.T) {
	for _, enabled := range []bool{false, true} {
		t.Run(map[bool]string{false: "off", true: "on"}[enabled], func(t *testing.T) {
			logs := &lockedBuffer{}
			log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
			e := newEnv(t, withAPI(func(c *httpapi.Config) { c.Logger, c.AccessLog = log, enabled }))
			ctx := context.Background()
			requests := []struct {
				method, path string
				body         []byte
				status       int
			}{
				{"PUT", sp("log"), nil, http.StatusCreated},
				{"POST", sp("log"), []byte("hello"), http.StatusNoContent},
				{"GET", sp("log") + "?offset=-1", nil, http.StatusOK},
				{"GET", sp("missing"), nil, http.StatusNotFound},
			}
			for _, r := range requests {
				res, err := e.request(ctx, r.method, r.path, r.body, "Content-Type", "text/plain")
				if err != nil || res.status != r.status {
					t.Fatalf("%s %s: %v %v, want %d", r.method, r.path, res, err, r.status)
				}
			}
			got := linesWith(logs.String(), "msg=request")
			if !enabled {
				if len(got) != 0 {
					t.Fatalf("access log off, yet request lines: %q", got)
				}
				return
			}
			if len(got) != len(requests) {
				t.Fatalf("%d request lines, want %d: %q", len(got), len(requests), got)
			}
			want := [][]string{
				{"method=PUT", "path=/v1/stream/log", "status=201", "bytes=0"},
				{"method=POST", "status=204"},
				{"method=GET", "status=200", "bytes=5"},
				{"method=GET", "path=/v1/stream/missing", "status=404"},
			}
			for i, parts := range want {
				for _, p := range append(parts, "level=INFO", "duration=", "remote=127.0.0.1:") {
					if !strings.Contains(got[i], p) {
						t.Errorf("line %q lacks %q", got[i], p)
					}
				}
			}
		})
	}
}

// TestServerErrorsLoggedOnce: every 5xx gets exactly one error line, with
// method, path, status and error, access log or not; other answers none.
func TestServerErrorsLoggedOnce(t *testing.T) {
	for _, access := range []bool{false, true} {
		logs := &lockedBuffer{}
		log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
		e := newEnv(t, withAPI(func(c *httpapi.Config) { c.Logger, c.AccessLog, c.MaxBodyMemory = log, access, 1024 }))
		ctx := context.Background()
		if res, err := e.request(ctx, "PUT", sp("big"), nil, "Content-Type", "text/plain"); err != nil || res.status != http.StatusCreated {
			t.Fatalf("create: %v %v", res, err)
		}
		res, err := e.request(ctx, "POST", sp("big"), bytes.Repeat([]byte("x"), 4096), "Content-Type", "text/plain")
		if err != nil || res.status != http.StatusServiceUnavailable {
			t.Fatalf("append past body memory: %v %v, want 503", res, err)
		}
		errs := linesWith(logs.String(), "level=ERROR")
		if len(errs) != 1 {
			t.Fatalf("access log %v: %d error lines, want 1: %q", access, len(errs), errs)
		}
		for _, p := range []string{`msg="request failed"`, "method=POST", "path=/v1/stream/big", "status=503", "err="} {
			if !strings.Contains(errs[0], p) {
				t.Errorf("error line %q lacks %q", errs[0], p)
			}
		}
	}
}
