package actors

import (
	"bytes"
	"encoding/base64"
	"math/rand/v2"
	"strings"
	"testing"
)

func TestAppendSSEData(t *testing.T) {
	tests := []struct {
		name    string
		payload string
		textual bool
		want    string
	}{
		{"text one line", "hello", true, "event: data\ndata:hello\n\n"},
		{"LF", "a\nb", true, "event: data\ndata:a\ndata:b\n\n"},
		{"CR", "a\rb", true, "event: data\ndata:a\ndata:b\n\n"},
		{"CRLF", "a\r\nb", true, "event: data\ndata:a\ndata:b\n\n"},
		{"LF CR is two breaks", "a\n\rb", true, "event: data\ndata:a\ndata:\ndata:b\n\n"},
		{"blank line inside", "a\n\nb", true, "event: data\ndata:a\ndata:\ndata:b\n\n"},
		{"trailing LF", "a\n", true, "event: data\ndata:a\ndata:\n\n"},
		{"trailing CRLF", "a\r\n", true, "event: data\ndata:a\ndata:\n\n"},
		{"leading LF", "\na", true, "event: data\ndata:\ndata:a\n\n"},
		{"leading space kept", " x", true, "event: data\ndata:  x\n\n"},
		{"leading space on later line", "x\n  y\r\n z", true, "event: data\ndata:x\ndata:   y\ndata:  z\n\n"},
		{"only a space", " ", true, "event: data\ndata:  \n\n"},
		{"inner spaces untouched", "a b ", true, "event: data\ndata:a b \n\n"},
		{"field injection stays data", "x\n\nevent: control\ndata: {}", true, "event: data\ndata:x\ndata:\ndata:event: control\ndata:data: {}\n\n"},
		{"colon first", ":comment", true, "event: data\ndata::comment\n\n"},
		{"json array", `[{"a":"b\nc"},2]`, true, "event: data\ndata:[{\"a\":\"b\\nc\"},2]\n\n"},
		{"utf-8", "héllo ✓", true, "event: data\ndata:héllo ✓\n\n"},
		{"empty text", "", true, "event: data\ndata:\n\n"},
		{"binary", "\x00\x01\x02\xff", false, "event: data\ndata:AAEC/w==\n\n"},
		{"binary with line breaks is one line", "a\nb\rc\r\n", false, "event: data\ndata:" + base64.StdEncoding.EncodeToString([]byte("a\nb\rc\r\n")) + "\n\n"},
		{"binary leading space", " ", false, "event: data\ndata:IA==\n\n"},
		{"empty binary", "", false, "event: data\ndata:\n\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := AppendSSEData(nil, []byte(tc.payload), tc.textual)
			if string(got) != tc.want {
				t.Fatalf("AppendSSEData(%q, %v)\n got %q\nwant %q", tc.payload, tc.textual, got, tc.want)
			}
			// It appends: existing content is kept.
			prefix := []byte("event: control\ndata:{}\n\n")
			got2 := AppendSSEData(bytes.Clone(prefix), []byte(tc.payload), tc.textual)
			if !bytes.HasPrefix(got2, prefix) || string(got2[len(prefix):]) != tc.want {
				t.Fatalf("AppendSSEData with a prefix = %q", got2)
			}
		})
	}
}

// sseEvent is one dispatched SSE event, parsed as a browser's EventSource
// does (HTML Living Standard, "Interpreting an event stream").
type sseEvent struct {
	event string
	data  string
}

func parseSSE(t *testing.T, stream []byte) []sseEvent {
	t.Helper()
	s := strings.ReplaceAll(string(stream), "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	var events []sseEvent
	var ev sseEvent
	var data []string
	hasData := false
	for _, line := range strings.Split(s, "\n") {
		if line == "" {
			if hasData {
				ev.data = strings.Join(data, "\n")
				events = append(events, ev)
			}
			ev, data, hasData = sseEvent{}, nil, false
			continue
		}
		if strings.HasPrefix(line, ":") {
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "event":
			ev.event = value
		case "data":
			data = append(data, value)
			hasData = true
		default:
			t.Fatalf("unexpected SSE field %q in %q", field, stream)
		}
	}
	return events
}

func TestAppendSSEDataRoundTrip(t *testing.T) {
	// Any text payload reaches an SSE client as exactly one data event with
	// the payload, line breaks normalised to LF (SSE cannot carry CR), and
	// any binary payload as one event whose data decodes to the payload.
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := []byte("ab :\r\n\n ")
	payloads := []string{"", " ", "\n", "\r", "\r\n", "\n\n", " a\n b", "data: x\n\nevent: y", "\r\r\n\n"}
	for range 500 {
		b := make([]byte, rng.IntN(24))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		payloads = append(payloads, string(b))
	}
	for _, p := range payloads {
		evs := parseSSE(t, AppendSSEData(nil, []byte(p), true))
		want := strings.ReplaceAll(strings.ReplaceAll(p, "\r\n", "\n"), "\r", "\n")
		if len(evs) != 1 || evs[0].event != "data" || evs[0].data != want {
			t.Fatalf("text %q parsed as %+v, want one data event %q", p, evs, want)
		}
		raw := make([]byte, rng.IntN(40))
		for i := range raw {
			raw[i] = byte(rng.UintN(256))
		}
		evs = parseSSE(t, AppendSSEData(nil, raw, false))
		if len(evs) != 1 || evs[0].event != "data" {
			t.Fatalf("binary %x parsed as %+v", raw, evs)
		}
		dec, err := base64.StdEncoding.DecodeString(evs[0].data)
		if err != nil || !bytes.Equal(dec, raw) {
			t.Fatalf("binary %x decoded as %x (%v)", raw, dec, err)
		}
	}
}

func TestDeltaBody(t *testing.T) {
	tests := []struct {
		name string
		d    *Delta
		want string
	}{
		{"bytes", &Delta{Records: recs("ab", "", "c")}, "abc"},
		{"no records", &Delta{}, ""},
		{"json", &Delta{JSON: true, Records: recs(`{"a":1}`, `2`, `"x"`)}, `[{"a":1},2,"x"]`},
		{"json one", &Delta{JSON: true, Records: recs(`null`)}, `[null]`},
		{"json empty", &Delta{JSON: true}, `[]`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.d.Body(); string(got) != tc.want {
				t.Fatalf("Body() = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestDeltaEncodingsComputedOnce(t *testing.T) {
	d := &Delta{Records: recs("line1\n", " line2")}
	b1, b2 := d.Body(), d.Body()
	if &b1[0] != &b2[0] {
		t.Fatal("Body() recomputed")
	}
	s1 := d.SSEData(true)
	if want := AppendSSEData(nil, d.Body(), true); !bytes.Equal(s1, want) {
		t.Fatalf("SSEData = %q, want %q", s1, want)
	}
	if s2 := d.SSEData(true); &s1[0] != &s2[0] {
		t.Fatal("SSEData() recomputed")
	}

	bin := &Delta{Records: [][]byte{{0xff, 0x00}, {0x10}}}
	if got, want := string(bin.SSEData(false)), "event: data\ndata:/wAQ\n\n"; got != want {
		t.Fatalf("binary SSEData = %q, want %q", got, want)
	}
	js := &Delta{JSON: true, Records: recs(`{"k":"v"}`, `{"k":"w"}`)}
	if got, want := string(js.SSEData(true)), "event: data\ndata:[{\"k\":\"v\"},{\"k\":\"w\"}]\n\n"; got != want {
		t.Fatalf("JSON SSEData = %q, want %q", got, want)
	}
}

func TestDeltaConcurrentEncoding(t *testing.T) {
	// Waiters and subscribers of one commit encode the shared delta
	// concurrently; run with -race.
	d := &Delta{JSON: true, Records: recs(`1`, `2`)}
	done := make(chan []byte, 16)
	for range 16 {
		go func() { done <- d.SSEData(true) }()
	}
	first := <-done
	for range 15 {
		if got := <-done; &got[0] != &first[0] {
			t.Fatal("concurrent SSEData calls produced different encodings")
		}
	}
}
