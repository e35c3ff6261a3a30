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
