package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// maxJSONDepth is encoding/json's nesting limit.
const maxJSONDepth = 10000

// depthOf is a reference nesting depth of a decoded JSON value, independent
// of the byte scan in SplitJSON.
func depthOf(v any) int {
	var measure func(v any) int
	measure = func(v any) int {
		d := 0
		switch v := v.(type) {
		case []any:
			for _, e := range v {
				d = max(d, measure(e))
			}
			return d + 1
		case map[string]any:
			for _, e := range v {
				d = max(d, measure(e))
			}
			return d + 1
		}
		return 0
	}
	return measure(v)
}

// clip shortens an input for a failure message.
func clip(b []byte) string {
	if len(b) > 200 {
		return fmt.Sprintf("%q... (%d bytes)", b[:200], len(b))
	}
	return fmt.Sprintf("%q", b)
}

// decodeJSONValue decodes one JSON value exactly (numbers as json.Number).
func decodeJSONValue(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return v
}

// FuzzJSONMode checks JSON-mode splitting and joining (§9.1) by value:
// SplitJSON never panics and never changes its input; it accepts exactly
// the valid JSON bodies (but "[]" on append); every message is valid JSON;
// AppendJSONArray of the messages is valid JSON equal in value to the body
// if it is an array, else to the one-element array holding it (what a read
// returns); splitting that again gives the same messages (reads are stable);
// create and append agree on everything but the empty array; and wrapping
// the body in one more array gives it back as the single message.
func FuzzJSONMode(f *testing.F) {
	for _, s := range []string{
		`{"event": "created"}`, `[{"event": "a"}, {"event": "b"}]`, `[[1,2], [3,4]]`, `[[[1,2,3]]]`, `[{"x": 1}]`,
		`[]`, ` [ ] `, "\t[\r\n]\n", `[[]]`, `[[], {}, ""]`, `[null,true,false,"x",1.5e3,{},[]]`,
		"[ {\"a\" : [1,  2]} ,\n\"s\" ]", `["[not, an, array]", "\"]", ","]`, `["\u00e9", "é", "\n", "\/"]`,
		`[1.0, 1e400, -0, 12345678901234567890, 0.1000]`, `[{"a":{"b":{"c":[[[[]]]]}}}]`, `{"a":1,"a":2}`,
		`"hello"`, `-12.5e-3`, `true`, `null`, `{}`, `""`,
		"\"\xff\xfe\"", "[\"\xed\xa0\x80\"]", "[\"a\xc3\"]", "\xef\xbb\xbf[1]", // invalid UTF-8, surrogate, BOM
		"\u00a0[1]", "[1]\u2028", "\x00", "\v[1]", // non-JSON whitespace
		``, ` `, "\n\t\r ", `[`, `]`, `[[`, `[1,]`, `[,1]`, `[1 2]`, `{} {}`, `[1] 2`, `{"a":}`, `nul`, `01`, `1.`, `.5`,
		`"\ud800"`, `"\u00"`, `'a'`, `[1]]`, `[[1]`,
	} {
		f.Add([]byte(s), false)
		f.Add([]byte(s), true)
	}
	// Nesting at encoding/json's limit of 10,000 levels: a top-level array
	// may reach it (its messages are one level shallower), a single value
	// may not, since a read returns it inside an array.
	nested := func(prefix string, depth int) []byte {
		return []byte(prefix + strings.Repeat("[", depth) + strings.Repeat("]", depth) + strings.Repeat("}", len(prefix)/5))
	}
	f.Add(nested("", maxJSONDepth), false)
	f.Add(nested("", maxJSONDepth+1), false)
	f.Add(nested(`{"a":`, maxJSONDepth-1), false)
	f.Add(nested(`{"a":`, maxJSONDepth-2), true)

	f.Fuzz(func(t *testing.T, body []byte, allowEmpty bool) {
		orig := bytes.Clone(body)
		msgs, err := SplitJSON(body, allowEmpty)
		if !bytes.Equal(body, orig) {
			t.Fatalf("SplitJSON modified its input %s to %s", clip(orig), clip(body))
		}
		other, otherErr := SplitJSON(body, !allowEmpty)
		trimmed := bytes.Trim(body, " \t\r\n")
		valid := json.Valid(body)
		// Which valid bodies are refused: the empty array on append, and a
		// single value nested so deep that a read, which returns it inside
		// an array, would pass encoding/json's limit.
		var value any
		emptyArray, tooDeep := false, false
		if valid {
			value = decodeJSONValue(t, trimmed)
			emptyArray = reflect.DeepEqual(value, []any{})
			_, isArray := value.([]any)
			tooDeep = !isArray && depthOf(value) >= maxJSONDepth
		}
		if err != nil {
			if !errors.Is(err, ErrBadRequest) || msgs != nil {
				t.Fatalf("SplitJSON(%s) = %q, %v; want nil and an error wrapping ErrBadRequest", clip(body), msgs, err)
			}
			if valid && !(emptyArray && !allowEmpty) && !tooDeep {
				t.Fatalf("SplitJSON(%s, %v) refused valid JSON: %v", clip(body), allowEmpty, err)
			}
			if errors.Is(err, ErrEmptyJSONArray) != (emptyArray && !allowEmpty) {
				t.Fatalf("SplitJSON(%s, %v) = %v; empty array: %v", clip(body), allowEmpty, err, emptyArray)
			}
			// Create (allowEmpty) and append agree but for the empty array.
			if emptyArray {
				if otherErr != nil || len(other) != 0 {
					t.Fatalf("SplitJSON(%s, true) = %q, %v; want no messages", clip(body), other, otherErr)
				}
			} else if otherErr == nil {
				t.Fatalf("SplitJSON(%s) accepted with allowEmpty=%v but refused with %v: %v", clip(body), !allowEmpty, allowEmpty, err)
			}
			return
		}
		if !valid || tooDeep || (emptyArray && !allowEmpty) {
			t.Fatalf("SplitJSON(%s, %v) accepted it (valid %v, too deep %v, empty array %v)", clip(body), allowEmpty, valid, tooDeep, emptyArray)
		}
		if len(msgs) > 0 && (otherErr != nil || !equalMessages(msgs, other)) {
			t.Fatalf("SplitJSON(%s) depends on allowEmpty: %v", clip(body), otherErr)
		}
		for i, m := range msgs {
			if !json.Valid(m) {
				t.Fatalf("message %d of %s is not valid JSON: %s", i, clip(body), clip(m))
			}
			if len(m) == 0 || len(bytes.Trim(m, " \t\r\n")) != len(m) {
				t.Fatalf("message %d of %s has surrounding whitespace: %s", i, clip(body), clip(m))
			}
		}

		// What a read returns.
		joined := AppendJSONArray(nil, msgs)
		if !json.Valid(joined) {
			t.Fatalf("AppendJSONArray of the messages of %s is not valid JSON: %s", clip(body), clip(joined))
		}
		want := value
		if _, isArray := want.([]any); !isArray {
			want = []any{want}
		}
		if got := decodeJSONValue(t, joined); !reflect.DeepEqual(got, want) {
			t.Fatalf("AppendJSONArray of the messages of %s is %s: value %#v, want %#v", clip(body), clip(joined), got, want)
		}
		// Appending to a non-empty buffer leaves its prefix alone.
		if got := AppendJSONArray([]byte("prefix"), msgs); !bytes.Equal(got, append([]byte("prefix"), joined...)) {
			t.Fatalf("AppendJSONArray onto %q = %s", "prefix", clip(got))
		}

		// Splitting a read again (as a client re-appending what it read
		// would) gives the same messages.
		again, err := SplitJSON(joined, true)
		if err != nil || !equalMessages(again, msgs) {
			t.Fatalf("SplitJSON(AppendJSONArray(messages of %s)) = %d messages, %v; want the same %d", clip(body), len(again), err, len(msgs))
		}

		// One more level of nesting is flattened back to the body itself,
		// unless the body is an array already at the nesting limit.
		wrapped := append(append([]byte("[ "), body...), " ]"...)
		one, err := SplitJSON(wrapped, false)
		if depthOf(value) >= maxJSONDepth {
			if err == nil {
				t.Fatalf("SplitJSON accepted %s, nested %d levels", clip(wrapped), maxJSONDepth+1)
			}
		} else if err != nil || len(one) != 1 || !bytes.Equal(one[0], trimmed) {
			t.Fatalf("SplitJSON(%s) = %d messages, %v; want the single message %s", clip(wrapped), len(one), err, clip(trimmed))
		}
	})
}

func equalMessages(a, b [][]byte) bool { return slices.EqualFunc(a, b, bytes.Equal) }

// TestSplitJSONNestingLimit: a single (non-array) value nested 10,000
// levels was accepted as one message, but a read returns it inside an
// array, 10,001 levels deep, which encoding/json (and SplitJSON itself)
// refuses as invalid. Found by FuzzJSONMode.
func TestSplitJSONNestingLimit(t *testing.T) {
	value := func(depth int) []byte { // {"a":[[...]]} nested depth levels
		return []byte(`{"a":` + strings.Repeat("[", depth-1) + `"]}[{"` + strings.Repeat("]", depth-1) + `}`)
	}
	array := func(depth int) []byte {
		return []byte(strings.Repeat("[", depth) + strings.Repeat("]", depth))
	}
	for _, allowEmpty := range []bool{false, true} {
		msgs, err := SplitJSON(value(maxJSONDepth-1), allowEmpty)
		if err != nil || len(msgs) != 1 || !json.Valid(AppendJSONArray(nil, msgs)) {
			t.Errorf("value nested %d levels: %d messages, %v", maxJSONDepth-1, len(msgs), err)
		}
		for _, body := range [][]byte{value(maxJSONDepth), value(maxJSONDepth + 1), append(append([]byte("\n"), value(maxJSONDepth)...), ' ')} {
			if msgs, err := SplitJSON(body, allowEmpty); !errors.Is(err, ErrBadRequest) || msgs != nil {
				t.Errorf("value of %d bytes nested too deep: %d messages, %v; want a bad-request error", len(body), len(msgs), err)
			}
		}
		// An array may reach the limit: its messages are a level shallower,
		// and a read puts them back in an array of the same depth.
		msgs, err = SplitJSON(array(maxJSONDepth), allowEmpty)
		if err != nil || len(msgs) != 1 || !json.Valid(AppendJSONArray(nil, msgs)) {
			t.Errorf("array nested %d levels: %d messages, %v", maxJSONDepth, len(msgs), err)
		}
	}
	// Brackets inside strings do not count, escaped quotes do not end them,
	// and an escaped backslash does not escape the closing quote.
	inString := []byte(`{"a":"\"` + strings.Repeat("[{", maxJSONDepth) + `"}`)
	if msgs, err := SplitJSON(inString, false); err != nil || len(msgs) != 1 {
		t.Errorf("brackets in a string: %d messages, %v", len(msgs), err)
	}
	afterBackslash := func(depth int) []byte {
		return []byte(`{"a":"\\","b":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`)
	}
	if msgs, err := SplitJSON(afterBackslash(maxJSONDepth-1), false); err != nil || len(msgs) != 1 {
		t.Errorf("after an escaped backslash, %d levels: %d messages, %v", maxJSONDepth-1, len(msgs), err)
	}
	if _, err := SplitJSON(afterBackslash(maxJSONDepth), false); !errors.Is(err, ErrBadRequest) {
		t.Errorf("after an escaped backslash, %d levels: %v; want a bad-request error", maxJSONDepth, err)
	}
}
