package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// logFile gives run a log destination outside any data dir; its content is
// shown when the test fails.
func logFile(t *testing.T) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "streamd.log"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			if b, err := os.ReadFile(f.Name()); err == nil && len(b) > 0 {
				t.Logf("streamd log:\n%s", b)
			}
		}
		f.Close()
	})
	return f
}

// instance is one run of the real command.
type instance struct {
	base   string
	client *http.Client
	tr     *http.Transport
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func start(t *testing.T, logOut *os.File, args ...string) *instance {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan string, 1)
	done := make(chan error, 1)
	args = append([]string{"--addr", "127.0.0.1:0", "--log-level", "info"}, args...)
	go func() { done <- run(ctx, args, envOf(nil), logOut, ready) }()
	select {
	case addr := <-ready:
		tr := &http.Transport{DisableCompression: true}
		in := &instance{base: "http://" + addr, client: &http.Client{Transport: tr, Timeout: 20 * time.Second}, tr: tr, cancel: cancel, done: done}
		t.Cleanup(func() { in.stop(t) })
		return in
	case err := <-done:
		cancel()
		t.Fatalf("streamd exited during startup: %v", err)
	case <-time.After(20 * time.Second):
		cancel()
		t.Fatal("streamd did not become ready")
	}
	return nil
}

// stop cancels run's context, as SIGTERM does, and waits for it to return.
func (in *instance) stop(t *testing.T) {
	t.Helper()
	in.once.Do(func() {
		in.tr.CloseIdleConnections()
		in.cancel()
		select {
		case err := <-in.done:
			if err != nil {
				t.Errorf("run returned %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("run did not return after its context was cancelled")
		}
	})
}

type reply struct {
	status int
	header http.Header
	body   []byte
}

func (in *instance) do(t *testing.T, method, path string, body []byte, hdr ...string) *reply {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, in.base+"/v1/stream/"+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := in.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return &reply{status: res.StatusCode, header: res.Header, body: b}
}

func (in *instance) expect(t *testing.T, status int, method, path string, body []byte, hdr ...string) *reply {
	t.Helper()
	r := in.do(t, method, path, body, hdr...)
	if r.status != status {
		t.Fatalf("%s %s: status %d, want %d (%q)", method, path, r.status, status, r.body)
	}
	return r
}

// view is everything a client can observe about a stream.
type view struct {
	contentType, next, ttl, expiresAt string
	closed                            bool
	data                              []byte
	readNext, readClosed, etag        string
}

func (in *instance) view(t *testing.T, path string) view {
	t.Helper()
	h := in.expect(t, http.StatusOK, http.MethodHead, path, nil)
	v := view{
		contentType: h.header.Get("Content-Type"),
		next:        h.header.Get("Stream-Next-Offset"),
		ttl:         h.header.Get("Stream-Ttl"),
		expiresAt:   h.header.Get("Stream-Expires-At"),
		closed:      h.header.Get("Stream-Closed") == "true",
	}
	// Streams here fit in one chunk, so one catch-up read is the whole stream.
	r := in.expect(t, http.StatusOK, http.MethodGet, path+"?offset=-1", nil)
	if r.header.Get("Stream-Up-To-Date") != "true" {
		t.Fatalf("%s: catch-up read not up to date", path)
	}
	v.data, v.readNext, v.readClosed, v.etag = r.body, r.header.Get("Stream-Next-Offset"), r.header.Get("Stream-Closed"), r.header.Get("ETag")
	return v
}

func (v view) String() string {
	return fmt.Sprintf("{ct=%q next=%s ttl=%q exp=%q closed=%v data=%q readNext=%s readClosed=%q etag=%s}",
		v.contentType, v.next, v.ttl, v.expiresAt, v.closed, v.data, v.readNext, v.readClosed, v.etag)
}

func equalViews(a, b view) bool {
	return a.contentType == b.contentType && a.next == b.next && a.ttl == b.ttl && a.expiresAt == b.expiresAt &&
		a.closed == b.closed && bytes.Equal(a.data, b.data) && a.readNext == b.readNext &&
		a.readClosed == b.readClosed && a.etag == b.etag
}

// etagID is the internal stream id of an ETag "id:from:end[:c]".
func etagID(t *testing.T, etag string) string {
	t.Helper()
	id, _, ok := strings.Cut(strings.Trim(etag, `"`), ":")
	if !ok {
		t.Fatalf("unexpected ETag %q", etag)
	}
	return id
}

func producerHeaders(epoch, seq int) []string {
	return []string{"Content-Type", "application/octet-stream", "Producer-Id", "writer-1",
		"Producer-Epoch", strconv.Itoa(epoch), "Producer-Seq", strconv.Itoa(seq)}
}

// TestRestartRecoversStreams stops and restarts streamd on the same data
// directory several times; every stream must be served exactly as before.
func TestRestartRecoversStreams(t *testing.T) {
	dir := t.TempDir()
	logOut := logFile(t)
	args := []string{"--data-dir", dir}
	in := start(t, logOut, args...)

	bin := make([]byte, 5000)
	for i := range bin {
		bin[i] = byte(i * 31)
	}
	octet := []string{"Content-Type", "application/octet-stream"}
	in.expect(t, http.StatusCreated, http.MethodPut, "bin", bin[:3000], octet...)
	in.expect(t, http.StatusNoContent, http.MethodPost, "bin", bin[3000:], octet...)

	jsonCT := []string{"Content-Type", "application/json"}
	in.expect(t, http.StatusCreated, http.MethodPut, "nested/json/stream", []byte(`[{"a":1},{"b":[1,2]}]`), jsonCT...)
	in.expect(t, http.StatusNoContent, http.MethodPost, "nested/json/stream", []byte(`"x"`), jsonCT...)
	in.expect(t, http.StatusNoContent, http.MethodPost, "nested/json/stream", []byte(`[3,4]`), jsonCT...)

	in.expect(t, http.StatusCreated, http.MethodPut, "ttl", []byte("lives an hour after use"), "Content-Type", "text/plain", "Stream-TTL", "3600")
	const expiresAt = "2099-01-02T03:04:05.123456789Z"
	in.expect(t, http.StatusCreated, http.MethodPut, "expires", []byte("until 2099"), "Content-Type", "text/plain", "Stream-Expires-At", expiresAt)

	in.expect(t, http.StatusCreated, http.MethodPut, "closed", []byte("first "), "Content-Type", "text/plain")
	in.expect(t, http.StatusNoContent, http.MethodPost, "closed", []byte("last"), "Content-Type", "text/plain", "Stream-Closed", "true")

	in.expect(t, http.StatusCreated, http.MethodPut, "producer", nil, octet...)
	in.expect(t, http.StatusOK, http.MethodPost, "producer", []byte("e0"), producerHeaders(0, 0)...)
	for seq := 0; seq <= 5; seq++ {
		in.expect(t, http.StatusOK, http.MethodPost, "producer", []byte(fmt.Sprintf("[2.%d]", seq)), producerHeaders(2, seq)...)
	}

	in.expect(t, http.StatusCreated, http.MethodPut, "deleted", []byte("gone soon"), "Content-Type", "text/plain")
	in.expect(t, http.StatusNoContent, http.MethodPost, "deleted", []byte(" really"), "Content-Type", "text/plain")
	in.expect(t, http.StatusNoContent, http.MethodDelete, "deleted", nil)

	paths := []string{"bin", "nested/json/stream", "ttl", "expires", "closed", "producer"}
	want := map[string]view{}
	for _, p := range paths {
		want[p] = in.view(t, p)
	}
	// Pin the views so that "same as before" also means "right".
	checks := []struct {
		path string
		ok   bool
	}{
		{"bin", bytes.Equal(want["bin"].data, bin) && want["bin"].contentType == "application/octet-stream"},
		{"nested/json/stream", string(want["nested/json/stream"].data) == `[{"a":1},{"b":[1,2]},"x",3,4]` && want["nested/json/stream"].contentType == "application/json"},
		{"ttl", want["ttl"].ttl == "3600" && want["ttl"].expiresAt == ""},
		{"expires", want["expires"].expiresAt == expiresAt && want["expires"].ttl == ""},
		{"closed", want["closed"].closed && want["closed"].readClosed == "true" && string(want["closed"].data) == "first last"},
		{"producer", string(want["producer"].data) == "e0[2.0][2.1][2.2][2.3][2.4][2.5]" && !want["producer"].closed},
	}
	for _, c := range checks {
		if !c.ok {
			t.Fatalf("%s before restart: %v", c.path, want[c.path])
		}
	}
	in.stop(t)

	lastSeq := 5
	for round := 1; round <= 5; round++ {
		in = start(t, logOut, args...)
		for _, p := range paths {
			if got := in.view(t, p); !equalViews(got, want[p]) {
				t.Fatalf("round %d: %s after restart\n got %v\nwant %v", round, p, got, want[p])
			}
		}

		in.expect(t, http.StatusNotFound, http.MethodHead, "deleted", nil)
		in.expect(t, http.StatusNotFound, http.MethodGet, "deleted", nil)

		// Configuration survives: identical creates are idempotent.
		in.expect(t, http.StatusOK, http.MethodPut, "ttl", nil, "Content-Type", "text/plain", "Stream-TTL", "3600")
		in.expect(t, http.StatusConflict, http.MethodPut, "ttl", nil, "Content-Type", "text/plain")
		in.expect(t, http.StatusOK, http.MethodPut, "expires", nil, "Content-Type", "text/plain", "Stream-Expires-At", expiresAt)
		in.expect(t, http.StatusOK, http.MethodPut, "closed", nil, "Content-Type", "text/plain", "Stream-Closed", "true")

		// Closure survives.
		r := in.expect(t, http.StatusConflict, http.MethodPost, "closed", []byte("more"), "Content-Type", "text/plain")
		if r.header.Get("Stream-Closed") != "true" || r.header.Get("Stream-Next-Offset") != want["closed"].next {
			t.Errorf("round %d: append to closed stream: %v", round, r.header)
		}

		// Producer state survives: the last request is a duplicate, the next
		// one is new, older epochs stay fenced and gaps are still detected.
		r = in.expect(t, http.StatusNoContent, http.MethodPost, "producer", []byte(fmt.Sprintf("[2.%d]", lastSeq)), producerHeaders(2, lastSeq)...)
		if r.header.Get("Producer-Epoch") != "2" || r.header.Get("Producer-Seq") != strconv.Itoa(lastSeq) {
			t.Errorf("round %d: duplicate answered with %v", round, r.header)
		}
		lastSeq++
		r = in.expect(t, http.StatusOK, http.MethodPost, "producer", []byte(fmt.Sprintf("[2.%d]", lastSeq)), producerHeaders(2, lastSeq)...)
		if r.header.Get("Producer-Seq") != strconv.Itoa(lastSeq) {
			t.Errorf("round %d: new append answered with %v", round, r.header)
		}
		r = in.expect(t, http.StatusForbidden, http.MethodPost, "producer", []byte("zombie"), producerHeaders(1, 0)...)
		if r.header.Get("Producer-Epoch") != "2" {
			t.Errorf("round %d: stale epoch answered with %v", round, r.header)
		}
		r = in.expect(t, http.StatusConflict, http.MethodPost, "producer", []byte("gap"), producerHeaders(2, lastSeq+2)...)
		if r.header.Get("Producer-Expected-Seq") != strconv.Itoa(lastSeq+1) {
			t.Errorf("round %d: gap answered with %v", round, r.header)
		}
		p := in.view(t, "producer")
		if !bytes.HasSuffix(p.data, []byte(fmt.Sprintf("[2.%d][2.%d]", lastSeq-1, lastSeq))) {
			t.Fatalf("round %d: producer data %q", round, p.data)
		}
		want["producer"] = p

		// Appends continue at the recovered tail without overwriting.
		extra := []byte(fmt.Sprintf("round-%d", round))
		in.expect(t, http.StatusNoContent, http.MethodPost, "bin", extra, octet...)
		b := in.view(t, "bin")
		if !bytes.Equal(b.data, append(append([]byte(nil), want["bin"].data...), extra...)) {
			t.Fatalf("round %d: bin after append has %d bytes", round, len(b.data))
		}
		want["bin"] = b

		// New streams get ids never used before, so they cannot see the
		// data of existing (or deleted) streams.
		fresh := fmt.Sprintf("fresh/%d", round)
		in.expect(t, http.StatusCreated, http.MethodPut, fresh, []byte(fresh), "Content-Type", "text/plain")
		f := in.view(t, fresh)
		if string(f.data) != fresh {
			t.Fatalf("round %d: new stream reads %q", round, f.data)
		}
		for _, p := range paths {
			if etagID(t, want[p].etag) == etagID(t, f.etag) {
				t.Fatalf("round %d: new stream reuses the id of %s (%s)", round, p, f.etag)
			}
		}
		paths = append(paths, fresh)
		want[fresh] = f

		in.stop(t)
	}
}

// TestMemoryModeWritesNothing: with --memory, streamd leaves --data-dir
// untouched and forgets everything on restart.
func TestMemoryModeWritesNothing(t *testing.T) {
	dir := t.TempDir()
	logOut := logFile(t)
	in := start(t, logOut, "--memory", "--data-dir", dir)
	in.expect(t, http.StatusCreated, http.MethodPut, "mem", []byte("volatile"), "Content-Type", "text/plain")
	in.expect(t, http.StatusNoContent, http.MethodPost, "mem", []byte(" data"), "Content-Type", "text/plain")
	if r := in.expect(t, http.StatusOK, http.MethodGet, "mem", nil); string(r.body) != "volatile data" {
		t.Fatalf("read %q", r.body)
	}
	in.stop(t)
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 0 {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Fatalf("--memory wrote to the data dir: %v", names)
	}

	in = start(t, logOut, "--memory", "--data-dir", dir)
	in.expect(t, http.StatusNotFound, http.MethodHead, "mem", nil)
	in.stop(t)
}

// TestShutdownEndsLiveResponses: stopping streamd does not wait for open
// long-polls and SSE responses to time out.
func TestShutdownEndsLiveResponses(t *testing.T) {
	for _, proto := range []string{"HTTP/1.1", "h2c"} {
		t.Run(proto, func(t *testing.T) {
			logOut := logFile(t)
			in := start(t, logOut, "--memory", "--long-poll-timeout", "1m", "--sse-reconnect-interval", "1m")
			client := in.client
			if proto == "h2c" {
				var tr *http.Transport
				client, tr = h2cClient(new(atomic.Int32))
				defer tr.CloseIdleConnections()
			}
			checkShutdownEndsLiveResponses(t, in, client)
		})
	}
}

func checkShutdownEndsLiveResponses(t *testing.T, in *instance, client *http.Client) {
	in.expect(t, http.StatusCreated, http.MethodPut, "live", []byte("x"), "Content-Type", "text/plain")

	sse, err := client.Get(in.base + "/v1/stream/live?live=sse&offset=-1")
	if err != nil || sse.StatusCode != http.StatusOK {
		t.Fatalf("SSE: %v %v", sse, err)
	}
	defer sse.Body.Close()
	// Wait until the response is live (its catch-up has been sent).
	buf := make([]byte, 1)
	if _, err := sse.Body.Read(buf); err != nil {
		t.Fatalf("SSE read: %v", err)
	}
	type answer struct {
		status int
		next   string
		err    error
	}
	pollDone := make(chan answer, 1)
	go func() {
		res, err := client.Get(in.base + "/v1/stream/live?live=long-poll&offset=now")
		if err != nil {
			pollDone <- answer{err: err}
			return
		}
		res.Body.Close()
		pollDone <- answer{status: res.StatusCode, next: res.Header.Get("Stream-Next-Offset")}
	}()
	time.Sleep(100 * time.Millisecond) // let the long-poll start waiting

	begin := time.Now()
	in.stop(t)
	if el := time.Since(begin); el > 5*time.Second {
		t.Errorf("shutdown took %v with live responses open", el)
	}
	// Live reads end cleanly, so clients simply reconnect: SSE with the
	// end of its body, the long-poll with 204 at the current tail.
	if _, err := io.Copy(io.Discard, sse.Body); err != nil {
		t.Errorf("SSE ended with %v; want a clean end", err)
	}
	select {
	case a := <-pollDone:
		if a.err != nil || a.status != http.StatusNoContent || a.next == "" {
			t.Errorf("long-poll at shutdown: status %d, Stream-Next-Offset %q, %v; want 204 at the tail", a.status, a.next, a.err)
		}
	case <-time.After(5 * time.Second):
		t.Error("long-poll still open after shutdown")
	}
}

func TestShutdownClosesUnusedConnections(t *testing.T) {
	// A connection that never sent a request must not hold up shutdown
	// (http.Server.Shutdown alone waits five seconds for it); one with a
	// finished request is idle and closed at once anyway.
	logOut := logFile(t)
	in := start(t, logOut, "--memory")
	in.expect(t, http.StatusCreated, http.MethodPut, "s", nil, "Content-Type", "text/plain")
	silent, err := net.Dial("tcp", strings.TrimPrefix(in.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	time.Sleep(50 * time.Millisecond) // let the server accept it

	begin := time.Now()
	in.stop(t)
	if el := time.Since(begin); el > 2*time.Second {
		t.Errorf("shutdown took %v with an unused connection open", el)
	}
	if err := silent.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if n, err := silent.Read(make([]byte, 1)); err == nil {
		t.Errorf("unused connection still open after shutdown (read %d bytes)", n)
	}
}
