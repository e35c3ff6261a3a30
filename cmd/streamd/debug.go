package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"time"

	"github.com/streamd/streamd/actors"
	"github.com/streamd/streamd/persistence"
)

// startDebugServer serves pprof on its own listener, never on the public
// API address, so profiles are only reachable where the operator chose.
//
// It also serves /debug/streamd/syncs: Pebble's sync counters as JSON, so a
// benchmark can compute appends per fsync; and /debug/streamd/actors: how
// many stream actors are in memory, how many passivated streams keep their
// state in memory, and where activations loaded their state from; and
// /debug/streamd/limits: how many requests each bound has refused.
func startDebugServer(addr string, store *persistence.Store, streams *actors.Streams, rejections func() map[string]int64) (*http.Server, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on debug address %s: %w", addr, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	mux.HandleFunc("/debug/streamd/syncs", func(w http.ResponseWriter, _ *http.Request) {
		st := store.Syncs()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"wal_syncs": st.WAL, "all_syncs": st.All, "wal_sync_seconds": st.WALTime.Seconds()})
	})
	mux.HandleFunc("/debug/streamd/actors", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(streams.Stats())
	})
	mux.HandleFunc("/debug/streamd/limits", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(rejections())
	})
	srv := &http.Server{Addr: ln.Addr().String(), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return srv, nil
}
