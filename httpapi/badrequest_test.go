package httpapi_test

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/streamd/streamd/protocol"
)

type badCase struct {
	name    string
	method  string
	target  string
	body    []byte
	chunked bool // send the body without Content-Length
	hdr     []string
	want    int
	// preRouting: rejected by net/http before streamd sees the request,
	// so streamd's own headers are not expected.
	preRouting bool
}

// TestBadRequests checks that malformed requests get a precise 4xx (never a
// 5xx) and leave stored data untouched.
func TestBadRequests(t *testing.T) {
	e := newEnv(t, withMaxAppend(1024))
	fixture := bytes.Repeat([]byte{0, 1, 2, 0xff, '\n', '\r'}, 50)
	e.expect(t, http.StatusCreated, http.MethodPut, sp("fixture"), fixture)
	e.expect(t, http.StatusNoContent, http.MethodPost, sp("fixture"), []byte("tail"), "Content-Type", "application/octet-stream")
	fixture = append(fixture, "tail"...)
	jsonFixture := `[{"a":1},"two",[3]]`
	e.expect(t, http.StatusCreated, http.MethodPut, sp("jfix"), []byte(jsonFixture), "Content-Type", "application/json")
	fx := sp("fixture")
	bin := []string{"Content-Type", "application/octet-stream"}
	producer := func(id, epoch, seq string) []string {
		return append([]string{"Producer-Id", id, "Producer-Epoch", epoch, "Producer-Seq", seq}, bin...)
	}
	big := bytes.Repeat([]byte("x"), 2000)

	cases := []badCase{
		// Offsets.
		{name: "offset garbage", target: fx + "?offset=garbage", want: 400},
		{name: "offset comma", target: fx + "?offset=" + e.tok(t, fx, 1) + "," + e.tok(t, fx, 2), want: 400},
		{name: "offset leading space", target: fx + "?offset=%20" + e.tok(t, fx, 1), want: 400},
		{name: "offset trailing space", target: fx + "?offset=-1%20", want: 400},
		{name: "offset plus as space", target: fx + "?offset=-1+", want: 400},
		{name: "offset empty", target: fx + "?offset=", want: 400},
		{name: "offset repeated", target: fx + "?offset=-1&offset=-1", want: 400},
		{name: "offset repeated differently", target: fx + "?offset=-1&offset=now", want: 400},
		{name: "offset of another incarnation", target: fx + "?offset=0000000000009999_0000000000000000", want: 400},
		{name: "offset of a stream before segments", target: fx + "?offset=" + off(1), want: 400},
		{name: "offset short", target: fx + "?offset=0_0", want: 400},
		{name: "offset wrong separator", target: fx + "?offset=0000000000000000-0000000000000001", want: 400},
		{name: "offset -2", target: fx + "?offset=-2", want: 400},
		{name: "offset NOW", target: fx + "?offset=NOW", want: 400},
		{name: "offset beyond tail", target: fx + "?offset=" + e.tok(t, fx, uint64(len(fixture))+1), want: 400},
		{name: "offset far beyond tail", target: fx + "?offset=" + e.tok(t, fx, protocol.MaxPosition), want: 400},
		{name: "offset beyond tail long-poll", target: fx + "?live=long-poll&offset=" + e.tok(t, fx, uint64(len(fixture))+1), want: 400},
		{name: "offset beyond tail sse", target: fx + "?live=sse&offset=" + e.tok(t, fx, uint64(len(fixture))+1), want: 400},
		{name: "json offset inside a message", target: sp("jfix") + "?offset=" + e.tok(t, sp("jfix"), 1), want: 400},
		{name: "live garbage", target: fx + "?offset=-1&live=garbage", want: 400},
		{name: "live wrong case", target: fx + "?offset=-1&live=SSE", want: 400},
		{name: "long-poll without offset", target: fx + "?live=long-poll", want: 400},
		{name: "sse without offset", target: fx + "?live=sse", want: 400},

		// Content types.
		{name: "put content-type garbage", method: "PUT", target: sp("fresh"), hdr: []string{"Content-Type", "garbage"}, want: 400},
		{name: "put content-type text/", method: "PUT", target: sp("fresh"), hdr: []string{"Content-Type", "text/"}, want: 400},
		{name: "put content-type /plain", method: "PUT", target: sp("fresh"), hdr: []string{"Content-Type", "/plain"}, want: 400},
		{name: "put content-type a/b/c", method: "PUT", target: sp("fresh"), hdr: []string{"Content-Type", "a/b/c"}, want: 400},
		{name: "post content-type garbage", method: "POST", target: fx, body: []byte("x"), hdr: []string{"Content-Type", "garbage"}, want: 400},
		{name: "post content-type text/", method: "POST", target: fx, body: []byte("x"), hdr: []string{"Content-Type", "text/"}, want: 400},
		{name: "post content-type empty", method: "POST", target: fx, body: []byte("x"), hdr: []string{"Content-Type", ""}, want: 400},
		{name: "post content-type missing", method: "POST", target: fx, body: []byte("x"), want: 400},
		{name: "post content-type mismatch", method: "POST", target: fx, body: []byte("x"), hdr: []string{"Content-Type", "text/plain"}, want: 409},
		{name: "post text to json stream", method: "POST", target: sp("jfix"), body: []byte("1"), hdr: []string{"Content-Type", "text/plain"}, want: 409},

		// Bodies.
		{name: "post empty body", method: "POST", target: fx, body: []byte{}, hdr: bin, want: 400},
		{name: "post no body", method: "POST", target: fx, hdr: bin, want: 400},
		{name: "post invalid json", method: "POST", target: sp("jfix"), body: []byte(`{"a":`), hdr: []string{"Content-Type", "application/json"}, want: 400},
		{name: "post json trailing garbage", method: "POST", target: sp("jfix"), body: []byte(`[1] 2`), hdr: []string{"Content-Type", "application/json"}, want: 400},
		{name: "post json trailing comma", method: "POST", target: sp("jfix"), body: []byte(`[1,]`), hdr: []string{"Content-Type", "application/json"}, want: 400},
		{name: "post json whitespace", method: "POST", target: sp("jfix"), body: []byte("  \n"), hdr: []string{"Content-Type", "application/json"}, want: 400},
		{name: "post empty json array", method: "POST", target: sp("jfix"), body: []byte(`[]`), hdr: []string{"Content-Type", "application/json"}, want: 400},
		{name: "post empty json array spaced", method: "POST", target: sp("jfix"), body: []byte(" [ ] "), hdr: []string{"Content-Type", "application/json"}, want: 400},
		{name: "put invalid json", method: "PUT", target: sp("fresh"), body: []byte(`nope`), hdr: []string{"Content-Type", "application/json"}, want: 400},
		{name: "post body too large", method: "POST", target: fx, body: big, hdr: bin, want: 413},
		{name: "post chunked body too large", method: "POST", target: fx, body: big, chunked: true, hdr: bin, want: 413},
		{name: "put body too large", method: "PUT", target: sp("fresh"), body: big, want: 413},
		{name: "put chunked body too large", method: "PUT", target: sp("fresh"), body: big, chunked: true, want: 413},

		// Expiry.
		{name: "ttl plus", method: "PUT", target: sp("fresh"), hdr: []string{"Stream-TTL", "+1"}, want: 400},
		{name: "ttl leading zero", method: "PUT", target: sp("fresh"), hdr: []string{"Stream-TTL", "01"}, want: 400},
		{name: "ttl fraction", method: "PUT", target: sp("fresh"), hdr: []string{"Stream-TTL", "1.0"}, want: 400},
		{name: "ttl exponent", method: "PUT", target: sp("fresh"), hdr: []string{"Stream-TTL", "1e3"}, want: 400},
		{name: "ttl negative", method: "PUT", target: sp("fresh"), hdr: []string{"Stream-TTL", "-1"}, want: 400},
		{name: "ttl hex", method: "PUT", target: sp("fresh"), hdr: []string{"Stream-TTL", "0x10"}, want: 400},
		{name: "ttl word", method: "PUT", target: sp("fresh"), hdr: []string{"Stream-TTL", "soon"}, want: 400},
		{name: "ttl overflow", method: "PUT", target: sp("fresh"), hdr: []string{"Stream-TTL", "99999999999999999999"}, want: 400},
		{name: "ttl and expires-at", method: "PUT", target: sp("fresh"), hdr: []string{"Stream-TTL", "60", "Stream-Expires-At", "2099-01-01T00:00:00Z"}, want: 400},
		{name: "expires-at word", method: "PUT", target: sp("fresh"), hdr: []string{"Stream-Expires-At", "tomorrow"}, want: 400},
		{name: "expires-at date only", method: "PUT", target: sp("fresh"), hdr: []string{"Stream-Expires-At", "2099-01-01"}, want: 400},
		{name: "expires-at no zone", method: "PUT", target: sp("fresh"), hdr: []string{"Stream-Expires-At", "2099-01-01T00:00:00"}, want: 400},
		{name: "expires-at month 13", method: "PUT", target: sp("fresh"), hdr: []string{"Stream-Expires-At", "2099-13-01T00:00:00Z"}, want: 400},
		{name: "expires-at unix", method: "PUT", target: sp("fresh"), hdr: []string{"Stream-Expires-At", "4102444800"}, want: 400},

		// Producer headers.
		{name: "producer id only", method: "POST", target: fx, body: []byte("x"), hdr: append([]string{"Producer-Id", "p"}, bin...), want: 400},
		{name: "producer without seq", method: "POST", target: fx, body: []byte("x"), hdr: append([]string{"Producer-Id", "p", "Producer-Epoch", "0"}, bin...), want: 400},
		{name: "producer without id", method: "POST", target: fx, body: []byte("x"), hdr: append([]string{"Producer-Epoch", "0", "Producer-Seq", "0"}, bin...), want: 400},
		{name: "producer seq only", method: "POST", target: fx, body: []byte("x"), hdr: append([]string{"Producer-Seq", "0"}, bin...), want: 400},
		{name: "producer empty id", method: "POST", target: fx, body: []byte("x"), hdr: producer("", "0", "0"), want: 400},
		{name: "producer id too long", method: "POST", target: fx, body: []byte("x"), hdr: producer(strings.Repeat("p", 1025), "0", "0"), want: 400},
		{name: "producer partial on close", method: "POST", target: fx, hdr: []string{"Producer-Id", "p", "Stream-Closed", "true"}, want: 400},
	}
	for _, bad := range []string{"abc", "-1", "1.5", "01", "+1", "1e2", "9007199254740992", "18446744073709551616", ""} {
		cases = append(cases,
			badCase{name: "producer epoch " + bad, method: "POST", target: fx, body: []byte("x"), hdr: producer("p", bad, "0"), want: 400},
			badCase{name: "producer seq " + bad, method: "POST", target: fx, body: []byte("x"), hdr: producer("p", "0", bad), want: 400})
	}

	// Paths, for every method that takes one.
	badPaths := []struct {
		name, path string
		preRouting bool
	}{
		{"dotdot", "a/../b", false},
		{"dotdot alone", "..", false},
		{"dotdot last", "a/..", false},
		{"dot", ".", false},
		{"dot first", "./a", false},
		{"dot middle", "a/./b", false},
		{"empty segment", "a//b", false},
		{"leading slash", "/a", false},
		{"trailing slash", "a/", false},
		{"encoded dotdot", "%2e%2e", false},
		{"encoded dotdot upper", "a/%2E%2E/b", false},
		{"half encoded dotdot", ".%2e", false},
		{"encoded dot", "%2e", false},
		{"encoded slashes", "a%2F%2Fb", false},
		{"encoded traversal", "a%2f..%2fb", false},
		{"invalid escape", "%zz", true},
		{"invalid escape inside", "a%zzb", true},
		{"truncated escape", "a%", true},
		{"nul", "a%00b", false},
		{"newline", "a%0Ab", false},
		{"del", "a%7F", false},
		{"invalid utf-8", "a%ff", false},
		{"too long", strings.Repeat("a", 1025), false},
		{"too long segments", strings.Repeat("abc/", 256) + "a", false},
		{"empty", "", false},
	}
	for _, p := range badPaths {
		for _, m := range []string{"PUT", "POST", "GET", "HEAD", "DELETE"} {
			c := badCase{name: "path " + p.name + " " + m, method: m, target: httpPrefix + "/" + p.path, want: 400, preRouting: p.preRouting}
			if m == "POST" {
				c.body, c.hdr = []byte("x"), bin
			}
			cases = append(cases, c)
		}
	}
	cases = append(cases,
		badCase{name: "patch", method: "PATCH", target: fx, body: []byte("x"), hdr: bin, want: 405},
		badCase{name: "patch on bad path", method: "PATCH", target: sp("a/../b"), want: 405},
	)

	check := func(t *testing.T) {
		t.Helper()
		r := e.expect(t, http.StatusOK, http.MethodGet, fx, nil)
		if !bytes.Equal(r.body, fixture) {
			t.Fatalf("fixture changed: %q", truncate(r.body))
		}
		wantHeader(t, r, "Stream-Next-Offset", e.tok(t, fx, uint64(len(fixture))))
		r = e.expect(t, http.StatusOK, http.MethodGet, sp("jfix"), nil)
		if string(r.body) != jsonFixture {
			t.Fatalf("json fixture changed: %q", r.body)
		}
		wantNoHeader(t, r, "Stream-Closed")
		e.expect(t, http.StatusNotFound, http.MethodHead, sp("fresh"), nil)
		e.expect(t, http.StatusNotFound, http.MethodHead, sp("p"), nil)
	}

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.method == "" {
				c.method = http.MethodGet
			}
			var body io.Reader
			if c.body != nil {
				body = bytes.NewReader(c.body)
				if c.chunked {
					body = io.MultiReader(body) // hides the length
				}
			}
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			r, err := e.send(ctx, c.method, c.target, body, c.hdr...)
			if err != nil {
				t.Fatalf("%s %s: %v", c.method, c.target, err)
			}
			if r.status != c.want {
				t.Fatalf("%s %s: status %d, want %d (body %q)", c.method, c.target, r.status, c.want, truncate(r.body))
			}
			if !c.preRouting {
				wantHeader(t, r, "X-Content-Type-Options", "nosniff")
				wantHeader(t, r, "Cross-Origin-Resource-Policy", "cross-origin")
				wantHeader(t, r, "Cache-Control", "no-store")
			}
			if c.want == http.StatusMethodNotAllowed && r.get("Allow") == "" {
				t.Errorf("405 without Allow")
			}
			check(t)
		})
	}

	// The limits are inclusive: a body of exactly MaxAppendBytes is fine.
	e.expect(t, http.StatusCreated, http.MethodPut, sp("limit"), nil)
	e.expect(t, http.StatusNoContent, http.MethodPost, sp("limit"), bytes.Repeat([]byte("y"), 1024), bin...)
	r, err := e.send(context.Background(), http.MethodPost, sp("limit"), io.MultiReader(bytes.NewReader(bytes.Repeat([]byte("z"), 1024))), bin...)
	if err != nil || r.status != http.StatusNoContent {
		t.Fatalf("chunked append of exactly the limit: %v %v", r, err)
	}
	// A path of exactly 1024 bytes is accepted.
	e.expect(t, http.StatusCreated, http.MethodPut, sp(strings.Repeat("b", 1024)), nil)
	// PUT with an empty JSON array creates an empty JSON stream.
	e.expect(t, http.StatusCreated, http.MethodPut, sp("empty-json"), []byte("[]"), "Content-Type", "application/json")
	if r := e.expect(t, http.StatusOK, http.MethodGet, sp("empty-json"), nil); string(r.body) != "[]" {
		t.Errorf("empty JSON stream reads %q", r.body)
	}
}

const httpPrefix = "/v1/stream"
