package httpapi_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/streamd/streamd/actors"
	"github.com/streamd/streamd/httpapi"
	"github.com/streamd/streamd/metrics"
	"github.com/streamd/streamd/persistence"
)

// benchServer is the handler stack without a network, so a benchmark
// measures the request path itself: routing, middleware, validation,
// actors and storage (in memory). With withMetrics, requests and commits
// are observed as cmd/streamd observes them.
func benchServer(b *testing.B, withMetrics bool) http.Handler {
	b.Helper()
	store, err := persistence.Open(persistence.Options{FS: vfs.NewMem()})
	if err != nil {
		b.Fatalf("open store: %v", err)
	}
	acfg := actors.Config{Store: store}
	var m *metrics.Metrics
	if withMetrics {
		m = metrics.New()
		acfg.ObserveCommitLatency = m.ObserveCommitLatency
	}
	streams, err := actors.Start(acfg)
	if err != nil {
		b.Fatalf("start actors: %v", err)
	}
	cfg := httpapi.Config{Store: store, Streams: streams, Compression: true}
	if m != nil {
		cfg.Observer = m
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = streams.Shutdown(ctx)
		_ = store.Close()
	})
	api := httpapi.New(cfg)
	if m != nil {
		if err := m.Attach(metrics.Sources{Store: store, Streams: streams, API: api}); err != nil {
			b.Fatal(err)
		}
	}
	return api.Handler()
}

func serveBench(b *testing.B, h http.Handler, method, target string, body []byte, want int, hdr ...string) {
	var r *http.Request
	if body != nil {
		r = httptest.NewRequest(method, target, bytes.NewReader(body))
	} else {
		r = httptest.NewRequest(method, target, nil)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	if w.Code != want {
		b.Fatalf("%s %s: status %d, want %d: %s", method, target, w.Code, want, w.Body)
	}
}

// benchHTTP runs the request-path benchmarks.
func benchHTTP(b *testing.B, withMetrics bool) {
	b.Run("Append", func(b *testing.B) {
		h := benchServer(b, withMetrics)
		serveBench(b, h, http.MethodPut, sp("a"), nil, http.StatusCreated, "Content-Type", "text/plain")
		body := bytes.Repeat([]byte("x"), 64)
		b.ReportAllocs()
		for b.Loop() {
			serveBench(b, h, http.MethodPost, sp("a"), body, http.StatusNoContent, "Content-Type", "text/plain")
		}
	})
	b.Run("AppendParallel", func(b *testing.B) {
		h := benchServer(b, withMetrics)
		serveBench(b, h, http.MethodPut, sp("a"), nil, http.StatusCreated, "Content-Type", "text/plain")
		body := bytes.Repeat([]byte("x"), 64)
		b.ReportAllocs()
		b.SetParallelism(16)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				serveBench(b, h, http.MethodPost, sp("a"), body, http.StatusNoContent, "Content-Type", "text/plain")
			}
		})
	})
	b.Run("Read", func(b *testing.B) {
		h := benchServer(b, withMetrics)
		serveBench(b, h, http.MethodPut, sp("r"), bytes.Repeat([]byte("y"), 4096), http.StatusCreated, "Content-Type", "text/plain")
		b.ReportAllocs()
		for b.Loop() {
			serveBench(b, h, http.MethodGet, sp("r")+"?offset=-1", nil, http.StatusOK)
		}
	})
}

// BenchmarkHTTP measures the request path without metrics.
func BenchmarkHTTP(b *testing.B) { benchHTTP(b, false) }

// BenchmarkHTTPMetrics measures it with metrics, as streamd serves.
func BenchmarkHTTPMetrics(b *testing.B) { benchHTTP(b, true) }
