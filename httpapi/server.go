package httpapi

import (
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/streamd/streamd/actors"
	"github.com/streamd/streamd/cursor"
	"github.com/streamd/streamd/persistence"
	"github.com/streamd/streamd/subscriptions"
)

// StreamPrefix is the URL prefix under which streams live.
const StreamPrefix = "/v1/stream"

// maxPathBytes bounds stream paths; longer ones are rejected with 400.
const maxPathBytes = 1024

// Config configures the HTTP API.
type Config struct {
	Streams *actors.Streams
	Store   *persistence.Store
	Cursor  *cursor.Generator
	// LongPollTimeout is how long a long-poll waits for data (default 30s).
	LongPollTimeout time.Duration
	// SSEReconnectInterval is how long an SSE response stays open before the
	// server closes it so clients reconnect (§10.2, default 60s).
	SSEReconnectInterval time.Duration
	// MaxChunkBytes bounds a catch-up response body (default 1 MiB).
	MaxChunkBytes int
	// MaxAppendBytes bounds request bodies; larger ones get 413 (default 16 MiB).
	MaxAppendBytes int64
	// Compression enables gzip/deflate on catch-up reads.
	Compression bool
	// PrivateCache marks cacheable read answers "private" instead of
	// "public" (§10.1), for streams that may hold user-specific data.
	PrivateCache bool
	// ReadAheadBytes bounds the memory of chunks read ahead for sequential
	// catch-up readers (see readAhead); 0 means the default, 32 MiB, and a
	// negative value disables read-ahead.
	ReadAheadBytes int
	// WriteTimeout bounds each write of a response: a client that stops
	// reading is dropped after about this long (default 30s; see
	// deadlineWriter).
	WriteTimeout time.Duration
	// MaxBodyMemory bounds the request body bytes held in memory at once
	// across all requests; past it writes get 503 (default 256 MiB).
	MaxBodyMemory int64
	// MaxHeaderValueBytes bounds Stream-Seq and Producer-Id values (default
	// 1024); longer ones get 400.
	MaxHeaderValueBytes int
	// Draining, once closed, ends live reads so a shutdown need not wait
	// for them: waiting long-polls answer 204 at their offset (or 200 with
	// data that arrived meanwhile), SSE responses end cleanly, and clients
	// reconnect. Writes carry on and get their real answers. nil never
	// drains.
	Draining <-chan struct{}
	Logger   *slog.Logger
	// TestEndpoints serves the fault injection API, /_test/inject-error,
	// at the root and under StreamPrefix (see faults.go). Off in
	// production: anyone who can reach it can make streamd misbehave.
	TestEndpoints bool
	// Faults, if set, are applied to requests even without TestEndpoints,
	// for an embedder that arms them from Go.
	Faults *Faults
	// SigningKeys, if set, is the webhook signing key published at
	// __ds/jwks.json (§6.5).
	SigningKeys *subscriptions.Keys
	// Observer, if set, is told about every finished request (metrics).
	Observer RequestObserver
	// AccessLog logs one info line per request; a 5xx is always logged,
	// at error level.
	AccessLog bool
	// Auth, if set, requires a bearer token with the right to read or
	// write each stream path (see auth.go); nil serves everyone.
	Auth *Auth
	// CORSOrigins lists the browser origins allowed to read responses
	// (ParseCORSOrigins); ["*"] allows any. nil means ["*"] without Auth
	// and no cross-origin access with Auth.
	CORSOrigins []string
}

// Server serves the protocol; it is an http.Handler.
type Server struct {
	cfg        Config
	echo       *echo.Echo
	streams    *actors.Streams
	store      *persistence.Store
	log        *slog.Logger
	pools      *compressors
	bufs       sync.Pool // *[]byte read buffers; see readChunk
	fixed      fixedHeaders
	ahead      *readAhead // nil when disabled
	bodies     byteBudget
	rejections Rejections
	faults     *Faults // nil: fault injection off
	auth       *Auth   // nil: access control off
	cors       corsPolicy
}

// New returns the handler serving the protocol.
func New(cfg Config) *Server {
	if cfg.LongPollTimeout <= 0 {
		cfg.LongPollTimeout = 30 * time.Second
	}
	if cfg.SSEReconnectInterval <= 0 {
		cfg.SSEReconnectInterval = 60 * time.Second
	}
	if cfg.MaxChunkBytes <= 0 {
		cfg.MaxChunkBytes = 1 << 20
	}
	if cfg.MaxAppendBytes <= 0 {
		cfg.MaxAppendBytes = 16 << 20
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.MaxBodyMemory <= 0 {
		cfg.MaxBodyMemory = 256 << 20
	}
	if cfg.MaxHeaderValueBytes <= 0 {
		cfg.MaxHeaderValueBytes = 1024
	}
	if cfg.Cursor == nil {
		cfg.Cursor = cursor.New(cursor.DefaultInterval, cursor.DefaultEpoch())
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Auth != nil {
		// With access control a shared cache must not answer one client
		// with what another was allowed to read (§10.1).
		cfg.PrivateCache = true
	}
	s := &Server{cfg: cfg, streams: cfg.Streams, store: cfg.Store, log: log, pools: newCompressors(), fixed: newFixedHeaders(cfg.PrivateCache)}
	s.bodies.limit = cfg.MaxBodyMemory
	s.auth = cfg.Auth
	origins := cfg.CORSOrigins
	if origins == nil && cfg.Auth == nil {
		origins = []string{"*"}
	}
	s.cors = newCORSPolicy(origins)
	switch {
	case cfg.ReadAheadBytes == 0:
		s.ahead = newReadAhead(s, 32<<20)
	case cfg.ReadAheadBytes > 0:
		s.ahead = newReadAhead(s, cfg.ReadAheadBytes)
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = s.errorHandler
	e.Use(s.answer)
	s.mountFaults(e)
	g := e.Group(StreamPrefix)
	methods := []string{http.MethodPut, http.MethodPost, http.MethodGet, http.MethodHead, http.MethodDelete, http.MethodOptions}
	g.Match(methods, "/*", s.route)
	s.echo = e
	return s
}

// ServeHTTP serves one request. Servers should serve Handler instead,
// which is the same without this call's stack frame.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.echo.ServeHTTP(w, r) }

// Handler returns the http.Handler serving the protocol. Every frame on a
// request's stack counts: tens of thousands of parked long-polls each keep
// their goroutine's stack, and one frame too many doubles it.
func (s *Server) Handler() http.Handler { return s.echo }

// Rejections counts the requests refused at a bound since New.
func (s *Server) Rejections() map[string]int64 { return s.rejections.Snapshot() }

// answer wraps every request. It sets the browser security headers of
// §12.7 and CORS headers (on errors too), gives the response's writes their
// deadlines, and makes an answer certain: an error is written by
// errorHandler here, and a handler that returned without writing anything
// (a bug) gets a 500 (finish logs every 5xx and reports the request), so net/http's implicit 200 can never acknowledge a
// write that did not happen. One middleware rather than several keeps
// parked long-polls' stacks small (see Handler).
func (s *Server) answer(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		w := c.Response()
		h := w.Header()
		h[headerContentTypeOptions] = s.fixed.nosniff
		h[headerResourcePolicy] = s.fixed.crossOrigin
		if s.cors.any {
			h[headerAllowOrigin] = s.fixed.anyOrigin
		} else {
			s.cors.allowListed(h, c.Request())
		}
		h[headerExposeHeaders] = s.fixed.exposed
		w.Writer = newDeadlineWriter(w.Writer, c.Request(), s.cfg.WriteTimeout)
		var start time.Time
		if s.timed() {
			start = time.Now()
		}
		err := next(c)
		if err != nil {
			s.errorHandler(err, c)
		}
		if !w.Committed {
			err = errNoResponse
			s.writeError(c, newError(http.StatusInternalServerError, "internal error"))
		}
		s.finish(c, start, err)
		return nil
	}
}

// Headers a browser client may send and read (CORS).
const (
	allowedRequestHeaders = "Content-Type, Stream-Seq, Stream-TTL, Stream-Expires-At, Stream-Closed, " +
		"Producer-Id, Producer-Epoch, Producer-Seq, Stream-Forked-From, Stream-Fork-Offset, " +
		"Stream-Fork-Sub-Offset, If-None-Match, Authorization, Cache-Control"
	exposedResponseHeaders = "Stream-Next-Offset, Stream-Up-To-Date, Stream-Closed, Stream-Cursor, " +
		"Stream-TTL, Stream-Expires-At, Stream-SSE-Data-Encoding, Producer-Epoch, Producer-Seq, " +
		"Producer-Expected-Seq, Producer-Received-Seq, ETag, Location, Content-Type, Content-Encoding"
	allowedMethods = "GET, HEAD, POST, PUT, DELETE, OPTIONS"
)

func (s *Server) route(c echo.Context) error {
	if c.Request().Method == http.MethodOptions {
		return preflight(c)
	}
	path, err := s.admit(c)
	if err != nil || path == "" {
		return err
	}
	switch c.Request().Method {
	case http.MethodPut:
		return s.create(c, path)
	case http.MethodPost:
		return s.appendTo(c, path)
	case http.MethodDelete:
		return s.remove(c, path)
	case http.MethodHead:
		return s.head(c, path)
	default:
		return s.read(c, path)
	}
}

// admit decides whether a request reaches its stream: an injected fault
// may answer it first, the path must be valid, the token (with access
// control) must allow the method on it, and streamd's own streams refuse
// writes. It returns the stream path, or "" when a fault answered.
//
// Not inlined: its locals would otherwise enlarge route's frame, which
// stays on the stack of every parked long-poll (see Handler).
//
//go:noinline
func (s *Server) admit(c echo.Context) (string, error) {
	if s.faults.active() {
		if done, err := s.applyFault(c); done {
			return "", err
		}
	}
	// Decode exactly once, from the escaped form: Echo's wildcard parameter
	// is already decoded when the request used canonical escaping.
	path, err := streamPath(strings.TrimPrefix(c.Request().URL.EscapedPath(), StreamPrefix+"/"))
	if err != nil {
		return "", err
	}
	// The reserved control namespace is routed before streams (§6): no
	// stream can be created, read or written under it.
	if rest, ok := strings.CutPrefix(path, controlPrefix); ok || path == controlRoot {
		return "", s.control(c, rest)
	}
	if s.auth != nil {
		g, err := s.auth.grantFor(c.Request())
		if err != nil {
			return "", err
		}
		if err := s.auth.authorize(c.Request(), g, path); err != nil {
			s.log.Debug("request refused", "method", c.Request().Method, "path", path, "token", g.name, "err", err)
			return "", err
		}
	}
	switch m := c.Request().Method; {
	case (m == http.MethodPut || m == http.MethodPost || m == http.MethodDelete) && s.streams.Reserved(path):
		return "", newError(http.StatusForbidden, "this stream is written by streamd only")
	}
	return path, nil
}

func preflight(c echo.Context) error {
	h := c.Response().Header()
	h.Set(echo.HeaderAccessControlAllowMethods, allowedMethods)
	allow := allowedRequestHeaders
	if req := c.Request().Header.Get(echo.HeaderAccessControlRequestHeaders); req != "" {
		allow += ", " + req
	}
	h.Set(echo.HeaderAccessControlAllowHeaders, allow)
	h.Set(echo.HeaderAccessControlMaxAge, "86400")
	return c.NoContent(http.StatusNoContent)
}

// streamPath decodes and validates the stream path under StreamPrefix. It
// rejects anything that could address outside the stream namespace or
// confuse logs: empty or over-long paths, invalid escapes, invalid UTF-8,
// control characters, and empty, "." or ".." segments (§12.2).
func streamPath(raw string) (string, error) {
	p, err := url.PathUnescape(raw)
	if err != nil {
		return "", newError(http.StatusBadRequest, "invalid percent-encoding in stream path")
	}
	switch {
	case p == "":
		return "", newError(http.StatusBadRequest, "missing stream path")
	case len(p) > maxPathBytes:
		return "", newError(http.StatusBadRequest, "stream path longer than 1024 bytes")
	case !utf8.ValidString(p):
		return "", newError(http.StatusBadRequest, "stream path is not valid UTF-8")
	}
	for _, r := range p {
		if r < 0x20 || r == 0x7f {
			return "", newError(http.StatusBadRequest, "stream path contains control characters")
		}
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return "", newError(http.StatusBadRequest, "stream path has an empty, '.' or '..' segment")
		}
	}
	return p, nil
}
