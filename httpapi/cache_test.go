package httpapi_test

import (
	"bytes"
	"context"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/streamd/streamd/cursor"
	"github.com/streamd/streamd/httpapi"
)

// TestETagPerEncoding: a gzip, a deflate and an identity answer of the same
// range are different representations with different strong ETags, and a
// revalidation gets 304 only with the tag of the representation it would
// receive.
func TestETagPerEncoding(t *testing.T) {
	e := newEnv(t)
	body := bytes.Repeat([]byte("compressible "), 200)
	e.expect(t, http.StatusCreated, http.MethodPut, sp("s"), body, "Content-Type", "text/plain")
	encodings := []struct{ accept, coding string }{
		{"identity", ""},
		{"gzip", "gzip"},
		{"deflate", "deflate"},
	}
	tags := map[string]string{}
	for _, enc := range encodings {
		r := e.expect(t, http.StatusOK, http.MethodGet, sp("s")+"?offset=-1", nil, "Accept-Encoding", enc.accept)
		wantHeader(t, r, "Content-Encoding", enc.coding)
		wantHeader(t, r, "Vary", "Accept-Encoding")
		tag := r.get("ETag")
		for other, seen := range tags {
			if seen == tag {
				t.Fatalf("%s and %s answers share the ETag %s", other, enc.accept, tag)
			}
		}
		tags[enc.accept] = tag
	}
	for _, sent := range encodings {
		for _, asked := range encodings {
			r := e.do(t, http.MethodGet, sp("s")+"?offset=-1", nil, "Accept-Encoding", asked.accept, "If-None-Match", tags[sent.accept])
			want := http.StatusOK
			if sent == asked {
				want = http.StatusNotModified
			}
			if r.status != want {
				t.Errorf("If-None-Match of the %s answer, Accept-Encoding %s: status %d, want %d", sent.accept, asked.accept, r.status, want)
			}
			wantHeader(t, r, "ETag", tags[asked.accept])
			wantHeader(t, r, "Vary", "Accept-Encoding")
		}
	}
	// Without compression nothing varies by Accept-Encoding.
	plain := newEnv(t, withCompression(false))
	plain.expect(t, http.StatusCreated, http.MethodPut, sp("s"), body, "Content-Type", "text/plain")
	r := plain.expect(t, http.StatusOK, http.MethodGet, sp("s")+"?offset=-1", nil, "Accept-Encoding", "gzip")
	wantNoHeader(t, r, "Vary")
	wantHeader(t, r, "ETag", tags["identity"])
}

// TestCacheControl asserts the exact Cache-Control of each kind of answer.
func TestCacheControl(t *testing.T) {
	const (
		catchUp   = "public, max-age=60, stale-while-revalidate=300"
		noStore   = "no-store"
		textPlain = "text/plain"
	)
	clock := &fakeClock{now: time.Now().Truncate(time.Second)}
	at := func(d time.Duration) string { return clock.Now().Add(d).UTC().Format(time.RFC3339) }
	tests := []struct {
		name   string
		create []string // headers of the PUT creating the stream with "hello"
		close  bool     // close the stream after creating it
		method string
		query  string // "TAIL" and "BEYOND" are replaced by the tail and a later offset
		opts   []option
		status int
		want   string
	}{
		{"catch-up", nil, false, http.MethodGet, "?offset=-1", nil, http.StatusOK, catchUp},
		{"catch-up, private", nil, false, http.MethodGet, "?offset=-1",
			[]option{withAPI(func(c *httpapi.Config) { c.PrivateCache = true })}, http.StatusOK,
			"private, max-age=60, stale-while-revalidate=300"},
		{"TTL longer than the cache lifetime", []string{"Stream-TTL", "3600"}, false, http.MethodGet, "?offset=-1", nil, http.StatusOK, catchUp},
		{"TTL shorter than max-age", []string{"Stream-TTL", "45"}, false, http.MethodGet, "?offset=-1", nil, http.StatusOK, "public, max-age=45"},
		{"TTL inside the stale window", []string{"Stream-TTL", "100"}, false, http.MethodGet, "?offset=-1", nil, http.StatusOK,
			"public, max-age=60, stale-while-revalidate=40"},
		{"Expires-At in 30s", []string{"Stream-Expires-At", at(30 * time.Second)}, false, http.MethodGet, "?offset=-1", nil, http.StatusOK,
			"public, max-age=30"},
		{"Expires-At in 90s, private", []string{"Stream-Expires-At", at(90 * time.Second)}, false, http.MethodGet, "?offset=-1",
			[]option{withAPI(func(c *httpapi.Config) { c.PrivateCache = true })}, http.StatusOK,
			"private, max-age=60, stale-while-revalidate=30"},
		{"Expires-At in a day", []string{"Stream-Expires-At", at(24 * time.Hour)}, false, http.MethodGet, "?offset=-1", nil, http.StatusOK, catchUp},
		{"HEAD", nil, false, http.MethodHead, "", nil, http.StatusOK, noStore},
		{"empty answer at the tail of an open stream", nil, false, http.MethodGet, "?offset=TAIL", nil, http.StatusOK, noStore},
		{"EOF answer at the tail of a closed stream", nil, true, http.MethodGet, "?offset=TAIL", nil, http.StatusOK, catchUp},
		{"offset=now", nil, false, http.MethodGet, "?offset=now", nil, http.StatusOK, noStore},
		{"long-poll with data", nil, false, http.MethodGet, "?offset=-1&live=long-poll", nil, http.StatusOK, catchUp},
		{"long-poll with data, short TTL", []string{"Stream-TTL", "20"}, false, http.MethodGet, "?offset=-1&live=long-poll", nil, http.StatusOK,
			"public, max-age=20"},
		{"long-poll 204", nil, false, http.MethodGet, "?offset=TAIL&live=long-poll", nil, http.StatusNoContent, noStore},
		{"long-poll 204 on a closed stream", nil, true, http.MethodGet, "?offset=TAIL&live=long-poll", nil, http.StatusNoContent, noStore},
		{"long-poll offset=now, closed", nil, true, http.MethodGet, "?offset=now&live=long-poll", nil, http.StatusNoContent, noStore},
		{"400", nil, false, http.MethodGet, "?offset=bogus", nil, http.StatusBadRequest, noStore},
		{"offset beyond the tail", nil, false, http.MethodGet, "?offset=BEYOND", nil, http.StatusBadRequest, noStore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, append([]option{withClock(clock.Now), withLongPoll(50 * time.Millisecond)}, tt.opts...)...)
			created := e.expect(t, http.StatusCreated, http.MethodPut, sp("s"), []byte("hello"), append([]string{"Content-Type", textPlain}, tt.create...)...)
			tail := created.get("Stream-Next-Offset")
			if tt.close {
				tail = e.expect(t, http.StatusNoContent, http.MethodPost, sp("s"), nil, "Stream-Closed", "true").get("Stream-Next-Offset")
			}
			q := tt.query
			q = strings.Replace(q, "TAIL", tail, 1)
			q = strings.Replace(q, "BEYOND", e.tok(t, sp("s"), 99), 1)
			r := e.expect(t, tt.status, tt.method, sp("s")+q, nil)
			wantHeader(t, r, "Cache-Control", tt.want)
		})
	}
	t.Run("404", func(t *testing.T) {
		e := newEnv(t)
		wantHeader(t, e.expect(t, http.StatusNotFound, http.MethodGet, sp("missing"), nil), "Cache-Control", noStore)
		wantHeader(t, e.expect(t, http.StatusNotFound, http.MethodHead, sp("missing"), nil), "Cache-Control", noStore)
	})
	t.Run("SSE", func(t *testing.T) {
		e := newEnv(t)
		e.expect(t, http.StatusCreated, http.MethodPut, sp("s"), []byte("hello"), "Content-Type", textPlain)
		s := e.openSSE(t, sp("s")+"?offset=-1&live=sse")
		if got := s.res.Header.Get("Cache-Control"); got != "no-cache" {
			t.Errorf("SSE Cache-Control = %q, want no-cache", got)
		}
	})
	t.Run("expired per the clock", func(t *testing.T) {
		// Expiry is checked against the same clock: a stream whose last
		// seconds are running out gets no-store rather than max-age=0.
		e := newEnv(t, withClock(clock.Now))
		e.expect(t, http.StatusCreated, http.MethodPut, sp("s"), []byte("hello"), "Content-Type", textPlain,
			"Stream-Expires-At", clock.Now().Add(500*time.Millisecond).UTC().Format(time.RFC3339Nano))
		r := e.expect(t, http.StatusOK, http.MethodGet, sp("s")+"?offset=-1", nil)
		wantHeader(t, r, "Cache-Control", noStore)
	})
}

// TestLongPollFromNowNotCached: a long-poll at offset=now that receives data
// is not cacheable: the same URL means a later position after each append.
func TestLongPollFromNowNotCached(t *testing.T) {
	e := newEnv(t, withLongPoll(10*time.Second))
	e.expect(t, http.StatusCreated, http.MethodPut, sp("s"), []byte("a"), "Content-Type", "text/plain")
	got := make(chan *response, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		r, err := e.request(ctx, http.MethodGet, sp("s")+"?offset=now&live=long-poll", nil)
		if err != nil {
			t.Error(err)
		}
		got <- r
	}()
	// Append until the waiting long-poll has seen one (it may start after
	// the first append).
	for {
		e.expect(t, http.StatusNoContent, http.MethodPost, sp("s"), []byte("b"), "Content-Type", "text/plain")
		select {
		case r := <-got:
			if r == nil {
				return
			}
			if r.status != http.StatusOK {
				t.Fatalf("long-poll status %d, want 200", r.status)
			}
			wantHeader(t, r, "Cache-Control", "no-store")
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// TestCursorsNeverDecrease: the cursors of successive SSE control events
// never decrease, even when each draw of jitter would be smaller than the
// last, and a long-poll answer to an extreme client cursor is one the next
// request accepts as no smaller.
func TestCursorsNeverDecrease(t *testing.T) {
	epoch := cursor.DefaultEpoch()
	now := epoch.Add(1000 * cursor.DefaultInterval)
	draws := int64(3600)
	gen := cursor.New(cursor.DefaultInterval, epoch).WithClock(func() time.Time { return now }, func(int64) int64 {
		// Each draw smaller than the one before: a control event drawing
		// fresh jitter from the client's cursor would go backwards.
		draws = max(draws-600, 1)
		return draws
	})
	e := newEnv(t, withAPI(func(c *httpapi.Config) { c.Cursor = gen }))
	e.expect(t, http.StatusCreated, http.MethodPut, sp("s"), []byte("a"), "Content-Type", "text/plain")
	s := e.openSSE(t, sp("s")+"?offset=-1&live=sse&cursor=1000")
	last := int64(0)
	for i := range 4 {
		for {
			ev := s.next(t, 10*time.Second)
			if ev.event != "control" {
				continue
			}
			c := parseControl(t, ev.data)
			n, err := strconv.ParseInt(*c.StreamCursor, 10, 64)
			if err != nil || n < last || n <= 1000 {
				t.Fatalf("control event %d: cursor %q after %d (client sent 1000)", i, *c.StreamCursor, last)
			}
			last = n
			break
		}
		e.expect(t, http.StatusNoContent, http.MethodPost, sp("s"), []byte("b"), "Content-Type", "text/plain")
	}

	for _, client := range []string{"9223372036854775807", "9223372036854775806", "18446744073709551615", "99999999999999999999"} {
		r := e.expect(t, http.StatusOK, http.MethodGet, sp("s")+"?offset=-1&live=long-poll&cursor="+client, nil)
		first, err := strconv.ParseInt(r.get("Stream-Cursor"), 10, 64)
		if err != nil {
			t.Fatalf("cursor %s: answer %q does not parse: %v", client, r.get("Stream-Cursor"), err)
		}
		r = e.expect(t, http.StatusOK, http.MethodGet, sp("s")+"?offset=-1&live=long-poll&cursor="+r.get("Stream-Cursor"), nil)
		if again, err := strconv.ParseInt(r.get("Stream-Cursor"), 10, 64); err != nil || again < first {
			t.Errorf("cursor %s: %d fed back gave %q", client, first, r.get("Stream-Cursor"))
		}
	}
}
