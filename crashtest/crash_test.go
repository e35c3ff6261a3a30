// Package crashtest stops a real streamd under concurrent load, alternately
// with SIGKILL and with SIGTERM (a graceful stop, which must end with exit
// status 0 in time), and checks that every acknowledged append, and every
// byte a reader saw, survives; and (fork_test.go) that forks read exactly
// what they inherited and were given, and that deletes of forked streams
// and the collections that follow leave nothing half done.
package crashtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// kind is how a stream is written.
type kind int

const (
	kPlain kind = iota
	kSeq
	kProdBin
	kProdJSON
	kJSON // application/json without producer headers (lifecycle streams)
)

// entry is one append: its unique id and, if acknowledged, its offset.
type entry struct {
	id      string
	body    []byte
	acked   bool
	next    string // acknowledged Stream-Next-Offset ("" for a deduplicated retry)
	checked bool   // offset already verified
}

// stream is the client-side record of one stream across all cycles.
type stream struct {
	name    string
	kind    kind
	mu      sync.Mutex
	entries []*entry // in send order; one writer per stream
	maybe   map[string]bool
	prev    [][]byte // elements verified after the previous restart
	// idempotent producer state
	epoch, seq int
	pending    *entry // last request without an answer
	seqN       int    // Stream-Seq counter
	// producer is the Producer-Id its producer appends carry; "" is
	// "crash-" + name. Forks of a producer stream reuse their source's.
	producer string
	// node is the stream's place among the forks (fork_test.go); nil for
	// streams that are neither forked by the test nor forks.
	node *fnode
}

// observation is what one reader saw of s from offset -1: the bytes (or,
// for JSON streams, the messages) and the offset next it was told comes
// after the first at of them. A reader may hold data past next that it saw
// without the offset that follows it (an SSE data event cut off by the kill).
type observation struct {
	s      *stream
	seen   []byte            // bytes from offset -1 (binary streams)
	msgs   []json.RawMessage // messages from offset -1 (JSON streams)
	next   string
	at     int  // bytes (messages) of seen (msgs) before next
	sse    bool // made by an SSE reader
	closed bool // the reader was told the stream is closed at next
}

type harness struct {
	t          *testing.T
	bin, data  string
	base       string
	cmd        *exec.Cmd
	client     *http.Client
	streams    []*stream
	obsMu      sync.Mutex
	obs        []observation
	violations int
	verified   int
	logPath    string
	exited     chan struct{}
	retried    map[int]int // retry status -> count
	observed   int         // reader observations checked
	sseObs     []observation
	sseChecked int // SSE observations checked
	lives      []*life
	trigger    chan time.Duration // a request about to be sent asks for the stop within this
	closes     int                // checks of an acknowledged (or observed) close
	deletes    int                // checks of an acknowledged (or observed) delete
	ttlChecks  int                // HEAD checks of TTL / Expires-At streams
	renewals   int                // HEAD checks of read-renewed streams (renew_test.go)
	readSaved  int                // of which found it alive only thanks to a read
	renewStop  chan struct{}      // closed after the kill: read-renewed streams' readers stop
	renewWG    sync.WaitGroup     // those readers
	rng        *rand.Rand         // used by the test goroutine only
	cycle      int
	downtime   *life          // short-TTL stream to let expire while streamd is down
	outcomes   map[string]int // how lifecycle uncertainties resolved, for the log
	downFrom   time.Time      // when streamd was last killed, or exited after SIGTERM
	downTo     time.Time      // when it was last started again

	// Forks (fork_test.go).
	fnodes        []*fnode           // every fork, fork source and refused fork, in creation order
	trees         []*ftree           // the groups they were created in
	bases         map[*stream]*fnode // the load's streams and closed lifecycle streams, as fork sources
	forkObs       []observation      // observations of forks, with their own budget
	probes        int                // paths named by probes that must never be created
	forksVerified int                // checks after a restart of a live fork's content
	forkDeletes   int                // checks after a restart of a deleted fork or source
	collections   int                // soft-deleted streams seen collected
	collectWait   time.Duration      // longest wait after a restart for a collection

	// Graceful stops (SIGTERM cycles).
	exitStatus func() error  // how the running streamd exited; call after exited is closed
	sigterms   int           // cycles ended with SIGTERM
	termCycle  atomic.Bool   // the running cycle ends with SIGTERM
	termSent   atomic.Bool   // SIGTERM sent: streamd is draining
	stopMu     sync.Mutex    // guards the counts below
	termAll    stopCounts    // appends answered in SIGTERM cycles
	termAfter  stopCounts    // of which answered after the SIGTERM
	drain      drainCounts   // live reads ended by a graceful stop
	slowestEnd time.Duration // longest time from SIGTERM to exit
}

// stopCounts are how appends were answered.
type stopCounts struct {
	ok, unavailable, other5xx, transport, other int
	noRetryAfter                                int // 503 without Retry-After
}

func (c stopCounts) String() string {
	return fmt.Sprintf("2xx=%d 503=%d transport_error=%d other_5xx=%d other=%d (503 without Retry-After: %d)",
		c.ok, c.unavailable, c.transport, c.other5xx, c.other, c.noRetryAfter)
}

// drainCounts are how live reads ended after a SIGTERM.
type drainCounts struct {
	longPoll204, longPoll200, longPollOther, sseClean, sseCut, sseRefused int
}

// Graceful stops: streamd runs with this --shutdown-timeout (set through
// its environment, STREAMD_SHUTDOWN_TIMEOUT, which a binary without the
// flag ignores), and must exit with status 0 within it plus exitMargin of
// the SIGTERM. Every other SIGTERM cycle (cycles 3, 7, 11, ...) runs with
// cutShutdownTimeout instead, so that writes still in progress at the
// SIGTERM are cut off and answered 503: those answers must not lie either.
const (
	shutdownTimeout    = 5 * time.Second
	cutShutdownTimeout = time.Millisecond
	exitMargin         = 5 * time.Second
)

func (h *harness) violate(format string, args ...any) {
	h.obsMu.Lock()
	h.violations++
	h.obsMu.Unlock()
	h.t.Errorf("VIOLATION: "+format, args...)
}

func TestCrash(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("STREAMD_CRASH_CYCLES"))
	if n <= 0 {
		t.Skip("set STREAMD_CRASH_CYCLES=N to run the streamd crash test")
	}
	dir := t.TempDir()
	// STREAMD_CRASH_BIN runs a prebuilt binary instead, e.g. one with a
	// guarantee deliberately broken, to see that the test notices.
	bin := os.Getenv("STREAMD_CRASH_BIN")
	if bin == "" {
		bin = filepath.Join(dir, "streamd")
		build := exec.Command("go", "build", "-o", bin, "github.com/streamd/streamd/cmd/streamd")
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	}
	h := &harness{t: t, bin: bin, data: filepath.Join(dir, "data"), logPath: filepath.Join(dir, "streamd.log"),
		client: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableCompression: true, MaxIdleConnsPerHost: 64}}}
	for i, k := range []kind{kPlain, kPlain, kSeq, kProdBin, kProdJSON} {
		h.streams = append(h.streams, &stream{name: fmt.Sprintf("crash/s%d", i), kind: k, maybe: map[string]bool{}})
	}
	h.retried = map[int]int{}
	h.outcomes = map[string]int{}
	h.bases = map[*stream]*fnode{}
	h.trigger = make(chan time.Duration, 1)
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	h.rng = rng
	t.Cleanup(h.kill)
	cycles := 0
	for c := 0; c < n; c++ {
		cycles++
		h.cycle = c
		h.start()
		if c > 0 {
			h.verifyRenewals() // before this cycle's reads renew them
		}
		h.startRenewals(c) // its reads run from here to the kill
		if c > 0 {
			h.verify()
		}
		h.create()
		// Even cycles end with SIGKILL, odd ones with SIGTERM. Verification
		// after the restart is the same for both.
		sigterm := c%2 == 1
		if sigterm {
			h.sigterms++
		}
		h.load(c, time.Duration(300+rng.Intn(1200))*time.Millisecond, sigterm)
		h.waitForDowntimeExpiry()
		if t.Failed() && h.violations == 0 {
			break
		}
	}
	h.start()
	h.verifyRenewals()
	h.verify()
	h.kill()
	line := fmt.Sprintf("crash test: cycles=%d sigterm_cycles=%d appends_verified=%d sse_observations=%d closes_verified=%d deletes_verified=%d ttl_checks=%d renewals_checked=%d saved_by_read=%d forks_verified=%d fork_deletes_verified=%d collections_verified=%d violations=%d",
		cycles, h.sigterms, h.verified, h.sseChecked, h.closes, h.deletes, h.ttlChecks, h.renewals, h.readSaved,
		h.forksVerified, h.forkDeletes, h.collections, h.violations)
	h.stopMu.Lock()
	term := fmt.Sprintf("crash test: SIGTERM cycles: appends %v; answered after the SIGTERM: %v; live reads ended by the drain: long-poll 204=%d 200=%d other=%d, SSE clean=%d cut off=%d refused=%d; slowest exit %v",
		h.termAll, h.termAfter, h.drain.longPoll204, h.drain.longPoll200, h.drain.longPollOther, h.drain.sseClean, h.drain.sseCut, h.drain.sseRefused, h.slowestEnd.Round(time.Millisecond))
	h.stopMu.Unlock()
	t.Logf("%s (producer retries after restart: %d got 200, %d got 204; reader observations checked: %d; longest wait for a collection after a restart: %v; lifecycle outcomes: %v)",
		line, h.retried[200], h.retried[204], h.observed, h.collectWait.Round(time.Millisecond), h.outcomes)
	fmt.Println(term)
	fmt.Println(line)
	if h.violations > 0 {
		t.Fail()
	}
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// start runs streamd on a free loopback port and waits until it answers.
func (h *harness) start() {
	t := h.t
	for attempt := 0; attempt < 5; attempt++ {
		addr := freePort(t)
		logf, err := os.OpenFile(h.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		h.downTo = time.Now()
		args := []string{"--addr", addr, "--data-dir", h.data, "--long-poll-timeout", "2s"}
		if h.cycle/2%2 == 1 {
			// Cycles 2, 3, 6, 7, ...: idle actors passivate (and reactivate
			// from the state they left) all through the load, racing
			// requests; half of these cycles end with SIGKILL, half with
			// SIGTERM.
			args = append(args, "--actor-idle-timeout", "100ms")
		}
		cmd := exec.Command(h.bin, args...)
		timeout := shutdownTimeout
		if h.cycle%4 == 3 {
			timeout = cutShutdownTimeout
		}
		cmd.Env = append(os.Environ(), "STREAMD_SHUTDOWN_TIMEOUT="+timeout.String())
		cmd.Stdout, cmd.Stderr = logf, logf
		if err := cmd.Start(); err != nil {
			logf.Close()
			t.Fatal(err)
		}
		logf.Close()
		h.cmd, h.base = cmd, "http://"+addr
		exited := make(chan struct{})
		h.exited = exited
		var waitErr error
		h.exitStatus = func() error { return waitErr }
		go func() { waitErr = cmd.Wait(); close(exited) }()
		deadline := time.Now().Add(20 * time.Second)
		for time.Now().Before(deadline) {
			select {
			case <-exited:
				deadline = time.Time{}
				continue
			default:
			}
			resp, err := h.client.Get(h.base + "/v1/stream/crash/ready-probe")
			if err == nil {
				resp.Body.Close()
				h.exited = exited
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
		h.kill()
	}
	log, _ := os.ReadFile(h.logPath)
	t.Fatalf("streamd did not become ready; log:\n%s", log)
}

// kill SIGKILLs the streamd process this test started, by its PID.
func (h *harness) kill() {
	if h.cmd == nil {
		return
	}
	_ = syscall.Kill(h.cmd.Process.Pid, syscall.SIGKILL)
	h.downFrom = time.Now()
	select {
	case <-h.exited:
	case <-time.After(10 * time.Second):
		h.t.Errorf("streamd pid %d did not exit after SIGKILL", h.cmd.Process.Pid)
	}
	h.cmd = nil
	h.client.CloseIdleConnections()
}

// term stops the streamd process this test started gracefully: SIGTERM by
// its PID, while the load goes on, then a wait for the process to exit,
// which it must do with status 0 within shutdownTimeout plus exitMargin. One
// that does not is SIGKILLed, so the test can go on.
func (h *harness) term() {
	if h.cmd == nil {
		return
	}
	pid := h.cmd.Process.Pid
	h.termSent.Store(true)
	sent := time.Now()
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		h.t.Errorf("SIGTERM to streamd pid %d: %v", pid, err)
	}
	select {
	case <-h.exited:
	case <-time.After(shutdownTimeout + exitMargin):
		h.violate("streamd pid %d did not exit within %v of SIGTERM (--shutdown-timeout %v); log tail:\n%s",
			pid, shutdownTimeout+exitMargin, shutdownTimeout, h.logTail(20))
		h.kill()
		return
	}
	// Nothing happens on the server after this (renewals are bounded by it).
	h.downFrom = time.Now()
	took := h.downFrom.Sub(sent)
	h.stopMu.Lock()
	h.slowestEnd = max(h.slowestEnd, took)
	h.stopMu.Unlock()
	if err := h.exitStatus(); err != nil {
		h.violate("streamd pid %d exited %v after SIGTERM (%v), want status 0; log tail:\n%s",
			pid, err, took.Round(time.Millisecond), h.logTail(20))
	}
	h.cmd = nil
	h.client.CloseIdleConnections()
}

// logTail returns the last n lines of streamd's log.
func (h *harness) logTail(n int) string {
	b, _ := os.ReadFile(h.logPath)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}

// countAppend records, in a SIGTERM cycle, how an append was answered.
func (h *harness) countAppend(code int, hdr http.Header) {
	if !h.termCycle.Load() {
		return
	}
	after := h.termSent.Load()
	h.stopMu.Lock()
	defer h.stopMu.Unlock()
	for _, c := range []*stopCounts{&h.termAll, &h.termAfter} {
		if c == &h.termAfter && !after {
			break
		}
		switch {
		case code == 0:
			c.transport++
		case code >= 200 && code < 300:
			c.ok++
		case code == http.StatusServiceUnavailable:
			c.unavailable++
			if hdr.Get("Retry-After") == "" {
				c.noRetryAfter++
			}
		case code >= 500:
			c.other5xx++
		default:
			c.other++
		}
	}
}

// drained counts, after a SIGTERM, a live read that the drain ended.
func (h *harness) drained(f func(*drainCounts)) {
	if !h.termSent.Load() {
		return
	}
	h.stopMu.Lock()
	f(&h.drain)
	h.stopMu.Unlock()
}

func (h *harness) url(s *stream) string { return h.base + "/v1/stream/" + s.name }

// producerID is the Producer-Id of s's producer appends.
func (s *stream) producerID() string {
	if s.producer != "" {
		return s.producer
	}
	return "crash-" + s.name
}

func (s *stream) isJSON() bool { return s.kind == kProdJSON || s.kind == kJSON }

func (s *stream) ctype() string {
	if s.isJSON() {
		return "application/json"
	}
	return "application/octet-stream"
}

// create makes every stream (idempotent PUT).
func (h *harness) create() {
	for _, s := range h.streams {
		req, _ := http.NewRequest(http.MethodPut, h.url(s), nil)
		req.Header.Set("Content-Type", s.ctype())
		resp, err := h.client.Do(req)
		if err != nil {
			h.t.Fatalf("create %s: %v", s.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 && resp.StatusCode != 201 {
			h.t.Fatalf("create %s: status %d", s.name, resp.StatusCode)
		}
	}
}

func (s *stream) newEntry(cycle int, rng *rand.Rand) *entry {
	id := fmt.Sprintf("%s-c%d-n%d-%08x", s.name, cycle, len(s.entries), rng.Uint32())
	e := &entry{id: id}
	if s.isJSON() {
		e.body, _ = json.Marshal(map[string]any{"id": id, "pad": strings.Repeat("x", rng.Intn(64))})
	} else {
		e.body = []byte(id + "|" + strings.Repeat("y", rng.Intn(200)) + "\n")
	}
	return e
}

// send makes one request to s (query appended to its URL) and drains the
// answer; it returns the status (0 on transport error) and the headers.
func (h *harness) send(method string, s *stream, query string, body []byte, hdr http.Header) (int, http.Header) {
	req, _ := http.NewRequest(method, h.url(s)+query, bytes.NewReader(body))
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return 0, nil
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

// post sends one append; it returns the status (0 on transport error) and Stream-Next-Offset.
func (h *harness) post(s *stream, e *entry, seqHdr string) (int, string) {
	hdr := http.Header{}
	hdr.Set("Content-Type", s.ctype())
	if seqHdr != "" {
		hdr.Set("Stream-Seq", seqHdr)
	}
	if s.kind == kProdBin || s.kind == kProdJSON {
		hdr.Set("Producer-Id", s.producerID())
		hdr.Set("Producer-Epoch", strconv.Itoa(s.epoch))
		hdr.Set("Producer-Seq", strconv.Itoa(s.seq))
	}
	code, rh := h.send(http.MethodPost, s, "", e.body, hdr)
	h.countAppend(code, rh)
	return code, rh.Get("Stream-Next-Offset")
}

// writer appends sequentially to s until stop closes or a request fails.
func (h *harness) writer(s *stream, cycle int, seed int64, stop <-chan struct{}) {
	rng := rand.New(rand.NewSource(seed))
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < 100000; i++ {
		select {
		case <-stop:
			return
		default:
		}
		if !h.appendOne(s, cycle, rng) {
			return
		}
	}
}

// appendOne sends s, as its only writer, one new append the way its kind
// is written (plain, Stream-Seq or idempotent producer) and records the
// outcome; it reports whether the append was acknowledged. No answer leaves
// the entry maybe-present (and a producer's request pending, to retry after
// the restart); any other failure is a violation.
func (h *harness) appendOne(s *stream, cycle int, rng *rand.Rand) bool {
	e := s.newEntry(cycle, rng)
	s.entries = append(s.entries, e)
	seqHdr := ""
	if s.kind == kSeq {
		s.seqN++
		seqHdr = fmt.Sprintf("%012d", s.seqN)
	}
	code, next := h.post(s, e, seqHdr)
	switch {
	case code == 0 || code >= 500:
		s.maybe[e.id] = true
		if s.kind == kProdBin || s.kind == kProdJSON {
			s.pending = e
		}
		return false
	case code == 200 || code == 204:
		if (s.kind == kProdBin || s.kind == kProdJSON) && code != 200 {
			h.violate("%s: fresh producer seq %d got %d, want 200", s.name, s.seq, code)
		}
		if next == "" {
			h.violate("%s: %d without Stream-Next-Offset", s.name, code)
		}
		e.acked, e.next = true, next
		s.seq++
		return true
	default:
		h.violate("%s: append got status %d", s.name, code)
		return false
	}
}

// retryPending resends a producer's last unanswered request after restart.
func (h *harness) retryPending(s *stream) {
	e := s.pending
	if e == nil {
		return
	}
	s.pending = nil
	code, next := h.post(s, e, "")
	h.retried[code]++
	switch code {
	case 200:
		e.acked, e.next = true, next
	case 204:
		e.acked = true // deduplicated: it must already be there, exactly once
	default:
		h.violate("%s: retry of producer seq %d after restart got %d, want 200 or 204", s.name, s.seq, code)
		return
	}
	delete(s.maybe, e.id)
	s.seq++
}

// getChunk reads one response; it returns the body, Stream-Next-Offset,
// whether it is up to date, and the status.
func (h *harness) getChunk(ctx context.Context, s *stream, offset string, live bool) ([]byte, string, bool, int, error) {
	u := h.url(s) + "?offset=" + offset
	if live {
		u += "&live=long-poll"
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, "", false, 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", false, 0, err
	}
	return b, resp.Header.Get("Stream-Next-Offset"), resp.Header.Get("Stream-Up-To-Date") == "true", resp.StatusCode, nil
}

// reader reads s from -1 following Stream-Next-Offset, catch-up or long-poll,
// and records what it saw.
func (h *harness) reader(s *stream, live bool, stop <-chan struct{}) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() { <-stop; cancel() }()
	for round := 0; round < 1000; round++ {
		var seen []byte
		off := "-1"
		for i := 0; i < 10000; i++ {
			lp := live && off != "-1"
			b, next, upToDate, code, err := h.getChunk(ctx, s, off, lp)
			if lp && err == nil {
				h.drained(func(d *drainCounts) {
					switch code {
					case http.StatusNoContent:
						d.longPoll204++
					case http.StatusOK:
						d.longPoll200++
					default:
						d.longPollOther++
					}
				})
			}
			if err != nil || (code != 200 && code != 204) {
				if len(seen) > 0 {
					h.record(observation{s: s, seen: seen, next: off, at: len(seen)})
				}
				return
			}
			if code == 200 {
				seen = append(seen, b...)
			}
			if next != "" {
				off = next
			}
			if upToDate && !live {
				break
			}
		}
		h.record(observation{s: s, seen: seen, next: off, at: len(seen)})
	}
}

// record keeps an observation for verification after the restart. SSE
// readers have their own budget so the many catch-up observations cannot
// crowd them out.
func (h *harness) record(o observation) {
	h.obsMu.Lock()
	defer h.obsMu.Unlock()
	if o.s.node != nil {
		if len(h.forkObs) < 1500 {
			h.forkObs = append(h.forkObs, o)
		}
	} else if o.sse && len(h.sseObs) < 2000 {
		h.sseObs = append(h.sseObs, o)
	} else if !o.sse && len(h.obs) < 5000 {
		h.obs = append(h.obs, o)
	}
}

// load runs writers and readers for d, or until a lifecycle request asks
// for the stop to land on it, then SIGKILLs streamd or, if sigterm, sends it
// SIGTERM and keeps the load running until it has exited.
func (h *harness) load(cycle int, d time.Duration, sigterm bool) {
	rng := h.rng
	h.termCycle.Store(sigterm)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	// Where the stop is aimed: in 4 cycles out of 10 at a lifecycle
	// stream's close or delete, in 5 at a fork operation (a fork's creation,
	// a delete of a forked source or of a fork, a fork racing its source's
	// delete), and otherwise wherever the timer lands, which is often among
	// them too.
	aim := rng.Intn(10)
	// Before the writers start: it takes the load's streams' content as
	// the last restart verified it.
	h.startForks(cycle, d, stop, &wg, aim >= 4 && aim < 9)
	for i, s := range h.streams {
		wg.Add(2)
		go func() { defer wg.Done(); h.writer(s, cycle, int64(cycle*100+i)+time.Now().UnixNano(), stop) }()
		seed := rng.Int63()
		go func() { defer wg.Done(); h.sseReader(s, seed, stop) }()
		if s.kind != kProdJSON {
			wg.Add(2)
			go func() { defer wg.Done(); h.reader(s, false, stop) }()
			go func() { defer wg.Done(); h.reader(s, true, stop) }()
		}
	}
	h.startLifecycle(cycle, d, stop, &wg, aim < 4)
	select {
	case <-time.After(d):
	case window := <-h.trigger:
		// The request is on its way: land the stop before, during or
		// just after its commit, somewhere within the window its sender
		// asked for. A close or delete takes 1-6 ms here, mostly fsync,
		// a fork creation less; a kill after its WAL write but before the
		// answer leaves a close or delete that happened without being
		// acknowledged, a SIGTERM one that must still get its real answer
		// (or 503, or no connection at all if it comes after the listener
		// closed).
		time.Sleep(time.Duration(rng.Int63n(int64(window))))
	}
	if sigterm {
		h.term()
	} else {
		h.kill()
	}
	close(stop)
	wg.Wait()
	h.stopRenewals()
	h.termCycle.Store(false)
	h.termSent.Store(false)
	select {
	case <-h.trigger: // a trigger that lost the race with the timer
	default:
	}
}

// readFrom reads s from offset to the tail; it returns the concatenated bytes
// (binary) or messages (JSON).
func (h *harness) readFrom(s *stream, offset string) ([]byte, []json.RawMessage, bool) {
	var all []byte
	var msgs []json.RawMessage
	off := offset
	for i := 0; i < 100000; i++ {
		b, next, upToDate, code, err := h.getChunk(context.Background(), s, off, false)
		if err != nil || code != 200 {
			h.violate("%s: read at %s: status %d err %v", s.name, off, code, err)
			return nil, nil, false
		}
		n := len(b)
		if s.isJSON() {
			var m []json.RawMessage
			if err := json.Unmarshal(b, &m); err != nil {
				h.violate("%s: read at %s: bad JSON: %v", s.name, off, err)
				return nil, nil, false
			}
			msgs, n = append(msgs, m...), len(m)
		} else {
			all = append(all, b...)
		}
		if next == "" {
			h.violate("%s: read at %s without Stream-Next-Offset", s.name, off)
			return nil, nil, false
		}
		if n == 0 && next == off && !upToDate {
			h.violate("%s: read at %s returned nothing and the same offset, not up to date", s.name, off)
			return nil, nil, false
		}
		off = next
		if upToDate {
			return all, msgs, true
		}
	}
	h.violate("%s: read did not reach the tail", s.name)
	return nil, nil, false
}

func idOf(s *stream, el []byte) string {
	if s.isJSON() {
		var v struct{ ID string }
		json.Unmarshal(el, &v)
		return v.ID
	}
	id, _, _ := bytes.Cut(el, []byte("|"))
	return string(id)
}

// elements splits stream content into appended units.
func elements(s *stream, all []byte, msgs []json.RawMessage) [][]byte {
	if s.isJSON() {
		out := make([][]byte, len(msgs))
		for i, m := range msgs {
			out[i] = m
		}
		return out
	}
	var out [][]byte
	for len(all) > 0 {
		i := bytes.IndexByte(all, '\n')
		if i < 0 {
			out = append(out, all)
			break
		}
		out = append(out, all[:i+1])
		all = all[i+1:]
	}
	return out
}

// verify checks every stream after a restart.
func (h *harness) verify() {
	for _, s := range h.streams {
		h.retryPending(s)
		h.verifyStream(s)
	}
	h.verifyLives()
	h.verifyForks()
	h.verifyObservations()
}

func (h *harness) verifyStream(s *stream) {
	all, msgs, ok := h.readFrom(s, "-1")
	if !ok {
		return
	}
	h.verifyContent(s, all, msgs, 0)
}

// verifyContent checks s's content, read in full (all, or msgs for JSON
// streams), whose own appends follow skip bytes (messages) of data a fork
// inherited, which the caller checks. It returns the own appends' elements.
func (h *harness) verifyContent(s *stream, all []byte, msgs []json.RawMessage, skip int) [][]byte {
	var els [][]byte
	if s.isJSON() {
		els = elements(s, nil, msgs[skip:])
	} else {
		els = elements(s, all[skip:], nil)
	}
	// Everything verified after the previous restart is still there, identically.
	if len(s.prev) > len(els) {
		h.violate("%s: stream shrank from %d to %d appends", s.name, len(s.prev), len(els))
	}
	for i := 0; i < len(s.prev) && i < len(els); i++ {
		if idOf(s, s.prev[i]) != idOf(s, els[i]) || (!s.isJSON() && !bytes.Equal(s.prev[i], els[i])) {
			h.violate("%s: append %d changed across restart: %q -> %q", s.name, i, s.prev[i], els[i])
			break
		}
	}
	s.prev = els
	pos := map[string]int{}
	known := map[string]*entry{}
	for _, e := range s.entries {
		known[e.id] = e
	}
	for i, el := range els {
		id := idOf(s, el)
		if _, dup := pos[id]; dup {
			h.violate("%s: append %s present twice", s.name, id)
		}
		if known[id] == nil {
			h.violate("%s: unknown data %q at element %d", s.name, el, i)
		} else if !s.isJSON() && !bytes.Equal(el, known[id].body) {
			h.violate("%s: append %s corrupted", s.name, id)
		}
		pos[id] = i
	}
	last := -1
	for _, e := range s.entries {
		if !e.acked {
			continue
		}
		i, ok := pos[e.id]
		if !ok {
			h.violate("%s: acknowledged append %s (next offset %s) missing", s.name, e.id, e.next)
			continue
		}
		if i <= last {
			h.violate("%s: acknowledged append %s out of order (element %d after %d)", s.name, e.id, i, last)
		}
		last = i
		if e.checked {
			continue
		}
		e.checked = true
		h.verified++
		if e.next == "" {
			continue // deduplicated retry: presence and order checked above
		}
		tail, tmsgs, ok := h.readFrom(s, e.next)
		if !ok {
			continue
		}
		if s.isJSON() {
			idx := len(els) - len(tmsgs)
			if idx != i+1 {
				h.violate("%s: append %s acknowledged at %s, but that offset is after element %d, not %d", s.name, e.id, e.next, idx, i+1)
			}
			continue
		}
		p := len(all) - len(tail)
		if p < 0 || !bytes.Equal(all[p:], tail) || !bytes.HasSuffix(all[:p], e.body) {
			h.violate("%s: append %s acknowledged at %s is not the bytes before that offset", s.name, e.id, e.next)
		}
	}
	return els
}

// verifyObservations checks that everything a reader (catch-up, long-poll
// or SSE) saw is still there, at the offsets it was given, and that a stream
// an SSE reader was told is closed is still closed there.
func (h *harness) verifyObservations() {
	h.obsMu.Lock()
	obs := append(append(h.obs, h.sseObs...), h.forkObs...)
	h.obs, h.sseObs, h.forkObs = nil, nil, nil
	h.obsMu.Unlock()
	type content struct {
		all  []byte
		msgs []json.RawMessage
	}
	full := map[*stream]*content{}
	unreadable := map[*stream]bool{} // reported once
	for _, o := range obs {
		if n := o.s.node; n != nil && n.state != nLive {
			continue // deleted since (readers only read forks not deleted in their cycle)
		}
		c := full[o.s]
		if c == nil {
			if unreadable[o.s] {
				continue
			}
			all, msgs, ok := h.readFrom(o.s, "-1")
			if !ok {
				unreadable[o.s] = true
				continue
			}
			c = &content{all, msgs}
			full[o.s] = c
		}
		who := "a reader"
		if o.sse {
			who = "an SSE reader"
			h.sseChecked++
		} else {
			h.observed++
		}
		if o.s.isJSON() {
			if i := firstDiff(c.msgs, o.msgs); i >= 0 {
				h.violate("%s: %s saw %d messages, message %d is not what the stream holds after restart (%d messages)", o.s.name, who, len(o.msgs), i, len(c.msgs))
				continue
			}
		} else if !bytes.HasPrefix(c.all, o.seen) {
			h.violate("%s: %s saw %d bytes that are not a prefix of the stream after restart (%d bytes)", o.s.name, who, len(o.seen), len(c.all))
			continue
		}
		if o.next == "-1" {
			continue
		}
		tail, tmsgs, ok := h.readFrom(o.s, o.next)
		if !ok {
			continue
		}
		at := len(c.all) - len(tail)
		if o.s.isJSON() {
			at = len(c.msgs) - len(tmsgs)
		}
		if at != o.at {
			h.violate("%s: %s's offset %s is at element/byte %d after restart, it had seen %d before it", o.s.name, who, o.next, at, o.at)
		}
		if o.closed {
			h.outcomes["SSE reader saw the close"]++
			h.expectClosedAt(o.s, o.next, who+" was told the stream is closed")
		}
	}
}

// firstDiff returns the index of the first of seen that is not in all at the
// same position, or -1 if seen is a prefix of all.
func firstDiff(all, seen []json.RawMessage) int {
	for i, m := range seen {
		if i >= len(all) || !bytes.Equal(all[i], m) {
			return i
		}
	}
	return -1
}
