package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// env is what every scenario needs besides its own parameters.
type env struct {
	base   string // server base URL without a trailing slash
	prefix string // stream name prefix
	pid    int    // server PID for RSS sampling; 0 disables it
	log    io.Writer
	start  time.Time // monotonic base for timestamps shared between goroutines
}

func (e *env) streamURL(name string) string { return e.base + "/v1/stream/" + name }

func (e *env) logf(format string, args ...any) {
	fmt.Fprintf(e.log, "streambench: "+format+"\n", args...)
}

// since returns monotonic nanoseconds since the run started: a timestamp
// that can be carried in message bodies and compared across goroutines.
func (e *env) since() int64 { return int64(time.Since(e.start)) }

// loopbackIP reports whether host is a literal IPv4 address in 127.0.0.0/8.
// Load must never leave the machine.
func loopbackIP(host string) bool {
	ip := net.ParseIP(host).To4()
	return ip != nil && ip[0] == 127
}

// checkBaseURL validates -url and returns it without a trailing slash.
func checkBaseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("-url: %v", err)
	}
	if u.Scheme != "http" {
		return "", fmt.Errorf("-url %q: only http:// is supported", raw)
	}
	if !loopbackIP(u.Hostname()) {
		return "", fmt.Errorf("-url %q: host must be a literal address in 127.0.0.0/8", raw)
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// newTransport returns a keep-alive transport for up to conns concurrent
// connections. Compression is off so byte counts and CPU are the server's
// raw read path. localIP, if set, is the source address of every
// connection (to spread ephemeral ports); sem, if set, bounds concurrent
// dials so a burst of thousands of connects does not overflow the listen
// backlog.
func newTransport(conns int, localIP net.IP, sem chan struct{}) *http.Transport {
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	if localIP != nil {
		d.LocalAddr = &net.TCPAddr{IP: localIP}
	}
	dial := func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil || !loopbackIP(host) {
			return nil, fmt.Errorf("refusing to dial %s: not in 127.0.0.0/8", addr)
		}
		if sem != nil {
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		return d.DialContext(ctx, network, addr)
	}
	return &http.Transport{
		DialContext:         dial,
		MaxIdleConnsPerHost: conns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
}

func newClient(tr *http.Transport) *http.Client {
	return &http.Client{
		Transport: tr,
		// Redirects could lead off loopback; the protocol needs none.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// reply is one finished request: status, headers and the latency from
// sending it to having read the whole body.
type reply struct {
	status int
	header http.Header
	lat    time.Duration
}

func (r reply) ok() bool { return r.status >= 200 && r.status < 300 }

// requestTimeout bounds a single non-live request.
const requestTimeout = 60 * time.Second

// do sends one request and reads the whole response body into buf (or
// discards it when buf is nil).
func do(ctx context.Context, c *http.Client, method, u, contentType string, body []byte, buf *bytes.Buffer) (reply, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return reply{}, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	t0 := time.Now()
	resp, err := c.Do(req)
	if err != nil {
		return reply{}, err
	}
	defer resp.Body.Close()
	if buf != nil {
		buf.Reset()
		_, err = buf.ReadFrom(resp.Body)
	} else {
		_, err = io.Copy(io.Discard, resp.Body)
	}
	r := reply{status: resp.StatusCode, header: resp.Header, lat: time.Since(t0)}
	return r, err
}

// nextOffset returns the Stream-Next-Offset header of r. Offsets are opaque
// tokens (PROTOCOL.md §8): the tool never parses them, it only sends back
// what the server returned and compares them lexicographically.
func (r reply) nextOffset() (string, error) {
	return checkOffset(r.header.Get("Stream-Next-Offset"))
}

func (r reply) upToDate() bool { return r.header.Get("Stream-Up-To-Date") == "true" }

// checkOffset accepts s as an offset a server may return: non-empty, not a
// sentinel, none of the characters §8 forbids.
func checkOffset(s string) (string, error) {
	if s == "" || s == "-1" || s == "now" || strings.ContainsAny(s, ",&=?/") {
		return "", fmt.Errorf("unexpected offset %q", s)
	}
	return s, nil
}

// offsetAfter reports whether next is strictly after prev. Offsets are
// lexicographically sortable (§8), which is byte order on Go strings.
func offsetAfter(next, prev string) bool { return next > prev }

// offsetQuery renders an offset for a request URL; §8 requires clients to
// URL-encode it.
func offsetQuery(offset string) string { return "offset=" + url.QueryEscape(offset) }

// createStream PUTs a stream and returns the reply and its tail offset.
// r.status tells a new stream (201) from an existing one (200).
func createStream(ctx context.Context, c *http.Client, u, contentType string) (tail string, r reply, err error) {
	r, err = do(ctx, c, http.MethodPut, u, contentType, nil, nil)
	if err != nil {
		return "", r, err
	}
	if r.status != http.StatusCreated && r.status != http.StatusOK {
		return "", r, fmt.Errorf("PUT %s: status %d", u, r.status)
	}
	tail, err = r.nextOffset()
	return tail, r, err
}

// fanoutStream is the one stream a fan-out scenario (longpoll, sse)
// writes to, with the server's RSS before any reader connects and a
// sampler of its peak.
type fanoutStream struct {
	admin     *http.Client // for the writer and cleanup
	name, url string
	ct        string
	tail      string // the empty stream's offset
	rssBefore int64
	rss       *rssSampler
}

// newFanoutStream creates the stream "<prefix>-<suffix>"; close deletes it.
func newFanoutStream(ctx context.Context, e *env, suffix, contentType string) (*fanoutStream, error) {
	f := &fanoutStream{admin: newClient(newTransport(4, nil, nil)), name: e.prefix + "-" + suffix, ct: contentType}
	f.url = e.streamURL(f.name)
	tail, r, err := createStream(ctx, f.admin, f.url, contentType)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %v", f.url, describe("PUT", r, err))
	}
	f.tail = tail
	f.rssBefore, _ = readRSS(e.pid)
	f.rss = startRSSSampler(e.pid, 200*time.Millisecond)
	return f, nil
}

func (f *fanoutStream) close(e *env) { deleteStreams(e, f.admin, []string{f.name}, 1) }

// deleteStreams removes what a run created so repeated runs do not
// accumulate data on the server. Best effort: failures are only logged.
func deleteStreams(e *env, c *http.Client, names []string, conc int) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var failed atomic.Int64
	parallel(ctx, len(names), conc, func(_, i int) {
		r, err := do(ctx, c, http.MethodDelete, e.streamURL(names[i]), "", nil, nil)
		if err != nil || !r.ok() {
			failed.Add(1)
		}
	})
	if n := failed.Load(); n > 0 {
		e.logf("cleanup: %d of %d deletes failed", n, len(names))
	}
}

// parallel runs fn(worker, i) for i in [0,n) on conc workers and returns
// when all are done or ctx is cancelled (remaining items are skipped).
func parallel(ctx context.Context, n, conc int, fn func(worker, i int)) {
	conc = max(1, min(conc, n))
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				fn(w, i)
			}
		}()
	}
	wg.Wait()
}

// errorLog counts errors and keeps the first few distinct messages for
// stderr and the JSON output.
type errorLog struct {
	n       atomic.Int64
	mu      sync.Mutex
	samples []string
	log     io.Writer
}

const maxErrorSamples = 8

func (l *errorLog) add(format string, args ...any) {
	l.n.Add(1)
	msg := fmt.Sprintf(format, args...)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.samples) >= maxErrorSamples {
		return
	}
	for _, s := range l.samples {
		if s == msg {
			return
		}
	}
	l.samples = append(l.samples, msg)
	if l.log != nil {
		fmt.Fprintf(l.log, "streambench: error: %s\n", msg)
	}
}

func (l *errorLog) count() int64 { return l.n.Load() }

func (l *errorLog) list() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string{}, l.samples...)
}

// describe renders a failed request for the error log.
func describe(what string, r reply, err error) string {
	if err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return what + ": timeout"
		}
		return what + ": " + err.Error()
	}
	return fmt.Sprintf("%s: status %d", what, r.status)
}

// sleepCtx waits d or until ctx ends; it reports whether ctx is still live.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// pattern is the deterministic content of the read scenario: byte i of the
// stream is (i*31+7)%251. It repeats every 251 bytes, so a reference
// buffer of n+251 bytes holds the content of any n-byte range.
func pattern(n int) []byte {
	b := make([]byte, n+251)
	for i := range b {
		b[i] = byte((i*31 + 7) % 251)
	}
	return b
}

// mismatches counts the bytes of body that differ from the pattern at
// stream position pos (ref from pattern, at least 252 bytes).
func mismatches(ref, body []byte, pos uint64) int {
	span := len(ref) - 251
	bad := 0
	for len(body) > 0 {
		n := min(len(body), span)
		off := int(pos % 251)
		want := ref[off : off+n]
		if !bytes.Equal(body[:n], want) {
			for i := range n {
				if body[i] != want[i] {
					bad++
				}
			}
		}
		body, pos = body[n:], pos+uint64(n)
	}
	return bad
}
