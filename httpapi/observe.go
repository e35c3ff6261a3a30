package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/streamd/streamd/protocol"
)

// Route is the kind of a request, as metrics and logs group requests: a
// small fixed set, never the stream path, so a label built from it has
// bounded cardinality.
type Route uint8

// Routes; RouteOther covers preflights and paths outside StreamPrefix.
const (
	RouteCreate Route = iota
	RouteAppend
	RouteRead
	RouteReadLongPoll
	RouteReadSSE
	RouteHead
	RouteDelete
	RouteFork
	RouteOther
	NumRoutes // the number of routes, for arrays indexed by Route
)

var routeNames = [NumRoutes]string{
	RouteCreate: "create", RouteAppend: "append", RouteRead: "read",
	RouteReadLongPoll: "read_live_longpoll", RouteReadSSE: "read_sse", RouteHead: "head",
	RouteDelete: "delete", RouteFork: "fork", RouteOther: "other",
}

func (r Route) String() string {
	if r >= NumRoutes {
		return routeNames[RouteOther]
	}
	return routeNames[r]
}

// Request describes one finished request to a RequestObserver.
type Request struct {
	Method   string
	Route    Route
	Status   int
	Bytes    int64 // response body bytes written
	Duration time.Duration
}

// RequestObserver is told about every request once its response is
// complete. It is called on the request's goroutine, concurrently for
// concurrent requests, so it must be cheap and must not block.
type RequestObserver interface {
	ObserveRequest(Request)
}

// errNoResponse stands for a handler bug in the 5xx log line: the handler
// returned without writing anything and without an error.
var errNoResponse = errors.New("handler wrote no response")

// classify returns the route of a request once its handler has run (so
// the query, if any, is already parsed and cached by Echo).
func classify(c echo.Context) Route {
	if c.Path() != StreamPrefix+"/*" {
		return RouteOther
	}
	r := c.Request()
	switch r.Method {
	case http.MethodPut:
		if r.Header.Get(protocol.HeaderStreamForkedFrom) != "" {
			return RouteFork
		}
		return RouteCreate
	case http.MethodPost:
		return RouteAppend
	case http.MethodDelete:
		return RouteDelete
	case http.MethodHead:
		return RouteHead
	case http.MethodGet:
		switch c.QueryParams().Get("live") {
		case "long-poll":
			return RouteReadLongPoll
		case "sse":
			return RouteReadSSE
		}
		return RouteRead
	}
	return RouteOther
}

// timed reports whether requests need their start time: only when
// something reports their duration.
func (s *Server) timed() bool { return s.cfg.Observer != nil || s.cfg.AccessLog }

// finish reports a completed request: to the observer, to the access log
// if enabled, and, for a 5xx, as one error-level log line. err is what the
// handler returned (nil if it wrote its answer itself).
func (s *Server) finish(c echo.Context, start time.Time, err error) {
	w := c.Response()
	var elapsed time.Duration
	if !start.IsZero() {
		elapsed = time.Since(start)
	}
	if o := s.cfg.Observer; o != nil {
		o.ObserveRequest(Request{Method: c.Request().Method, Route: classify(c), Status: w.Status, Bytes: w.Size, Duration: elapsed})
	}
	if w.Status < 500 && !s.cfg.AccessLog {
		return
	}
	r := c.Request()
	if w.Status >= 500 && c.Get(injectedKey) == nil {
		msg := http.StatusText(w.Status)
		if err != nil {
			msg = err.Error()
		}
		s.log.LogAttrs(context.Background(), slog.LevelError, "request failed",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", w.Status), slog.String("err", msg))
	}
	if s.cfg.AccessLog {
		s.log.LogAttrs(context.Background(), slog.LevelInfo, "request",
			slog.String("method", r.Method), slog.String("path", r.URL.Path),
			slog.Int("status", w.Status), slog.Int64("bytes", w.Size),
			slog.Duration("duration", elapsed), slog.String("remote", r.RemoteAddr))
	}
}

// Stats are the server's own counters since New, for metrics.
type Stats struct {
	// Rejections counts requests refused at each bound, by limit name.
	Rejections map[string]int64
	// ReadAheadHits counts catch-up chunks served from read-ahead;
	// ReadAheadMisses those read from storage while read-ahead was on.
	ReadAheadHits, ReadAheadMisses uint64
	// ReadAheadBytes is the memory read-ahead holds now.
	ReadAheadBytes int64
	// BodyMemoryBytes is the request body memory reserved now
	// (Config.MaxBodyMemory bounds it).
	BodyMemoryBytes int64
}

// Stats returns the current Stats. It is safe at any time, concurrently
// with requests.
func (s *Server) Stats() Stats {
	st := Stats{Rejections: s.rejections.Snapshot(), BodyMemoryBytes: s.bodies.used.Load()}
	if s.ahead != nil {
		st.ReadAheadHits, st.ReadAheadMisses = s.ahead.hits.Load(), s.ahead.misses.Load()
		st.ReadAheadBytes = s.ahead.held.Load()
	}
	return st
}

// Mount serves h at path (GET and HEAD) beside the protocol, for
// operational endpoints such as health checks and metrics. Call it before
// serving.
func (s *Server) Mount(path string, h http.Handler) {
	s.echo.Match([]string{http.MethodGet, http.MethodHead}, path, echo.WrapHandler(h))
}
