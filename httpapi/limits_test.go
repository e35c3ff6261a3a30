package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/streamd/streamd/actors"
	"github.com/streamd/streamd/httpapi"
)

// headerRecorder is an http.ResponseWriter that remembers whether a status
// was written explicitly: net/http sends 200 for a handler that returns
// without one, which for a write would acknowledge what never happened.
type headerRecorder struct {
	*httptest.ResponseRecorder
	wrote bool
}

func (r *headerRecorder) WriteHeader(code int) {
	r.wrote = true
	r.ResponseRecorder.WriteHeader(code)
}

func (r *headerRecorder) Write(p []byte) (int, error) {
	r.wrote = true
	return r.ResponseRecorder.Write(p)
}

// TestCancelledWritesAlwaysAnswer drives every write through the real
// router with a request context that is already cancelled (as a client
// that left, or a shutdown out of time, leaves it). Whatever the race
// between the cancellation and the actor decides, the handler writes a
// status itself: a 2xx only for a write that happened (it carries its
// Stream-Next-Offset), otherwise 503 with Retry-After; never nothing.
func TestCancelledWritesAlwaysAnswer(t *testing.T) {
	e := newEnv(t)
	e.expect(t, http.StatusCreated, http.MethodPut, sp("existing"), []byte("a"), "Content-Type", "text/plain")
	e.expect(t, http.StatusCreated, http.MethodPut, sp("json"), nil, "Content-Type", "application/json")
	type write struct {
		method, path, body string
		hdr                []string
	}
	writes := []write{
		{http.MethodPut, "new-%d", "x", []string{"Content-Type", "text/plain"}},
		{http.MethodPut, "existing", "", []string{"Content-Type", "text/plain"}},
		{http.MethodPost, "existing", "b", []string{"Content-Type", "text/plain"}},
		{http.MethodPost, "json", `[{"k":1}]`, []string{"Content-Type", "application/json"}},
		{http.MethodPost, "existing", "c", []string{"Content-Type", "text/plain", "Producer-Id", "p%d", "Producer-Epoch", "0", "Producer-Seq", "0"}},
		{http.MethodPost, "existing", "d", []string{"Content-Type", "text/plain", "Stream-Seq", "%08d"}},
		{http.MethodPost, "closing-%d", "", []string{"Stream-Closed", "true"}},
		{http.MethodDelete, "doomed-%d", "", nil},
		{http.MethodPost, "missing", "e", []string{"Content-Type", "text/plain"}},
	}
	statuses := map[int]int{}
	for i := range 40 {
		for _, w := range writes {
			path := w.path
			if strings.Contains(path, "%d") {
				path = fmt.Sprintf(path, i)
				if w.method != http.MethodPut {
					e.expect(t, http.StatusCreated, http.MethodPut, sp(path), nil, "Content-Type", "text/plain")
				}
			}
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			req := httptest.NewRequestWithContext(ctx, w.method, sp(path), strings.NewReader(w.body))
			for j := 0; j+1 < len(w.hdr); j += 2 {
				v := w.hdr[j+1]
				if strings.Contains(v, "%") {
					v = fmt.Sprintf(v, i)
				}
				req.Header.Set(w.hdr[j], v)
			}
			rec := &headerRecorder{ResponseRecorder: httptest.NewRecorder()}
			e.api.ServeHTTP(rec, req)
			code := rec.Code
			statuses[code]++
			switch {
			case !rec.wrote:
				t.Fatalf("%s %s with a cancelled context: no status written (net/http would send 200)", w.method, path)
			case code >= 200 && code < 300:
				if w.method != http.MethodDelete && rec.Header().Get("Stream-Next-Offset") == "" {
					t.Fatalf("%s %s: %d without Stream-Next-Offset", w.method, path, code)
				}
			case code == http.StatusServiceUnavailable:
				if rec.Header().Get("Retry-After") == "" {
					t.Fatalf("%s %s: 503 without Retry-After", w.method, path)
				}
			case code == http.StatusNotFound && path == "missing":
			default:
				t.Fatalf("%s %s with a cancelled context: status %d (%q)", w.method, path, code, rec.Body.String())
			}
		}
	}
	t.Logf("statuses: %v", statuses)
	if statuses[http.StatusServiceUnavailable] == 0 {
		t.Error("no request saw its cancellation; the test exercised nothing")
	}
	// Whatever was acknowledged is there; nothing else is.
	data, _ := e.readAll(t, sp("existing"))
	if !bytes.HasPrefix(data, []byte("a")) {
		t.Fatalf("stream content %q lost its first append", data)
	}
}

// TestDrainEndsLiveReads: once the server drains for shutdown, a waiting
// long-poll answers 204 at the current tail, an SSE response ends cleanly,
// a new long-poll answers at once, and writes still get real answers.
func TestDrainEndsLiveReads(t *testing.T) {
	draining := make(chan struct{})
	e := newEnv(t, withLongPoll(time.Minute), withSSEReconnect(time.Minute),
		withAPI(func(c *httpapi.Config) { c.Draining = draining }))
	e.expect(t, http.StatusCreated, http.MethodPut, sp("s"), []byte("abc"), "Content-Type", "text/plain")
	sse := e.openSSE(t, sp("s")+"?offset=-1&live=sse")
	sse.next(t, 5*time.Second) // data
	sse.next(t, 5*time.Second) // control: live from here
	poll := make(chan *response, 1)
	go func() {
		r, err := e.request(context.Background(), http.MethodGet, sp("s")+"?offset=now&live=long-poll", nil)
		if err != nil {
			t.Error(err)
		}
		poll <- r
	}()
	time.Sleep(100 * time.Millisecond) // let it park
	close(draining)
	select {
	case r := <-poll:
		if r.status != http.StatusNoContent || r.get("Stream-Next-Offset") != e.tok(t, sp("s"), 3) || r.get("Stream-Up-To-Date") != "true" {
			t.Fatalf("long-poll at drain: %v; want 204 at offset 3, up to date", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("long-poll still waiting after the server began draining")
	}
	sse.expectEnd(t, 5*time.Second)
	begin := time.Now()
	r := e.expect(t, http.StatusNoContent, http.MethodGet, sp("s")+"?offset=now&live=long-poll", nil)
	if time.Since(begin) > 2*time.Second || r.get("Stream-Next-Offset") != e.tok(t, sp("s"), 3) {
		t.Fatalf("long-poll after drain: %v after %v", r, time.Since(begin))
	}
	r = e.expect(t, http.StatusNoContent, http.MethodPost, sp("s"), []byte("d"), "Content-Type", "text/plain")
	wantHeader(t, r, "Stream-Next-Offset", e.tok(t, sp("s"), 4))
}

// TestLiveReaderBounds: long-polls and SSE subscribers count against the
// per-stream bound (429) and the server's (503), both with Retry-After,
// and a slot frees when a reader leaves.
func TestLiveReaderBounds(t *testing.T) {
	e := newEnv(t, withLongPoll(time.Minute), withSSEReconnect(time.Minute), withActors(func(c *actors.Config) {
		c.MaxLiveReadersPerStream = 2
		c.MaxLiveReaders = 3
	}))
	for _, s := range []string{"a", "b"} {
		e.expect(t, http.StatusCreated, http.MethodPut, sp(s), []byte("x"), "Content-Type", "text/plain")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	park := func(s string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, _ = e.request(ctx, http.MethodGet, sp(s)+"?offset=now&live=long-poll", nil)
		}()
	}
	park("a")
	sse := e.openSSE(t, sp("a")+"?offset=now&live=sse")
	sse.next(t, 5*time.Second) // subscribed once its first control event is out
	time.Sleep(100 * time.Millisecond)
	r := e.expect(t, http.StatusTooManyRequests, http.MethodGet, sp("a")+"?offset=now&live=long-poll", nil)
	wantHeader(t, r, "Retry-After", "1")
	park("b")
	time.Sleep(100 * time.Millisecond)
	r = e.expect(t, http.StatusServiceUnavailable, http.MethodGet, sp("b")+"?offset=now&live=long-poll", nil)
	wantHeader(t, r, "Retry-After", "1")
	// Catch-up reads are not live readers.
	e.expect(t, http.StatusOK, http.MethodGet, sp("a")+"?offset=-1", nil)
	sse.cancel()
	deadline := time.Now().Add(5 * time.Second)
	for {
		ctx2, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
		r, err := e.request(ctx2, http.MethodGet, sp("b")+"?offset=now&live=long-poll", nil)
		cancel2()
		if err != nil { // parked: a slot was free
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no slot freed after an SSE reader left: %v", r)
		}
		time.Sleep(50 * time.Millisecond)
	}
	got := e.api.Rejections()
	if got[httpapi.LimitLiveReadersOfStream] < 1 || got[httpapi.LimitLiveReaders] < 1 {
		t.Errorf("rejections = %v; want both live reader bounds counted", got)
	}
	cancel()
	wg.Wait()
}

// TestBodyMemoryBound: request bodies held at once are bounded; past the
// bound a write gets 503 with Retry-After, and once the holder finishes
// the same write succeeds.
func TestBodyMemoryBound(t *testing.T) {
	e := newEnv(t, withAPI(func(c *httpapi.Config) { c.MaxBodyMemory = 100 << 10 }))
	e.expect(t, http.StatusCreated, http.MethodPut, sp("s"), nil, "Content-Type", "application/octet-stream")
	// A chunked upload that sends 40 KiB and then waits: it holds the
	// 64 KiB reserved for a body of unknown length.
	host := strings.TrimPrefix(e.url, "http://")
	conn, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked\r\n\r\n", sp("s"), host)
	chunk := bytes.Repeat([]byte("h"), 40<<10)
	fmt.Fprintf(conn, "%x\r\n%s\r\n", len(chunk), chunk)
	time.Sleep(200 * time.Millisecond)
	body := bytes.Repeat([]byte("w"), 40<<10)
	r := e.expect(t, http.StatusServiceUnavailable, http.MethodPost, sp("s"), body, "Content-Type", "application/octet-stream")
	wantHeader(t, r, "Retry-After", "1")
	fmt.Fprintf(conn, "0\r\n\r\n")
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil || res.StatusCode != http.StatusNoContent {
		t.Fatalf("held upload: %v %v", res, err)
	}
	e.expect(t, http.StatusNoContent, http.MethodPost, sp("s"), body, "Content-Type", "application/octet-stream")
	data, _ := e.readAll(t, sp("s"))
	if !bytes.Equal(data, append(chunk, body...)) {
		t.Fatalf("stream holds %d bytes; want the held upload then the other", len(data))
	}
	if n := e.api.Rejections()[httpapi.LimitBodyMemory]; n != 1 {
		t.Errorf("body memory rejections = %d; want 1", n)
	}
	// Bodies larger than the append limit are still 413, not 503.
	e2 := newEnv(t, withMaxAppend(1<<10), withAPI(func(c *httpapi.Config) { c.MaxBodyMemory = 1 << 20 }))
	e2.expect(t, http.StatusCreated, http.MethodPut, sp("s"), nil, "Content-Type", "text/plain")
	e2.expect(t, http.StatusRequestEntityTooLarge, http.MethodPost, sp("s"), bytes.Repeat([]byte("x"), 2<<10), "Content-Type", "text/plain")
	e2.expect(t, http.StatusNoContent, http.MethodPost, sp("s"), bytes.Repeat([]byte("x"), 1<<10), "Content-Type", "text/plain")
}

// TestLongHeaderValues: Stream-Seq and Producer-Id longer than the bound
// get 400, and nothing is written.
func TestLongHeaderValues(t *testing.T) {
	e := newEnv(t, withAPI(func(c *httpapi.Config) { c.MaxHeaderValueBytes = 16 }))
	e.expect(t, http.StatusCreated, http.MethodPut, sp("s"), nil, "Content-Type", "text/plain")
	e.expect(t, http.StatusBadRequest, http.MethodPost, sp("s"), []byte("x"), "Content-Type", "text/plain", "Stream-Seq", strings.Repeat("9", 17))
	e.expect(t, http.StatusBadRequest, http.MethodPost, sp("s"), []byte("x"), "Content-Type", "text/plain",
		"Producer-Id", strings.Repeat("p", 17), "Producer-Epoch", "0", "Producer-Seq", "0")
	e.expect(t, http.StatusNoContent, http.MethodPost, sp("s"), []byte("x"), "Content-Type", "text/plain", "Stream-Seq", strings.Repeat("9", 16))
	if data, _ := e.readAll(t, sp("s")); string(data) != "x" {
		t.Fatalf("stream holds %q; want only the accepted append", data)
	}
}

// TestSlowReaderIsDropped: a catch-up reader that stops reading is cut off
// after the write timeout instead of holding its handler forever.
func TestSlowReaderIsDropped(t *testing.T) {
	e := newEnv(t, withMaxChunk(32<<20), withMaxAppend(32<<20), withAPI(func(c *httpapi.Config) { c.WriteTimeout = 300 * time.Millisecond }))
	big := bytes.Repeat([]byte("z"), 32<<20)
	e.expect(t, http.StatusCreated, http.MethodPut, sp("big"), big, "Content-Type", "application/octet-stream")
	host := strings.TrimPrefix(e.url, "http://")
	// A small receive buffer, set before connecting so the kernel cannot
	// grow it: loopback may otherwise buffer the whole response (tcp_rmem
	// reaches 32 MiB on common kernels), and the server's write would never
	// block.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
		return errors.Join(err, serr)
	}}
	conn, err := d.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET %s?offset=-1 HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", sp("big"), host)
	// Wait for the answer to begin (loading 32 MiB can take a while on a
	// loaded machine), then stop reading: the server's write blocks, then
	// times out.
	first := make([]byte, 1)
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(conn, first); err != nil {
		t.Fatalf("waiting for the answer to begin: %v", err)
	}
	time.Sleep(2 * time.Second)
	// The server closes the connection either way (Connection: close);
	// the deadline only keeps a broken server from hanging the test.
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	start := time.Now()
	n, err := io.Copy(io.Discard, conn)
	t.Logf("read %d bytes in %v after the pause", n, time.Since(start))
	if err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("reading the response: %v after %d bytes", err, n)
	}
	if n >= int64(len(big)) {
		t.Fatalf("read %d bytes: the whole response arrived, the writer was never cut off", n)
	}
	// The server still serves everyone else (a small answer: a full read
	// would itself be cut off on a loaded machine, by design).
	e.expect(t, http.StatusOK, http.MethodHead, sp("big"), nil)
}
