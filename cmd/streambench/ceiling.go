package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The ceiling server answers the requests of every scenario as cheaply as
// net/http allows: in memory, no durability, one mutex per stream. Its
// numbers are the upper bound a Durable Streams server could reach on this
// machine with the standard library.

const (
	ceilMaxChunk  = 1 << 20
	ceilMaxAppend = 16 << 20
)

// Live timeouts as in streamd: a long-poll answers 204 after ceilLongPoll,
// an SSE response ends after ceilSSEInterval so clients reconnect.
// Variables so tests can exercise both paths.
var (
	ceilLongPoll    = 30 * time.Second
	ceilSSEInterval = 60 * time.Second
)

type ceilStream struct {
	mu   sync.Mutex
	ct   string
	data []byte        // append-only: a slice taken under mu stays valid after unlock
	wake chan struct{} // closed and replaced on every append
}

// read returns up to ceilMaxChunk bytes from pos, the tail, and the channel
// closed by the next append; ok is false when pos is beyond the tail.
func (s *ceilStream) read(pos uint64) (b []byte, tail uint64, wake chan struct{}, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tail = uint64(len(s.data))
	if pos > tail {
		return nil, tail, nil, false
	}
	end := min(tail, pos+ceilMaxChunk)
	return s.data[pos:end:end], tail, s.wake, true
}

type ceiling struct {
	mu      sync.RWMutex
	streams map[string]*ceilStream
	// enc and dec map byte positions to offsets and back: formatOffset and
	// parseOffset, or in tests any other order-preserving encoding.
	enc func(uint64) string
	dec func(string) (uint64, error)
}

func newCeiling() *ceiling {
	return &ceiling{streams: map[string]*ceilStream{}, enc: formatOffset, dec: parseOffset}
}

func (c *ceiling) get(name string) *ceilStream {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.streams[name]
}

// The ceiling's own offsets are "<16-digit segment>_<16-digit byte
// position>", the format of streamd; the segment is always 0. Only the
// ceiling parses them: the load scenarios treat every offset as opaque.
const offsetDigits = 16

func formatOffset(pos uint64) string {
	var b [2*offsetDigits + 1]byte
	for i := range offsetDigits {
		b[i] = '0'
	}
	b[offsetDigits] = '_'
	for i := len(b) - 1; i > offsetDigits; i-- {
		b[i] = byte('0' + pos%10)
		pos /= 10
	}
	return string(b[:])
}

func parseOffset(s string) (uint64, error) {
	seg, pos, ok := strings.Cut(s, "_")
	if !ok || len(seg) != offsetDigits || len(pos) != offsetDigits || strings.Trim(seg, "0") != "" {
		return 0, fmt.Errorf("unexpected offset %q", s)
	}
	return strconv.ParseUint(pos, 10, 64)
}

func (c *ceiling) setOffset(h http.Header, pos uint64) { h.Set("Stream-Next-Offset", c.enc(pos)) }

func (c *ceiling) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, "/v1/stream/")
	if !ok || name == "" {
		http.NotFound(w, r)
		return
	}
	h := w.Header()
	if r.Method == http.MethodPut {
		ct := r.Header.Get("Content-Type")
		if ct == "" {
			ct = "application/octet-stream"
		}
		c.mu.Lock()
		s, exists := c.streams[name]
		if !exists {
			s = &ceilStream{ct: ct, wake: make(chan struct{})}
			c.streams[name] = s
		}
		c.mu.Unlock()
		s.mu.Lock()
		same, tail := s.ct == ct, uint64(len(s.data))
		s.mu.Unlock()
		switch {
		case !exists:
			h.Set("Content-Type", ct)
			c.setOffset(h, tail)
			w.WriteHeader(http.StatusCreated)
		case same:
			h.Set("Content-Type", ct)
			c.setOffset(h, tail)
		default:
			w.WriteHeader(http.StatusConflict)
		}
		return
	}
	s := c.get(name)
	if s == nil {
		http.NotFound(w, r)
		return
	}
	switch r.Method {
	case http.MethodPost:
		body, err := readBody(w, r)
		if err != nil || len(body) == 0 {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		if r.Header.Get("Content-Type") != s.ct {
			s.mu.Unlock()
			w.WriteHeader(http.StatusConflict)
			return
		}
		s.data = append(s.data, body...)
		tail := uint64(len(s.data))
		close(s.wake)
		s.wake = make(chan struct{})
		s.mu.Unlock()
		c.setOffset(h, tail)
		w.WriteHeader(http.StatusNoContent)
	case http.MethodHead:
		_, tail, _, _ := s.read(0)
		h.Set("Content-Type", s.ct)
		c.setOffset(h, tail)
	case http.MethodDelete:
		c.mu.Lock()
		delete(c.streams, name)
		c.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case http.MethodGet:
		c.serveRead(w, r, s)
	default:
		w.WriteHeader(http.StatusMethodNotAllowed)
	}
}

// readBody reads an append body in one allocation when its length is known.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	if n := r.ContentLength; n > 0 && n <= ceilMaxAppend {
		b := make([]byte, n)
		_, err := io.ReadFull(r.Body, b)
		return b, err
	}
	return io.ReadAll(http.MaxBytesReader(w, r.Body, ceilMaxAppend))
}

func (c *ceiling) serveRead(w http.ResponseWriter, r *http.Request, s *ceilStream) {
	q := r.URL.Query()
	var pos uint64
	switch off := q.Get("offset"); off {
	case "", "-1":
	case "now":
		_, pos, _, _ = s.read(0)
	default:
		var err error
		if pos, err = c.dec(off); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
	}
	b, tail, wake, ok := s.read(pos)
	if !ok {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	h := w.Header()
	switch q.Get("live") {
	case "sse":
		c.serveSSE(w, r, s, pos)
		return
	case "long-poll":
		if len(b) == 0 {
			t := time.NewTimer(ceilLongPoll)
			select {
			case <-wake:
			case <-t.C:
			case <-r.Context().Done():
			}
			t.Stop()
			b, tail, _, _ = s.read(pos)
		}
		if len(b) == 0 {
			c.setOffset(h, tail)
			h.Set("Stream-Up-To-Date", "true")
			w.WriteHeader(http.StatusNoContent)
			return
		}
	}
	h.Set("Content-Type", s.ct)
	c.setOffset(h, pos+uint64(len(b)))
	if pos+uint64(len(b)) == tail {
		h.Set("Stream-Up-To-Date", "true")
	}
	_, _ = w.Write(b)
}

// serveSSE sends `event: data` / `event: control` pairs, flushing after
// each pair, until the client leaves or ceilSSEInterval passes.
func (c *ceiling) serveSSE(w http.ResponseWriter, r *http.Request, s *ceilStream, pos uint64) {
	textual := strings.HasPrefix(s.ct, "text/") || strings.HasPrefix(s.ct, "application/json")
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	if !textual {
		h.Set("Stream-Sse-Data-Encoding", "base64")
	}
	rc := http.NewResponseController(w)
	deadline := time.NewTimer(ceilSSEInterval)
	defer deadline.Stop()
	var buf []byte
	sent := false
	for {
		b, tail, wake, _ := s.read(pos)
		if len(b) > 0 || !sent {
			buf = buf[:0]
			if len(b) > 0 {
				buf = appendSSEData(buf, b, textual)
			}
			pos += uint64(len(b))
			buf = fmt.Appendf(buf, "event: control\ndata:{\"streamNextOffset\":%q,\"upToDate\":%t}\n\n", c.enc(pos), pos == tail)
			if _, err := w.Write(buf); err != nil || rc.Flush() != nil {
				return
			}
			sent = true
			continue
		}
		select {
		case <-wake:
		case <-deadline.C:
			return
		case <-r.Context().Done():
			return
		}
	}
}

// appendSSEData renders one data event: text split into data: lines at
// each "\n" (a parser joins them back with "\n"), binary as base64.
func appendSSEData(dst, b []byte, textual bool) []byte {
	dst = append(dst, "event: data\n"...)
	if !textual {
		dst = append(dst, "data:"...)
		dst = base64.StdEncoding.AppendEncode(dst, b)
		return append(dst, "\n\n"...)
	}
	for {
		line, rest, more := bytes.Cut(b, []byte("\n"))
		dst = append(dst, "data: "...) // the space keeps a line's own leading space
		dst = append(dst, line...)
		dst = append(dst, '\n')
		if !more {
			return append(dst, '\n')
		}
		b = rest
	}
}

// serveCeiling runs the ceiling server on addr until SIGINT or SIGTERM.
func serveCeiling(addr string, stdout, stderr io.Writer) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil || !loopbackIP(host) {
		return fmt.Errorf("-addr %q: must be a literal address in 127.0.0.0/8 with a port", addr)
	}
	raiseNoFile(0, stderr)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: newCeiling(), ReadHeaderTimeout: 10 * time.Second,
		HTTP2: &http.HTTP2Config{MaxConcurrentStreams: 1000}} // as streamd's default
	// Prior-knowledge HTTP/2 beside HTTP/1.1, as streamd serves by default,
	// for the longpoll scenario's -h2c readers.
	srv.Protocols = new(http.Protocols)
	srv.Protocols.SetHTTP1(true)
	srv.Protocols.SetUnencryptedHTTP2(true)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "ceiling listening http://%s\n", ln.Addr())
	select {
	case <-ctx.Done():
	case err := <-errc:
		return err
	}
	// Live requests would hold a graceful shutdown for up to 60 s.
	sctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return srv.Close()
}
