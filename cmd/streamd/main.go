// Command streamd serves the Durable Streams protocol over HTTP, durably on
// an embedded Pebble database (or in memory with --memory).
package main

import (
	"cmp"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/streamd/streamd/actors"
	"github.com/streamd/streamd/cursor"
	"github.com/streamd/streamd/httpapi"
	"github.com/streamd/streamd/metrics"
	"github.com/streamd/streamd/persistence"
	"github.com/streamd/streamd/subscriptions"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if len(os.Args) > 1 && os.Args[1] == "ls" {
		if err := listCommand(ctx, os.Args[2:], os.Getenv, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, "streamd:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(ctx, os.Args[1:], os.Getenv, os.Stderr, nil); err != nil {
		fmt.Fprintln(os.Stderr, "streamd:", err)
		os.Exit(1)
	}
}

// options are the command-line settings.
type options struct {
	addr                 string
	dataDir              string
	memory               bool
	longPollTimeout      time.Duration
	sseReconnectInterval time.Duration
	cursorInterval       time.Duration
	cursorEpoch          string
	maxChunkBytes        int
	maxAppendBytes       int64
	compression          bool
	actorIdleTimeout     time.Duration
	actorSoftLimit       int64
	restingStateBytes    int64
	readAheadBytes       int
	h2c                  bool
	http2MaxStreams      int
	logLevel             string
	debugAddr            string
	// Operations: see admin.go.
	logFormat string
	accessLog bool
	adminAddr string

	// Bounds; see docs/OPERATIONS.md.
	shutdownTimeout         time.Duration
	writeTimeout            time.Duration
	readTimeout             time.Duration
	maxConnections          int64
	maxBodyMemory           int64
	maxHeaderBytes          int
	maxHeaderValueBytes     int
	maxLiveReaders          int64
	maxLiveReadersPerStream int64
	maxPendingAppends       int
	maxProducers            int
	producerTTL             time.Duration
	sseBufferBytes          int64
	maxForkDepth            int
	registry                bool
	testEndpoints           bool

	// TLS and access control; see docs/OPERATIONS.md.
	tlsCert     string
	tlsKey      string
	authFile    string
	corsOrigins string
}

// parseOptions reads flags, each of which may also come from the
// environment as STREAMD_<NAME> (flags win over the environment).
func parseOptions(args []string, getenv func(string) string) (*options, error) {
	o := &options{}
	fs := flag.NewFlagSet("streamd", flag.ContinueOnError)
	fs.StringVar(&o.addr, "addr", "127.0.0.1:4437", "listen address")
	fs.StringVar(&o.dataDir, "data-dir", "./data", "directory of the embedded Pebble database")
	fs.BoolVar(&o.memory, "memory", false, "keep everything in memory (Pebble's in-memory filesystem); nothing is written to disk")
	fs.DurationVar(&o.longPollTimeout, "long-poll-timeout", 30*time.Second, "how long a long-poll waits for data")
	fs.DurationVar(&o.sseReconnectInterval, "sse-reconnect-interval", 60*time.Second, "close SSE responses after this long so clients reconnect")
	fs.DurationVar(&o.cursorInterval, "cursor-interval", cursor.DefaultInterval, "Stream-Cursor interval length")
	fs.StringVar(&o.cursorEpoch, "cursor-epoch", cursor.DefaultEpoch().Format(time.RFC3339), "Stream-Cursor epoch (RFC 3339)")
	fs.IntVar(&o.maxChunkBytes, "max-chunk-bytes", 1<<20, "largest catch-up response body in bytes")
	fs.Int64Var(&o.maxAppendBytes, "max-append-bytes", 16<<20, "largest request body in bytes (larger ones get 413)")
	fs.BoolVar(&o.compression, "compression", true, "gzip/deflate catch-up responses when the client accepts it")
	fs.DurationVar(&o.actorIdleTimeout, "actor-idle-timeout", 60*time.Second, "passivate a stream actor after this long without work")
	fs.Int64Var(&o.actorSoftLimit, "actor-soft-limit", 100_000, "stream actors kept in memory before idle ones passivate after one second instead of --actor-idle-timeout")
	fs.Int64Var(&o.restingStateBytes, "resting-state-bytes", 256<<20, "memory for the state of passivated streams, so reactivating one skips storage (about 120 bytes per stream; 0 disables)")
	fs.IntVar(&o.readAheadBytes, "read-ahead-bytes", 32<<20, "memory for catch-up chunks read ahead of sequential readers, so storage reads overlap network writes (0 disables)")
	fs.BoolVar(&o.h2c, "h2c", true, "also accept HTTP/2 without TLS (prior knowledge), so a client or proxy can multiplex many live reads over one connection")
	fs.IntVar(&o.http2MaxStreams, "http2-max-streams", 1000, "concurrent requests one HTTP/2 connection may have open (parked long-polls and SSE responses count)")
	fs.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&o.debugAddr, "debug-addr", "", "if set, serve Go's pprof profiles on this address (e.g. 127.0.0.1:6060)")
	fs.StringVar(&o.logFormat, "log-format", "text", "text or json")
	fs.BoolVar(&o.accessLog, "access-log", false, "log one info line per request (method, path, status, bytes, duration, remote)")
	fs.StringVar(&o.adminAddr, "admin-addr", "", "if set, serve /healthz, /readyz and /metrics on this address instead of --addr (e.g. 127.0.0.1:9437)")
	fs.DurationVar(&o.shutdownTimeout, "shutdown-timeout", 10*time.Second, "on SIGTERM/SIGINT, how long writes in progress may take to finish before they are answered 503")
	fs.DurationVar(&o.writeTimeout, "write-timeout", 30*time.Second, "cut off a client that does not take each response write (or each 1 MiB of a larger one) within this long")
	fs.DurationVar(&o.readTimeout, "read-timeout", 60*time.Second, "longest time to receive a request's headers and body (408 beyond)")
	fs.Int64Var(&o.maxConnections, "max-connections", 0, "connections open at once; more are answered 503 (0: the open-files limit less 1,100)")
	fs.Int64Var(&o.maxBodyMemory, "max-body-memory", 256<<20, "request body bytes held in memory at once across all requests; past it writes get 503")
	fs.IntVar(&o.maxHeaderBytes, "max-header-bytes", 64<<10, "largest request header block in bytes (431 beyond)")
	fs.IntVar(&o.maxHeaderValueBytes, "max-header-value-bytes", 1024, "longest Stream-Seq or Producer-Id value in bytes (400 beyond)")
	fs.Int64Var(&o.maxLiveReaders, "max-live-readers", 100_000, "waiting long-polls plus open SSE responses, in total; more get 503")
	fs.Int64Var(&o.maxLiveReadersPerStream, "max-live-readers-per-stream", 60_000, "waiting long-polls plus open SSE responses of one stream; more get 429")
	fs.IntVar(&o.maxPendingAppends, "max-pending-appends", 4096, "writes one stream has accepted and not yet committed; more get 429")
	fs.IntVar(&o.maxProducers, "max-producers-per-stream", 10_000, "idempotent producers remembered per stream; a new one past it gets 429 unless an idle one can be forgotten (--producer-ttl)")
	fs.DurationVar(&o.producerTTL, "producer-ttl", 7*24*time.Hour, "a producer idle this long may be forgotten to make room for a new one on a stream at --max-producers-per-stream")
	fs.BoolVar(&o.registry, "registry", false, "record every stream created, closed, deleted or expired in the JSON stream __registry__")
	fs.IntVar(&o.maxForkDepth, "max-fork-depth", 1000, "streams a fork may inherit data from through its chain of sources (400 beyond)")
	fs.BoolVar(&o.testEndpoints, "test-endpoints", false, "serve the fault injection API /_test/inject-error for client resilience tests (never in production)")
	fs.Int64Var(&o.sseBufferBytes, "sse-buffer-bytes", 4<<20, "live data queued for one SSE subscriber; a subscriber further behind resumes from storage")
	fs.StringVar(&o.tlsCert, "tls-cert", "", "serve HTTPS (HTTP/2 and HTTP/1.1) with this PEM certificate chain; needs --tls-key; reloaded on SIGHUP")
	fs.StringVar(&o.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&o.authFile, "auth-file", "", "JSON file of bearer tokens and the stream path prefixes each may read and write; reloaded when it changes and on SIGHUP")
	fs.StringVar(&o.corsOrigins, "cors-origins", "", "comma-separated browser origins allowed to read responses, or * (default *, or none with --auth-file)")
	var envErr error
	fs.VisitAll(func(f *flag.Flag) {
		name := "STREAMD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if v := getenv(name); v != "" && envErr == nil {
			if err := f.Value.Set(v); err != nil {
				envErr = fmt.Errorf("%s=%q: %w", name, v, err)
			}
		}
	})
	if envErr != nil {
		return nil, envErr
	}
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	switch {
	case o.longPollTimeout <= 0, o.sseReconnectInterval <= 0, o.cursorInterval <= 0, o.actorIdleTimeout <= 0:
		return nil, errors.New("durations must be positive")
	case o.maxChunkBytes <= 0, o.maxAppendBytes <= 0:
		return nil, errors.New("byte limits must be positive")
	case o.restingStateBytes < 0:
		return nil, errors.New("--resting-state-bytes must not be negative")
	case o.actorSoftLimit <= 0:
		return nil, errors.New("--actor-soft-limit must be positive")
	case o.readAheadBytes < 0:
		return nil, errors.New("--read-ahead-bytes must not be negative")
	case o.http2MaxStreams <= 0:
		return nil, errors.New("--http2-max-streams must be positive")
	case o.shutdownTimeout <= 0, o.writeTimeout <= 0, o.readTimeout <= 0, o.producerTTL <= 0:
		return nil, errors.New("durations must be positive")
	case o.logFormat != "text" && o.logFormat != "json":
		return nil, fmt.Errorf("--log-format must be text or json, not %q", o.logFormat)
	case o.maxConnections < 0:
		return nil, errors.New("--max-connections must not be negative")
	case o.maxBodyMemory <= 0, o.maxHeaderBytes <= 0, o.maxHeaderValueBytes <= 0, o.maxLiveReaders <= 0,
		o.maxLiveReadersPerStream <= 0, o.maxPendingAppends <= 0, o.maxProducers <= 0, o.sseBufferBytes <= 0,
		o.maxForkDepth <= 0:
		return nil, errors.New("limits must be positive")
	}
	if (o.tlsCert == "") != (o.tlsKey == "") {
		return nil, errors.New("--tls-cert and --tls-key go together")
	}
	if _, err := httpapi.ParseCORSOrigins(o.corsOrigins); err != nil {
		return nil, fmt.Errorf("--cors-origins: %w", err)
	}
	if o.maxConnections == 0 {
		o.maxConnections = defaultMaxConnections()
	}
	return o, nil
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	err := l.UnmarshalText([]byte(s))
	return l, err
}

// run starts streamd and blocks until ctx ends, then shuts down in order:
// HTTP intake, live responses, stream actors, storage. If ready is non-nil
// it receives the bound address once streamd accepts requests.
func run(ctx context.Context, args []string, getenv func(string) string, logOut *os.File, ready chan<- string) error {
	o, err := parseOptions(args, getenv)
	if err != nil {
		return err
	}
	level, err := parseLevel(o.logLevel)
	if err != nil {
		return fmt.Errorf("--log-level: %w", err)
	}
	log := newLogger(logOut, o.logFormat, level)
	epoch, err := time.Parse(time.RFC3339, o.cursorEpoch)
	if err != nil {
		return fmt.Errorf("--cursor-epoch: %w", err)
	}

	// Loaded before storage is opened: a bad file is a startup error that
	// leaves nothing behind.
	var certs *certReloader
	if o.tlsCert != "" {
		if certs, err = loadCertificate(o.tlsCert, o.tlsKey); err != nil {
			return err
		}
	}
	var auth *httpapi.Auth
	if o.authFile != "" {
		if auth, err = httpapi.OpenAuthFile(o.authFile, log); err != nil {
			return err
		}
	}
	corsOrigins, _ := httpapi.ParseCORSOrigins(o.corsOrigins) // checked by parseOptions

	storeOpts := persistence.Options{Dir: o.dataDir, Logger: log}
	mode := "durable"
	if o.memory {
		storeOpts.Dir, storeOpts.FS, mode = "", vfs.NewMem(), "memory"
	}
	store, err := persistence.Open(storeOpts)
	if err != nil {
		return err
	}
	// Closed explicitly at the end of a clean shutdown (timed there); this
	// covers the error returns in between (a second Close is a no-op
	// error), except when a commit may still hold the store (see below).
	storeBusy := false
	defer func() {
		if !storeBusy {
			_ = store.Close()
		}
	}()

	resting := o.restingStateBytes
	if resting == 0 {
		resting = -1 // disabled; 0 means the default to actors.Config
	}
	mets := metrics.New()
	keys, err := subscriptions.LoadKeys(store)
	if err != nil {
		return err
	}
	streams, err := actors.Start(actors.Config{Store: store, IdleTimeout: o.actorIdleTimeout, ActorSoftLimit: o.actorSoftLimit,
		RestingStateBytes: resting, Logger: log,
		MaxLiveReaders: o.maxLiveReaders, MaxLiveReadersPerStream: o.maxLiveReadersPerStream,
		MaxPendingAppends: o.maxPendingAppends, MaxProducers: o.maxProducers, ProducerTTL: o.producerTTL,
		SubscriberBufferBytes: o.sseBufferBytes, MaxForkDepth: o.maxForkDepth, Registry: o.registry,
		ObserveCommitLatency: mets.ObserveCommitLatency})
	if err != nil {
		return err
	}
	draining := make(chan struct{})
	api := httpapi.New(httpapi.Config{
		Streams: streams, Store: store, SigningKeys: keys,
		Cursor:               cursor.New(o.cursorInterval, epoch),
		LongPollTimeout:      o.longPollTimeout,
		SSEReconnectInterval: o.sseReconnectInterval,
		MaxChunkBytes:        o.maxChunkBytes,
		MaxAppendBytes:       o.maxAppendBytes,
		Compression:          o.compression,
		ReadAheadBytes:       cmp.Or(o.readAheadBytes, -1), // 0 disables; Config's 0 is its default
		WriteTimeout:         o.writeTimeout,
		MaxBodyMemory:        o.maxBodyMemory,
		MaxHeaderValueBytes:  o.maxHeaderValueBytes,
		Draining:             draining,
		Auth:                 auth,
		CORSOrigins:          corsOrigins,
		Logger:               log,
		TestEndpoints:        o.testEndpoints,
		Observer:             mets,
		AccessLog:            o.accessLog,
	})

	tcp, err := net.Listen("tcp", o.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.addr, err)
	}
	ln := newConnLimiter(tcp, o.maxConnections)
	if err := mets.Attach(metrics.Sources{Store: store, Streams: streams, API: api, Logger: log,
		ConnectionsRejected: ln.rejected.Load}); err != nil {
		_ = ln.Close()
		return err
	}
	ops := opsRoutes(mets, store, api, draining)
	if o.adminAddr == "" {
		for path, h := range ops {
			api.Mount(path, h)
		}
	} else {
		adm, err := startAdminServer(o.adminAddr, ops)
		if err != nil {
			_ = ln.Close()
			return err
		}
		// Closed last, so readiness reads 503 for the whole stop.
		defer adm.Close()
		log.Info("admin listening", "addr", "http://"+adm.Addr+"/")
	}
	// Request contexts derive from baseCtx; cancelling it is the last step
	// of a shutdown that ran out of time (see stopServing).
	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	srv := &http.Server{
		Handler:           api.Handler(),
		ReadHeaderTimeout: min(10*time.Second, o.readTimeout),
		// Bounds the body too: a trickling upload is cut off (408) instead
		// of holding memory. It ends with the body, so live reads are free.
		ReadTimeout:    o.readTimeout,
		IdleTimeout:    2 * time.Minute,
		MaxHeaderBytes: o.maxHeaderBytes,
		BaseContext:    func(net.Listener) context.Context { return baseCtx },
		ErrorLog:       slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		HTTP2: &http.HTTP2Config{MaxConcurrentStreams: o.http2MaxStreams,
			// An HTTP/2 connection whose client stops reading is closed
			// (responses' own deadlines spare small writes; see httpapi).
			WriteByteTimeout: o.writeTimeout},
	}
	if certs != nil {
		srv.TLSConfig = certs.serverConfig()
		ln.rejectTLS = certs.rejectConfig()
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetHTTP2(true)
	} else if o.h2c {
		// Each HTTP/1.1 live reader holds a connection, and with it a file
		// descriptor, on both ends; over HTTP/2 thousands share a few.
		srv.Protocols = new(http.Protocols)
		srv.Protocols.SetHTTP1(true)
		srv.Protocols.SetUnencryptedHTTP2(true)
	}
	unused := newUnusedConns()
	srv.ConnState = unused.track
	srv.RegisterOnShutdown(unused.closeAll)
	serveErr := make(chan error, 1)
	scheme := "http"
	if certs != nil {
		scheme = "https"
		go func() { serveErr <- srv.ServeTLS(ln, "", "") }()
	} else {
		go func() { serveErr <- srv.Serve(ln) }()
	}
	stopReloading := (&reloader{certs: certs, auth: auth, log: log}).start()
	defer stopReloading()
	if o.debugAddr != "" {
		dbg, err := startDebugServer(o.debugAddr, store, streams, func() map[string]int64 {
			r := api.Rejections()
			r[httpapi.LimitConnections] = ln.rejected.Load()
			return r
		})
		if err != nil {
			return err
		}
		defer dbg.Close()
		log.Info("pprof listening", "addr", "http://"+dbg.Addr+"/debug/pprof/")
	}
	dataDir := o.dataDir
	if o.memory {
		dataDir = ""
	}
	log.Info("streamd listening", "addr", scheme+"://"+ln.Addr().String()+httpapi.StreamPrefix+"/", "mode", mode, "data_dir", dataDir,
		"auth", auth != nil)
	if o.testEndpoints {
		log.Warn("fault injection is on (--test-endpoints): any client can make requests fail at /_test/inject-error")
	}
	if ready != nil {
		ready <- ln.Addr().String()
	}

	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("streamd stopping")
	t0 := time.Now()
	stopServing(srv, draining, cancelBase, o.shutdownTimeout, log)
	t1 := time.Now()
	// The HTTP layer is quiet: every write was answered. Actors finish what
	// is queued (requests answered 503 at the timeout may still be) and
	// their commits in flight: normally milliseconds, but not bounded by
	// --shutdown-timeout, which is the clients' wait.
	actorsCtx, cancel := context.WithTimeout(context.Background(), actorStopTimeout)
	defer cancel()
	if err := streams.Shutdown(actorsCtx); err != nil {
		// A commit still in flight holds the store: closing it would wait
		// for that commit, which is not coming (a stalled disk, say).
		storeBusy = true
		return fmt.Errorf("stop stream actors: %w", err)
	}
	t2 := time.Now()
	if err := store.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	log.Info("streamd stopped", "http", t1.Sub(t0).Round(time.Millisecond),
		"actors", t2.Sub(t1).Round(time.Millisecond), "store", time.Since(t2).Round(time.Millisecond))
	return nil
}

// actorStopTimeout bounds stopping the stream actors once HTTP service
// has ended; past it (a stalled disk) streamd exits with an error.
const actorStopTimeout = 30 * time.Second

// stopServing ends HTTP service without leaving a write unanswered: it
// stops accepting connections and requests, ends live reads (draining),
// and waits up to timeout for the requests in progress, whose writes get
// their real answers. Requests still running then see their context
// cancelled and answer 503 with Retry-After; a second later whatever is
// left (a response stuck on a client that does not read) is cut off.
func stopServing(srv *http.Server, draining chan struct{}, cancelRequests context.CancelFunc, timeout time.Duration, log *slog.Logger) {
	done := make(chan error, 1)
	go func() { done <- srv.Shutdown(context.Background()) }()
	close(draining)
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	select {
	case <-done:
		return
	case <-timer.C:
	}
	log.Warn("requests still running at the shutdown timeout; answering them 503", "timeout", timeout)
	cancelRequests()
	timer.Reset(time.Second)
	select {
	case <-done:
		return
	case <-timer.C:
	}
	log.Warn("closing connections of requests that did not end")
	_ = srv.Close()
	<-done
}
