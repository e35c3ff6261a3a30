package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// h2cClient speaks HTTP/2 without TLS (prior knowledge) and counts the
// connections it dials, so a test can check that requests were multiplexed.
func h2cClient(dials *atomic.Int32) (*http.Client, *http.Transport) {
	tr := &http.Transport{
		DisableCompression: true,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetUnencryptedHTTP2(true)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}, tr
}

// TestH2CMultiplexesLiveReads: with --h2c (the default) many parked
// long-polls and an SSE response share one HTTP/2 connection, every one of
// them gets the append, and HTTP/1.1 keeps working beside it.
func TestH2CMultiplexesLiveReads(t *testing.T) {
	in := start(t, logFile(t), "--memory", "--long-poll-timeout", "20s")
	in.expect(t, http.StatusCreated, http.MethodPut, "h2", []byte("a"), "Content-Type", "text/plain")

	var dials atomic.Int32
	client, tr := h2cClient(&dials)
	defer tr.CloseIdleConnections()
	url := in.base + "/v1/stream/h2"

	sse, err := client.Get(url + "?live=sse&offset=-1")
	if err != nil {
		t.Fatalf("SSE: %v", err)
	}
	defer sse.Body.Close()
	if sse.ProtoMajor != 2 || sse.StatusCode != http.StatusOK {
		t.Fatalf("SSE answered %s %d; want HTTP/2 200", sse.Proto, sse.StatusCode)
	}
	events := bufio.NewReader(sse.Body)
	// readData returns the payload of the next "data" event, skipping
	// control events.
	readData := func() string {
		t.Helper()
		event := ""
		for {
			line, err := events.ReadString('\n')
			if err != nil {
				t.Fatalf("SSE read: %v", err)
			}
			if rest, ok := strings.CutPrefix(line, "event:"); ok {
				event = strings.TrimSpace(rest)
			}
			if rest, ok := strings.CutPrefix(line, "data:"); ok && event == "data" {
				return strings.TrimSpace(rest)
			}
		}
	}
	if got := readData(); got != "a" {
		t.Fatalf("SSE catch-up data %q; want a", got)
	}

	const readers = 200
	tail := in.expect(t, http.StatusOK, http.MethodHead, "h2", nil).header.Get("Stream-Next-Offset")
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := client.Get(url + "?live=long-poll&offset=" + tail)
			if err != nil {
				errs <- err
				return
			}
			defer res.Body.Close()
			b, err := io.ReadAll(res.Body)
			switch {
			case err != nil:
				errs <- err
			case res.ProtoMajor != 2 || res.StatusCode != http.StatusOK || string(b) != "b":
				errs <- fmt.Errorf("long-poll answered %s %d %q; want HTTP/2 200 \"b\"", res.Proto, res.StatusCode, b)
			}
		}()
	}
	// Appending before every reader is parked is fine (a late one finds the
	// data at once); the point is that they all share the connection.
	time.Sleep(200 * time.Millisecond)
	in.expect(t, http.StatusNoContent, http.MethodPost, "h2", []byte("b"), "Content-Type", "text/plain")
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := readData(); got != "b" {
		t.Errorf("SSE live data %q; want b", got)
	}
	if n := dials.Load(); n != 1 {
		t.Errorf("%d readers over HTTP/2 dialled %d connections; want 1", readers+1, n)
	}
}

// TestH2CCanBeTurnedOff: --h2c=false serves HTTP/1.1 only, so a prior-knowledge
// HTTP/2 client fails instead of being served.
func TestH2CCanBeTurnedOff(t *testing.T) {
	in := start(t, logFile(t), "--memory", "--h2c=false")
	in.expect(t, http.StatusCreated, http.MethodPut, "h1", nil, "Content-Type", "text/plain")
	var dials atomic.Int32
	client, tr := h2cClient(&dials)
	defer tr.CloseIdleConnections()
	client.Timeout = 5 * time.Second
	if res, err := client.Get(in.base + "/v1/stream/h1"); err == nil {
		res.Body.Close()
		t.Fatalf("HTTP/2 request to --h2c=false answered %s %d", res.Proto, res.StatusCode)
	}
}
