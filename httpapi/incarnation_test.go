package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/streamd/streamd/persistence"
	"github.com/streamd/streamd/protocol"
)

// segmentOf returns the segment of an offset token.
func segmentOf(t *testing.T, token string) uint64 {
	t.Helper()
	kind, seg, _, err := protocol.ParseOffsetSegment(token)
	if err != nil || kind != protocol.OffsetAt {
		t.Fatalf("bad offset token %q: %v", token, err)
	}
	return seg
}

// TestIncarnationsNeverShareURLs: a path deleted and created again gets
// offsets of its own, so a cache keyed by URL can never answer the new
// stream's reads with the old one's bytes, and the old offsets are refused.
func TestIncarnationsNeverShareURLs(t *testing.T) {
	e := newEnv(t)
	text := []string{"Content-Type", "text/plain"}
	path := sp("reborn")
	e.expect(t, http.StatusCreated, http.MethodPut, path, []byte("first "), text...)
	x := e.expect(t, http.StatusNoContent, http.MethodPost, path, []byte("life"), text...).get("Stream-Next-Offset")
	oldMid := e.tok(t, path, 6)
	oldRead := e.expect(t, http.StatusOK, http.MethodGet, path+"?offset="+oldMid, nil)
	if string(oldRead.body) != "life" {
		t.Fatalf("old incarnation reads %q at %s", oldRead.body, oldMid)
	}
	e.expect(t, http.StatusNoContent, http.MethodDelete, path, nil)

	e.expect(t, http.StatusCreated, http.MethodPut, path, []byte("second"), text...)
	y := e.expect(t, http.StatusNoContent, http.MethodPost, path, []byte(" life!"), text...).get("Stream-Next-Offset")
	if segmentOf(t, x) == segmentOf(t, y) || x == y {
		t.Errorf("both incarnations use segment %d (%s, %s)", segmentOf(t, x), x, y)
	}
	newMid := e.tok(t, path, 6)
	if newMid == oldMid {
		t.Fatalf("position 6 has the same token %s in both incarnations", newMid)
	}
	newRead := e.expect(t, http.StatusOK, http.MethodGet, path+"?offset="+newMid, nil)
	if string(newRead.body) != " life!" || newRead.get("ETag") == oldRead.get("ETag") {
		t.Errorf("new incarnation at %s: %q, ETag %s (old ETag %s)", newMid, newRead.body, newRead.get("ETag"), oldRead.get("ETag"))
	}
	// Every URL a client of the old incarnation could hold is refused.
	for _, q := range []string{"?offset=" + oldMid, "?offset=" + x, "?offset=" + oldMid + "&live=long-poll", "?offset=" + x + "&live=sse"} {
		r := e.expect(t, http.StatusBadRequest, http.MethodGet, path+q, nil)
		if !strings.Contains(string(r.body), "another incarnation") {
			t.Errorf("GET %s: %q", q, r.body)
		}
		wantHeader(t, r, "Cache-Control", "no-store")
	}
	// The all-zero token names the start of any stream, like "-1".
	if r := e.expect(t, http.StatusOK, http.MethodGet, path+"?offset="+off(0), nil); string(r.body) != "second life!" {
		t.Errorf("read at the all-zero token: %q", r.body)
	}
	// Its tokens are ordered like its positions.
	if !(e.tok(t, path, 0) < newMid && newMid < y) {
		t.Errorf("tokens out of order: %s, %s, %s", e.tok(t, path, 0), newMid, y)
	}
}

// TestForkOffsets: a fork's offsets equal its source's up to and including
// the fork point, its own ones carry its own segment and sort after them,
// and a Stream-Fork-Offset of another incarnation of the source is
// refused.
func TestForkOffsets(t *testing.T) {
	e := newEnv(t)
	text := []string{"Content-Type", "text/plain"}
	e.expect(t, http.StatusCreated, http.MethodPut, sp("src"), []byte("0123456789"), text...)
	point := e.tok(t, sp("src"), 4)
	r := e.expect(t, http.StatusCreated, http.MethodPut, sp("fork"), nil, forkHeaders("src", "Stream-Fork-Offset", point)...)
	wantHeader(t, r, "Stream-Next-Offset", point) // an empty fork's tail is its fork point, as the source names it
	wantHeader(t, e.expect(t, http.StatusOK, http.MethodHead, sp("fork"), nil), "Stream-Next-Offset", point)
	// Reading the fork at the source's offsets: the same positions.
	for _, pos := range []uint64{0, 2, 4} {
		tok := e.tok(t, sp("src"), pos)
		if r := e.expect(t, http.StatusOK, http.MethodGet, sp("fork")+"?offset="+tok, nil); string(r.body) != "0123"[pos:] || r.get("Stream-Next-Offset") != point {
			t.Errorf("fork at %s: %q, next %s", tok, r.body, r.get("Stream-Next-Offset"))
		}
	}
	own := e.expect(t, http.StatusNoContent, http.MethodPost, sp("fork"), []byte("abc"), text...).get("Stream-Next-Offset")
	if segmentOf(t, own) <= segmentOf(t, point) || !(point < own) {
		t.Errorf("fork's own tail %s does not follow its fork point %s", own, point)
	}
	if r := e.expect(t, http.StatusOK, http.MethodGet, sp("fork")+"?offset="+point, nil); string(r.body) != "abc" || r.get("Stream-Next-Offset") != own {
		t.Errorf("fork from its fork point: %q, next %s", r.body, r.get("Stream-Next-Offset"))
	}
	// The fork's token of a position inside its own data is refused by the
	// source, and the source's token of that position by the fork.
	forkOwn5 := protocol.FormatOffsetIn(segmentOf(t, own), 5)
	e.expect(t, http.StatusBadRequest, http.MethodGet, sp("src")+"?offset="+forkOwn5, nil)
	e.expect(t, http.StatusBadRequest, http.MethodGet, sp("fork")+"?offset="+e.tok(t, sp("src"), 5), nil)

	// A fork of the fork inherits both segments.
	e.expect(t, http.StatusCreated, http.MethodPut, sp("grand"), nil, forkHeaders("fork", "Stream-Fork-Offset", forkOwn5)...)
	for _, tok := range []string{e.tok(t, sp("src"), 2), point, forkOwn5} {
		e.expect(t, http.StatusOK, http.MethodGet, sp("grand")+"?offset="+tok, nil)
	}
	if data, next := e.readAll(t, sp("grand")); string(data) != "0123a" || next != forkOwn5 {
		t.Errorf("grandchild reads %q, next %s; want %q, %s", data, next, "0123a", forkOwn5)
	}

	// A fork at a token of a deleted incarnation of the source is refused.
	e.expect(t, http.StatusCreated, http.MethodPut, sp("gone"), []byte("xyz"), text...)
	stale := e.tok(t, sp("gone"), 1)
	e.expect(t, http.StatusNoContent, http.MethodDelete, sp("gone"), nil)
	e.expect(t, http.StatusCreated, http.MethodPut, sp("gone"), []byte("xyz"), text...)
	r = e.expect(t, http.StatusBadRequest, http.MethodPut, sp("late"), nil, forkHeaders("gone", "Stream-Fork-Offset", stale)...)
	if !strings.Contains(string(r.body), "another incarnation") {
		t.Errorf("fork at a stale offset: %q", r.body)
	}
	e.expect(t, http.StatusCreated, http.MethodPut, sp("late"), nil, forkHeaders("gone", "Stream-Fork-Offset", e.tok(t, sp("gone"), 1))...)
	// "-1" and the all-zero token still mean the start.
	e.expect(t, http.StatusCreated, http.MethodPut, sp("from-zero"), nil, forkHeaders("src", "Stream-Fork-Offset", off(0))...)
	wantHeader(t, e.expect(t, http.StatusOK, http.MethodHead, sp("from-zero"), nil), "Stream-Next-Offset", e.tok(t, sp("src"), 0))
	e.expect(t, http.StatusCreated, http.MethodPut, sp("from-start"), nil, forkHeaders("src", "Stream-Fork-Offset", "-1")...)
	wantHeader(t, e.expect(t, http.StatusOK, http.MethodHead, sp("from-start"), nil), "Stream-Next-Offset", e.tok(t, sp("src"), 0))
}

// TestStreamsFromBeforeSegments: a stream stored before offsets carried
// segments keeps segment 0, so offsets its clients saved still work; a
// fork of it shares them up to its fork point.
func TestStreamsFromBeforeSegments(t *testing.T) {
	seed := func(s *setup) {
		store := s.api.Store
		id, err := store.AllocateID()
		if err != nil {
			t.Fatal(err)
		}
		b := store.NewBatch()
		defer b.Close()
		meta := &persistence.Meta{ID: id, ContentType: "text/plain", CreatedAt: time.Now(), NoProducers: true}
		if err := b.PutMeta("legacy", meta); err != nil {
			t.Fatal(err)
		}
		if err := b.Append(id, 0, []byte("saved")); err != nil {
			t.Fatal(err)
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	e := newEnv(t, seed)
	r := e.expect(t, http.StatusOK, http.MethodGet, sp("legacy")+"?offset="+off(2), nil)
	if string(r.body) != "ved" {
		t.Fatalf("legacy read at a saved offset: %q", r.body)
	}
	wantHeader(t, r, "Stream-Next-Offset", off(5))
	wantHeader(t, e.expect(t, http.StatusNoContent, http.MethodPost, sp("legacy"), []byte("!"), "Content-Type", "text/plain"), "Stream-Next-Offset", off(6))

	e.expect(t, http.StatusCreated, http.MethodPut, sp("fork"), []byte("?"), forkHeaders("legacy", "Stream-Fork-Offset", off(5))...)
	if data, next := e.readAll(t, sp("fork")); string(data) != "saved?" || segmentOf(t, next) == 0 {
		t.Errorf("fork of a legacy stream reads %q, next %s", data, next)
	}
	e.expect(t, http.StatusOK, http.MethodGet, sp("fork")+"?offset="+off(3), nil)
	// Created again, the path's offsets carry the new incarnation's id.
	e.expect(t, http.StatusCreated, http.MethodPut, sp("fresh"), []byte("x"), "Content-Type", "text/plain")
	if segmentOf(t, e.tok(t, sp("fresh"), 0)) == 0 {
		t.Error("a new stream uses segment 0")
	}
}
