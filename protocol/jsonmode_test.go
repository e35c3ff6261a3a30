package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func strs(msgs [][]byte) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = string(m)
	}
	return out
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestSplitJSON(t *testing.T) {
	tests := []struct {
		name string
		body string
		want []string
	}{
		// PROTOCOL.md §9.1.2 examples.
		{"object is one message", `{"event": "created"}`, []string{`{"event": "created"}`}},
		{"array of objects is flattened", `[{"event": "a"}, {"event": "b"}]`, []string{`{"event": "a"}`, `{"event": "b"}`}},
		{"array of arrays is flattened one level", `[[1,2], [3,4]]`, []string{`[1,2]`, `[3,4]`}},
		{"triple nesting keeps two levels", `[[[1,2,3]]]`, []string{`[[1,2,3]]`}},
		{"client-wrapped single value", `[{"x": 1}]`, []string{`{"x": 1}`}},

		{"surrounding JSON whitespace", " \t\r\n[1, 2]\n\r\t ", []string{"1", "2"}},
		{"whitespace around an object", "\n  {\"a\":1}  \n", []string{`{"a":1}`}},
		{"string scalar", `"hello"`, []string{`"hello"`}},
		{"number scalar", `-12.5e-3`, []string{`-12.5e-3`}},
		{"true", `true`, []string{`true`}},
		{"null", `null`, []string{`null`}},
		{"empty object", `{}`, []string{`{}`}},
		{"array holding an empty array", `[[]]`, []string{`[]`}},
		{"array holding empty values", `[[], {}, ""]`, []string{`[]`, `{}`, `""`}},
		{"mixed element types", `[null,true,false,"x",1.5e3,{},[]]`, []string{`null`, `true`, `false`, `"x"`, `1.5e3`, `{}`, `[]`}},
		{"inner whitespace is kept", "[ {\"a\" : [1,  2]} ,\n\"s\" ]", []string{`{"a" : [1,  2]}`, `"s"`}},
		{"brackets and commas inside strings", `["[not, an, array]", "\"]", ","]`, []string{`"[not, an, array]"`, `"\"]"`, `","`}},
		{"escapes are not decoded", `["\u00e9", "é", "\n", "\/"]`, []string{`"\u00e9"`, `"é"`, `"\n"`, `"\/"`}},
		{"numbers keep their spelling", `[1.0, 1e400, -0, 12345678901234567890, 0.1000]`, []string{`1.0`, `1e400`, `-0`, `12345678901234567890`, `0.1000`}},
		{"deep nesting", `[{"a":{"b":{"c":[[[[]]]]}}}]`, []string{`{"a":{"b":{"c":[[[[]]]]}}}`}},
	}
	for _, tc := range tests {
		for _, allowEmpty := range []bool{false, true} {
			msgs, err := SplitJSON([]byte(tc.body), allowEmpty)
			if err != nil {
				t.Errorf("%s: SplitJSON(%q, %v): %v", tc.name, tc.body, allowEmpty, err)
				continue
			}
			if got := strs(msgs); !sameStrings(got, tc.want) {
				t.Errorf("%s: SplitJSON(%q, %v) = %q; want %q", tc.name, tc.body, allowEmpty, got, tc.want)
			}
		}
	}
}

func TestSplitJSONEmptyArray(t *testing.T) {
	for _, body := range []string{"[]", "[ ]", " [\n\t] ", "\r\n[]\r\n"} {
		msgs, err := SplitJSON([]byte(body), true)
		if err != nil || len(msgs) != 0 {
			t.Errorf("SplitJSON(%q, allowEmpty) = %q, %v; want no messages, no error", body, msgs, err)
		}
		msgs, err = SplitJSON([]byte(body), false)
		if !errors.Is(err, ErrEmptyJSONArray) || !errors.Is(err, ErrBadRequest) || msgs != nil {
			t.Errorf("SplitJSON(%q, !allowEmpty) = %q, %v; want ErrEmptyJSONArray", body, msgs, err)
		}
	}
}

func TestSplitJSONInvalid(t *testing.T) {
	bodies := []string{
		"", " ", "\n\t",
		"[1,]", "[,1]", "[1 2]", "[1,,2]", "[", "]", "[1,2", "{", "}", `{"a":1,}`,
		"{} {}", "[1] [2]", "[1] x", "[1]]", "{}]", "1 2", `"a" "b"`,
		"nul", "tru", "True", "NaN", "Infinity", "undefined", "01", "[01]", "-", "1.", ".5", "+1",
		"'single'", "{a:1}", `{"a" 1}`, `"unterminated`, `"bad \x escape"`, "\"tab\there\"",
		"\x00", "[1]\x00", "// comment\n1", "/* c */ 1",
	}
	for _, body := range bodies {
		for _, allowEmpty := range []bool{false, true} {
			msgs, err := SplitJSON([]byte(body), allowEmpty)
			if !errors.Is(err, ErrBadRequest) || !IsBadRequest(err) {
				t.Errorf("SplitJSON(%q, %v) = %q, %v; want an error wrapping ErrBadRequest", body, allowEmpty, msgs, err)
			}
			if msgs != nil {
				t.Errorf("SplitJSON(%q, %v) returned messages %q with its error", body, allowEmpty, msgs)
			}
		}
	}
}

// TestSplitJSONRejectsNonJSONWhitespace: JSON whitespace is only space, tab,
// LF and CR (RFC 8259 §2); a body padded with anything else is not valid
// JSON and §9.1.4 requires rejecting it.
func TestSplitJSONRejectsNonJSONWhitespace(t *testing.T) {
	for _, body := range []string{
		"\v{}", "{}\v", "\f[1]", "[1]\f",
		"\u00a0{}",     // no-break space
		"[1]\u0085",    // next line
		"\u2028\"x\"",  // line separator
		"\u3000[1, 2]", // ideographic space
	} {
		if json.Valid([]byte(body)) {
			t.Fatalf("test premise: %q is valid JSON", body)
		}
		msgs, err := SplitJSON([]byte(body), true)
		if !errors.Is(err, ErrBadRequest) {
			t.Errorf("SplitJSON(%q) = %q, %v; want an error wrapping ErrBadRequest", body, msgs, err)
		}
	}
}

func TestAppendJSONArray(t *testing.T) {
	tests := []struct {
		dst  string
		msgs []string
		want string
	}{
		{"", nil, "[]"},
		{"", []string{}, "[]"},
		{"", []string{`1`}, `[1]`},
		{"", []string{`{"a":1}`, `[1,2]`, `"s"`}, `[{"a":1},[1,2],"s"]`},
		{"data: ", []string{`null`, `true`}, `data: [null,true]`},
		{"x", nil, "x[]"},
	}
	for _, tc := range tests {
		var msgs [][]byte
		if tc.msgs != nil {
			msgs = [][]byte{}
			for _, m := range tc.msgs {
				msgs = append(msgs, []byte(m))
			}
		}
		got := AppendJSONArray([]byte(tc.dst), msgs)
		if string(got) != tc.want {
			t.Errorf("AppendJSONArray(%q, %q) = %q; want %q", tc.dst, tc.msgs, got, tc.want)
		}
		if !json.Valid(got[len(tc.dst):]) {
			t.Errorf("AppendJSONArray(%q, %q) appended invalid JSON %q", tc.dst, tc.msgs, got[len(tc.dst):])
		}
		for i, m := range msgs {
			if string(m) != tc.msgs[i] {
				t.Errorf("AppendJSONArray modified message %d: %q", i, m)
			}
		}
	}
}

// TestAppendJSONArrayReusesCapacity: the read path appends into a pooled
// buffer; with room to spare nothing is reallocated.
func TestAppendJSONArrayReusesCapacity(t *testing.T) {
	dst := make([]byte, 0, 64)
	got := AppendJSONArray(dst, [][]byte{[]byte("1"), []byte("2")})
	if &got[0] != &dst[:1][0] {
		t.Fatal("AppendJSONArray reallocated a buffer with enough capacity")
	}
}

// TestSplitThenJoinRoundTrip: what a JSON-mode read returns for an append is
// the appended array, up to whitespace between elements.
func TestSplitThenJoinRoundTrip(t *testing.T) {
	for _, body := range []string{
		`[{"event": "a"}, {"event": "b"}]`,
		`[[1,2], [3,4]]`,
		`[[[1,2,3]]]`,
		"[ 1 ,\n 2 ]",
		`{"single": true}`,
		`"scalar"`,
	} {
		msgs, err := SplitJSON([]byte(body), false)
		if err != nil {
			t.Fatalf("SplitJSON(%q): %v", body, err)
		}
		joined := AppendJSONArray(nil, msgs)
		again, err := SplitJSON(joined, false)
		if err != nil {
			t.Fatalf("SplitJSON(AppendJSONArray(...)) of %q: %v", body, err)
		}
		if !sameStrings(strs(again), strs(msgs)) {
			t.Errorf("round trip of %q: %q then %q", body, strs(msgs), strs(again))
		}
	}
}

func isJSONSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func trimJSONSpace(b []byte) []byte {
	for len(b) > 0 && isJSONSpace(b[0]) {
		b = b[1:]
	}
	for len(b) > 0 && isJSONSpace(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	return b
}

func compactJSON(t *testing.T, b []byte) string {
	t.Helper()
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		t.Fatalf("json.Compact(%q): %v", b, err)
	}
	return buf.String()
}

func FuzzSplitJSON(f *testing.F) {
	for _, s := range []string{
		`{"event": "created"}`, `[{"event": "a"}, {"event": "b"}]`, `[[1,2], [3,4]]`, `[[[1,2,3]]]`,
		`[]`, ` [ ] `, `[1,]`, `{} {}`, ``, `"x"`, `[1, "a\"]", {"b": [null]}]`, `[1e400, -0]`,
		"\n[\n1\n]\n", `[`, `]`, `[[`, `["\u00e9"]`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	f.Fuzz(func(t *testing.T, body []byte, allowEmpty bool) {
		orig := bytes.Clone(body)
		msgs, err := SplitJSON(body, allowEmpty)
		if !bytes.Equal(body, orig) {
			t.Fatalf("SplitJSON modified its input")
		}
		if err != nil {
			if !errors.Is(err, ErrBadRequest) {
				t.Fatalf("SplitJSON(%q) error %v does not wrap ErrBadRequest", body, err)
			}
			if msgs != nil {
				t.Fatalf("SplitJSON(%q) returned messages with error %v", body, err)
			}
			// Valid JSON is refused only as an empty append.
			if json.Valid(body) && !(errors.Is(err, ErrEmptyJSONArray) && !allowEmpty && compactJSON(t, body) == "[]") {
				t.Fatalf("SplitJSON rejected valid JSON %q: %v", body, err)
			}
			return
		}
		if !json.Valid(body) {
			t.Fatalf("SplitJSON accepted invalid JSON %q as %q", body, msgs)
		}
		for i, m := range msgs {
			if !json.Valid(m) {
				t.Fatalf("message %d of %q is not valid JSON: %q", i, body, m)
			}
		}
		joined := AppendJSONArray(nil, msgs)
		if !json.Valid(joined) {
			t.Fatalf("re-joined messages of %q are not valid JSON: %q", body, joined)
		}
		trimmed := trimJSONSpace(body)
		if trimmed[0] != '[' {
			if len(msgs) != 1 || !bytes.Equal(msgs[0], trimmed) {
				t.Fatalf("non-array %q split into %q; want it whole", body, msgs)
			}
			return
		}
		// Flattening one level and joining gives back the same array.
		if compactJSON(t, joined) != compactJSON(t, body) {
			t.Fatalf("re-joined %q differs from body %q", joined, body)
		}
		// Each message is the exact source text: the body is the messages in
		// order separated only by whitespace, brackets and commas.
		rest := trimmed
		for i, m := range msgs {
			j := bytes.Index(rest, m)
			if j < 0 {
				t.Fatalf("message %d %q is not source text of %q", i, m, body)
			}
			if gap := strings.Trim(string(rest[:j]), " \t\r\n[,"); gap != "" {
				t.Fatalf("message %d of %q preceded by %q", i, body, gap)
			}
			rest = rest[j+len(m):]
		}
		closing := " \t\r\n]"
		if len(msgs) == 0 {
			closing += "["
		}
		if gap := strings.Trim(string(rest), closing); gap != "" {
			t.Fatalf("body %q ends with %q after its last message", body, gap)
		}
	})
}

func BenchmarkSplitJSON(b *testing.B) {
	var sb strings.Builder
	sb.WriteByte('[')
	for i := 0; i < 100; i++ {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"id":%d,"type":"event","ok":true}`, i)
	}
	sb.WriteByte(']')
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		msgs, err := SplitJSON(body, false)
		if err != nil || len(msgs) != 100 {
			b.Fatalf("SplitJSON: %d messages, %v", len(msgs), err)
		}
	}
}

func BenchmarkAppendJSONArray(b *testing.B) {
	msgs := make([][]byte, 100)
	for i := range msgs {
		msgs[i] = fmt.Appendf(nil, `{"id":%d,"type":"event","ok":true}`, i)
	}
	buf := make([]byte, 0, 8192)
	b.ReportAllocs()
	for b.Loop() {
		buf = AppendJSONArray(buf[:0], msgs)
	}
}
