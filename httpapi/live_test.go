package httpapi_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

type lpResult struct {
	r       *response
	err     error
	elapsed time.Duration
}

// longPoll starts a long-poll in the background.
func (e *env) longPoll(target string, hdr ...string) <-chan lpResult {
	ch := make(chan lpResult, 1)
	start := time.Now()
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		r, err := e.request(ctx, http.MethodGet, target, nil, hdr...)
		ch <- lpResult{r, err, time.Since(start)}
	}()
	return ch
}

func await(t *testing.T, ch <-chan lpResult, timeout time.Duration) lpResult {
	t.Helper()
	select {
	case res := <-ch:
		if res.err != nil {
			t.Fatalf("long-poll: %v", res.err)
		}
		return res
	case <-time.After(timeout):
		t.Fatalf("long-poll did not return within %v", timeout)
	}
	return lpResult{}
}

// notYet checks that a long-poll is still waiting after d.
func notYet(t *testing.T, ch <-chan lpResult, d time.Duration) {
	t.Helper()
	select {
	case res := <-ch:
		t.Fatalf("long-poll returned early after %v: %v %v", res.elapsed, res.r, res.err)
	case <-time.After(d):
	}
}

func cursorOf(t *testing.T, r *response) int64 {
	t.Helper()
	c := r.get("Stream-Cursor")
	n, err := strconv.ParseInt(c, 10, 64)
	if err != nil {
		t.Fatalf("Stream-Cursor %q is not an interval number: %v", c, err)
	}
	return n
}

func TestLongPollTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	e := newEnv(t, withLongPoll(timeout))
	path := sp("lp-timeout")
	e.expect(t, http.StatusCreated, http.MethodPut, path, []byte("abc"), "Content-Type", "text/plain")

	for _, offset := range []string{e.tok(t, path, 3), "now"} {
		res := await(t, e.longPoll(path+"?live=long-poll&offset="+offset), 5*time.Second)
		r := res.r
		if r.status != http.StatusNoContent {
			t.Fatalf("offset %s: status %d, want 204", offset, r.status)
		}
		if res.elapsed < timeout-50*time.Millisecond {
			t.Errorf("offset %s: timed out after %v, before LongPollTimeout %v", offset, res.elapsed, timeout)
		}
		if len(r.body) != 0 {
			t.Errorf("204 with body %q", r.body)
		}
		wantHeader(t, r, "Stream-Next-Offset", e.tok(t, path, 3))
		wantHeader(t, r, "Stream-Up-To-Date", "true")
		wantNoHeader(t, r, "Stream-Closed")
		cursorOf(t, r)
	}
}

func TestLongPollDelivery(t *testing.T) {
	e := newEnv(t, withLongPoll(10*time.Second))
	path := sp("lp")
	text := []string{"Content-Type", "text/plain"}
	e.expect(t, http.StatusCreated, http.MethodPut, path, []byte("abc"), text...)

	// Behind the tail: data at once.
	res := await(t, e.longPoll(path+"?live=long-poll&offset="+e.tok(t, path, 1)), 2*time.Second)
	if res.r.status != http.StatusOK || string(res.r.body) != "bc" {
		t.Fatalf("long-poll behind the tail: %v", res.r)
	}
	wantHeader(t, res.r, "Stream-Next-Offset", e.tok(t, path, 3))
	wantHeader(t, res.r, "Stream-Up-To-Date", "true")
	cursorOf(t, res.r)

	// At the tail: waits, then returns exactly the new data.
	ch := e.longPoll(path + "?live=long-poll&offset=" + e.tok(t, path, 3))
	notYet(t, ch, 200*time.Millisecond)
	e.expect(t, http.StatusNoContent, http.MethodPost, path, []byte("def"), text...)
	res = await(t, ch, 5*time.Second)
	if res.r.status != http.StatusOK || string(res.r.body) != "def" {
		t.Fatalf("woken long-poll: %v", res.r)
	}
	wantHeader(t, res.r, "Stream-Next-Offset", e.tok(t, path, 6))
	wantHeader(t, res.r, "Stream-Up-To-Date", "true")
	wantHeader(t, res.r, "Content-Type", "text/plain")
	wantNoHeader(t, res.r, "Stream-Closed")
	cur := cursorOf(t, res.r)

	// offset=now waits even though the stream has data.
	ch = e.longPoll(path + "?live=long-poll&offset=now")
	notYet(t, ch, 200*time.Millisecond)
	e.expect(t, http.StatusNoContent, http.MethodPost, path, []byte("ghi"), text...)
	res = await(t, ch, 5*time.Second)
	if res.r.status != http.StatusOK || string(res.r.body) != "ghi" {
		t.Fatalf("offset=now long-poll: %v", res.r)
	}
	wantHeader(t, res.r, "Stream-Next-Offset", e.tok(t, path, 9))

	// A client cursor at or beyond the current interval gets a strictly
	// greater one, so collapsed CDN entries are not replayed.
	for _, client := range []int64{cur, cur + 1000} {
		res = await(t, e.longPoll(path+"?live=long-poll&offset="+e.tok(t, path, 0)+"&cursor="+strconv.FormatInt(client, 10)), 2*time.Second)
		if got := cursorOf(t, res.r); got <= client {
			t.Errorf("client cursor %d: got %d, want greater", client, got)
		}
	}
	// A stale client cursor gets the current interval.
	res = await(t, e.longPoll(path+"?live=long-poll&offset="+e.tok(t, path, 0)+"&cursor=1"), 2*time.Second)
	if got := cursorOf(t, res.r); got != cur && got != cur+1 { // the interval may tick meanwhile
		t.Errorf("stale cursor: got %d, want current %d", got, cur)
	}

	// Closing while waiting ends the wait with EOF.
	ch = e.longPoll(path + "?live=long-poll&offset=" + e.tok(t, path, 9))
	notYet(t, ch, 200*time.Millisecond)
	e.expect(t, http.StatusNoContent, http.MethodPost, path, nil, "Stream-Closed", "true")
	res = await(t, ch, 2*time.Second)
	if res.r.status != http.StatusNoContent {
		t.Fatalf("long-poll woken by close: %v", res.r)
	}
	wantHeader(t, res.r, "Stream-Closed", "true")
	wantHeader(t, res.r, "Stream-Up-To-Date", "true")
	wantHeader(t, res.r, "Stream-Next-Offset", e.tok(t, path, 9))

	// Closed and at the tail: immediate 204 EOF.
	res = await(t, e.longPoll(path+"?live=long-poll&offset="+e.tok(t, path, 9)), 2*time.Second)
	if res.r.status != http.StatusNoContent || res.elapsed > time.Second {
		t.Fatalf("long-poll at the tail of a closed stream: %v after %v", res.r, res.elapsed)
	}
	wantHeader(t, res.r, "Stream-Closed", "true")
	wantHeader(t, res.r, "Stream-Up-To-Date", "true")
	wantHeader(t, res.r, "Stream-Next-Offset", e.tok(t, path, 9))
	// Behind the tail of a closed stream: the final data, marked closed.
	res = await(t, e.longPoll(path+"?live=long-poll&offset="+e.tok(t, path, 6)), 2*time.Second)
	if res.r.status != http.StatusOK || string(res.r.body) != "ghi" {
		t.Fatalf("long-poll on closed stream: %v", res.r)
	}
	wantHeader(t, res.r, "Stream-Closed", "true")

	// Append-and-close while waiting delivers the data with Stream-Closed.
	p2 := sp("lp-close-data")
	e.expect(t, http.StatusCreated, http.MethodPut, p2, nil, text...)
	ch = e.longPoll(p2 + "?live=long-poll&offset=" + e.tok(t, p2, 0))
	notYet(t, ch, 200*time.Millisecond)
	e.expect(t, http.StatusNoContent, http.MethodPost, p2, []byte("bye"), "Content-Type", "text/plain", "Stream-Closed", "true")
	res = await(t, ch, 2*time.Second)
	if res.r.status != http.StatusOK || string(res.r.body) != "bye" {
		t.Fatalf("long-poll woken by append-and-close: %v", res.r)
	}
	wantHeader(t, res.r, "Stream-Closed", "true")

	// Deleting while waiting ends the wait with 404.
	p3 := sp("lp-delete")
	e.expect(t, http.StatusCreated, http.MethodPut, p3, nil, text...)
	ch = e.longPoll(p3 + "?live=long-poll&offset=" + e.tok(t, p3, 0))
	notYet(t, ch, 200*time.Millisecond)
	e.expect(t, http.StatusNoContent, http.MethodDelete, p3, nil)
	if res = await(t, ch, 2*time.Second); res.r.status != http.StatusNotFound {
		t.Fatalf("long-poll on deleted stream: %v", res.r)
	}

	// JSON streams answer with an array of the new messages.
	p4 := sp("lp-json")
	e.expect(t, http.StatusCreated, http.MethodPut, p4, []byte(`[1]`), "Content-Type", "application/json")
	ch = e.longPoll(p4 + "?live=long-poll&offset=" + e.tok(t, p4, 1))
	notYet(t, ch, 100*time.Millisecond)
	e.expect(t, http.StatusNoContent, http.MethodPost, p4, []byte(`[2,{"x":3}]`), "Content-Type", "application/json")
	if res = await(t, ch, 2*time.Second); string(res.r.body) != `[2,{"x":3}]` {
		t.Fatalf("JSON long-poll: %v", res.r)
	}
}

// TestLiveResponsesNotCompressed: long-poll and SSE responses are never
// compressed, even for large bodies and clients that accept gzip.
func TestLiveResponsesNotCompressed(t *testing.T) {
	e := newEnv(t, withLongPoll(10*time.Second))
	data := bytes.Repeat([]byte("live data is never compressed. "), 200)
	path := sp("live-plain")
	e.expect(t, http.StatusCreated, http.MethodPut, path, data, "Content-Type", "text/plain")
	gz := []string{"Accept-Encoding", "gzip, deflate"}

	t.Run("sse", func(t *testing.T) {
		s := e.openSSE(t, path+"?live=sse&offset=-1", gz...)
		if enc := s.res.Header.Get("Content-Encoding"); enc != "" {
			t.Fatalf("SSE Content-Encoding %q", enc)
		}
		if ev := s.next(t, 2*time.Second); ev.event != "data" || ev.data != string(data) {
			t.Fatalf("SSE event %q with %d bytes", ev.event, len(ev.data))
		}
	})
	t.Run("long-poll with data", func(t *testing.T) {
		res := await(t, e.longPoll(path+"?live=long-poll&offset=-1", gz...), 2*time.Second)
		wantNoHeader(t, res.r, "Content-Encoding")
		if !bytes.Equal(res.r.body, data) {
			t.Errorf("long-poll body differs (%d bytes)", len(res.r.body))
		}
	})
	t.Run("long-poll woken", func(t *testing.T) {
		ch := e.longPoll(path+"?live=long-poll&offset="+e.tok(t, path, uint64(len(data))), gz...)
		notYet(t, ch, 200*time.Millisecond)
		e.expect(t, http.StatusNoContent, http.MethodPost, path, data, "Content-Type", "text/plain")
		res := await(t, ch, 2*time.Second)
		wantNoHeader(t, res.r, "Content-Encoding")
		if !bytes.Equal(res.r.body, data) {
			t.Errorf("long-poll body differs (%d bytes)", len(res.r.body))
		}
	})
}

func TestSSEBinary(t *testing.T) {
	e := newEnv(t)
	path := sp("sse-bin")
	first := []byte{0, 1, 2, 0xfe, 0xff, '\n', '\r', 'd', 'a', 't', 'a', ':'}
	e.expect(t, http.StatusCreated, http.MethodPut, path, first)

	s := e.openSSE(t, path+"?live=sse&offset=-1")
	if ct := s.res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	if enc := s.res.Header.Get("Stream-SSE-Data-Encoding"); enc != "base64" {
		t.Errorf("Stream-SSE-Data-Encoding %q, want base64", enc)
	}
	if s.res.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Error("SSE response lacks security headers")
	}

	want := append([]byte(nil), first...)
	expectData := func(payload []byte) {
		t.Helper()
		ev := s.next(t, 2*time.Second)
		if ev.event != "data" {
			t.Fatalf("event %q (%q), want data", ev.event, ev.data)
		}
		got, err := decodeBase64Event(ev.data)
		if err != nil {
			t.Fatalf("data %q is not base64: %v", ev.data, err)
		}
		if !bytes.Equal(got, payload) {
			t.Fatalf("data %q, want %q", got, payload)
		}
	}
	expectControl := func(next uint64, closed bool) control {
		t.Helper()
		ev := s.next(t, 2*time.Second)
		if ev.event != "control" {
			t.Fatalf("event %q (%q), want control", ev.event, ev.data)
		}
		c := parseControl(t, ev.data)
		if want := e.tok(t, path, next); *c.StreamNextOffset != want {
			t.Errorf("streamNextOffset %s, want %s", *c.StreamNextOffset, want)
		}
		if closed {
			if c.StreamClosed == nil || !*c.StreamClosed {
				t.Errorf("control %s lacks streamClosed", ev.data)
			}
			if c.UpToDate != nil && !*c.UpToDate {
				t.Errorf("closed control %s has upToDate false", ev.data)
			}
		} else {
			if c.StreamCursor == nil {
				t.Errorf("control %s lacks streamCursor", ev.data)
			} else if _, err := strconv.ParseInt(*c.StreamCursor, 10, 64); err != nil {
				t.Errorf("streamCursor %q: %v", *c.StreamCursor, err)
			}
			if c.UpToDate == nil || !*c.UpToDate {
				t.Errorf("control %s lacks upToDate", ev.data)
			}
			if c.StreamClosed != nil {
				t.Errorf("open stream control %s has streamClosed", ev.data)
			}
		}
		return c
	}

	expectData(first)
	expectControl(uint64(len(want)), false)

	// Later appends arrive live, in order, each as a data/control pair.
	for i := 0; i < 5; i++ {
		p := bytes.Repeat([]byte{byte(i), 0x80 + byte(i)}, i+1)
		e.expect(t, http.StatusNoContent, http.MethodPost, path, p, "Content-Type", "application/octet-stream")
		want = append(want, p...)
		expectData(p)
		expectControl(uint64(len(want)), false)
	}

	// Final append-and-close: data, a closing control, then the end.
	e.expect(t, http.StatusNoContent, http.MethodPost, path, []byte("end"), "Content-Type", "application/octet-stream", "Stream-Closed", "true")
	want = append(want, "end"...)
	expectData([]byte("end"))
	expectControl(uint64(len(want)), true)
	s.expectEnd(t, 2*time.Second)

	// Reconnecting at the tail of the closed stream: one closing control
	// and the end.
	s = e.openSSE(t, path+"?live=sse&offset="+e.tok(t, path, uint64(len(want))))
	c := expectControlOn(t, s)
	if c.StreamClosed == nil || !*c.StreamClosed || (c.UpToDate != nil && !*c.UpToDate) {
		t.Errorf("control at closed tail: %+v", c)
	}
	s.expectEnd(t, 2*time.Second)

	// Reconnecting from the start of the closed stream replays everything.
	s = e.openSSE(t, path+"?live=sse&offset=-1")
	ev := s.next(t, 2*time.Second)
	got, err := decodeBase64Event(ev.data)
	if ev.event != "data" || err != nil || !bytes.Equal(got, want) {
		t.Fatalf("replay %q: %q %v", ev.event, got, err)
	}
	c = expectControlOn(t, s)
	if c.StreamClosed == nil || !*c.StreamClosed {
		t.Errorf("replay control: %+v", c)
	}
	s.expectEnd(t, 2*time.Second)
}

func expectControlOn(t *testing.T, s *sseStream) control {
	t.Helper()
	ev := s.next(t, 2*time.Second)
	if ev.event != "control" {
		t.Fatalf("event %q (%q), want control", ev.event, ev.data)
	}
	return parseControl(t, ev.data)
}

func TestSSEText(t *testing.T) {
	e := newEnv(t)
	path := sp("sse-text")
	e.expect(t, http.StatusCreated, http.MethodPut, path, nil, "Content-Type", "text/plain; charset=utf-8")

	// At the tail of an open stream: an up-to-date control, then silence.
	s := e.openSSE(t, path+"?live=sse&offset=now")
	if enc := s.res.Header.Get("Stream-SSE-Data-Encoding"); enc != "" {
		t.Errorf("text stream has Stream-SSE-Data-Encoding %q", enc)
	}
	c := expectControlOn(t, s)
	if c.UpToDate == nil || !*c.UpToDate || c.StreamCursor == nil || *c.StreamNextOffset != e.tok(t, path, 0) {
		t.Errorf("initial control %+v", c)
	}
	s.expectQuiet(t, 150*time.Millisecond)

	// Multi-line text survives the event framing.
	for _, msg := range []string{"one line", "two\nlines", " leading space", "event: fake\n\ndata: injected"} {
		e.expect(t, http.StatusNoContent, http.MethodPost, path, []byte(msg), "Content-Type", "text/plain")
		ev := s.next(t, 2*time.Second)
		if ev.event != "data" || ev.data != msg {
			t.Fatalf("event %q data %q, want data %q", ev.event, ev.data, msg)
		}
		if c := expectControlOn(t, s); c.UpToDate == nil || c.StreamCursor == nil {
			t.Errorf("control %+v", c)
		}
	}

	// JSON streams carry the messages as a JSON array.
	jp := sp("sse-json")
	e.expect(t, http.StatusCreated, http.MethodPut, jp, []byte(`[{"a":1},2]`), "Content-Type", "application/json")
	js := e.openSSE(t, jp+"?live=sse&offset=-1")
	if enc := js.res.Header.Get("Stream-SSE-Data-Encoding"); enc != "" {
		t.Errorf("JSON stream has Stream-SSE-Data-Encoding %q", enc)
	}
	if ev := js.next(t, 2*time.Second); ev.event != "data" || ev.data != `[{"a":1},2]` {
		t.Fatalf("JSON event %q %q", ev.event, ev.data)
	}
	expectControlOn(t, js)
	e.expect(t, http.StatusNoContent, http.MethodPost, jp, []byte(`"x"`), "Content-Type", "application/json")
	if ev := js.next(t, 2*time.Second); ev.event != "data" || ev.data != `["x"]` {
		t.Fatalf("JSON live event %q %q", ev.event, ev.data)
	}
	expectControlOn(t, js)

	// Deleting the stream ends live responses.
	e.expect(t, http.StatusNoContent, http.MethodDelete, jp, nil)
	js.expectEnd(t, 2*time.Second)
}

// TestSSECatchUpChunks: catch-up through several chunks marks only the last
// control event up to date.
func TestSSECatchUpChunks(t *testing.T) {
	e := newEnv(t, withMaxChunk(100))
	path := sp("sse-chunks")
	data := []byte(strings.Repeat("0123456789", 35))
	e.expect(t, http.StatusCreated, http.MethodPut, path, data, "Content-Type", "text/plain")
	s := e.openSSE(t, path+"?live=sse&offset=-1")
	var got string
	for len(got) < len(data) {
		ev := s.next(t, 2*time.Second)
		if ev.event != "data" {
			t.Fatalf("event %q, want data", ev.event)
		}
		got += ev.data
		c := expectControlOn(t, s)
		if *c.StreamNextOffset != e.tok(t, path, uint64(len(got))) {
			t.Fatalf("streamNextOffset %s after %d bytes", *c.StreamNextOffset, len(got))
		}
		upToDate := c.UpToDate != nil && *c.UpToDate
		if upToDate != (len(got) == len(data)) {
			t.Errorf("after %d/%d bytes upToDate=%v", len(got), len(data), upToDate)
		}
		if c.StreamCursor == nil {
			t.Error("control without streamCursor")
		}
	}
	if got != string(data) {
		t.Fatalf("SSE catch-up %q", got)
	}
}

// TestSSEReconnectInterval: the server ends an SSE response after
// SSEReconnectInterval so clients reconnect (and CDNs can collapse).
func TestSSEReconnectInterval(t *testing.T) {
	const interval = 400 * time.Millisecond
	e := newEnv(t, withSSEReconnect(interval))
	path := sp("sse-reconnect")
	e.expect(t, http.StatusCreated, http.MethodPut, path, []byte("x"), "Content-Type", "text/plain")
	start := time.Now()
	s := e.openSSE(t, path+"?live=sse&offset=-1")
	s.next(t, time.Second)
	c := expectControlOn(t, s)
	s.expectEnd(t, interval+3*time.Second)
	if el := time.Since(start); el < interval-50*time.Millisecond {
		t.Errorf("SSE response ended after %v, before the %v interval", el, interval)
	}
	// The client resumes from the last control event.
	e.expect(t, http.StatusNoContent, http.MethodPost, path, []byte("y"), "Content-Type", "text/plain")
	s = e.openSSE(t, path+"?live=sse&offset="+*c.StreamNextOffset+"&cursor="+*c.StreamCursor)
	if ev := s.next(t, time.Second); ev.event != "data" || ev.data != "y" {
		t.Fatalf("resumed event %q %q", ev.event, ev.data)
	}
	if c2 := expectControlOn(t, s); c2.StreamCursor == nil || *c2.StreamCursor == "" {
		t.Errorf("resumed control %+v", c2)
	} else if n1, n2 := mustInt(t, *c.StreamCursor), mustInt(t, *c2.StreamCursor); n2 <= n1 {
		t.Errorf("cursor after echoing %d is %d, want greater", n1, n2)
	}
}

func mustInt(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	return n
}

func TestCORSAndSecurityHeaders(t *testing.T) {
	e := newEnv(t)
	r := e.expect(t, http.StatusNoContent, http.MethodOptions, sp("any/stream"), nil,
		"Origin", "https://app.example", "Access-Control-Request-Method", "GET",
		"Access-Control-Request-Headers", "if-none-match, x-custom")
	allow := strings.ToLower(r.get("Access-Control-Allow-Headers"))
	for _, h := range []string{"if-none-match", "x-custom", "content-type", "producer-id", "stream-ttl"} {
		if !strings.Contains(allow, h) {
			t.Errorf("Access-Control-Allow-Headers %q lacks %s", allow, h)
		}
	}
	for _, m := range []string{"GET", "HEAD", "POST", "PUT", "DELETE"} {
		if !strings.Contains(r.get("Access-Control-Allow-Methods"), m) {
			t.Errorf("Access-Control-Allow-Methods %q lacks %s", r.get("Access-Control-Allow-Methods"), m)
		}
	}
	wantHeader(t, r, "Access-Control-Allow-Origin", "*")

	e.expect(t, http.StatusCreated, http.MethodPut, sp("sec"), []byte("x"), "Content-Type", "text/plain")
	responses := map[string]*response{
		"preflight": r,
		"201":       e.do(t, http.MethodPut, sp("sec2"), nil),
		"200":       e.do(t, http.MethodGet, sp("sec"), nil),
		"head":      e.do(t, http.MethodHead, sp("sec"), nil),
		"204":       e.do(t, http.MethodPost, sp("sec"), []byte("y"), "Content-Type", "text/plain"),
		"304":       e.do(t, http.MethodGet, sp("sec"), nil, "If-None-Match", "*"),
		"400":       e.do(t, http.MethodGet, sp("sec")+"?offset=bad", nil),
		"404":       e.do(t, http.MethodGet, sp("missing"), nil),
		"404 head":  e.do(t, http.MethodHead, sp("missing"), nil),
		"404 route": e.do(t, http.MethodGet, "/elsewhere", nil),
		"405":       e.do(t, http.MethodPatch, sp("sec"), nil),
		"409":       e.do(t, http.MethodPost, sp("sec"), []byte("z"), "Content-Type", "image/png"),
	}
	for name, r := range responses {
		if r.get("X-Content-Type-Options") != "nosniff" || r.get("Cross-Origin-Resource-Policy") == "" {
			t.Errorf("%s (%d): security headers missing: %v", name, r.status, r.header)
		}
		if r.get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s (%d): no Access-Control-Allow-Origin", name, r.status)
		}
		if !strings.Contains(r.get("Access-Control-Expose-Headers"), "Stream-Next-Offset") {
			t.Errorf("%s (%d): Access-Control-Expose-Headers %q", name, r.status, r.get("Access-Control-Expose-Headers"))
		}
	}
}

// TestSSEBase64Alphabet pins standard (not URL-safe) base64 with padding.
func TestSSEBase64Alphabet(t *testing.T) {
	e := newEnv(t)
	payload := []byte{0xfb, 0xff, 0xbf, 0x3e}
	e.expect(t, http.StatusCreated, http.MethodPut, sp("b64"), payload, "Content-Type", "image/png")
	s := e.openSSE(t, sp("b64")+"?live=sse&offset=-1")
	ev := s.next(t, 2*time.Second)
	if want := base64.StdEncoding.EncodeToString(payload); strings.ReplaceAll(ev.data, "\n", "") != want {
		t.Errorf("data %q, want %q", ev.data, want)
	}
}

// TestLongPollTimeoutNeverSkipsData: a long-poll that times out just as an
// append lands must not answer 204 with an offset past data the client has
// not seen. Readers with a tiny timeout follow a stream appended to all
// the while; each must end up with exactly the stream's bytes.
func TestLongPollTimeoutNeverSkipsData(t *testing.T) {
	e := newEnv(t, withLongPoll(time.Millisecond))
	e.expect(t, http.StatusCreated, http.MethodPut, sp("s"), nil, "Content-Type", "text/plain")
	const appends, readers = 400, 4
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range appends {
			e.expect(t, http.StatusNoContent, http.MethodPost, sp("s"), []byte(fmt.Sprintf("<%d>", i)), "Content-Type", "text/plain")
		}
	}()
	var wg sync.WaitGroup
	seen := make([][]byte, readers)
	for r := range readers {
		wg.Go(func() {
			offset := e.tok(t, sp("s"), 0)
			for {
				// A 204 to a request sent after the last append means the
				// reader has everything.
				var finished bool
				select {
				case <-done:
					finished = true
				default:
				}
				res := e.do(t, http.MethodGet, sp("s")+"?offset="+offset+"&live=long-poll", nil)
				switch res.status {
				case http.StatusOK:
					seen[r] = append(seen[r], res.body...)
				case http.StatusNoContent:
				default:
					t.Errorf("long-poll: %v", res)
					return
				}
				next := res.get("Stream-Next-Offset")
				if res.status == http.StatusNoContent && next != offset {
					t.Errorf("204 moved the offset from %s to %s without data", offset, next)
				}
				offset = next
				if finished && res.status == http.StatusNoContent {
					return
				}
			}
		})
	}
	wg.Wait()
	all, _ := e.readAll(t, sp("s"))
	for r, b := range seen {
		if !bytes.Equal(b, all[:len(b)]) || len(b) != len(all) {
			t.Errorf("reader %d saw %d bytes that are not the stream's %d", r, len(b), len(all))
		}
	}
}
