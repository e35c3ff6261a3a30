package httpapi_test

import (
	"bytes"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// etagRE: a strong, quoted tag of the form id:start:end (§5.6).
var etagRE = regexp.MustCompile(`^"[^":]+:[^":]+:[^"]+"$`)

func TestStreamLifecycle(t *testing.T) {
	e := newEnv(t)
	path := sp("life/cycle")

	r := e.expect(t, http.StatusCreated, http.MethodPut, path, []byte("hello "), "Content-Type", "text/plain")
	wantHeader(t, r, "Location", e.url+path)
	wantHeader(t, r, "Content-Type", "text/plain")
	wantHeader(t, r, "Stream-Next-Offset", e.tok(t, path, 6))
	wantNoHeader(t, r, "Stream-Closed")

	// Same configuration again: idempotent 200 without Location.
	r = e.expect(t, http.StatusOK, http.MethodPut, path, nil, "Content-Type", "text/plain")
	wantNoHeader(t, r, "Location")
	wantHeader(t, r, "Stream-Next-Offset", e.tok(t, path, 6))
	// A different configuration is a conflict.
	e.expect(t, http.StatusConflict, http.MethodPut, path, nil, "Content-Type", "application/json")
	e.expect(t, http.StatusConflict, http.MethodPut, path, nil, "Content-Type", "text/plain", "Stream-Closed", "true")
	e.expect(t, http.StatusConflict, http.MethodPut, path, nil, "Content-Type", "text/plain", "Stream-TTL", "60")

	r = e.expect(t, http.StatusNoContent, http.MethodPost, path, []byte("world"), "Content-Type", "text/plain")
	wantHeader(t, r, "Stream-Next-Offset", e.tok(t, path, 11))
	wantNoHeader(t, r, "Stream-Closed")
	// Content types compare by essence: case and parameters do not matter.
	e.expect(t, http.StatusNoContent, http.MethodPost, path, []byte("!"), "Content-Type", "TEXT/Plain; charset=utf-8")

	full := e.expect(t, http.StatusOK, http.MethodGet, path, nil)
	if string(full.body) != "hello world!" {
		t.Fatalf("body %q", full.body)
	}
	wantHeader(t, full, "Content-Type", "text/plain")
	wantHeader(t, full, "Stream-Next-Offset", e.tok(t, path, 12))
	wantHeader(t, full, "Stream-Up-To-Date", "true")
	wantNoHeader(t, full, "Stream-Closed")
	if !strings.Contains(full.get("Cache-Control"), "max-age") {
		t.Errorf("catch-up Cache-Control = %q, want a cacheable policy", full.get("Cache-Control"))
	}
	tag := full.get("ETag")
	if !etagRE.MatchString(tag) {
		t.Fatalf("ETag %q is not a quoted entity tag", tag)
	}
	if r := e.expect(t, http.StatusOK, http.MethodGet, path+"?offset=-1", nil); !bytes.Equal(r.body, full.body) || r.get("ETag") != tag {
		t.Errorf("offset=-1 differs from no offset: %v", r)
	}

	mid := e.expect(t, http.StatusOK, http.MethodGet, path+"?offset="+e.tok(t, path, 6), nil)
	if string(mid.body) != "world!" {
		t.Errorf("read from 6: %q", mid.body)
	}
	if mid.get("ETag") == tag {
		t.Errorf("ETag %q reused for a different range", tag)
	}

	atTail := e.expect(t, http.StatusOK, http.MethodGet, path+"?offset="+e.tok(t, path, 12), nil)
	if len(atTail.body) != 0 {
		t.Errorf("read at tail: %q", atTail.body)
	}
	wantHeader(t, atTail, "Stream-Next-Offset", e.tok(t, path, 12))
	wantHeader(t, atTail, "Stream-Up-To-Date", "true")
	wantHeader(t, atTail, "Cache-Control", "no-store")

	head := e.expect(t, http.StatusOK, http.MethodHead, path, nil)
	wantHeader(t, head, "Content-Type", "text/plain")
	wantHeader(t, head, "Stream-Next-Offset", e.tok(t, path, 12))
	wantHeader(t, head, "Cache-Control", "no-store")
	wantNoHeader(t, head, "Stream-Closed")
	wantNoHeader(t, head, "Stream-TTL")
	wantNoHeader(t, head, "Stream-Expires-At")

	// Conditional reads.
	for _, inm := range []string{tag, "W/" + tag, `"nope", ` + tag, "*"} {
		r := e.expect(t, http.StatusNotModified, http.MethodGet, path, nil, "If-None-Match", inm)
		if len(r.body) != 0 {
			t.Errorf("304 with body %q", r.body)
		}
	}
	e.expect(t, http.StatusOK, http.MethodGet, path, nil, "If-None-Match", `"other"`)

	// Close: the ETag of the same range must change.
	r = e.expect(t, http.StatusNoContent, http.MethodPost, path, nil, "Stream-Closed", "true")
	wantHeader(t, r, "Stream-Closed", "true")
	wantHeader(t, r, "Stream-Next-Offset", e.tok(t, path, 12))
	closed := e.expect(t, http.StatusOK, http.MethodGet, path, nil, "If-None-Match", tag)
	if string(closed.body) != "hello world!" {
		t.Errorf("closed body %q", closed.body)
	}
	wantHeader(t, closed, "Stream-Closed", "true")
	if ct := closed.get("ETag"); ct == tag || !etagRE.MatchString(ct) {
		t.Errorf("ETag after close = %q, was %q", ct, tag)
	}
	eof := e.expect(t, http.StatusOK, http.MethodGet, path+"?offset="+e.tok(t, path, 12), nil)
	wantHeader(t, eof, "Stream-Closed", "true")
	wantHeader(t, eof, "Stream-Up-To-Date", "true")
	if len(eof.body) != 0 {
		t.Errorf("EOF read body %q", eof.body)
	}
	wantHeader(t, e.expect(t, http.StatusOK, http.MethodHead, path, nil), "Stream-Closed", "true")

	// Appends to a closed stream: 409 with the final offset; closing again
	// is idempotent.
	r = e.expect(t, http.StatusConflict, http.MethodPost, path, []byte("late"), "Content-Type", "text/plain")
	wantHeader(t, r, "Stream-Closed", "true")
	wantHeader(t, r, "Stream-Next-Offset", e.tok(t, path, 12))
	r = e.expect(t, http.StatusNoContent, http.MethodPost, path, nil, "Stream-Closed", "true", "Content-Type", "application/nonsense")
	wantHeader(t, r, "Stream-Closed", "true")
	// Re-creating a closed stream without Stream-Closed is a conflict; with it, 200.
	e.expect(t, http.StatusConflict, http.MethodPut, path, nil, "Content-Type", "text/plain")
	e.expect(t, http.StatusOK, http.MethodPut, path, nil, "Content-Type", "text/plain", "Stream-Closed", "true")

	e.expect(t, http.StatusNoContent, http.MethodDelete, path, nil)
	e.expect(t, http.StatusNotFound, http.MethodHead, path, nil)
	e.expect(t, http.StatusNotFound, http.MethodGet, path, nil)
	e.expect(t, http.StatusNotFound, http.MethodPost, path, []byte("x"), "Content-Type", "text/plain")
	e.expect(t, http.StatusNotFound, http.MethodDelete, path, nil)

	// A new incarnation starts empty and never serves the old ETags.
	r = e.expect(t, http.StatusCreated, http.MethodPut, path, nil, "Content-Type", "text/plain")
	wantHeader(t, r, "Stream-Next-Offset", e.tok(t, path, 0))
	fresh := e.expect(t, http.StatusOK, http.MethodGet, path, nil)
	if len(fresh.body) != 0 || fresh.get("ETag") == tag {
		t.Errorf("recreated stream: %v", fresh)
	}
}

func TestCreateVariants(t *testing.T) {
	e := newEnv(t)

	r := e.expect(t, http.StatusCreated, http.MethodPut, sp("default-type"), []byte{0, 1, 2})
	wantHeader(t, r, "Content-Type", "application/octet-stream")
	wantHeader(t, r, "Stream-Next-Offset", e.tok(t, sp("default-type"), 3))

	r = e.expect(t, http.StatusCreated, http.MethodPut, sp("closed-at-birth"), []byte("all"), "Content-Type", "text/plain", "Stream-Closed", "true")
	wantHeader(t, r, "Stream-Closed", "true")
	wantHeader(t, r, "Stream-Next-Offset", e.tok(t, sp("closed-at-birth"), 3))
	r = e.expect(t, http.StatusOK, http.MethodGet, sp("closed-at-birth"), nil)
	if string(r.body) != "all" {
		t.Errorf("body %q", r.body)
	}
	wantHeader(t, r, "Stream-Closed", "true")

	r = e.expect(t, http.StatusCreated, http.MethodPut, sp("ttl"), nil, "Stream-TTL", "3600")
	wantNoHeader(t, r, "Stream-TTL") // HEAD is the metadata endpoint
	head := e.expect(t, http.StatusOK, http.MethodHead, sp("ttl"), nil)
	wantHeader(t, head, "Stream-TTL", "3600")
	wantNoHeader(t, head, "Stream-Expires-At")
	e.expect(t, http.StatusOK, http.MethodPut, sp("ttl"), nil, "Stream-TTL", "3600")
	e.expect(t, http.StatusConflict, http.MethodPut, sp("ttl"), nil, "Stream-TTL", "3601")

	exp := time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
	e.expect(t, http.StatusCreated, http.MethodPut, sp("expires"), nil, "Stream-Expires-At", exp.Format(time.RFC3339))
	head = e.expect(t, http.StatusOK, http.MethodHead, sp("expires"), nil)
	wantNoHeader(t, head, "Stream-TTL")
	got, err := time.Parse(time.RFC3339Nano, head.get("Stream-Expires-At"))
	if err != nil || !got.Equal(exp) {
		t.Errorf("Stream-Expires-At = %q, want %s", head.get("Stream-Expires-At"), exp.Format(time.RFC3339))
	}
	// The same instant written in another zone is the same configuration.
	e.expect(t, http.StatusOK, http.MethodPut, sp("expires"), nil, "Stream-Expires-At", exp.In(time.FixedZone("x", 2*3600)).Format(time.RFC3339))

	// A stream whose deadline has passed is gone (creating one may be
	// refused or accepted; it must never be served).
	past := time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)
	if r := e.do(t, http.MethodPut, sp("expired"), []byte("x"), "Stream-Expires-At", past); r.status != http.StatusCreated && r.status != http.StatusBadRequest {
		t.Errorf("PUT with a past Stream-Expires-At: %v", r)
	}
	e.expect(t, http.StatusNotFound, http.MethodGet, sp("expired"), nil)
	e.expect(t, http.StatusNotFound, http.MethodHead, sp("expired"), nil)
}

func TestIdempotentProducer(t *testing.T) {
	e := newEnv(t)
	path := sp("producer")
	e.expect(t, http.StatusCreated, http.MethodPut, path, nil, "Content-Type", "text/plain")
	post := func(status int, epoch, seq int, body string) *response {
		t.Helper()
		return e.expect(t, status, http.MethodPost, path, []byte(body), "Content-Type", "text/plain",
			"Producer-Id", "p1", "Producer-Epoch", strconv.Itoa(epoch), "Producer-Seq", strconv.Itoa(seq))
	}

	r := post(http.StatusOK, 0, 0, "a")
	wantHeader(t, r, "Producer-Epoch", "0")
	wantHeader(t, r, "Producer-Seq", "0")
	wantHeader(t, r, "Stream-Next-Offset", e.tok(t, path, 1))
	r = post(http.StatusNoContent, 0, 0, "a") // retry: deduplicated
	wantHeader(t, r, "Producer-Seq", "0")
	wantHeader(t, r, "Stream-Next-Offset", e.tok(t, path, 1))
	post(http.StatusOK, 0, 1, "b")

	r = post(http.StatusConflict, 0, 3, "d")
	wantHeader(t, r, "Producer-Expected-Seq", "2")
	wantHeader(t, r, "Producer-Received-Seq", "3")

	post(http.StatusBadRequest, 1, 1, "x") // a new epoch starts at seq 0
	r = post(http.StatusOK, 1, 0, "c")
	wantHeader(t, r, "Producer-Epoch", "1")

	r = post(http.StatusForbidden, 0, 2, "zombie")
	wantHeader(t, r, "Producer-Epoch", "1")

	// An unknown producer must start at seq 0.
	r = e.expect(t, http.StatusConflict, http.MethodPost, path, []byte("q"), "Content-Type", "text/plain",
		"Producer-Id", "p2", "Producer-Epoch", "0", "Producer-Seq", "1")
	wantHeader(t, r, "Producer-Expected-Seq", "0")
	wantHeader(t, r, "Producer-Received-Seq", "1")

	// Closing through a producer with a final append: new data (200); its
	// retry is a duplicate (204); anything else 409.
	post(http.StatusOK, 1, 1, "!")
	r = e.expect(t, http.StatusOK, http.MethodPost, path, []byte("end"), "Content-Type", "text/plain",
		"Producer-Id", "p1", "Producer-Epoch", "1", "Producer-Seq", "2", "Stream-Closed", "true")
	wantHeader(t, r, "Stream-Closed", "true")
	wantHeader(t, r, "Producer-Seq", "2")
	r = e.expect(t, http.StatusNoContent, http.MethodPost, path, []byte("end"), "Content-Type", "text/plain",
		"Producer-Id", "p1", "Producer-Epoch", "1", "Producer-Seq", "2", "Stream-Closed", "true")
	wantHeader(t, r, "Stream-Closed", "true")
	e.expect(t, http.StatusConflict, http.MethodPost, path, []byte("more"), "Content-Type", "text/plain",
		"Producer-Id", "p1", "Producer-Epoch", "1", "Producer-Seq", "3")

	if r := e.expect(t, http.StatusOK, http.MethodGet, path, nil); string(r.body) != "abc!end" {
		t.Errorf("data %q, want %q", r.body, "abc!end")
	}
}

func TestStreamSeq(t *testing.T) {
	e := newEnv(t)
	path := sp("seq")
	e.expect(t, http.StatusCreated, http.MethodPut, path, nil, "Content-Type", "text/plain")
	e.expect(t, http.StatusNoContent, http.MethodPost, path, []byte("1"), "Content-Type", "text/plain", "Stream-Seq", "b")
	e.expect(t, http.StatusConflict, http.MethodPost, path, []byte("2"), "Content-Type", "text/plain", "Stream-Seq", "b")
	e.expect(t, http.StatusConflict, http.MethodPost, path, []byte("3"), "Content-Type", "text/plain", "Stream-Seq", "a")
	e.expect(t, http.StatusNoContent, http.MethodPost, path, []byte("4"), "Content-Type", "text/plain", "Stream-Seq", "ba")
	if r := e.expect(t, http.StatusOK, http.MethodGet, path, nil); string(r.body) != "14" {
		t.Errorf("data %q", r.body)
	}
}

func TestLocationIsAbsolute(t *testing.T) {
	e := newEnv(t)
	r := e.expect(t, http.StatusCreated, http.MethodPut, sp("a%20b/c"), nil)
	wantHeader(t, r, "Location", e.url+sp("a%20b/c"))
	r = e.expect(t, http.StatusCreated, http.MethodPut, sp("proxied"), nil, "X-Forwarded-Proto", "https")
	wantHeader(t, r, "Location", "https://"+strings.TrimPrefix(e.url, "http://")+sp("proxied"))
}

// TestPathPercentEncodingDecodedOnce: a stream path is percent-decoded
// exactly once, so an encoded '%' is an ordinary character of the name and
// distinct URLs never alias one stream.
func TestPathPercentEncodingDecodedOnce(t *testing.T) {
	e := newEnv(t)
	text := []string{"Content-Type", "text/plain"}
	if r := e.do(t, http.MethodPut, sp("100%25"), []byte("pct"), text...); r.status != http.StatusCreated {
		t.Errorf("PUT %s: %d %q, want 201 for the stream %q", sp("100%25"), r.status, r.body, "100%")
	} else if r := e.do(t, http.MethodGet, sp("100%25"), nil); string(r.body) != "pct" {
		t.Errorf("GET %s: %v", sp("100%25"), r)
	}

	// "enc%2541" names the stream "enc%41", not "encA".
	e.expect(t, http.StatusCreated, http.MethodPut, sp("enc%2541"), []byte("x"), text...)
	if r := e.do(t, http.MethodHead, sp("encA"), nil); r.status != http.StatusNotFound {
		t.Errorf("HEAD %s after creating %s: %d, want 404", sp("encA"), sp("enc%2541"), r.status)
	}
	if r := e.do(t, http.MethodPut, sp("encA"), []byte("y"), text...); r.status != http.StatusCreated {
		t.Errorf("PUT %s: %d, want 201 (a different stream)", sp("encA"), r.status)
	}
	if r := e.do(t, http.MethodGet, sp("enc%2541"), nil); string(r.body) != "x" {
		t.Errorf("GET %s: body %q, want %q", sp("enc%2541"), r.body, "x")
	}
}

// TestSlidingTTL: reads and appends restart a Stream-TTL countdown; HEAD
// does not (§5.1).
func TestSlidingTTL(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	e := newEnv(t, withClock(clock.Now), withLongPoll(50*time.Millisecond))
	text := []string{"Content-Type", "text/plain"}
	e.expect(t, http.StatusCreated, http.MethodPut, sp("ttl-read"), []byte("r"), append(text, "Stream-TTL", "10")...)
	e.expect(t, http.StatusCreated, http.MethodPut, sp("ttl-write"), []byte("w"), append(text, "Stream-TTL", "10")...)
	e.expect(t, http.StatusCreated, http.MethodPut, sp("ttl-poll"), []byte("p"), append(text, "Stream-TTL", "10")...)
	e.expect(t, http.StatusCreated, http.MethodPut, sp("ttl-head"), []byte("h"), append(text, "Stream-TTL", "10")...)

	clock.Advance(6 * time.Second)
	e.expect(t, http.StatusOK, http.MethodGet, sp("ttl-read"), nil)
	e.expect(t, http.StatusNoContent, http.MethodPost, sp("ttl-write"), []byte("!"), text...)
	e.expect(t, http.StatusNoContent, http.MethodGet, sp("ttl-poll")+"?live=long-poll&offset=now", nil)
	e.expect(t, http.StatusOK, http.MethodHead, sp("ttl-head"), nil)

	clock.Advance(6 * time.Second)
	e.expect(t, http.StatusNotFound, http.MethodHead, sp("ttl-head"), nil)
	e.expect(t, http.StatusNotFound, http.MethodGet, sp("ttl-head"), nil)
	for _, p := range []string{"ttl-read", "ttl-write", "ttl-poll"} {
		e.expect(t, http.StatusOK, http.MethodHead, sp(p), nil)
	}

	clock.Advance(11 * time.Second)
	for _, p := range []string{"ttl-read", "ttl-write", "ttl-poll"} {
		e.expect(t, http.StatusNotFound, http.MethodGet, sp(p), nil)
		e.expect(t, http.StatusNotFound, http.MethodPost, sp(p), []byte("late"), text...)
	}
	// An expired path can be created afresh.
	r := e.expect(t, http.StatusCreated, http.MethodPut, sp("ttl-read"), nil, text...)
	wantHeader(t, r, "Stream-Next-Offset", e.tok(t, sp("ttl-read"), 0))
}
