package main

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/streamd/streamd/httpapi"
	"github.com/streamd/streamd/metrics"
	"github.com/streamd/streamd/persistence"
)

// newLogger returns the process logger in the --log-format chosen.
func newLogger(w io.Writer, format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// opsRoutes are the operational endpoints: liveness, readiness, metrics
// and the listing of streams.
func opsRoutes(m *metrics.Metrics, store *persistence.Store, api *httpapi.Server, draining <-chan struct{}) map[string]http.Handler {
	return map[string]http.Handler{
		"/healthz":       http.HandlerFunc(healthz),
		"/readyz":        readyz(store, draining),
		"/metrics":       m.Handler(),
		httpapi.ListPath: api.ListHandler(),
	}
}

// healthz answers 200 while the process serves HTTP at all.
func healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, "ok\n")
}

// readyz answers 200 while streamd takes writes: 503 once a stop has begun
// (draining closed) or while the store cannot commit a synced write.
func readyz(store *persistence.Store, draining <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		status, msg := http.StatusOK, "ok"
		select {
		case <-draining:
			status, msg = http.StatusServiceUnavailable, "shutting down"
		default:
			if err := store.CheckWritable(); err != nil {
				status, msg = http.StatusServiceUnavailable, "store cannot write: "+err.Error()
			}
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, msg+"\n")
	})
}

// startAdminServer serves routes on their own listener (--admin-addr), so
// probes and scrapes can be kept off the public address; anything else
// there is 404.
func startAdminServer(addr string, routes map[string]http.Handler) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on admin address %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	for path, h := range routes {
		mux.Handle("GET "+path, h) // GET patterns match HEAD too
	}
	srv := &http.Server{Addr: ln.Addr().String(), Handler: mux, ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout: 10 * time.Second, WriteTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10}
	go func() { _ = srv.Serve(ln) }()
	return srv, nil
}
