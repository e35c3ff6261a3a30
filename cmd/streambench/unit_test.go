package main

import (
	"errors"
	"io"
	"os"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"
	"time"
)

func TestSSEParser(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []sseEvent
	}{
		{"streamd data and control", "event: data\ndata:hello\n\nevent: control\ndata:{\"streamNextOffset\":\"x\"}\n\n",
			[]sseEvent{{Type: "data", Data: "hello"}, {Type: "control", Data: `{"streamNextOffset":"x"}`}}},
		{"one optional space dropped", "event:data\ndata:  two spaces\n\n",
			[]sseEvent{{Type: "data", Data: " two spaces"}}},
		{"multiple data lines joined with LF", "event: data\ndata: a\ndata:\ndata: b\n\n",
			[]sseEvent{{Type: "data", Data: "a\n\nb"}}},
		{"trailing empty data line keeps the final newline", "event: data\ndata:line\ndata:\n\n",
			[]sseEvent{{Type: "data", Data: "line\n"}}},
		{"CRLF line ends", "event: data\r\ndata: x\r\n\r\n",
			[]sseEvent{{Type: "data", Data: "x"}}},
		{"lone CR line ends", "event: data\rdata: x\r\r",
			[]sseEvent{{Type: "data", Data: "x"}}},
		{"comments ignored", ": keep-alive\n\nevent: data\n: note\ndata: x\n\n",
			[]sseEvent{{Type: "data", Data: "x"}}},
		{"default type is message", "data: x\n\n",
			[]sseEvent{{Type: "message", Data: "x"}}},
		{"event without data is not dispatched and its type resets", "event: control\n\ndata: x\n\n",
			[]sseEvent{{Type: "message", Data: "x"}}},
		{"single data: line is an empty event", "event: data\ndata:\n\n",
			[]sseEvent{{Type: "data", Data: ""}}},
		{"field without colon", "data\n\n",
			[]sseEvent{{Type: "message", Data: ""}}},
		{"unknown fields ignored, id kept", "id: 7\nretry: 10\nfoo: bar\ndata: x\n\n",
			[]sseEvent{{Type: "message", Data: "x", ID: "7"}}},
		{"BOM at start", "\xef\xbb\xbfdata: x\n\n",
			[]sseEvent{{Type: "message", Data: "x"}}},
		{"incomplete last event discarded", "data: a\n\ndata: b\n",
			[]sseEvent{{Type: "message", Data: "a"}}},
		{"unterminated last line discarded", "data: a\n\ndata: b",
			[]sseEvent{{Type: "message", Data: "a"}}},
		{"colon in value kept", "data: a: b\n\n",
			[]sseEvent{{Type: "message", Data: "a: b"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// One byte at a time as well: a CR at the end of a read must
			// wait for the next byte to tell CR from CRLF.
			for _, r := range []io.Reader{strings.NewReader(tt.in), iotest.OneByteReader(strings.NewReader(tt.in))} {
				rd := newSSEReader(r)
				var got []sseEvent
				for {
					ev, err := rd.Next()
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					got = append(got, ev)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("got %q, want %q", got, tt.want)
				}
			}
		})
	}
}

func TestSSEReadError(t *testing.T) {
	rd := newSSEReader(iotest.TimeoutReader(strings.NewReader("data: a\n\ndata: b\n")))
	if _, err := rd.Next(); err != nil {
		t.Fatal(err)
	}
	if _, err := rd.Next(); err == nil || errors.Is(err, io.EOF) {
		t.Fatalf("want the read error, got %v", err)
	}
}

func TestControlAndData(t *testing.T) {
	c, err := parseControl(`{"streamNextOffset":"0000000000000000_0000000000000042","streamCursor":"c","upToDate":true}`)
	if err != nil || c.StreamNextOffset != formatOffset(42) || c.StreamCursor != "c" || !c.UpToDate || c.StreamClosed {
		t.Fatalf("got %+v, %v", c, err)
	}
	b, err := decodeSSEData("AQID\nBA==", true)
	if err != nil || string(b) != "\x01\x02\x03\x04" {
		t.Fatalf("got %q, %v", b, err)
	}
	// Round trip through the ceiling's encoder and the parser.
	for _, payload := range []string{"a", "a\nb\n", " lead\n\nx", "\n"} {
		for _, textual := range []bool{true, false} {
			ev, err := newSSEReader(strings.NewReader(string(appendSSEData(nil, []byte(payload), textual)))).Next()
			if err != nil {
				t.Fatal(err)
			}
			got, err := decodeSSEData(ev.Data, !textual)
			if err != nil || string(got) != payload || ev.Type != "data" {
				t.Errorf("textual=%v: %q came back as %q (%v)", textual, payload, got, err)
			}
		}
	}
}

func TestPercentile(t *testing.T) {
	seq := func(n int) []time.Duration {
		s := make([]time.Duration, n)
		for i := range s {
			s[i] = time.Duration(i + 1)
		}
		return s
	}
	tests := []struct {
		name   string
		sample []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"single", []time.Duration{7}, 99, 7},
		{"median of 1..100", seq(100), 50, 50},
		{"p99 of 1..100", seq(100), 99, 99},
		{"p100 of 1..100", seq(100), 100, 100},
		{"median of 1..4", seq(4), 50, 2},
		{"median of 1..5", seq(5), 50, 3},
		{"p99 of 1..10", seq(10), 99, 10},
		{"p99 of 1..1000", seq(1000), 99, 990},
		{"p99 of 1..1001", seq(1001), 99, 991},
		{"p50 of 1..3", seq(3), 50, 2},
		{"tiny p is the minimum", seq(10), 0.001, 1},
	}
	for _, tt := range tests {
		if got := percentile(tt.sample, tt.p); got != tt.want {
			t.Errorf("%s: percentile(%v) = %v, want %v", tt.name, tt.p, got, tt.want)
		}
	}
}

func TestSummarize(t *testing.T) {
	s := summarize([]time.Duration{5 * time.Millisecond, time.Millisecond, 3 * time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond})
	want := summary{n: 5, p50: 3 * time.Millisecond, p99: 5 * time.Millisecond, max: 5 * time.Millisecond, mean: 3 * time.Millisecond}
	if s != want {
		t.Fatalf("got %+v, want %+v", s, want)
	}
	if summarize(nil) != (summary{}) {
		t.Fatal("empty sample must summarise to zeros")
	}
	if ms(1500*time.Microsecond) != 1.5 || perSecond(10, 0) != 0 || median([]float64{3, 1, 2, 10}) != 2.5 {
		t.Fatal("helpers")
	}
}

func TestParseVmRSS(t *testing.T) {
	tests := []struct {
		name, in string
		want     int64
		err      bool
	}{
		{"kernel format", "Name:\tstreamd\nVmPeak:\t  200 kB\nVmRSS:\t   12345 kB\nRssAnon:\t 1 kB\n", 12345 << 10, false},
		{"no leading whitespace", "VmRSS: 1 kB\n", 1024, false},
		{"zero", "VmRSS:\t0 kB\n", 0, false},
		{"mB unit", "VmRSS:\t3 mB\n", 3 << 20, false},
		{"missing line", "Name:\tx\nVmHWM:\t1 kB\n", 0, true},
		{"no unit", "VmRSS:\t12\n", 0, true},
		{"not a number", "VmRSS:\tabc kB\n", 0, true},
		{"negative", "VmRSS:\t-5 kB\n", 0, true},
		{"unknown unit", "VmRSS:\t5 pages\n", 0, true},
	}
	for _, tt := range tests {
		got, err := parseVmRSS(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("%s: got %d, %v; want %d, error %v", tt.name, got, err, tt.want, tt.err)
		}
	}
	if rss, err := readRSS(os.Getpid()); err != nil || rss <= 0 {
		t.Errorf("own RSS: %d, %v", rss, err)
	}
	if rss, err := readRSS(0); err != nil || rss != 0 {
		t.Errorf("disabled RSS: %d, %v", rss, err)
	}
}

func TestOpaqueOffsetHelpers(t *testing.T) {
	for _, ok := range []string{"0000000000000000_0000000000000261", "x", "o00000003+a", "-2", "nowish"} {
		if got, err := checkOffset(ok); err != nil || got != ok {
			t.Errorf("checkOffset(%q) = %q, %v", ok, got, err)
		}
	}
	for _, bad := range []string{"", "-1", "now", "a,b", "a&b", "a=b", "a?b", "a/b"} {
		if _, err := checkOffset(bad); err == nil {
			t.Errorf("checkOffset(%q) accepted", bad)
		}
	}
	// Lexicographic, not numeric: only the server's fixed-width tokens
	// make the two agree.
	for _, c := range []struct {
		next, prev string
		want       bool
	}{
		{"0000000000000000_0000000000000261", "0000000000000000_0000000000000000", true},
		{"0000000000000000_0000000000000261", "0000000000000000_0000000000000261", false},
		{"0000000000000000_0000000000000256", "0000000000000000_0000000000000261", false},
		{"b", "a", true}, {"ab", "a", true}, {"a", "ab", false}, {"10", "9", false}, {"x", "", true},
	} {
		if got := offsetAfter(c.next, c.prev); got != c.want {
			t.Errorf("offsetAfter(%q, %q) = %v", c.next, c.prev, got)
		}
	}
	if q := offsetQuery("o1+a b"); q != "offset=o1%2Ba+b" {
		t.Errorf("offsetQuery: %q", q)
	}
}

// TestOffsets covers the ceiling's own offset format.
func TestOffsets(t *testing.T) {
	for _, pos := range []uint64{0, 1, 42, 1 << 40, 9999999999999999} {
		s := formatOffset(pos)
		if len(s) != 33 || s[:17] != "0000000000000000_" {
			t.Errorf("formatOffset(%d) = %q", pos, s)
		}
		if got, err := parseOffset(s); err != nil || got != pos {
			t.Errorf("parseOffset(%q) = %d, %v", s, got, err)
		}
	}
	for _, bad := range []string{"", "-1", "now", "0_1", "0000000000000001_0000000000000000", "0000000000000000_000000000000000x"} {
		if _, err := parseOffset(bad); err == nil {
			t.Errorf("parseOffset(%q) accepted", bad)
		}
	}
}

func TestPatternAndMismatches(t *testing.T) {
	ref := pattern(1000)
	for i := range 2000 {
		if ref[i%1251] != byte((i%1251*31+7)%251) {
			t.Fatal("pattern")
		}
	}
	// A body longer than the reference span, at an unaligned position.
	pos := uint64(12345)
	body := make([]byte, 3000)
	for i := range body {
		body[i] = byte(((int(pos)+i)*31 + 7) % 251)
	}
	if n := mismatches(ref, body, pos); n != 0 {
		t.Fatalf("%d mismatches in a correct body", n)
	}
	body[0]++
	body[2999]++
	if n := mismatches(ref, body, pos); n != 2 {
		t.Fatalf("got %d mismatches, want 2", n)
	}
}

func TestSSEMessage(t *testing.T) {
	m := sseMessage(42, 123456789, 64)
	seq, at, ok := parseSSEMessage(m, 64)
	if len(m) != 64 || !ok || seq != 42 || at != 123456789 {
		t.Fatalf("%q: %d %d %v", m, seq, at, ok)
	}
	if _, _, ok := parseSSEMessage(m[:63], 64); ok {
		t.Fatal("short message accepted")
	}
	var s subscriber
	s.seen, s.maxSeen = make([]bool, 10), -1
	errs := &errorLog{}
	all := append(append(sseMessage(0, 0, 40), sseMessage(2, 0, 40)...), sseMessage(1, 0, 40)...)
	s.consume(all[:50], 10, 40, errs) // ends inside the second message
	s.consume(all[50:], 10, 40, errs)
	s.consume(sseMessage(2, 0, 40), 10, 40, errs)
	if s.unique.Load() != 3 || s.outOfOrder != 1 || s.duplicates != 1 || errs.count() != 0 || len(s.lats) != 3 {
		t.Fatalf("unique %d, out of order %d, duplicates %d, %d latencies, %d errors", s.unique.Load(), s.outOfOrder, s.duplicates, len(s.lats), errs.count())
	}
}

func TestCheckBaseURL(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:4437":  "http://127.0.0.1:4437",
		"http://127.0.0.1:4437/": "http://127.0.0.1:4437",
		"http://127.9.9.9:1":     "http://127.9.9.9:1",
	} {
		if got, err := checkBaseURL(in); err != nil || got != want {
			t.Errorf("checkBaseURL(%q) = %q, %v", in, got, err)
		}
	}
	for _, bad := range []string{"", "http://10.0.0.1:80", "http://example.com", "https://127.0.0.1:1", "http://[::1]:80", "http://localhost:80"} {
		if _, err := checkBaseURL(bad); err == nil {
			t.Errorf("checkBaseURL(%q) accepted", bad)
		}
	}
}
