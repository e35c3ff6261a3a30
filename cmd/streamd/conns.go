package main

import (
	"net"
	"net/http"
	"sync"
)

// unusedConns tracks connections on which no request has started yet.
// http.Server.Shutdown closes idle keep-alive connections at once but
// waits up to five seconds for connections that never sent a byte (HTTP
// clients often dial a spare connection they never use), which would stall
// every restart. No request is lost by closing them: none was read.
type unusedConns struct {
	mu    sync.Mutex
	conns map[net.Conn]struct{}
}

func newUnusedConns() *unusedConns { return &unusedConns{conns: map[net.Conn]struct{}{}} }

// track is an http.Server ConnState hook.
func (u *unusedConns) track(c net.Conn, state http.ConnState) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if state == http.StateNew {
		u.conns[c] = struct{}{}
	} else {
		delete(u.conns, c)
	}
}

// closeAll closes every tracked connection. Registered with
// http.Server.RegisterOnShutdown, it runs after the listeners are closed,
// so no new connection can arrive afterwards.
func (u *unusedConns) closeAll() {
	u.mu.Lock()
	defer u.mu.Unlock()
	for c := range u.conns {
		_ = c.Close()
		delete(u.conns, c)
	}
}
