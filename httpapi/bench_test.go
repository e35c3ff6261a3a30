package httpapi_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
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

// BenchmarkParkedLongPollStack reports the goroutine stack memory a parked
// long-poll costs the server (stack-B/reader: its connection's goroutine,
// which runs the handler, and net/http's background reader). Tens of
// thousands park at once, and a frame too many on the handler's path
// doubles a stack: watch this figure when changing that path.
func BenchmarkParkedLongPollStack(b *testing.B) {
	const readers = 1000
	srv := httptest.NewServer(benchServer(b, true))
	defer srv.Close()
	serveBench(b, srv.Config.Handler, http.MethodPut, httpapi.StreamPrefix+"/s", nil, http.StatusCreated, "Content-Type", "text/plain")
	host := strings.TrimPrefix(srv.URL, "http://")
	req := []byte("GET " + httpapi.StreamPrefix + "/s?offset=now&live=long-poll HTTP/1.1\r\nHost: " + host + "\r\n\r\n")
	var perReader float64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		conns := make([]net.Conn, 0, readers)
		for range readers {
			c, err := net.Dial("tcp", host)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := c.Write(req); err != nil {
				b.Fatal(err)
			}
			conns = append(conns, c)
		}
		// Parked once the server holds two goroutines per reader.
		for deadline := time.Now().Add(30 * time.Second); runtime.NumGoroutine() < 2*readers && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		time.Sleep(100 * time.Millisecond)
		runtime.ReadMemStats(&after)
		perReader = float64(after.StackInuse-before.StackInuse) / readers
		for _, c := range conns {
			c.Close()
		}
		srv.CloseClientConnections()
	}
	b.ReportMetric(perReader, "stack-B/reader")
}
