package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ackedAppend is an append a client saw acknowledged.
type ackedAppend struct {
	stream, payload string
	next            uint64 // position after it
}

// TestGracefulStopUnderWriteLoad stops streamd (as SIGTERM does) while
// plain and idempotent-producer writers keep appending, then restarts it on
// the same data. Every answer a writer got is true: a 2xx carries its
// Stream-Next-Offset and its append is there, exactly once, right before
// that offset; a refusal is a 503 with Retry-After; anything else is a
// transport error (outcome unknown). run returns nil.
func TestGracefulStopUnderWriteLoad(t *testing.T) {
	for _, proto := range []string{"HTTP/1.1", "h2c"} {
		t.Run(proto, func(t *testing.T) {
			dir := t.TempDir()
			logOut := logFile(t)
			in := start(t, logOut, "--data-dir", dir)
			client := in.client
			if proto == "h2c" {
				var tr *http.Transport
				client, tr = h2cClient(new(atomic.Int32))
				defer tr.CloseIdleConnections()
			}
			const writers = 24
			for w := range writers {
				in.expect(t, http.StatusCreated, http.MethodPut, fmt.Sprintf("w%d", w), nil, "Content-Type", "text/plain")
			}
			var (
				mu       sync.Mutex
				acked    []ackedAppend
				statuses = map[string]int{}
				wg       sync.WaitGroup
			)
			for w := range writers {
				wg.Go(func() {
					stream := fmt.Sprintf("w%d", w)
					for seq := 0; seq < 100000; seq++ {
						payload := fmt.Sprintf("<%s:%d>", stream, seq)
						req, _ := http.NewRequest(http.MethodPost, in.base+"/v1/stream/"+stream, strings.NewReader(payload))
						req.Header.Set("Content-Type", "text/plain")
						if w%2 == 1 {
							req.Header.Set("Producer-Id", "p")
							req.Header.Set("Producer-Epoch", "0")
							req.Header.Set("Producer-Seq", strconv.Itoa(seq))
						}
						res, err := client.Do(req)
						if err != nil {
							mu.Lock()
							statuses["transport error"]++
							mu.Unlock()
							return
						}
						_, _ = io.Copy(io.Discard, res.Body)
						res.Body.Close()
						mu.Lock()
						statuses[strconv.Itoa(res.StatusCode)]++
						mu.Unlock()
						switch {
						case res.StatusCode == http.StatusOK || res.StatusCode == http.StatusNoContent:
							next := res.Header.Get("Stream-Next-Offset")
							if next == "" {
								t.Errorf("%s %s: %d without Stream-Next-Offset", stream, payload, res.StatusCode)
								return
							}
							mu.Lock()
							acked = append(acked, ackedAppend{stream, payload, offsetPos(t, next)})
							mu.Unlock()
						case res.StatusCode == http.StatusServiceUnavailable:
							if res.Header.Get("Retry-After") == "" {
								t.Errorf("%s: 503 without Retry-After", stream)
							}
							return
						default:
							t.Errorf("%s %s: status %d", stream, payload, res.StatusCode)
							return
						}
					}
				})
			}
			time.Sleep(300 * time.Millisecond)
			in.stop(t) // fails the test if run returns an error
			wg.Wait()
			t.Logf("answers while stopping: %v; %d acknowledged", statuses, len(acked))

			again := start(t, logOut, "--data-dir", dir)
			content := map[string][]byte{}
			for w := range writers {
				stream := fmt.Sprintf("w%d", w)
				content[stream] = again.expect(t, http.StatusOK, http.MethodGet, stream+"?offset=-1", nil).body
			}
			for _, a := range acked {
				data := content[a.stream]
				if n := bytes.Count(data, []byte(a.payload)); n != 1 {
					t.Errorf("acknowledged %s is in %s %d times", a.payload, a.stream, n)
					continue
				}
				start := a.next - uint64(len(a.payload))
				if a.next > uint64(len(data)) || string(data[start:a.next]) != a.payload {
					t.Errorf("acknowledged %s is not right before offset %d in %s", a.payload, a.next, a.stream)
				}
			}
		})
	}
}

func offsetPos(t *testing.T, token string) uint64 {
	t.Helper()
	_, pos, ok := strings.Cut(token, "_")
	n, err := strconv.ParseUint(pos, 10, 64)
	if !ok || err != nil {
		t.Fatalf("unexpected offset %q", token)
	}
	return n
}

// TestStopServingAnswersLateRequests: a request still running when the
// shutdown timeout passes sees its context cancelled and its answer
// reaches the client; one that ignores its context is cut off a second
// later, so stopping is bounded either way.
func TestStopServingAnswersLateRequests(t *testing.T) {
	baseCtx, cancelBase := context.WithCancel(context.Background())
	defer cancelBase()
	started := make(chan struct{}, 2)
	mux := http.NewServeMux()
	mux.HandleFunc("/polite", func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-r.Context().Done()
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	stuck := make(chan struct{})
	defer close(stuck)
	mux.HandleFunc("/stuck", func(w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		<-stuck
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: mux, BaseContext: func(net.Listener) context.Context { return baseCtx }}
	go func() { _ = srv.Serve(ln) }()
	base := "http://" + ln.Addr().String()
	type result struct {
		status int
		err    error
	}
	get := func(path string) <-chan result {
		ch := make(chan result, 1)
		go func() {
			res, err := http.Get(base + path)
			if err != nil {
				ch <- result{err: err}
				return
			}
			res.Body.Close()
			ch <- result{status: res.StatusCode}
		}()
		return ch
	}
	polite, stuckRes := get("/polite"), get("/stuck")
	<-started
	<-started
	draining := make(chan struct{})
	begin := time.Now()
	stopServing(srv, draining, cancelBase, 200*time.Millisecond, slog.New(slog.DiscardHandler))
	took := time.Since(begin)
	select {
	case <-draining:
	default:
		t.Error("draining was not closed")
	}
	if r := <-polite; r.err != nil || r.status != http.StatusServiceUnavailable {
		t.Errorf("request answering at its cancellation: %+v; want 503", r)
	}
	if r := <-stuckRes; r.err == nil {
		t.Errorf("request stuck past the shutdown: %+v; want its connection cut", r)
	}
	if took < 200*time.Millisecond || took > 3*time.Second {
		t.Errorf("stopServing took %v; want the timeout plus at most a second or so", took)
	}
	if _, err := http.Get(base + "/polite"); err == nil {
		t.Error("a new request was served after stopServing")
	}
}

// TestConnectionLimit: past --max-connections a new connection is
// answered 503 with Retry-After at once and closed; when a connection
// closes, its slot is free again.
func TestConnectionLimit(t *testing.T) {
	// No request before the held connections: a keep-alive connection the
	// client has closed may still count on the server for a moment.
	in := start(t, logFile(t), "--memory", "--max-connections", "3")
	addr := strings.TrimPrefix(in.base, "http://")
	var held []net.Conn
	for range 3 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, c)
	}
	time.Sleep(100 * time.Millisecond) // let the server accept them
	over, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(over, "GET /v1/stream/none?offset=-1 HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	_ = over.SetReadDeadline(time.Now().Add(5 * time.Second))
	res, err := http.ReadResponse(bufio.NewReader(over), nil)
	if err != nil {
		t.Fatalf("connection past the limit: %v; want a 503", err)
	}
	res.Body.Close()
	over.Close()
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("connection past the limit: %d, Retry-After %q; want 503 with Retry-After", res.StatusCode, res.Header.Get("Retry-After"))
	}
	held[0].Close()
	held = held[1:]
	deadline := time.Now().Add(5 * time.Second)
	for {
		res, err := in.client.Get(in.base + "/v1/stream/none?offset=-1")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusNotFound { // served, not refused
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no request served after a connection was freed: %v %v", res, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, c := range held {
		c.Close()
	}
}
