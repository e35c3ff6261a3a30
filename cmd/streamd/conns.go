package main

import (
	"bytes"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// unusedConns tracks connections on which no request has started yet.
// http.Server.Shutdown closes idle keep-alive connections at once but
// waits up to five seconds for connections that never sent a byte (HTTP
// clients often dial a spare connection they never use), which would stall
// every restart. No request is lost by closing them: none was read.
//
// ConnState hooks run on every request of every connection; a sync.Map
// keeps the common case (a connection already past StateNew) free of a
// shared lock.
type unusedConns struct {
	conns sync.Map // net.Conn -> struct{}
}

func newUnusedConns() *unusedConns { return &unusedConns{} }

// track is an http.Server ConnState hook.
func (u *unusedConns) track(c net.Conn, state http.ConnState) {
	if state == http.StateNew {
		u.conns.Store(c, struct{}{})
	} else {
		u.conns.Delete(c)
	}
}

// closeAll closes every tracked connection. Registered with
// http.Server.RegisterOnShutdown, it runs after the listeners are closed,
// so no new connection can arrive afterwards.
func (u *unusedConns) closeAll() {
	u.conns.Range(func(k, _ any) bool {
		_ = k.(net.Conn).Close()
		u.conns.Delete(k)
		return true
	})
}

// connLimiter caps the connections open at once. Past the cap a new
// connection is answered at once with a plain HTTP/1.1 503 and Retry-After
// and closed, rather than left waiting in the accept queue: a client learns
// to come back instead of hanging. At most maxRejecting such answers are in
// progress; beyond that a connection is closed without one.
type connLimiter struct {
	net.Listener
	max       int64
	open      atomic.Int64
	rejecting atomic.Int64
	rejected  atomic.Int64
	// rejectTLS, when the listener serves TLS, is the configuration used
	// to answer a refused connection in a language its client reads.
	rejectTLS *tls.Config
}

const maxRejecting = 64

// rejectResponse is what a connection past the cap reads.
const rejectResponse = "HTTP/1.1 503 Service Unavailable\r\n" +
	"Content-Type: text/plain; charset=utf-8\r\n" +
	"Retry-After: 1\r\n" +
	"Connection: close\r\n" +
	"Content-Length: 21\r\n" +
	"\r\n" +
	"too many connections\n"

func newConnLimiter(ln net.Listener, max int64) *connLimiter {
	return &connLimiter{Listener: ln, max: max}
}

// Accept returns the next connection within the cap.
func (l *connLimiter) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &limitedConn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		l.rejected.Add(1)
		if l.rejecting.Add(1) > maxRejecting {
			l.rejecting.Add(-1)
			_ = c.Close()
			continue
		}
		go l.reject(c)
	}
}

// reject answers a connection past the cap. It reads what the client sent
// first (briefly), so that closing does not reset the connection before
// the client has read the answer.
func (l *connLimiter) reject(c net.Conn) {
	defer l.rejecting.Add(-1)
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if l.rejectTLS != nil {
		tc := tls.Server(c, l.rejectTLS)
		defer tc.Close()
		// The handshake gets the whole second, not one 50 ms read below.
		if err := tc.Handshake(); err != nil {
			return
		}
		c = tc
	}
	buf := make([]byte, 4096)
	for n := 0; n < len(buf); {
		_ = c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		m, err := c.Read(buf[n:])
		n += m
		if err != nil || bytes.Contains(buf[:n], []byte("\r\n\r\n")) {
			break
		}
	}
	_ = c.SetWriteDeadline(time.Now().Add(time.Second))
	_, _ = io.WriteString(c, rejectResponse)
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
}

// limitedConn gives its slot back when closed.
type limitedConn struct {
	net.Conn
	l    *connLimiter
	once sync.Once
}

func (c *limitedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

// defaultMaxConnections leaves room under the open-files limit for
// Pebble's files (up to 1,000) and the process's own.
func defaultMaxConnections() int64 {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > 1<<30 {
		return 1 << 20
	}
	return max(int64(lim.Cur)-1100, 64)
}

// CloseWrite half-closes the connection when the connection underneath can
// (net/http does so before closing one whose request body it did not read).
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
