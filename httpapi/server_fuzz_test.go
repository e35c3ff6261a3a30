package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
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

// fuzzMaxAppend is the request body bound of the fuzzed server: small, so
// that the 413 paths (declared and chunked) are within the fuzzer's reach.
const fuzzMaxAppend = 4096

// fuzzFixture is a stream that exists before every fuzz input, built by
// the requests in steps.
type fuzzFixture struct {
	name  string
	steps []fuzzStep
}

type fuzzStep struct {
	method string
	body   string
	hdr    []string
	want   int
}

var fuzzFixtures = []fuzzFixture{
	{name: "text", steps: []fuzzStep{
		{http.MethodPut, "hello ", []string{"Content-Type", "text/plain"}, http.StatusCreated},
		// Over 1 KiB in all, so reads can be compressed.
		{http.MethodPost, strings.Repeat("the quick brown fox jumps over the lazy dog\n", 40), []string{"Content-Type", "text/plain; charset=utf-8", "Stream-Seq", "0002"}, http.StatusNoContent},
	}},
	{name: "json", steps: []fuzzStep{
		{http.MethodPut, `[{"a":1},"two"]`, []string{"Content-Type", "application/json"}, http.StatusCreated},
		{http.MethodPost, `[[3],{"b":[true,null]}]`, []string{"Content-Type", "application/json"}, http.StatusNoContent},
		{http.MethodPost, ` "five" `, []string{"Content-Type", "Application/JSON; charset=utf-8"}, http.StatusNoContent},
	}},
	{name: "closed", steps: []fuzzStep{
		{http.MethodPut, "\x00\x01\xff\r\n", []string{"Content-Type", "application/octet-stream"}, http.StatusCreated},
		{http.MethodPost, "tail", []string{"Content-Type", "application/octet-stream", "Stream-Closed", "true"}, http.StatusNoContent},
	}},
	{name: "prod", steps: []fuzzStep{
		{http.MethodPut, "", []string{"Content-Type", "application/octet-stream"}, http.StatusCreated},
		{http.MethodPost, "first", []string{"Content-Type", "application/octet-stream", "Producer-Id", "p", "Producer-Epoch", "1", "Producer-Seq", "0"}, http.StatusOK},
		{http.MethodPost, "second", []string{"Content-Type", "application/octet-stream", "Producer-Id", "p", "Producer-Epoch", "1", "Producer-Seq", "1"}, http.StatusOK},
	}},
}

// streamState is what a client can observe of a stream: HEAD's answer and
// the full content read from the start, following Stream-Next-Offset until
// Stream-Up-To-Date.
type streamState struct {
	status                                   int
	contentType, next, closed, ttl, expiries string
	data                                     string
	readNext, readClosed                     string
}

func (s streamState) String() string {
	data := s.data
	if len(data) > 100 {
		data = data[:100] + "..."
	}
	return fmt.Sprintf("{HEAD %d type=%q next=%q closed=%q ttl=%q expires=%q; read next=%q closed=%q data=%q (%d bytes)}",
		s.status, s.contentType, s.next, s.closed, s.ttl, s.expiries, s.readNext, s.readClosed, data, len(s.data))
}

// errorLog collects error-level server logs: each is an internal failure.
type errorLog struct {
	mu    sync.Mutex
	lines []string
}

func (l *errorLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lines = append(l.lines, string(p))
	return len(p), nil
}

func (l *errorLog) since(n int) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.lines[n:]...)
}

func (l *errorLog) len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.lines)
}

// fuzzServer is one in-memory streamd stack shared by every input of a fuzz
// process, with the fixtures in their canonical state between inputs.
type fuzzServer struct {
	api   *httpapi.Server
	logs  *errorLog
	canon map[string]streamState
}

func newFuzzServer(f *testing.F) *fuzzServer {
	logs := &errorLog{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelError}))
	store, err := persistence.Open(persistence.Options{FS: vfs.NewMem()})
	if err != nil {
		f.Fatalf("open store: %v", err)
	}
	streams, err := actors.Start(actors.Config{Store: store, Logger: log})
	if err != nil {
		f.Fatalf("start actors: %v", err)
	}
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := streams.Shutdown(ctx); err != nil {
			f.Errorf("shutdown actors: %v", err)
		}
		if err := store.Close(); err != nil {
			f.Errorf("close store: %v", err)
		}
	})
	s := &fuzzServer{
		api: httpapi.New(httpapi.Config{
			Streams: streams,
			Store:   store,
			// Live reads end at once, so no input blocks.
			LongPollTimeout:      time.Millisecond,
			SSEReconnectInterval: time.Millisecond,
			// Small chunks so reads of the fixtures take several requests.
			MaxChunkBytes:  512,
			MaxAppendBytes: fuzzMaxAppend,
			Compression:    true,
			// The memory bound stays at its generous default: no input can
			// legitimately reach it, so a 503 is always a failure.
			Logger: log,
		}),
		logs:  logs,
		canon: map[string]streamState{},
	}
	for _, fx := range fuzzFixtures {
		if err := s.build(fx); err != nil {
			f.Fatal(err)
		}
		st, err := s.state(streamURL(fx.name))
		if err != nil {
			f.Fatal(err)
		}
		s.canon[fx.name] = st
	}
	if n := logs.len(); n > 0 {
		f.Fatalf("server logged errors while building fixtures: %q", logs.since(0))
	}
	return s
}

func streamURL(name string) *url.URL {
	return &url.URL{Path: httpapi.StreamPrefix + "/" + name}
}

// serve sends one well-formed request straight to the handler.
func (s *fuzzServer) serve(method string, u *url.URL, body string, hdr ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, "http://streamd.test/", strings.NewReader(body))
	req.URL = u
	req.RequestURI = u.RequestURI()
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Add(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	s.api.ServeHTTP(rec, req)
	return rec
}

func (s *fuzzServer) build(fx fuzzFixture) error {
	u := streamURL(fx.name)
	if rec := s.serve(http.MethodDelete, u, ""); rec.Code != http.StatusNoContent && rec.Code != http.StatusNotFound {
		return fmt.Errorf("delete fixture %s: %d %q", fx.name, rec.Code, rec.Body)
	}
	for _, st := range fx.steps {
		if rec := s.serve(st.method, u, st.body, st.hdr...); rec.Code != st.want {
			return fmt.Errorf("fixture %s: %s: %d %q, want %d", fx.name, st.method, rec.Code, rec.Body, st.want)
		}
	}
	return nil
}

// restore deletes the stream at target, which a write may have created,
// and rebuilds every fixture.
func (s *fuzzServer) restore(target *url.URL) error {
	s.serve(http.MethodDelete, target, "")
	for _, fx := range fuzzFixtures {
		if err := s.build(fx); err != nil {
			return err
		}
	}
	return nil
}

// state reads what a client can observe of the stream at u.
func (s *fuzzServer) state(u *url.URL) (streamState, error) {
	head := s.serve(http.MethodHead, u, "")
	h := head.Result().Header
	st := streamState{
		status: head.Code, contentType: h.Get("Content-Type"), next: withoutSegment(h.Get(protocol.HeaderStreamNextOffset)),
		closed: h.Get(protocol.HeaderStreamClosed), ttl: h.Get(protocol.HeaderStreamTTL), expiries: h.Get(protocol.HeaderStreamExpiresAt),
	}
	if head.Code != http.StatusOK {
		return st, nil
	}
	var data strings.Builder
	offset := protocol.OffsetBeginning
	for i := 0; ; i++ {
		if i > 1000 {
			return st, fmt.Errorf("read of %s never reached Stream-Up-To-Date", u.Path)
		}
		get := &url.URL{Path: u.Path, RawPath: u.RawPath, RawQuery: "offset=" + offset}
		rec := s.serve(http.MethodGet, get, "")
		if rec.Code != http.StatusOK {
			return st, fmt.Errorf("read of %s at %s: %d %q", u.Path, offset, rec.Code, rec.Body)
		}
		data.Write(rec.Body.Bytes())
		h := rec.Result().Header
		offset = h.Get(protocol.HeaderStreamNextOffset)
		if h.Get(protocol.HeaderStreamUpToDate) == "true" {
			st.data, st.readNext, st.readClosed = data.String(), withoutSegment(offset), h.Get(protocol.HeaderStreamClosed)
			return st, nil
		}
	}
}

// fuzzWriter records how the handler answers. net/http would send an
// implicit 200 for a handler that returns without writing a status, so
// the status must be written explicitly, once, before any body.
type fuzzWriter struct {
	rec      *httptest.ResponseRecorder
	statuses []int
	implicit bool // body written before any status
	written  int
}

func (w *fuzzWriter) Header() http.Header { return w.rec.Header() }

func (w *fuzzWriter) WriteHeader(code int) {
	w.statuses = append(w.statuses, code)
	w.rec.WriteHeader(code)
}

func (w *fuzzWriter) Write(p []byte) (int, error) {
	if len(w.statuses) == 0 {
		w.implicit = true
	}
	w.written += len(p)
	return w.rec.Write(p)
}

func (w *fuzzWriter) Flush() { w.rec.Flush() }

var fuzzMethods = [8]string{
	http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost,
	http.MethodDelete, http.MethodOptions, http.MethodPatch, http.MethodGet,
}

// fuzzRequest turns a fuzz input into the request net/http would hand the
// handler, or nil when net/http would refuse it before any handler runs.
// sel picks the method (bits 0-2), a chunked body without Content-Length
// (bit 3) and a path outside the stream prefix (bit 4); header holds
// "Name: value" lines.
func fuzzRequest(sel uint8, path, query, header string, body []byte) *http.Request {
	target := httpapi.StreamPrefix + "/" + path
	if sel&16 != 0 {
		target = "/" + path
	}
	if query != "" {
		target += "?" + query
	}
	var head strings.Builder
	head.WriteString(fuzzMethods[sel&7] + " " + target + " HTTP/1.1\r\nHost: streamd.test\r\n")
	for _, line := range strings.Split(header, "\n") {
		name, _, ok := strings.Cut(line, ":")
		if !ok || strings.Contains(line, "\r") {
			continue
		}
		// Framing is set below from the body; the rest is for net/http.
		switch textproto.CanonicalMIMEHeaderKey(name) {
		case "Host", "Content-Length", "Transfer-Encoding", "Connection", "Expect", "Te", "Trailer", "Upgrade":
			continue
		}
		head.WriteString(line + "\r\n")
	}
	head.WriteString("\r\n")
	req, err := http.ReadRequest(bufio.NewReader(strings.NewReader(head.String())))
	if err != nil {
		return nil // net/http answers 400 itself
	}
	// What net/http's server checks beyond ReadRequest.
	for name, values := range req.Header {
		if !validToken(name) {
			return nil
		}
		for _, v := range values {
			for i := 0; i < len(v); i++ {
				if c := v[i]; (c < ' ' && c != '\t') || c == 0x7f {
					return nil
				}
			}
		}
	}
	req.RemoteAddr = "192.0.2.1:4321"
	switch {
	case sel&8 != 0:
		req.ContentLength, req.TransferEncoding = -1, []string{"chunked"}
		req.Body = io.NopCloser(bytes.NewReader(body))
	case len(body) > 0:
		req.ContentLength = int64(len(body))
		req.Body = io.NopCloser(bytes.NewReader(body))
	default:
		req.Body = http.NoBody
	}
	return req
}

func validToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// FuzzServer sends arbitrary requests through the real router to an
// in-memory streamd holding four streams (text, JSON, closed, written by an
// idempotent producer) and checks that the server never panics, never
// answers 5xx, always
// writes its status explicitly and exactly once, sends no body with HEAD,
// 204 or 304, puts the security headers on every answer, logs no internal
// error, and that a request answered 4xx (or any read) leaves every stream
// exactly as it was: content, Stream-Next-Offset, closure, type and expiry
// of the fixtures and of the request's own path.
func FuzzServer(f *testing.F) {
	s := newFuzzServer(f)

	const (
		get, head, put, post, del, options, patch = 0, 1, 2, 3, 4, 5, 6
		chunked, noPrefix                         = 8, 16
	)
	bin := "Content-Type: application/octet-stream\n"
	producer := func(id, epoch, seq string) string {
		return bin + "Producer-Id: " + id + "\nProducer-Epoch: " + epoch + "\nProducer-Seq: " + seq
	}
	deep := func(depth int) string { // a single JSON value nested depth levels
		return `{"a":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`
	}
	seeds := []struct {
		sel                       uint8
		path, query, header, body string
	}{
		// Reads.
		{get, "text", "", "", ""},
		{get, "text", "offset=-1", "", ""},
		{get, "text", "offset=now", "", ""},
		{get, "text", "offset=" + off(6), "", ""},
		{get, "text", "offset=" + off(512), "Accept-Encoding: gzip;q=0.5, deflate", ""},
		{get, "text", "offset=-1", "Accept-Encoding: deflate, gzip;q=0", ""},
		{get, "text", "offset=" + off(protocol.MaxPosition), "", ""},
		{get, "text", "offset=-1&offset=now", "", ""},
		{get, "text", "offset=", "", ""},
		{get, "text", "offset=0000000000000000_000000000000000a", "", ""},
		{get, "text", "offset=-1", "If-None-Match: *", ""},
		{get, "text", "offset=-1", `If-None-Match: W/"1:0:512", "x"`, ""},
		{get, "json", "offset=-1", "", ""},
		{get, "json", "offset=" + off(1), "", ""},
		{get, "json", "offset=now", "", ""},
		{get, "closed", "", "", ""},
		{get, "missing", "offset=-1", "", ""},
		// Live reads (they end at once in this server).
		{get, "text", "offset=now&live=long-poll&cursor=123", "", ""},
		{get, "text", "offset=-1&live=long-poll&cursor=-9223372036854775808", "", ""},
		{get, "closed", "offset=-1&live=long-poll", "", ""},
		{get, "closed", "offset=now&live=long-poll", "", ""},
		{get, "json", "offset=-1&live=sse", "", ""},
		{get, "prod", "offset=now&live=sse&cursor=abc", "", ""},
		{get, "closed", "offset=-1&live=sse", "", ""},
		{get, "text", "live=sse", "", ""},
		{get, "text", "offset=-1&live=SSE", "", ""},
		{head, "json", "", "", ""},
		{head, "closed", "offset=garbage", "", ""},
		{options, "text", "", "Origin: https://example.com\nAccess-Control-Request-Method: POST\nAccess-Control-Request-Headers: X-Custom", ""},
		{patch, "text", "", bin, "x"},
		// Creates.
		{put, "text", "", "Content-Type: text/plain", ""},
		{put, "text", "", "Content-Type: application/json", ""},
		{put, "closed", "", "Content-Type: application/octet-stream\nStream-Closed: true", ""},
		{put, "new", "", "Content-Type: application/json", `[1,[2],{"3":4}]`},
		{put, "new", "", "Content-Type: application/json", `[]`},
		{put, "new", "", "Content-Type: application/json", " \n"},
		{put, "new", "", "Content-Type: application/json", `{"a":`},
		{put, "new", "", "Content-Type: application/json", deep(9999)},
		{put, "new", "", "Content-Type: application/json", deep(10000)},
		{put, "new", "", "Content-Type: text/plain; charset=utf-8\nStream-Closed: true", "bye"},
		{put, "new", "", "Content-Type: text/", ""},
		{put, "new", "", "Content-Type: text/\u212a", ""},
		{put, "new", "", "Stream-TTL: 60", ""},
		{put, "new", "", "Stream-TTL: 0", ""},
		{put, "new", "", "Stream-TTL: 01", ""},
		{put, "new", "", "Stream-TTL: 60\nStream-Expires-At: 2030-01-02T03:04:05Z", ""},
		{put, "new", "", "Stream-Expires-At: 2030-01-02T05:04:05+02:00", ""},
		{put, "new", "", "Stream-Expires-At: 1970-01-01T00:00:00Z", ""},
		{put, "new", "", "Stream-Expires-At: 0001-01-01T00:00:00Z", ""},
		{put, "new", "", "Stream-Expires-At: 0000-01-01T00:00:00+01:00", ""},
		{put, "new", "", "Stream-Expires-At: 2262-04-11T23:47:17Z", ""},
		{put, "new", "", "Stream-Forked-From: /v1/stream/text", ""},
		{put, "new", "", "Stream-Forked-From: /v1/stream/json\nStream-Fork-Offset: 0000000000000000_0000000000000000\nStream-Fork-Sub-Offset: 1", `[9]`},
		{put, "new", "", "Stream-Forked-From: /v1/stream/text\nStream-Fork-Offset: 0000000000000000_0000000000000003\nStream-Fork-Sub-Offset: 2", ""},
		{put, "new", "", "Stream-Forked-From: /v1/stream/closed\nStream-Fork-Offset: -1", "more"},
		{put, "new", "", "Stream-Forked-From: /v1/stream/missing", ""},
		{put, "json", "", "Stream-Forked-From: /v1/stream/text", ""},
		{put, "new", "", "Stream-Fork-Sub-Offset: 0", ""},
		{put | chunked, "new", "", "Content-Type: text/plain", strings.Repeat("x", fuzzMaxAppend+1)},
		{put, "a/b/c", "", "", "\x00"},
		// Appends.
		{post, "text", "", "Content-Type: text/plain", "more"},
		{post | chunked, "text", "", "Content-Type: text/plain", "chunked"},
		{post | chunked, "text", "", "Content-Type: text/plain", strings.Repeat("y", fuzzMaxAppend+1)},
		{post, "text", "", "Content-Type: text/plain", strings.Repeat("z", fuzzMaxAppend+1)},
		{post, "text", "", "Content-Type: text/plain", ""},
		{post, "text", "", "", "x"},
		{post, "text", "", "Content-Type: application/json", "x"},
		{post, "text", "", "Content-Type: text/plain\nStream-Seq: 0001", "x"},
		{post, "text", "", "Content-Type: text/plain\nStream-Seq: 0003", "x"},
		{post, "json", "", "Content-Type: application/json", `[{"c":3}, [4]]`},
		{post, "json", "", "Content-Type: application/json", `[]`},
		{post, "json", "", "Content-Type: application/json", `[1,`},
		{post, "json", "", "Content-Type: application/json", "\"\xff\""},
		{post, "json", "", "Content-Type: application/json", deep(10000)},
		{post, "json", "", "Content-Type: text/plain", "[1]"},
		{post, "closed", "", bin, "x"},
		{post, "closed", "", "Stream-Closed: true", ""},
		{post, "closed", "", "Stream-Closed: TRUE\n" + bin, "x"},
		{post, "prod", "", producer("p", "1", "1"), "second"},
		{post, "prod", "", producer("p", "1", "3"), "gap"},
		{post, "prod", "", producer("p", "0", "2"), "stale"},
		{post, "prod", "", producer("p", "2", "0"), "new epoch"},
		{post, "prod", "", producer("p", "2", "1"), "bad start"},
		{post, "prod", "", producer("q", "0", "0"), "another"},
		{post, "prod", "", producer("p", "1", "2") + "\nStream-Closed: true", ""},
		{post, "prod", "", producer("p", "1", "9007199254740992"), "x"},
		{post, "prod", "", producer("", "1", "2"), "x"},
		{post, "prod", "", "Producer-Id: p\n" + bin, "x"},
		{post, "prod", "", producer("p", "1", "2") + "\nProducer-Seq: 3", "x"},
		{post, "missing", "", bin, "x"},
		// Deletes.
		{del, "missing", "", "", ""},
		{del, "closed", "", "", ""},
		// Paths.
		{get, "te%78t", "", "", ""},
		{post, "te%78t", "", "Content-Type: text/plain", "x"},
		{get, "a/../text", "", "", ""},
		{del, "%2e%2e/text", "", "", ""},
		{get, "text/", "", "", ""},
		{get, "a//b", "", "", ""},
		{put, "a%00b", "", "", ""},
		{put, "a%ff", "", "", ""},
		{get, "%zz", "", "", ""},
		{put, "", "", "", ""},
		{put, strings.Repeat("a", 1025), "", "", ""},
		{put, strings.Repeat("é", 512), "", "", ""},
		{get | noPrefix, "", "", "", ""},
		{get | noPrefix, "v1/stream", "", "", ""},
		{put | noPrefix, "v1/streamtext", "", "", ""},
		{del | noPrefix, "v1/stream/", "", "", ""},
	}
	for _, sd := range seeds {
		f.Add(sd.sel, sd.path, sd.query, sd.header, []byte(sd.body))
	}

	f.Fuzz(func(t *testing.T, sel uint8, path, query, header string, body []byte) {
		req := fuzzRequest(sel, path, query, header, body)
		if req == nil {
			return
		}
		target := &url.URL{Path: req.URL.Path, RawPath: req.URL.RawPath}
		before, err := s.state(target)
		if err != nil {
			t.Fatalf("before the request: %v", err)
		}
		// Whatever a failing input did, the next one starts from the fixtures.
		defer func() {
			if t.Failed() {
				s.restore(target)
			}
		}()
		logged := s.logs.len()

		rec := httptest.NewRecorder()
		w := &fuzzWriter{rec: rec}
		s.api.ServeHTTP(w, req)

		what := fmt.Sprintf("%s %s (headers %q, %d body bytes, chunked %v)", req.Method, req.RequestURI, req.Header, len(body), sel&chunked != 0)
		if errs := s.logs.since(logged); len(errs) > 0 {
			t.Fatalf("%s: server logged errors: %q", what, errs)
		}
		switch {
		case len(w.statuses) == 0:
			t.Fatalf("%s: no status written (net/http would send an implicit 200)", what)
		case w.implicit:
			t.Fatalf("%s: body written before the status", what)
		case len(w.statuses) > 1:
			t.Fatalf("%s: status written %d times: %v", what, len(w.statuses), w.statuses)
		}
		status := w.statuses[0]
		answer := fmt.Sprintf("%d (next %q, closed %q) %q", status, rec.Header().Get(protocol.HeaderStreamNextOffset),
			rec.Header().Get(protocol.HeaderStreamClosed), clipBody(rec.Body.Bytes()))
		if status >= 500 {
			t.Fatalf("%s: answered %s", what, answer)
		}
		if (req.Method == http.MethodHead || status == http.StatusNoContent || status == http.StatusNotModified) && w.written > 0 {
			t.Fatalf("%s: %d body bytes with %s", what, w.written, answer)
		}
		if rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Fatalf("%s: no security headers on %s", what, answer)
		}

		safe := req.Method == http.MethodGet || req.Method == http.MethodHead || req.Method == http.MethodOptions
		if !safe && (status < 400 || status >= 500) {
			// A write happened: put everything back for the next input.
			if err := s.restore(target); err != nil {
				t.Fatalf("after %s answered %s: %v", what, answer, err)
			}
			return
		}
		// A read, or a write refused with 4xx: nothing changed.
		after, err := s.state(target)
		if err != nil {
			t.Fatalf("after %s answered %s: %v", what, answer, err)
		}
		if after != before {
			t.Fatalf("%s answered %s but changed %s\nfrom %v\nto   %v", what, answer, target.EscapedPath(), before, after)
		}
		for _, fx := range fuzzFixtures {
			st, err := s.state(streamURL(fx.name))
			if err != nil {
				t.Fatalf("after %s answered %s: %v", what, answer, err)
			}
			if st != s.canon[fx.name] {
				t.Fatalf("%s answered %s but changed fixture %s\nfrom %v\nto   %v", what, answer, fx.name, s.canon[fx.name], st)
			}
		}
		if errs := s.logs.since(logged); len(errs) > 0 {
			t.Fatalf("%s: server logged errors: %q", what, errs)
		}
	})
}

// withoutSegment renders an offset token in segment 0: its segment names the
// incarnation, which every rebuild of the fixtures changes.
func withoutSegment(token string) string {
	if kind, pos, err := protocol.ParseOffset(token); err == nil && kind == protocol.OffsetAt {
		return protocol.FormatOffset(pos)
	}
	return token
}

func clipBody(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "..."
	}
	return string(b)
}

// TestExpiresAtBeforeYearOne: "0000-01-01T00:00:00+01:00" is year -1 in
// UTC, which storage cannot encode: the create failed with 500 and logged an
// error; "0001-01-01T00:00:00Z" is the zero time, which means no deadline:
// the stream was created and never expired. Both are refused with 400 now
// and create nothing. Found by FuzzServer and FuzzParseExpiry.
func TestExpiresAtBeforeYearOne(t *testing.T) {
	e := newEnv(t)
	for i, v := range []string{"0000-01-01T00:00:00+01:00", "0001-01-01T00:00:00Z", "0001-01-01T01:00:00+01:00"} {
		path := sp(fmt.Sprintf("expires-%d", i))
		e.expect(t, http.StatusBadRequest, http.MethodPut, path, nil, "Stream-Expires-At", v)
		e.expect(t, http.StatusNotFound, http.MethodHead, path, nil)
	}
}

// TestJSONValueNestingLimit: a JSON stream accepted a single value nested
// 10,000 levels, so every read of the stream (the value inside an array)
// was JSON nested 10,001 levels, which encoding/json refuses. Such a value
// is refused with 400 now on create and append; one level less is stored
// and reads back as valid JSON. Found by FuzzJSONMode.
func TestJSONValueNestingLimit(t *testing.T) {
	e := newEnv(t, withMaxAppend(1<<20))
	deep := func(depth int) []byte {
		return []byte(`{"a":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`)
	}
	js := []string{"Content-Type", "application/json"}
	e.expect(t, http.StatusBadRequest, http.MethodPut, sp("deep"), deep(10000), js...)
	e.expect(t, http.StatusNotFound, http.MethodHead, sp("deep"), nil)
	e.expect(t, http.StatusCreated, http.MethodPut, sp("deep"), deep(9999), js...)
	e.expect(t, http.StatusBadRequest, http.MethodPost, sp("deep"), deep(10000), js...)
	e.expect(t, http.StatusNoContent, http.MethodPost, sp("deep"), deep(9999), js...)
	data, _ := e.readAll(t, sp("deep"))
	var msgs []json.RawMessage
	if err := json.Unmarshal(data, &msgs); err != nil || len(msgs) != 2 {
		t.Fatalf("read of the stream: %d messages, %v", len(msgs), err)
	}
}
