package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// runResult runs the tool with args, which must succeed, and decodes its
// single JSON line; it also returns stderr.
func runResult(t *testing.T, args ...string) (map[string]any, string) {
	t.Helper()
	var stdout bytes.Buffer
	var stderr lockedBuffer // errors are logged from many goroutines
	if code := run(args, &stdout, &stderr); code != 0 {
		t.Fatalf("%v: exit %d\n%s", args, code, stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if len(lines) != 1 {
		t.Fatalf("want one line on stdout, got %q", stdout.String())
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(lines[0]), &res); err != nil {
		t.Fatalf("%v: %s", err, lines[0])
	}
	for _, k := range []string{"scenario", "label", "params", "throughput", "throughput_unit", "p50_ms", "p99_ms", "max_ms",
		"requests", "errors", "missing", "rss_bytes", "rss_per_reader_bytes", "extra"} {
		if v, ok := res[k]; !ok || v == nil {
			t.Errorf("%s missing or null in %s", k, lines[0])
		}
	}
	if res["scenario"] != args[0] || res["label"] != "test" {
		t.Errorf("scenario/label: %s", lines[0])
	}
	return res, stderr.String()
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// runJSON is runResult for a run that must see no errors and no missing
// data.
func runJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	res, stderr := runResult(t, args...)
	if res["errors"] != 0.0 || res["missing"] != 0.0 || res["throughput"].(float64) <= 0 || res["requests"].(float64) <= 0 {
		t.Errorf("%v\n%s", res, stderr)
	}
	return res
}

// opaqueOffset is an offset encoding unlike streamd's: not a byte count,
// lexicographically ordered, and with a '+' that only survives in a query
// when the client URL-encodes it.
func opaqueOffset(pos uint64) string { return fmt.Sprintf("o%012x+%c", pos*5+3, 'a'+pos%7) }

func parseOpaqueOffset(s string) (uint64, error) {
	var v uint64
	var c rune
	if _, err := fmt.Sscanf(s, "o%012x+%c", &v, &c); err != nil || v < 3 || (v-3)%5 != 0 || opaqueOffset((v-3)/5) != s {
		return 0, fmt.Errorf("bad offset %q", s)
	}
	return (v - 3) / 5, nil
}

func TestOpaqueOffset(t *testing.T) {
	prev := ""
	for pos := range uint64(2000) {
		s := opaqueOffset(pos)
		if got, err := parseOpaqueOffset(s); err != nil || got != pos {
			t.Fatalf("%q: %d, %v", s, got, err)
		}
		if !offsetAfter(s, prev) {
			t.Fatalf("%q not after %q", s, prev)
		}
		prev = s
	}
	if _, err := parseOpaqueOffset("o000000000003 a"); err == nil {
		t.Fatal("unescaped '+' accepted")
	}
}

// TestScenariosAgainstCeiling runs every scenario briefly against the
// ceiling server in-process, with streamd's offsets and with offsets that
// encode no byte count: the scenarios must only compare them.
func TestScenariosAgainstCeiling(t *testing.T) {
	t.Run("streamd offsets", func(t *testing.T) { testScenarios(t, newCeiling()) })
	t.Run("opaque offsets", func(t *testing.T) {
		c := newCeiling()
		c.enc, c.dec = opaqueOffset, parseOpaqueOffset
		testScenarios(t, c)
	})
}

func testScenarios(t *testing.T, c *ceiling) {
	oldSSE, oldLP := ceilSSEInterval, ceilLongPoll
	ceilSSEInterval = 300 * time.Millisecond // make SSE subscribers reconnect during the run
	defer func() { ceilSSEInterval, ceilLongPoll = oldSSE, oldLP }()
	srv := httptest.NewUnstartedServer(c)
	srv.Config.Protocols = new(http.Protocols)
	srv.Config.Protocols.SetHTTP1(true)
	srv.Config.Protocols.SetUnencryptedHTTP2(true)
	srv.Start()
	defer srv.Close()
	pid := strconv.Itoa(os.Getpid())
	common := []string{"-url", srv.URL, "-label", "test", "-timeout", "60s"}

	t.Run("append", func(t *testing.T) {
		res := runJSON(t, append([]string{"append", "-writers", "4", "-streams", "2", "-bytes", "64", "-duration", "300ms", "-warmup", "100ms", "-server-pid", pid}, common...)...)
		if res["extra"].(map[string]any)["measured_appends"].(float64) <= 0 || res["rss_bytes"].(float64) <= 0 {
			t.Errorf("%v", res)
		}
		if p := res["params"].(map[string]any); p["writers"] != 4.0 || p["duration"] != "300ms" || p["url"] != srv.URL {
			t.Errorf("params %v", p)
		}
	})
	t.Run("read", func(t *testing.T) {
		// 3 MiB in 256 KiB appends: the ceiling answers 1 MiB per response.
		// A stream left over under the same prefix is replaced.
		for _, m := range []string{http.MethodPut, http.MethodPost} {
			req, _ := http.NewRequest(m, srv.URL+"/v1/stream/reuse-read", strings.NewReader("leftover"))
			req.Header.Set("Content-Type", "application/octet-stream")
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		res := runJSON(t, append([]string{"read", "-mib", "3", "-chunk-bytes", "262144", "-repeat", "2", "-prefix", "reuse"}, common...)...)
		ex := res["extra"].(map[string]any)
		if ex["verified_repeats"] != 2.0 || res["requests"] != 6.0 || ex["mib_best"].(float64) < ex["mib_median"].(float64) {
			t.Errorf("%v", res)
		}
	})
	t.Run("longpoll", func(t *testing.T) {
		res := runJSON(t, append([]string{"longpoll", "-readers", "20", "-rounds", "3", "-bytes", "100", "-settle", "50ms", "-source-ips", "2", "-server-pid", pid}, common...)...)
		if res["extra"].(map[string]any)["delivered"] != 60.0 {
			t.Errorf("%v", res)
		}
	})
	t.Run("longpoll over h2c", func(t *testing.T) {
		res := runJSON(t, append([]string{"longpoll", "-readers", "300", "-rounds", "2", "-bytes", "100", "-settle", "50ms", "-h2c"}, common...)...)
		if res["extra"].(map[string]any)["delivered"] != 600.0 || res["missing"] != 0.0 {
			t.Errorf("%v", res)
		}
	})
	t.Run("longpoll with 204s", func(t *testing.T) {
		ceilLongPoll = 40 * time.Millisecond // readers time out and re-poll while parked
		defer func() { ceilLongPoll = oldLP }()
		res := runJSON(t, append([]string{"longpoll", "-readers", "10", "-rounds", "2", "-settle", "200ms"}, common...)...)
		if ex := res["extra"].(map[string]any); ex["delivered"] != 20.0 || ex["timeouts_204"].(float64) < 10 {
			t.Errorf("%v", res)
		}
	})
	t.Run("sse", func(t *testing.T) {
		res := runJSON(t, append([]string{"sse", "-subscribers", "10", "-rate", "50", "-bytes", "64", "-duration", "800ms"}, common...)...)
		ex := res["extra"].(map[string]any)
		if ex["duplicates"] != 0.0 || ex["out_of_order"] != 0.0 || ex["appended"].(float64) < 10 ||
			ex["delivered"] != 10*ex["appended"].(float64) || ex["reconnects"].(float64) < 10 {
			t.Errorf("%v", res)
		}
	})
	t.Run("streams", func(t *testing.T) {
		res := runJSON(t, append([]string{"streams", "-streams", "50", "-bytes", "32", "-concurrency", "4"}, common...)...)
		ex := res["extra"].(map[string]any)
		if res["requests"] != 150.0 || ex["creates_per_s"].(float64) <= 0 || ex["reads_per_s"].(float64) <= 0 {
			t.Errorf("%v", res)
		}
	})
	c.mu.RLock()
	left := len(c.streams)
	c.mu.RUnlock()
	if left != 0 {
		t.Errorf("%d streams left after the runs", left)
	}
}

func TestFailures(t *testing.T) {
	// Nothing listens on port 1: the tool itself fails.
	for _, args := range [][]string{
		{"append", "-url", "http://127.0.0.1:1", "-duration", "100ms"},
		{"longpoll", "-url", "http://127.0.0.1:1", "-readers", "2"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 1 || out.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q", args, code, out.String())
		}
	}
	for _, args := range [][]string{
		nil,
		{"nope"},
		{"append"}, // no -url
		{"append", "-url", "http://192.0.2.1:80"},
		{"append", "-url", "http://127.0.0.1:1", "-writers", "0"},
		{"sse", "-url", "http://127.0.0.1:1", "-bytes", "8"},
		{"read", "-url", "http://127.0.0.1:1", "extra-arg"},
		{"ceiling", "-addr", "0.0.0.0:0"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code == 0 || out.Len() != 0 {
			t.Errorf("%v: exit %d, stdout %q", args, code, out.String())
		}
	}
	// A run that cannot finish within -timeout fails.
	srv := httptest.NewServer(newCeiling())
	defer srv.Close()
	var out, errb bytes.Buffer
	if code := run([]string{"append", "-url", srv.URL, "-duration", "10s", "-timeout", "300ms"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "timeout") {
		t.Errorf("timeout: exit %d, %s", code, errb.String())
	}
}

// TestCeilingCommand runs `streambench ceiling` and stops it with SIGTERM.
func TestCeilingCommand(t *testing.T) {
	pr, pw := io.Pipe()
	done := make(chan int, 1)
	go func() {
		var errb bytes.Buffer
		done <- run([]string{"ceiling", "-addr", "127.0.0.1:0"}, pw, &errb)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	base, ok := strings.CutPrefix(strings.TrimSpace(line), "ceiling listening ")
	if !ok || !strings.HasPrefix(base, "http://127.0.0.1:") {
		t.Fatalf("line %q", line)
	}
	req, _ := http.NewRequest(http.MethodPut, base+"/v1/stream/x", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusCreated || resp.Header.Get("Stream-Next-Offset") != formatOffset(0) {
		t.Fatalf("PUT: %v %v", resp, err)
	}
	resp.Body.Close()
	go io.Copy(io.Discard, pr)
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ceiling did not stop on SIGTERM")
	}
}

// corruptReads flips the first byte of every non-SSE GET answer.
func corruptReads(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Query().Get("live") == "sse" {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		b := rec.Body.Bytes()
		if len(b) > 0 {
			b[0] ^= 0xff
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(b)
	})
}

// splitLongPolls answers every long-poll with data with only the first
// half of it (streamd offsets), so messages arrive in pieces.
func splitLongPolls(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Query().Get("live") != "long-poll" {
			h.ServeHTTP(w, r)
			return
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, r)
		b := rec.Body.Bytes()
		pos, err := parseOffset(r.URL.Query().Get("offset"))
		if rec.Code == http.StatusOK && len(b) > 1 && err == nil {
			b = b[:len(b)/2]
			rec.Header().Set("Stream-Next-Offset", formatOffset(pos+uint64(len(b))))
			rec.Header().Del("Stream-Up-To-Date")
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		_, _ = w.Write(b)
	})
}

// TestScenariosDetectFaults: wrong bytes and offsets that do not advance
// are reported, pieces of messages are not.
func TestScenariosDetectFaults(t *testing.T) {
	common := []string{"-label", "test", "-timeout", "60s"}
	with := func(srv *httptest.Server, args ...string) []string {
		return append(append(args, "-url", srv.URL), common...)
	}
	extra := func(res map[string]any, k string) float64 { return res["extra"].(map[string]any)[k].(float64) }

	t.Run("corrupted reads", func(t *testing.T) {
		srv := httptest.NewServer(corruptReads(newCeiling()))
		defer srv.Close()
		res, _ := runResult(t, with(srv, "read", "-mib", "1", "-chunk-bytes", "65536", "-repeat", "1")...)
		if res["errors"].(float64) == 0 || res["missing"].(float64) == 0 || extra(res, "verified_repeats") != 0 {
			t.Errorf("read: %v", res)
		}
		res, _ = runResult(t, with(srv, "streams", "-streams", "10", "-bytes", "32")...)
		if res["errors"].(float64) == 0 || res["missing"] != 10.0 {
			t.Errorf("streams: %v", res)
		}
		res, _ = runResult(t, with(srv, "append", "-writers", "2", "-streams", "2", "-duration", "200ms", "-warmup", "0s")...)
		if extra(res, "tail_mismatched_streams") != 2 {
			t.Errorf("append: %v", res)
		}
		res, _ = runResult(t, with(srv, "longpoll", "-readers", "4", "-rounds", "2", "-settle", "50ms")...)
		if extra(res, "wrong_data") == 0 || res["missing"].(float64) == 0 {
			t.Errorf("longpoll: %v", res)
		}
	})
	t.Run("offsets not advancing", func(t *testing.T) {
		c := newCeiling()
		c.enc = func(uint64) string { return "o" }
		c.dec = func(string) (uint64, error) { return 0, nil }
		srv := httptest.NewServer(c)
		defer srv.Close()
		for _, args := range [][]string{
			{"append", "-writers", "2", "-streams", "2", "-duration", "200ms", "-warmup", "0s"},
			{"streams", "-streams", "10", "-bytes", "32"},
			{"longpoll", "-readers", "4", "-rounds", "2", "-settle", "50ms"},
			{"sse", "-subscribers", "2", "-rate", "20", "-bytes", "64", "-duration", "300ms"},
		} {
			if res, _ := runResult(t, with(srv, args...)...); res["errors"].(float64) == 0 {
				t.Errorf("%s: %v", args[0], res)
			}
		}
		// The read scenario cannot fill a stream it cannot verify.
		var out bytes.Buffer
		var errb lockedBuffer
		if code := run(with(srv, "read", "-mib", "1", "-repeat", "1"), &out, &errb); code != 1 || !strings.Contains(errb.String(), "Stream-Next-Offset") {
			t.Errorf("read: exit %d, %s", code, errb.String())
		}
	})
	t.Run("long-poll answers in pieces", func(t *testing.T) {
		srv := httptest.NewServer(splitLongPolls(newCeiling()))
		defer srv.Close()
		res := runJSON(t, with(srv, "longpoll", "-readers", "8", "-rounds", "3", "-bytes", "100", "-settle", "50ms")...)
		if extra(res, "delivered") != 24 || extra(res, "wrong_data") != 0 {
			t.Errorf("%v", res)
		}
	})
}
