package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// process is streamd run as a separate process, so that its goroutines
// and memory can be measured apart from the test's clients.
type process struct {
	cmd        *exec.Cmd
	base, dbg  string
	exited     chan struct{}
	logPath    string
	httpClient *http.Client
}

// startProcess builds streamd and starts it with args on free loopback
// ports, with its debug endpoint on.
func startProcess(t *testing.T, args ...string) *process {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "streamd")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	p := &process{logPath: filepath.Join(dir, "streamd.log"), exited: make(chan struct{}),
		httpClient: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}}
	logf, err := os.Create(p.logPath)
	if err != nil {
		t.Fatal(err)
	}
	args = append([]string{"--addr", "127.0.0.1:0", "--debug-addr", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data")}, args...)
	p.cmd = exec.Command(bin, args...)
	p.cmd.Stdout, p.cmd.Stderr = logf, logf
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logf.Close()
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
		case <-time.After(20 * time.Second):
			_ = p.cmd.Process.Kill()
			t.Error("streamd did not stop after SIGTERM")
		}
		if t.Failed() {
			b, _ := os.ReadFile(p.logPath)
			t.Logf("streamd log:\n%s", b)
		}
	})
	listening := regexp.MustCompile(`msg="streamd listening" addr=(http://[0-9.:]+)/v1/stream/`)
	debugging := regexp.MustCompile(`msg="pprof listening" addr=(http://[0-9.:]+)/debug/pprof/`)
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) && (p.base == "" || p.dbg == "") {
		b, _ := os.ReadFile(p.logPath)
		if m := listening.FindSubmatch(b); m != nil {
			p.base = string(m[1])
		}
		if m := debugging.FindSubmatch(b); m != nil {
			p.dbg = string(m[1])
		}
		time.Sleep(20 * time.Millisecond)
	}
	if p.base == "" || p.dbg == "" {
		b, _ := os.ReadFile(p.logPath)
		t.Fatalf("streamd did not start:\n%s", b)
	}
	return p
}

// goroutines is the server's goroutine count.
func (p *process) goroutines(t *testing.T) int {
	t.Helper()
	res, err := p.httpClient.Get(p.dbg + "/debug/pprof/goroutine?debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	line, _ := bufio.NewReader(res.Body).ReadString('\n')
	n, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "goroutine profile: total")))
	if err != nil {
		t.Fatalf("goroutine profile header %q", line)
	}
	return n
}

// rss is the server's resident memory in bytes.
func (p *process) rss(t *testing.T) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid))
	if err != nil {
		t.Skipf("cannot read the server's memory: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// heapAfterGC is the server's live heap (HeapAlloc) right after a garbage
// collection, which the heap profile endpoint runs when asked.
func (p *process) heapAfterGC(t *testing.T) int64 {
	t.Helper()
	res, err := p.httpClient.Get(p.dbg + "/debug/pprof/heap?gc=1&debug=1")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# HeapAlloc = "); ok {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil {
				t.Fatalf("HeapAlloc %q", v)
			}
			return n
		}
	}
	t.Fatal("no HeapAlloc in the heap profile")
	return 0
}

func (p *process) rejections(t *testing.T) map[string]int64 {
	t.Helper()
	res, err := p.httpClient.Get(p.dbg + "/debug/streamd/limits")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]int64
	if err := json.NewDecoder(res.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func (p *process) send(ctx context.Context, method, path string, body []byte, hdr ...string) (int, http.Header, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, p.base+"/v1/stream/"+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, nil, err
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := p.httpClient.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b, err
}

func (p *process) expect(t *testing.T, status int, method, path string, body []byte, hdr ...string) http.Header {
	t.Helper()
	code, h, b, err := p.send(context.Background(), method, path, body, hdr...)
	if err != nil || code != status {
		t.Fatalf("%s %s: %d %q %v; want %d", method, path, code, b, err, status)
	}
	return h
}

// TestOverload runs streamd with small bounds and loads it past each:
// more live readers than allowed, uploads that trickle, a catch-up reader
// that stops reading, and appends to one stream faster than its commits
// take them. Past a bound the server answers 429 or 503 with Retry-After
// (counted at /debug/streamd/limits), or cuts a stuck client off; a
// well-behaved client is served throughout; and after each round the
// server's goroutines and memory come back to their level.
func TestOverload(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and loads a real streamd for tens of seconds")
	}
	const (
		perStream, total, pending = 20, 30, 8
	)
	p := startProcess(t,
		"--max-live-readers", strconv.Itoa(total), "--max-live-readers-per-stream", strconv.Itoa(perStream),
		"--max-pending-appends", strconv.Itoa(pending), "--read-timeout", "1s", "--write-timeout", "1s",
		"--max-append-bytes", strconv.Itoa(32<<20), "--max-body-memory", strconv.Itoa(48<<20),
		"--max-chunk-bytes", strconv.Itoa(32<<20), "--long-poll-timeout", "30s", "--max-connections", "1000")
	text := []string{"Content-Type", "text/plain"}
	for _, s := range []string{"live-a", "live-b", "trickle", "writes", "good"} {
		p.expect(t, http.StatusCreated, http.MethodPut, s, nil, text...)
	}
	big := bytes.Repeat([]byte("z"), 32<<20) // more than loopback's socket buffers hold
	p.expect(t, http.StatusCreated, http.MethodPut, "big", big, "Content-Type", "application/octet-stream")

	// A well-behaved client appends and reads its own stream all along.
	stopGood := make(chan struct{})
	goodDone := make(chan error, 1)
	var goodOps int
	go func() {
		defer close(goodDone)
		for i := 0; ; i++ {
			select {
			case <-stopGood:
				return
			case <-time.After(20 * time.Millisecond):
			}
			begin := time.Now()
			code, _, _, err := p.send(context.Background(), http.MethodPost, "good", []byte("g"), text...)
			if err != nil || code != http.StatusNoContent {
				goodDone <- fmt.Errorf("well-behaved append %d: %d %v", i, code, err)
				return
			}
			code, _, _, err = p.send(context.Background(), http.MethodGet, "good?offset=-1", nil)
			if err != nil || code != http.StatusOK {
				goodDone <- fmt.Errorf("well-behaved read %d: %d %v", i, code, err)
				return
			}
			if d := time.Since(begin); d > 3*time.Second {
				goodDone <- fmt.Errorf("well-behaved append and read %d took %v", i, d)
				return
			}
			goodOps++
		}
	}()

	round := func(r int) {
		t.Run(fmt.Sprintf("round %d", r), func(t *testing.T) {
			overloadLiveReaders(t, p, perStream, total)
			overloadTrickle(t, p)
			overloadStuckReader(t, p, len(big))
			overloadAppends(t, p, r)
		})
	}
	type level struct{ goroutines, heap, rss int64 }
	settle := func() level {
		// Idle keep-alive connections hold server goroutines; close them.
		p.httpClient.Transport.(*http.Transport).CloseIdleConnections()
		time.Sleep(2 * time.Second) // cut-off connections close, actors settle
		return level{int64(p.goroutines(t)), p.heapAfterGC(t), p.rss(t)}
	}
	// Two rounds warm pools, buffers, caches and the heap's size up; two
	// more must not grow anything. RSS follows the garbage collector's heap
	// goal, which each round's 32 MiB response moves, so it gets more slack
	// than the live heap after a collection.
	round(0)
	round(1)
	l0 := settle()
	round(2)
	round(3)
	l1 := settle()
	close(stopGood)
	if err := <-goodDone; err != nil {
		t.Error(err)
	}
	t.Logf("after rounds 1 and 3: goroutines %d -> %d, heap after GC %d -> %d MiB, RSS %d -> %d MiB; %d well-behaved append+read pairs; rejections %v",
		l0.goroutines, l1.goroutines, l0.heap>>20, l1.heap>>20, l0.rss>>20, l1.rss>>20, goodOps, p.rejections(t))
	if l1.goroutines > l0.goroutines+10 {
		t.Errorf("server goroutines grew from %d to %d over two rounds of overload", l0.goroutines, l1.goroutines)
	}
	if l1.heap > l0.heap+16<<20 {
		t.Errorf("server heap after GC grew from %d to %d MiB over two rounds of overload", l0.heap>>20, l1.heap>>20)
	}
	if l1.rss > l0.rss+64<<20 {
		t.Errorf("server RSS grew from %d to %d MiB over two rounds of overload", l0.rss>>20, l1.rss>>20)
	}
}

// overloadLiveReaders parks more long-polls and SSE readers than allowed:
// past the stream's bound they get 429, past the server's 503, both with
// Retry-After, and those admitted stay parked.
func overloadLiveReaders(t *testing.T, p *process, perStream, total int) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	open := func(stream string, n int) {
		for i := range n {
			wg.Go(func() {
				q := "?offset=now&live=long-poll"
				if i%4 == 0 {
					q = "?offset=now&live=sse"
				}
				code, h, _, err := p.send(ctx, http.MethodGet, stream+q, nil)
				if err != nil {
					return // still parked when the round ended
				}
				if h.Get("Retry-After") == "" {
					t.Errorf("%s%s: %d without Retry-After", stream, q, code)
				}
				mu.Lock()
				codes[code]++
				mu.Unlock()
			})
		}
	}
	snapshot := func() map[int]int {
		mu.Lock()
		defer mu.Unlock()
		got := map[int]int{}
		for k, v := range codes {
			got[k] = v
		}
		return got
	}
	// Waits for answers rather than sleeping: on a loaded machine they
	// take their time, and live-b must start only once live-a's readers
	// hold their slots (their 10 refusals show the stream's bound is full).
	waitFor := func(code, n int) {
		for deadline := time.Now().Add(20 * time.Second); snapshot()[code] < n && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
	}
	open("live-a", perStream+10)
	waitFor(http.StatusTooManyRequests, 10)
	open("live-b", total-perStream+10)
	waitFor(http.StatusServiceUnavailable, 10)
	time.Sleep(100 * time.Millisecond) // a late extra answer would show here
	got := snapshot()
	if got[http.StatusTooManyRequests] != 10 || got[http.StatusServiceUnavailable] != 10 || len(got) != 2 {
		t.Errorf("answers to readers past the bounds = %v; want 10 × 429 (per stream) and 10 × 503 (server)", got)
	}
	cancel()
	wg.Wait()
}

// overloadTrickle sends uploads that never finish: each is cut off with
// 408 after the read timeout, holding nothing afterwards.
func overloadTrickle(t *testing.T, p *process) {
	addr := strings.TrimPrefix(p.base, "http://")
	var wg sync.WaitGroup
	for i := range 5 {
		wg.Go(func() {
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			fmt.Fprintf(c, "POST /v1/stream/trickle HTTP/1.1\r\nHost: %s\r\nContent-Type: text/plain\r\nContent-Length: 100000\r\n\r\n", addr)
			answer := make(chan *http.Response, 1)
			go func() {
				res, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err == nil {
					res.Body.Close()
				}
				answer <- res
			}()
			tick := time.NewTicker(100 * time.Millisecond)
			defer tick.Stop()
			deadline := time.After(5 * time.Second)
			for {
				select {
				case res := <-answer:
					if res == nil || res.StatusCode != http.StatusRequestTimeout {
						t.Errorf("trickling upload %d: %v; want 408", i, res)
					}
					return
				case <-tick.C:
					_, _ = c.Write([]byte("t"))
				case <-deadline:
					t.Errorf("trickling upload %d still open after 5s", i)
					return
				}
			}
		})
	}
	wg.Wait()
	code, _, body, err := p.send(context.Background(), http.MethodGet, "trickle?offset=-1", nil)
	if err != nil || code != http.StatusOK || len(body) != 0 {
		t.Errorf("stream after cut-off uploads: %d %q %v; want it empty", code, body, err)
	}
}

// overloadStuckReader asks for a catch-up chunk larger than the socket
// buffers and never reads it: the server cuts the connection off after
// its write timeout.
func overloadStuckReader(t *testing.T, p *process, size int) {
	addr := strings.TrimPrefix(p.base, "http://")
	// A small receive buffer, set before connecting so the kernel cannot
	// grow it: loopback may otherwise buffer the whole response.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16<<10) })
		return errors.Join(err, serr)
	}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "GET /v1/stream/big?offset=-1 HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
	// Wait for the answer to begin, then stop reading: write timeout 1s,
	// so cut off after the pause.
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatalf("waiting for the answer to begin: %v", err)
	}
	time.Sleep(2500 * time.Millisecond)
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, _ := io.Copy(io.Discard, c)
	if n >= int64(size) {
		t.Errorf("a reader that stopped reading still got all %d bytes; want it cut off", n)
	}
}

// overloadAppends sends many concurrent appends to one stream: past
// --max-pending-appends they get 429 with Retry-After; every acknowledged
// append is stored exactly once.
func overloadAppends(t *testing.T, p *process, r int) {
	const writers, each = 64, 10
	var mu sync.Mutex
	codes := map[int]int{}
	var acked []string
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				payload := fmt.Sprintf("<%d.%d.%d>", r, w, i)
				code, h, _, err := p.send(context.Background(), http.MethodPost, "writes", []byte(payload), "Content-Type", "text/plain")
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				mu.Lock()
				codes[code]++
				if code == http.StatusNoContent {
					acked = append(acked, payload)
				}
				mu.Unlock()
				if code == http.StatusTooManyRequests && h.Get("Retry-After") == "" {
					t.Errorf("429 without Retry-After")
				}
			}
		})
	}
	wg.Wait()
	if codes[http.StatusTooManyRequests] == 0 || codes[http.StatusNoContent] == 0 || len(codes) != 2 {
		t.Errorf("answers to %d concurrent writers = %v; want both 204 and 429, nothing else", writers, codes)
	}
	_, _, data, err := p.send(context.Background(), http.MethodGet, "writes?offset=-1", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range acked {
		if n := bytes.Count(data, []byte(a)); n != 1 {
			t.Errorf("acknowledged %s stored %d times", a, n)
		}
	}
	t.Logf("appends: %v", codes)
}
