// Package streamdtest runs a streamd server inside a Go test: on a free
// loopback port, in memory or in a data directory, with the lifecycle
// hooks, fault injection, Clear and Close, so other Go projects can test
// their Durable Streams clients and apps against the real server.
//
// A Server is safe for concurrent use; Close waits for its goroutines.
package streamdtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/streamd/streamd/actors"
	"github.com/streamd/streamd/httpapi"
	"github.com/streamd/streamd/persistence"
	"github.com/streamd/streamd/subscriptions"
)

// Options configure a Server. The zero value is an in-memory server with
// streamd's defaults.
type Options struct {
	// Dir, if set, stores streams durably in this directory (reopening a
	// directory a previous Server used finds its streams); empty keeps
	// them in memory.
	Dir string
	// Addr is the address to listen on; default "127.0.0.1:0" (a free
	// port).
	Addr string
	// LongPollTimeout is how long a long-poll waits (default 30s; tests
	// of timeouts usually want far less).
	LongPollTimeout time.Duration
	// SSEReconnectInterval is how long an SSE response lasts (default 60s).
	SSEReconnectInterval time.Duration
	// Compression turns on gzip/deflate for catch-up reads.
	Compression bool
	// Registry keeps the __registry__ stream of lifecycle events.
	Registry bool
	// OnEvent, if set, is told every stream created, closed, deleted or
	// expired, once durable (see actors.Config.OnEvent).
	OnEvent func(actors.Event)
	// TestEndpoints serves the fault injection API, /_test/inject-error,
	// for clients whose own suites arm faults over HTTP. Faults armed from
	// Go (InjectFault) apply either way.
	TestEndpoints bool
	// Logger receives streamd's logs; nil discards them.
	Logger *slog.Logger
}

// Server is a running streamd.
type Server struct {
	// URL is the server's base URL, e.g. "http://127.0.0.1:41234".
	URL string

	store   *persistence.Store
	streams *actors.Streams
	api     *httpapi.Server
	faults  *httpapi.Faults
	srv     *http.Server
	served  chan error

	closeOnce sync.Once
	closeErr  error
}

// Start starts a server. The caller must Close it.
func Start(opts Options) (*Server, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	storeOpts := persistence.Options{Dir: opts.Dir, Logger: log, CacheSize: 8 << 20}
	if opts.Dir == "" {
		storeOpts.FS = vfs.NewMem()
	}
	store, err := persistence.Open(storeOpts)
	if err != nil {
		return nil, fmt.Errorf("streamdtest: %w", err)
	}
	streams, err := actors.Start(actors.Config{Store: store, Logger: log, Registry: opts.Registry, OnEvent: opts.OnEvent})
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("streamdtest: %w", err)
	}
	keys, err := subscriptions.LoadKeys(store)
	if err != nil {
		_ = streams.Shutdown(context.Background())
		store.Close()
		return nil, fmt.Errorf("streamdtest: %w", err)
	}
	faults := httpapi.NewFaults()
	api := httpapi.New(httpapi.Config{
		Streams: streams, Store: store, Logger: log,
		Faults: faults, TestEndpoints: opts.TestEndpoints, SigningKeys: keys,
		LongPollTimeout:      opts.LongPollTimeout,
		SSEReconnectInterval: opts.SSEReconnectInterval,
		Compression:          opts.Compression,
	})
	api.Mount(httpapi.ListPath, api.ListHandler())
	addr := opts.Addr
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = streams.Shutdown(context.Background())
		store.Close()
		return nil, fmt.Errorf("streamdtest: listen on %s: %w", addr, err)
	}
	s := &Server{URL: "http://" + ln.Addr().String(), store: store, streams: streams, api: api, faults: faults, served: make(chan error, 1)}
	s.srv = &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 10 * time.Second,
		ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)}
	// HTTP/1.1 and HTTP/2 with prior knowledge, as streamd serves them.
	s.srv.Protocols = new(http.Protocols)
	s.srv.Protocols.SetHTTP1(true)
	s.srv.Protocols.SetUnencryptedHTTP2(true)
	go func() { s.served <- s.srv.Serve(ln) }()
	return s, nil
}

// New starts a server for the test tb and closes it when the test ends;
// a failure to start fails the test.
func New(tb testing.TB, opts Options) *Server {
	tb.Helper()
	s, err := Start(opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := s.Close(); err != nil {
			tb.Errorf("streamdtest: close: %v", err)
		}
	})
	return s
}

// StreamURL returns the URL of the stream at path ("chat/1" →
// URL + "/v1/stream/chat/1"), escaping each segment.
func (s *Server) StreamURL(path string) string {
	segs := strings.Split(strings.TrimPrefix(path, "/"), "/")
	for i, seg := range segs {
		segs[i] = url.PathEscape(seg)
	}
	return s.URL + httpapi.StreamPrefix + "/" + strings.Join(segs, "/")
}

// Streams returns the server's stream actors, for tests that drive
// streamd from Go rather than HTTP.
func (s *Server) Streams() *actors.Streams { return s.streams }

// InjectFault arms f for the next requests to the stream at path (as
// StreamURL names it): the server misbehaves as f says, without changing
// stored data. A fault armed at a path replaces the one before.
func (s *Server) InjectFault(path string, f httpapi.Fault) error {
	return s.faults.Inject(httpapi.StreamPrefix+"/"+strings.TrimPrefix(path, "/"), f)
}

// ClearFaults disarms every fault.
func (s *Server) ClearFaults() { s.faults.Clear() }

// Clear deletes every stream (the __registry__ stream, which records the
// deletions, stays) and returns once their paths can be created again.
func (s *Server) Clear(ctx context.Context) error {
	for {
		listed, _, err := s.store.List("", "", 1000)
		if err != nil {
			return fmt.Errorf("streamdtest: clear: %w", err)
		}
		n := 0
		for _, l := range listed {
			if s.streams.Reserved(l.Path) {
				continue
			}
			n++
			if err := s.streams.Delete(ctx, l.Path); err != nil && !errors.Is(err, actors.ErrNotFound) {
				return fmt.Errorf("streamdtest: clear %q: %w", l.Path, err)
			}
		}
		if n == 0 {
			break
		}
	}
	// A deleted fork source stays until its last fork is gone, which the
	// loop above ensured; its collection runs in the background.
	for {
		gone, err := s.store.SoftDeleted(0, 1)
		if err != nil {
			return fmt.Errorf("streamdtest: clear: %w", err)
		}
		if len(gone) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("streamdtest: clear: deleted fork sources still being collected: %w", ctx.Err())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// Close stops the server: open responses are cut, the actors stop and
// the store closes. A second Close returns the first one's result.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		errs := []error{s.srv.Close()}
		if err := <-s.served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, err)
		}
		errs = append(errs, s.streams.Shutdown(ctx), s.store.Close())
		s.closeErr = errors.Join(errs...)
	})
	return s.closeErr
}
