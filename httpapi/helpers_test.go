package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/streamd/streamd/actors"
	"github.com/streamd/streamd/httpapi"
	"github.com/streamd/streamd/persistence"
	"github.com/streamd/streamd/protocol"
)

// env is one in-process streamd (memory store, actors, Echo router) served
// over real HTTP, so flushing, long-polls and SSE behave as in production.
type env struct {
	url    string
	client *http.Client
	api    *httpapi.Server
}

// setup is what options may change before the stack starts.
type setup struct {
	api    httpapi.Config
	actors actors.Config
}

type option func(*setup)

func withLongPoll(d time.Duration) option {
	return func(s *setup) { s.api.LongPollTimeout = d }
}

func withSSEReconnect(d time.Duration) option {
	return func(s *setup) { s.api.SSEReconnectInterval = d }
}

func withMaxChunk(n int) option { return func(s *setup) { s.api.MaxChunkBytes = n } }

func withMaxAppend(n int64) option { return func(s *setup) { s.api.MaxAppendBytes = n } }

func withCompression(on bool) option { return func(s *setup) { s.api.Compression = on } }

func withReadAhead(bytes int) option { return func(s *setup) { s.api.ReadAheadBytes = bytes } }

func withClock(now func() time.Time) option { return func(s *setup) { s.actors.Now = now } }

// withAPI and withActors adjust any other setting.
func withAPI(f func(*httpapi.Config)) option { return func(s *setup) { f(&s.api) } }

func withActors(f func(*actors.Config)) option { return func(s *setup) { f(&s.actors) } }

// fakeClock is a manually advanced clock for expiry tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// lockedBuffer collects server logs written from many goroutines.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newEnv(t *testing.T, opts ...option) *env {
	t.Helper()
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	store, err := persistence.Open(persistence.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	st := setup{
		api: httpapi.Config{
			Store:                store,
			LongPollTimeout:      300 * time.Millisecond,
			SSEReconnectInterval: 10 * time.Second,
			Compression:          true,
			Logger:               log,
		},
		actors: actors.Config{Store: store, Logger: log},
	}
	for _, o := range opts {
		o(&st)
	}
	streams, err := actors.Start(st.actors)
	if err != nil {
		t.Fatalf("start actors: %v", err)
	}
	st.api.Streams = streams
	api := httpapi.New(st.api)
	ts := httptest.NewServer(api)
	// Compression is negotiated explicitly by the tests, so the transport
	// must neither add Accept-Encoding nor decompress transparently.
	tr := &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 128}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		ts.CloseClientConnections()
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := streams.Shutdown(ctx); err != nil {
			t.Errorf("shutdown actors: %v", err)
		}
		if err := store.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
		// Any error-level log means a request hit an internal failure (a
		// 5xx or a broken live response) even if its status looked fine.
		// Every 5xx is logged; a 503 is a refusal at a bound, which tests
		// provoke and check by status.
		out := logs.String()
		if unexpectedErrors(out) {
			t.Errorf("server logged errors:\n%s", out)
		} else if t.Failed() && out != "" {
			t.Logf("server log:\n%s", out)
		}
	})
	return &env{url: ts.URL, client: &http.Client{Transport: tr}, api: api}
}

// unexpectedErrors reports whether a server log has an error-level line
// other than a 503's.
func unexpectedErrors(log string) bool {
	for _, line := range strings.Split(log, "\n") {
		if strings.Contains(line, "level=ERROR") && !strings.Contains(line, "status=503") {
			return true
		}
	}
	return false
}

func sp(name string) string { return httpapi.StreamPrefix + "/" + name }

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r *response) get(k string) string { return r.header.Get(k) }

func (r *response) String() string {
	return fmt.Sprintf("%d %v %q", r.status, r.header, truncate(r.body))
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// newRequest builds a request whose request-target is sent verbatim, so
// tests can send paths and queries a url.URL would normalise or reject.
func (e *env) newRequest(ctx context.Context, method, target string, body io.Reader, hdr []string) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, method, e.url, body)
	if err != nil {
		return nil, err
	}
	req.URL.Opaque = target
	if len(hdr)%2 != 0 {
		return nil, fmt.Errorf("odd header list %q", hdr)
	}
	for i := 0; i < len(hdr); i += 2 {
		req.Header[http.CanonicalHeaderKey(hdr[i])] = append(req.Header[http.CanonicalHeaderKey(hdr[i])], hdr[i+1])
	}
	return req, nil
}

// request sends one request; body nil means no body. Safe for goroutines.
func (e *env) request(ctx context.Context, method, target string, body []byte, hdr ...string) (*response, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	return e.send(ctx, method, target, r, hdr...)
}

func (e *env) send(ctx context.Context, method, target string, body io.Reader, hdr ...string) (*response, error) {
	req, err := e.newRequest(ctx, method, target, body, hdr)
	if err != nil {
		return nil, err
	}
	res, err := e.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read body: %w", method, target, err)
	}
	return &response{status: res.StatusCode, header: res.Header, body: b}, nil
}

func (e *env) do(t *testing.T, method, target string, body []byte, hdr ...string) *response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := e.request(ctx, method, target, body, hdr...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, target, err)
	}
	return r
}

// expect sends a request and checks its status.
func (e *env) expect(t *testing.T, status int, method, target string, body []byte, hdr ...string) *response {
	t.Helper()
	r := e.do(t, method, target, body, hdr...)
	if r.status != status {
		t.Fatalf("%s %s: status %d, want %d (body %q)", method, target, r.status, status, truncate(r.body))
	}
	return r
}

func wantHeader(t *testing.T, r *response, k, v string) {
	t.Helper()
	if got := r.header.Get(k); got != v {
		t.Errorf("header %s = %q, want %q", k, got, v)
	}
}

func wantNoHeader(t *testing.T, r *response, k string) {
	t.Helper()
	if vs, ok := r.header[http.CanonicalHeaderKey(k)]; ok {
		t.Errorf("header %s = %q, want it absent", k, vs)
	}
}

func off(pos uint64) string { return protocol.FormatOffset(pos) }

// position decodes a Stream-Next-Offset this server produced.
func position(t testing.TB, token string) uint64 {
	t.Helper()
	kind, pos, err := protocol.ParseOffset(token)
	if err != nil || kind != protocol.OffsetAt {
		t.Fatalf("bad offset token %q: %v", token, err)
	}
	return pos
}

// readAll follows Stream-Next-Offset from the start until Stream-Up-To-Date
// and returns the concatenated bodies and the final offset.
func (e *env) readAll(t *testing.T, path string) ([]byte, string) {
	t.Helper()
	var data []byte
	offset := "-1"
	for i := 0; ; i++ {
		if i > 100000 {
			t.Fatalf("read of %s never reached Stream-Up-To-Date", path)
		}
		r := e.expect(t, http.StatusOK, http.MethodGet, path+"?offset="+offset, nil)
		data = append(data, r.body...)
		next := r.get("Stream-Next-Offset")
		if next == "" {
			t.Fatalf("read of %s: no Stream-Next-Offset", path)
		}
		offset = next
		if r.get("Stream-Up-To-Date") == "true" {
			return data, offset
		}
	}
}

// sseEvent is one dispatched Server-Sent Event.
type sseEvent struct {
	event string
	data  string // data lines joined with "\n", as an EventSource would
}

// readSSE parses one event per the HTML event-stream rules the clients use.
func readSSE(br *bufio.Reader) (sseEvent, error) {
	var ev sseEvent
	var data []string
	seen := false
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			if seen || line != "" {
				return ev, fmt.Errorf("event cut short (%q): %w", line, err)
			}
			return ev, err
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if line == "" {
			if !seen {
				continue
			}
			ev.data = strings.Join(data, "\n")
			return ev, nil
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		seen = true
		switch field {
		case "event":
			ev.event = value
		case "data":
			data = append(data, value)
		}
	}
}

// control is the JSON of an SSE control event; pointers record presence.
type control struct {
	StreamNextOffset *string `json:"streamNextOffset"`
	StreamCursor     *string `json:"streamCursor"`
	UpToDate         *bool   `json:"upToDate"`
	StreamClosed     *bool   `json:"streamClosed"`
}

func parseControl(t testing.TB, data string) control {
	t.Helper()
	var c control
	dec := json.NewDecoder(strings.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		t.Fatalf("control event %q: %v", data, err)
	}
	if c.StreamNextOffset == nil {
		t.Fatalf("control event %q lacks streamNextOffset", data)
	}
	return c
}

func decodeBase64Event(data string) ([]byte, error) {
	s := strings.NewReplacer("\n", "", "\r", "").Replace(data)
	return base64.StdEncoding.DecodeString(s)
}

// sseStream is an open SSE response whose events arrive on a channel.
type sseStream struct {
	res    *http.Response
	events chan sseEvent
	done   chan error // receives the terminal read error (io.EOF: clean end)
	cancel context.CancelFunc
}

func (e *env) openSSE(t *testing.T, target string, hdr ...string) *sseStream {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := e.newRequest(ctx, http.MethodGet, target, nil, hdr)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	res, err := e.client.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("GET %s: %v", target, err)
	}
	if res.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		cancel()
		t.Fatalf("GET %s: status %d (%q)", target, res.StatusCode, b)
	}
	s := &sseStream{res: res, events: make(chan sseEvent, 1024), done: make(chan error, 1), cancel: cancel}
	go func() {
		br := bufio.NewReader(res.Body)
		for {
			ev, err := readSSE(br)
			if err != nil {
				close(s.events)
				s.done <- err
				return
			}
			s.events <- ev
		}
	}()
	t.Cleanup(func() {
		cancel()
		res.Body.Close()
	})
	return s
}

// next returns the next event or fails after timeout.
func (s *sseStream) next(t *testing.T, timeout time.Duration) sseEvent {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if !ok {
			t.Fatalf("SSE response ended early: %v", <-s.done)
		}
		return ev
	case <-time.After(timeout):
		t.Fatalf("no SSE event within %v", timeout)
	}
	return sseEvent{}
}

// expectEnd checks that the server ends the response within timeout,
// without further events.
func (s *sseStream) expectEnd(t *testing.T, timeout time.Duration) {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if ok {
			t.Fatalf("unexpected SSE event %+v, want the response to end", ev)
		}
		if err := <-s.done; err != io.EOF {
			t.Fatalf("SSE response ended with %v, want a clean end", err)
		}
	case <-time.After(timeout):
		t.Fatalf("SSE response still open after %v", timeout)
	}
}

// expectQuiet checks that no event arrives for d.
func (s *sseStream) expectQuiet(t *testing.T, d time.Duration) {
	t.Helper()
	select {
	case ev, ok := <-s.events:
		if ok {
			t.Fatalf("unexpected SSE event %+v", ev)
		}
		t.Fatalf("SSE response ended unexpectedly: %v", <-s.done)
	case <-time.After(d):
	}
}

// tok returns the offset token of pos in the stream at target (a stream
// path), in the stream's own segment, read from a HEAD: each incarnation's
// tokens carry its id. Not for a fork's inherited positions, which carry
// its source's segment.
func (e *env) tok(t testing.TB, target string, pos uint64) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	r, err := e.request(ctx, http.MethodHead, target, nil)
	if err != nil || r.status != http.StatusOK {
		t.Fatalf("HEAD %s for its offsets: %v %v", target, r, err)
	}
	_, seg, _, err := protocol.ParseOffsetSegment(r.get("Stream-Next-Offset"))
	if err != nil {
		t.Fatalf("HEAD %s: Stream-Next-Offset %q: %v", target, r.get("Stream-Next-Offset"), err)
	}
	return protocol.FormatOffsetIn(seg, pos)
}
