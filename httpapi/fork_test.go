package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/streamd/streamd/actors"
)

func forkHeaders(source string, more ...string) []string {
	return append([]string{"Stream-Forked-From", sp(source)}, more...)
}

// TestForkReadsThroughTheRouter: a chain of forks reads, in small chunks,
// compressed or not, with read-ahead, exactly the bytes it should; JSON
// forks return one array across the fork boundary.
func TestForkReadsThroughTheRouter(t *testing.T) {
	e := newEnv(t, withMaxChunk(7), withReadAhead(1<<20))
	text := []string{"Content-Type", "text/plain"}
	e.expect(t, http.StatusCreated, http.MethodPut, sp("a"), []byte(strings.Repeat("a", 30)), text...)
	e.expect(t, http.StatusNoContent, http.MethodPost, sp("a"), []byte(strings.Repeat("A", 30)), text...)
	r := e.expect(t, http.StatusCreated, http.MethodPut, sp("b"), []byte(strings.Repeat("b", 20)),
		forkHeaders("a", "Stream-Fork-Offset", e.tok(t, sp("a"), 30), "Stream-Fork-Sub-Offset", "5")...)
	wantHeader(t, r, "Stream-Next-Offset", e.tok(t, sp("b"), 55))
	wantHeader(t, r, "Content-Type", "text/plain")
	wantNoHeader(t, r, "Stream-Forked-From")
	e.expect(t, http.StatusCreated, http.MethodPut, sp("c"), []byte(strings.Repeat("c", 10)), forkHeaders("b", "Stream-Fork-Offset", e.tok(t, sp("b"), 40))...)
	want := strings.Repeat("a", 30) + "AAAAA" + strings.Repeat("b", 5) + strings.Repeat("c", 10)
	if got, next := e.readAll(t, sp("c")); string(got) != want || next != e.tok(t, sp("c"), 50) {
		t.Fatalf("fork chain reads %q (next %s); want %q", got, next, want)
	}
	// Compressed catch-up of the whole chain in one response.
	big := newEnv(t, withCompression(true))
	big.expect(t, http.StatusCreated, http.MethodPut, sp("s"), bytes.Repeat([]byte("x"), 4000), text...)
	big.expect(t, http.StatusCreated, http.MethodPut, sp("f"), bytes.Repeat([]byte("y"), 4000), forkHeaders("s")...)
	r = big.expect(t, http.StatusOK, http.MethodGet, sp("f")+"?offset=-1", nil, "Accept-Encoding", "gzip")
	wantHeader(t, r, "Content-Encoding", "gzip")

	e.expect(t, http.StatusCreated, http.MethodPut, sp("j"), []byte(`[1,2,3]`), "Content-Type", "application/json")
	e.expect(t, http.StatusCreated, http.MethodPut, sp("jf"), []byte(`[4]`), forkHeaders("j", "Stream-Fork-Offset", e.tok(t, sp("j"), 0), "Stream-Fork-Sub-Offset", "2")...)
	r = e.expect(t, http.StatusOK, http.MethodGet, sp("jf")+"?offset=-1", nil)
	var msgs []int
	if err := json.Unmarshal(r.body, &msgs); err != nil || len(msgs) != 3 || msgs[0] != 1 || msgs[1] != 2 || msgs[2] != 4 {
		t.Fatalf("JSON fork reads %s; want one array [1,2,4]", r.body)
	}
}

// TestForkLiveReads: a long-poll at a fork's tail wakes on the fork's own
// appends, not its source's; SSE from the start sends the inherited data,
// then the fork's live appends.
func TestForkLiveReads(t *testing.T) {
	e := newEnv(t, withLongPoll(time.Second))
	text := []string{"Content-Type", "text/plain"}
	e.expect(t, http.StatusCreated, http.MethodPut, sp("s"), []byte("src"), text...)
	e.expect(t, http.StatusCreated, http.MethodPut, sp("f"), nil, forkHeaders("s")...)
	sse := e.openSSE(t, sp("f")+"?offset=-1&live=sse")
	if ev := sse.next(t, 5*time.Second); ev.event != "data" || ev.data != "src" {
		t.Fatalf("first SSE event %+v; want the inherited data", ev)
	}
	sse.next(t, 5*time.Second) // control
	poll := make(chan *response, 1)
	go func() {
		r, _ := e.request(context.Background(), http.MethodGet, sp("f")+"?offset="+e.tok(t, sp("s"), 3)+"&live=long-poll", nil)
		poll <- r
	}()
	time.Sleep(100 * time.Millisecond)
	e.expect(t, http.StatusNoContent, http.MethodPost, sp("s"), []byte("not the fork's"), text...)
	select {
	case r := <-poll:
		t.Fatalf("long-poll on the fork woke on its source's append: %v", r)
	case <-time.After(300 * time.Millisecond):
	}
	e.expect(t, http.StatusNoContent, http.MethodPost, sp("f"), []byte("own"), text...)
	if r := <-poll; r.status != http.StatusOK || string(r.body) != "own" {
		t.Fatalf("long-poll on the fork: %v; want its own append", r)
	}
	if ev := sse.next(t, 5*time.Second); ev.event != "data" || ev.data != "own" {
		t.Fatalf("SSE event %+v; want the fork's append", ev)
	}
}

// TestSoftDeletedThroughTheRouter: a deleted source with forks answers 410
// to GET, HEAD, POST and DELETE, 409 to PUT and to forking it; deleting the
// fork frees the path.
func TestSoftDeletedThroughTheRouter(t *testing.T) {
	e := newEnv(t)
	text := []string{"Content-Type", "text/plain"}
	e.expect(t, http.StatusCreated, http.MethodPut, sp("s"), []byte("data"), text...)
	e.expect(t, http.StatusCreated, http.MethodPut, sp("f"), nil, forkHeaders("s")...)
	e.expect(t, http.StatusNoContent, http.MethodDelete, sp("s"), nil)
	e.expect(t, http.StatusGone, http.MethodGet, sp("s")+"?offset=-1", nil)
	e.expect(t, http.StatusGone, http.MethodGet, sp("s")+"?offset=now&live=long-poll", nil)
	e.expect(t, http.StatusGone, http.MethodHead, sp("s"), nil)
	e.expect(t, http.StatusGone, http.MethodPost, sp("s"), []byte("x"), text...)
	e.expect(t, http.StatusGone, http.MethodDelete, sp("s"), nil)
	e.expect(t, http.StatusConflict, http.MethodPut, sp("s"), nil, text...)
	e.expect(t, http.StatusConflict, http.MethodPut, sp("g"), nil, forkHeaders("s")...)
	if got, _ := e.readAll(t, sp("f")); string(got) != "data" {
		t.Fatalf("fork reads %q after its source's deletion", got)
	}
	e.expect(t, http.StatusNoContent, http.MethodDelete, sp("f"), nil)
	deadline := time.Now().Add(5 * time.Second)
	for e.do(t, http.MethodHead, sp("s"), nil).status != http.StatusNotFound {
		if time.Now().After(deadline) {
			t.Fatal("source not collected after its last fork was deleted")
		}
		time.Sleep(10 * time.Millisecond)
	}
	e.expect(t, http.StatusCreated, http.MethodPut, sp("s"), nil, text...)
}

// TestForkRequestErrors: malformed or misplaced fork headers are 400; a
// missing source 404.
func TestForkRequestErrors(t *testing.T) {
	e := newEnv(t)
	e.expect(t, http.StatusCreated, http.MethodPut, sp("s"), []byte("hello"), "Content-Type", "text/plain")
	for _, tc := range []struct {
		hdr  []string
		want int
	}{
		{[]string{"Stream-Fork-Offset", e.tok(t, sp("s"), 0)}, http.StatusBadRequest},
		{[]string{"Stream-Fork-Sub-Offset", "0"}, http.StatusBadRequest},
		{forkHeaders("s", "Stream-Fork-Sub-Offset", "1"), http.StatusBadRequest},
		{forkHeaders("s", "Stream-Fork-Offset", e.tok(t, sp("s"), 0), "Stream-Fork-Sub-Offset", "-1"), http.StatusBadRequest},
		{forkHeaders("s", "Stream-Fork-Offset", e.tok(t, sp("s"), 0), "Stream-Fork-Sub-Offset", "01"), http.StatusBadRequest},
		{forkHeaders("s", "Stream-Fork-Offset", "garbage"), http.StatusBadRequest},
		{forkHeaders("s", "Stream-Fork-Offset", e.tok(t, sp("s"), 6)), http.StatusBadRequest},
		{[]string{"Stream-Forked-From", "s"}, http.StatusBadRequest},
		{[]string{"Stream-Forked-From", sp("a/../s")}, http.StatusBadRequest},
		{forkHeaders("missing"), http.StatusNotFound},
		{forkHeaders("s", "Content-Type", "application/json"), http.StatusConflict},
		{forkHeaders("s", "Stream-TTL", "60", "Stream-Expires-At", "2099-01-01T00:00:00Z"), http.StatusBadRequest},
	} {
		r := e.do(t, http.MethodPut, sp("f"), nil, tc.hdr...)
		if r.status != tc.want {
			t.Errorf("PUT with %q: %v; want %d", tc.hdr, r, tc.want)
		}
	}
}

// TestRegistryStream: with the registry on, clients read and tail
// __registry__ but cannot write to it.
func TestRegistryStream(t *testing.T) {
	e := newEnv(t, withActors(func(c *actors.Config) { c.Registry = true }))
	e.expect(t, http.StatusCreated, http.MethodPut, sp("s"), nil, "Content-Type", "text/plain")
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := e.expect(t, http.StatusOK, http.MethodGet, sp("__registry__")+"?offset=-1", nil)
		if strings.Contains(string(r.body), `"key":"s"`) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("registry holds %s; want the create of s", r.body)
		}
		time.Sleep(10 * time.Millisecond)
	}
	json := []string{"Content-Type", "application/json"}
	e.expect(t, http.StatusForbidden, http.MethodPost, sp("__registry__"), []byte(`{}`), json...)
	e.expect(t, http.StatusForbidden, http.MethodPut, sp("__registry__"), nil, json...)
	e.expect(t, http.StatusForbidden, http.MethodDelete, sp("__registry__"), nil)
}
