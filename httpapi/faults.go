package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
)

// Fault injection lets client test suites see how their clients cope with
// failures: errors, slow answers, dropped connections, damaged bodies and
// unexpected SSE events. A fault is armed for one request path and fires on
// the next matching requests; the JSON API at /_test/inject-error speaks
// the same wire format as the Node reference server's.

// Bounds of fault injection.
const (
	// MaxArmedFaults bounds the paths with an armed fault.
	MaxArmedFaults = 10_000
	// MaxFaultDelay bounds Fault.Delay and Fault.Jitter each.
	MaxFaultDelay = 5 * time.Minute
	// maxFaultBodyBytes bounds a POST /_test/inject-error body.
	maxFaultBodyBytes = 64 << 10
	// maxFaultCount bounds Fault.Count.
	maxFaultCount = 1_000_000_000
)

// faultEndpoint is the path of the fault injection API, at the server root
// and under StreamPrefix.
const faultEndpoint = "/_test/inject-error"

// injectedErrorBody is the body of a Fault.Status answer.
const injectedErrorBody = "Injected error for testing"

var (
	// ErrInvalidFault reports a Fault with a value out of range.
	ErrInvalidFault = errors.New("invalid fault")
	// ErrTooManyFaults reports that MaxArmedFaults paths already have one.
	ErrTooManyFaults = errors.New("too many armed faults")
)

// Fault is a misbehaviour armed for the requests to one path. When it fires
// on a request, Delay (plus Jitter) passes first; then DropConnection,
// Status, or the body faults apply, in that order of precedence.
type Fault struct {
	// Count is how many matching requests the fault fires on; 0 means 1.
	Count int
	// Method, if set, limits the fault to requests with this method.
	Method string
	// Probability, if set, is the chance (0 to 1) that a matching request
	// fires the fault; a request it skips leaves Count as it was.
	Probability *float64

	// Delay, plus a random part of Jitter, passes before the request is
	// handled (or answered with Status). Each is at most MaxFaultDelay.
	Delay, Jitter time.Duration
	// DropConnection closes the connection without an answer (an HTTP/2
	// request's stream is reset instead).
	DropConnection bool
	// Status, if set (200-599), is answered instead of handling the
	// request, with the text body "Injected error for testing"; the stream
	// is not touched.
	Status int
	// RetryAfter, if set, is sent with Status as Retry-After, in seconds.
	RetryAfter *int
	// TruncateBodyBytes, if set, cuts the body of a read's data response
	// (catch-up or long-poll, after compression) to this many bytes.
	TruncateBodyBytes *int
	// CorruptBody overwrites bytes of a read's data response: a tenth of
	// them, at random, with "Z", and the first two with "XY" (so no JSON
	// parses). The stored data is untouched.
	CorruptBody bool
	// SSEEvent, if set, is sent first on an SSE read's response.
	SSEEvent *SSEEvent
}

// SSEEvent is an extra Server-Sent Event for a Fault to send.
type SSEEvent struct {
	// EventType is the event's name (one line).
	EventType string
	// Data is sent as the event's data line exactly as given.
	Data string
}

// validate checks f's values and returns it with Count and Method in their
// canonical form.
func (f Fault) validate() (Fault, error) {
	bad := func(format string, args ...any) (Fault, error) {
		return Fault{}, fmt.Errorf("%w: "+format, append([]any{ErrInvalidFault}, args...)...)
	}
	switch {
	case f.Count < 0 || f.Count > maxFaultCount:
		return bad("count must be between 1 and %d", maxFaultCount)
	case f.Probability != nil && !(*f.Probability >= 0 && *f.Probability <= 1):
		return bad("probability must be between 0 and 1")
	case f.Delay < 0 || f.Delay > MaxFaultDelay:
		return bad("delay must be between 0 and %v", MaxFaultDelay)
	case f.Jitter < 0 || f.Jitter > MaxFaultDelay:
		return bad("jitter must be between 0 and %v", MaxFaultDelay)
	case f.Status != 0 && (f.Status < 200 || f.Status > 599):
		return bad("status must be between 200 and 599")
	case f.RetryAfter != nil && *f.RetryAfter < 0:
		return bad("retryAfter must not be negative")
	case f.TruncateBodyBytes != nil && *f.TruncateBodyBytes < 0:
		return bad("truncateBodyBytes must not be negative")
	case f.SSEEvent != nil && (f.SSEEvent.EventType == "" || strings.ContainsAny(f.SSEEvent.EventType, "\r\n")):
		return bad("injectSseEvent.eventType must be one non-empty line")
	}
	f.Count = max(f.Count, 1)
	f.Method = strings.ToUpper(f.Method)
	switch f.Method {
	case "", http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodDelete:
	default:
		return bad("method must be GET, HEAD, POST, PUT or DELETE")
	}
	return f, nil
}

// armedFault is a Fault with the requests it has yet to fire on.
type armedFault struct {
	Fault
	remaining int
}

// Faults holds the armed faults of a Server. It is safe for concurrent
// use; an embedder may drive it from Go (Server.Faults) as well as over
// HTTP (Config.TestEndpoints).
type Faults struct {
	mu     sync.Mutex
	byPath map[string]*armedFault
	// armed mirrors len(byPath), so requests skip the lock while nothing
	// is armed.
	armed atomic.Int64
}

// NewFaults returns an empty set of faults.
func NewFaults() *Faults { return &Faults{byPath: map[string]*armedFault{}} }

// Inject arms f for the requests whose URL path (decoded, e.g.
// "/v1/stream/a b") is path, replacing a fault armed there before. It
// returns an error wrapping ErrInvalidFault for values out of range, or
// ErrTooManyFaults.
func (fs *Faults) Inject(path string, f Fault) error {
	if path == "" {
		return fmt.Errorf("%w: missing path", ErrInvalidFault)
	}
	f, err := f.validate()
	if err != nil {
		return err
	}
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if _, ok := fs.byPath[path]; !ok && len(fs.byPath) >= MaxArmedFaults {
		return fmt.Errorf("%w: %d paths have one; clear them first", ErrTooManyFaults, MaxArmedFaults)
	}
	fs.byPath[path] = &armedFault{Fault: f, remaining: f.Count}
	fs.armed.Store(int64(len(fs.byPath)))
	return nil
}

// Clear disarms every fault.
func (fs *Faults) Clear() {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	clear(fs.byPath)
	fs.armed.Store(0)
}

// Armed returns the number of paths with an armed fault.
func (fs *Faults) Armed() int { return int(fs.armed.Load()) }

// active reports, without locking, whether any fault is armed; fs may be nil.
func (fs *Faults) active() bool { return fs != nil && fs.armed.Load() > 0 }

// take returns the fault a request fires, using up one of its count.
func (fs *Faults) take(path, method string) (Fault, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	a, ok := fs.byPath[path]
	if !ok || (a.Method != "" && !strings.EqualFold(a.Method, method)) {
		return Fault{}, false
	}
	if a.Probability != nil && !(rand.Float64() < *a.Probability) {
		return Fault{}, false
	}
	a.remaining--
	if a.remaining <= 0 {
		delete(fs.byPath, path)
		fs.armed.Store(int64(len(fs.byPath)))
	}
	return a.Fault, true
}

// Faults returns the server's faults: Config.Faults, or the set the test
// endpoints created; nil when neither is in use.
func (s *Server) Faults() *Faults { return s.faults }

// mountFaults sets up fault injection from the config and, with
// TestEndpoints, serves its API at the root and under StreamPrefix. Under
// the prefix the endpoint takes the place of the stream path
// "_test/inject-error", which stays an ordinary stream path without it.
func (s *Server) mountFaults(e *echo.Echo) {
	s.faults = s.cfg.Faults
	if !s.cfg.TestEndpoints {
		return
	}
	if s.faults == nil {
		s.faults = NewFaults()
	}
	e.Any(faultEndpoint, s.faultAPI(""))
	e.Any(StreamPrefix+faultEndpoint, s.faultAPI(StreamPrefix))
}

// faultAPI serves the fault injection API at prefix: a POSTed fault's path
// is relative to prefix, as a client's stream URLs are to its base URL.
func (s *Server) faultAPI(prefix string) echo.HandlerFunc {
	return func(c echo.Context) error {
		switch c.Request().Method {
		case http.MethodPost:
			path, f, err := s.decodeFault(c, prefix)
			if err != nil {
				return err
			}
			if err := s.faults.Inject(path, f); err != nil {
				if errors.Is(err, ErrTooManyFaults) {
					return newError(http.StatusServiceUnavailable, err.Error())
				}
				return newError(http.StatusBadRequest, err.Error())
			}
			s.log.Debug("fault armed", "path", path, "fault", f)
			return c.JSONBlob(http.StatusOK, []byte(`{"ok":true}`))
		case http.MethodDelete:
			s.faults.Clear()
			s.log.Debug("faults cleared")
			return c.JSONBlob(http.StatusOK, []byte(`{"ok":true}`))
		case http.MethodOptions:
			return preflight(c)
		}
		return newError(http.StatusMethodNotAllowed, "Method not allowed").with(echo.HeaderAllow, "POST, DELETE, OPTIONS")
	}
}

// faultRequest is the JSON body of POST /_test/inject-error. Pointers tell
// an absent field from a zero one; numbers are float64 so that a fraction
// where a whole number belongs is reported as such.
type faultRequest struct {
	Path              *string  `json:"path"`
	Status            *float64 `json:"status"`
	Count             *float64 `json:"count"`
	RetryAfter        *float64 `json:"retryAfter"`
	DelayMs           *float64 `json:"delayMs"`
	JitterMs          *float64 `json:"jitterMs"`
	DropConnection    *bool    `json:"dropConnection"`
	TruncateBodyBytes *float64 `json:"truncateBodyBytes"`
	CorruptBody       *bool    `json:"corruptBody"`
	Probability       *float64 `json:"probability"`
	Method            *string  `json:"method"`
	InjectSseEvent    *struct {
		EventType *string `json:"eventType"`
		Data      *string `json:"data"`
	} `json:"injectSseEvent"`
}

// decodeFault reads a POSTed fault. Its messages for a missing path, a
// missing fault kind and malformed JSON are the reference server's.
func (s *Server) decodeFault(c echo.Context, prefix string) (string, Fault, error) {
	r := c.Request()
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, maxFaultBodyBytes))
	if err != nil {
		return "", Fault{}, bodyReadError(err)
	}
	var req faultRequest
	if err := json.Unmarshal(body, &req); err != nil {
		var typeErr *json.UnmarshalTypeError
		if errors.As(err, &typeErr) && typeErr.Field != "" {
			return "", Fault{}, newError(http.StatusBadRequest, typeErr.Field+" must be "+jsonKind(typeErr.Type.String()))
		}
		return "", Fault{}, newError(http.StatusBadRequest, "Invalid JSON body")
	}
	if req.Path == nil || *req.Path == "" {
		return "", Fault{}, newError(http.StatusBadRequest, "Missing required field: path")
	}
	if req.Status == nil && req.DelayMs == nil && !isTrue(req.DropConnection) && req.TruncateBodyBytes == nil &&
		!isTrue(req.CorruptBody) && req.InjectSseEvent == nil {
		return "", Fault{}, newError(http.StatusBadRequest,
			"Must specify at least one fault type: status, delayMs, dropConnection, truncateBodyBytes, corruptBody, or injectSseEvent")
	}
	path, err := faultPath(prefix, *req.Path)
	if err != nil {
		return "", Fault{}, err
	}
	var f Fault
	var errs []error
	whole := func(name string, v *float64) int {
		if v == nil {
			return 0
		}
		if *v != math.Trunc(*v) || math.Abs(*v) > maxFaultCount {
			errs = append(errs, fmt.Errorf("%s must be a whole number", name))
			return 0
		}
		return int(*v)
	}
	millis := func(name string, v *float64) time.Duration {
		if v == nil {
			return 0
		}
		if !(*v >= 0 && *v <= float64(MaxFaultDelay/time.Millisecond)) {
			errs = append(errs, fmt.Errorf("%s must be between 0 and %d", name, MaxFaultDelay/time.Millisecond))
			return 0
		}
		return time.Duration(*v * float64(time.Millisecond))
	}
	f.Status = whole("status", req.Status)
	if req.Status != nil && f.Status == 0 {
		errs = append(errs, errors.New("status must be between 200 and 599"))
	}
	f.Count = 1
	if req.Count != nil {
		if f.Count = whole("count", req.Count); f.Count < 1 {
			errs = append(errs, errors.New("count must be at least 1"))
		}
	}
	if req.RetryAfter != nil {
		n := whole("retryAfter", req.RetryAfter)
		f.RetryAfter = &n
	}
	f.Delay, f.Jitter = millis("delayMs", req.DelayMs), millis("jitterMs", req.JitterMs)
	f.DropConnection, f.CorruptBody = isTrue(req.DropConnection), isTrue(req.CorruptBody)
	if req.TruncateBodyBytes != nil {
		n := whole("truncateBodyBytes", req.TruncateBodyBytes)
		f.TruncateBodyBytes = &n
	}
	f.Probability = req.Probability
	if req.Method != nil {
		f.Method = *req.Method
	}
	if ev := req.InjectSseEvent; ev != nil {
		if ev.EventType == nil || ev.Data == nil {
			errs = append(errs, errors.New("injectSseEvent needs eventType and data"))
		} else {
			f.SSEEvent = &SSEEvent{EventType: *ev.EventType, Data: *ev.Data}
		}
	}
	if len(errs) > 0 {
		return "", Fault{}, newError(http.StatusBadRequest, errs[0].Error())
	}
	return path, f, nil
}

// faultPath resolves a POSTed path against the endpoint's prefix and
// decodes it, as requests are matched by their decoded URL path.
func faultPath(prefix, raw string) (string, error) {
	if !strings.HasPrefix(raw, "/") {
		raw = "/" + raw
	}
	p, err := url.PathUnescape(prefix + raw)
	switch {
	case err != nil:
		return "", newError(http.StatusBadRequest, "invalid percent-encoding in path")
	case len(p) > len(StreamPrefix)+1+maxPathBytes:
		return "", newError(http.StatusBadRequest, "path too long")
	}
	return p, nil
}

func isTrue(b *bool) bool { return b != nil && *b }

// jsonKind names a Go type json.Unmarshal wanted in JSON's terms.
func jsonKind(goType string) string {
	switch {
	case goType == "float64":
		return "a number"
	case goType == "bool":
		return "a boolean"
	case goType == "string":
		return "a string"
	}
	return "an object"
}

// applyFault fires the fault armed for the request, if any. It reports
// whether the request has been dealt with (answered, dropped, or failed
// with the returned error); otherwise handling goes on, with the response
// writer wrapped when a body fault applies.
func (s *Server) applyFault(c echo.Context) (bool, error) {
	r := c.Request()
	f, ok := s.faults.take(r.URL.Path, r.Method)
	if !ok {
		return false, nil
	}
	s.log.Debug("injecting fault", "method", r.Method, "path", r.URL.Path, "fault", f)
	delay := f.Delay
	if f.Jitter > 0 {
		delay += rand.N(f.Jitter)
	}
	if delay > 0 {
		if err := s.sleep(r, delay); err != nil {
			return true, err
		}
	}
	switch {
	case f.DropConnection:
		dropConnection(c)
		return true, nil
	case f.Status != 0:
		return true, writeInjectedStatus(c, f)
	case r.Method == http.MethodGet && (f.TruncateBodyBytes != nil || f.CorruptBody || f.SSEEvent != nil):
		c.Response().Writer = &faultyWriter{ResponseWriter: c.Response().Writer, fault: f}
	}
	return false, nil
}

// sleep waits d, or less if the client leaves (an error) or the server
// drains (no error: the request is then handled at once). net/http notices
// an HTTP/1 client leaving only once the request body has been read, so a
// request with a body sits out its delay.
func (s *Server) sleep(r *http.Request, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-s.cfg.Draining:
		return nil
	case <-r.Context().Done():
		return fmt.Errorf("injected delay: %w", r.Context().Err())
	}
}

// dropConnection ends the request without an answer: an HTTP/1 connection
// is closed, an HTTP/2 stream reset (its connection cannot be hijacked;
// net/http resets the stream on http.ErrAbortHandler and logs nothing).
func dropConnection(c echo.Context) {
	conn, _, err := http.NewResponseController(c.Response().Writer).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	c.Response().Committed = true // nothing may be written on the dropped connection
	_ = conn.Close()
}

// writeInjectedStatus answers with a fault's status.
// injectedKey marks a response as an injected fault's (echo.Context), so
// its 5xx is not logged as a failure of streamd.
const injectedKey = "streamd.injected"

func writeInjectedStatus(c echo.Context, f Fault) error {
	c.Set(injectedKey, true)
	h := c.Response().Header()
	if f.RetryAfter != nil {
		h.Set("Retry-After", strconv.Itoa(*f.RetryAfter))
	}
	if !bodyAllowed(f.Status) || c.Request().Method == http.MethodHead {
		return c.NoContent(f.Status)
	}
	return c.Blob(f.Status, "text/plain", []byte(injectedErrorBody))
}

func bodyAllowed(status int) bool {
	return status != http.StatusNoContent && status != http.StatusNotModified
}

// faultyWriter applies a fault's body faults to a read's response: the
// SSE event at the start of an SSE response; truncation and corruption to
// a data response (200 with an ETag: catch-up and long-poll data, not
// offset=now or error answers). It sits above compression, so a compressed
// body is damaged as sent.
type faultyWriter struct {
	http.ResponseWriter
	fault   Fault
	damage  bool // truncate and corrupt this response's body
	written int  // body bytes passed on
}

func (w *faultyWriter) WriteHeader(code int) {
	h := w.Header()
	sse := code == http.StatusOK && strings.HasPrefix(h.Get(echo.HeaderContentType), "text/event-stream")
	w.damage = code == http.StatusOK && !sse && len(h[headerETag]) > 0
	w.ResponseWriter.WriteHeader(code)
	if ev := w.fault.SSEEvent; sse && ev != nil {
		// Sent as given, like the reference server: data may even hold
		// line breaks, which is what some tests want.
		_, _ = io.WriteString(w.ResponseWriter, "event: "+ev.EventType+"\ndata: "+ev.Data+"\n\n")
	}
}

func (w *faultyWriter) Write(p []byte) (int, error) {
	if !w.damage {
		return w.ResponseWriter.Write(p)
	}
	out := p
	if t := w.fault.TruncateBodyBytes; t != nil {
		out = out[:min(len(out), max(*t-w.written, 0))]
	}
	if w.fault.CorruptBody && len(out) > 0 {
		out = corrupt(out, w.written)
	}
	w.written += len(out)
	if len(out) > 0 {
		if _, err := w.ResponseWriter.Write(out); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Unwrap lets http.ResponseController reach the flusher underneath.
func (w *faultyWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// corrupt returns a damaged copy of p, the part of a body starting at
// offset at: a tenth of p's bytes (at least one), chosen at random, become
// "Z", and the body's first two bytes "XY", so that no JSON body parses.
// p itself may be shared (a pooled buffer, a live delta other readers get)
// and is never written.
func corrupt(p []byte, at int) []byte {
	out := bytes.Clone(p)
	for range max(1, len(out)/10) {
		out[rand.IntN(len(out))] = 'Z'
	}
	for i, b := range []byte("XY") {
		if j := i - at; j >= 0 && j < len(out) {
			out[j] = b
		}
	}
	return out
}
