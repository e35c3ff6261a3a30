package httpapi_test

import (
	"net/http"
	"strings"
	"testing"
)

// TestConflictBodies: every 409 names what conflicted in the words clients
// of the reference server match on, and a write refused because the
// stream is closed says so in Stream-Closed too.
func TestConflictBodies(t *testing.T) {
	text := []string{"Content-Type", "text/plain"}
	producer := func(id, epoch, seq string, more ...string) []string {
		return append([]string{"Producer-Id", id, "Producer-Epoch", epoch, "Producer-Seq", seq}, more...)
	}
	tests := []struct {
		name string
		// setup runs against a fresh server whose text stream "s" holds "ab".
		setup    func(t *testing.T, e *env)
		method   string
		target   string
		body     string
		hdr      []string
		wantBody string
		// closedAt, if set, is the position of the Stream-Next-Offset of a
		// closed stream's answer, which must carry Stream-Closed: true.
		closedAt uint64
	}{
		{name: "content type mismatch", method: http.MethodPost, target: sp("s"), body: "[1]",
			hdr: []string{"Content-Type", "application/json"}, wantBody: "Content-type mismatch"},
		{name: "Stream-Seq regression",
			setup: func(t *testing.T, e *env) {
				e.expect(t, http.StatusNoContent, http.MethodPost, sp("s"), []byte("c"), append(text, "Stream-Seq", "0002")...)
			},
			method: http.MethodPost, target: sp("s"), body: "d", hdr: append(text, "Stream-Seq", "0001"), wantBody: "Sequence conflict"},
		{name: "create with another configuration", method: http.MethodPut, target: sp("s"),
			hdr: []string{"Content-Type", "application/json"}, wantBody: "Stream already exists with different configuration"},
		{name: "producer sequence gap", method: http.MethodPost, target: sp("s"), body: "c",
			hdr: producer("p", "0", "3", text...), wantBody: "Producer sequence gap"},
		{name: "fork of another content type", method: http.MethodPut, target: sp("f"),
			hdr: []string{"Stream-Forked-From", sp("s"), "Content-Type", "application/json"}, wantBody: "Content type mismatch with source stream"},
		{name: "create over a deleted stream its forks read",
			setup: func(t *testing.T, e *env) {
				e.expect(t, http.StatusCreated, http.MethodPut, sp("f"), nil, "Stream-Forked-From", sp("s"))
				e.expect(t, http.StatusNoContent, http.MethodDelete, sp("s"), nil)
			},
			method: http.MethodPut, target: sp("s"), hdr: text, wantBody: "stream was deleted but still has active forks"},
		{name: "append to closed stream", setup: closeStream(nil),
			method: http.MethodPost, target: sp("s"), body: "c", hdr: text, wantBody: "Stream is closed", closedAt: 2},
		{name: "close-only by another producer", setup: closeStream(producer("p", "0", "0")),
			method: http.MethodPost, target: sp("s"), hdr: producer("q", "0", "0", "Stream-Closed", "true"),
			wantBody: "Stream is closed", closedAt: 2},
		{name: "close-only by the closing producer with a later seq", setup: closeStream(producer("p", "0", "0")),
			method: http.MethodPost, target: sp("s"), hdr: producer("p", "0", "1", "Stream-Closed", "true"),
			wantBody: "Stream is closed", closedAt: 2},
		{name: "producer close-only on a stream closed without producer", setup: closeStream(nil),
			method: http.MethodPost, target: sp("s"), hdr: producer("q", "0", "0", "Stream-Closed", "true"),
			wantBody: "Stream is closed", closedAt: 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.expect(t, http.StatusCreated, http.MethodPut, sp("s"), []byte("ab"), text...)
			if tc.setup != nil {
				tc.setup(t, e)
			}
			var body []byte
			if tc.body != "" {
				body = []byte(tc.body)
			}
			r := e.expect(t, http.StatusConflict, tc.method, tc.target, body, tc.hdr...)
			if !strings.HasPrefix(string(r.body), tc.wantBody) {
				t.Errorf("body %q, want it to begin with %q", r.body, tc.wantBody)
			}
			if tc.closedAt != 0 {
				wantHeader(t, r, "Stream-Closed", "true")
				wantHeader(t, r, "Stream-Next-Offset", e.tok(t, sp("s"), tc.closedAt))
			} else {
				wantNoHeader(t, r, "Stream-Closed")
			}
		})
	}
}

// closeStream closes "s" with a close-only request carrying hdr.
func closeStream(hdr []string) func(*testing.T, *env) {
	return func(t *testing.T, e *env) {
		t.Helper()
		e.expect(t, http.StatusNoContent, http.MethodPost, sp("s"), nil, append([]string{"Stream-Closed", "true"}, hdr...)...)
	}
}

// TestCloseOnlyOnClosedStream: a close-only request stays idempotent
// without producer headers and for the retry of the closing producer
// request; the conflicting producer cases are in TestConflictBodies.
func TestCloseOnlyOnClosedStream(t *testing.T) {
	e := newEnv(t)
	e.expect(t, http.StatusCreated, http.MethodPut, sp("s"), []byte("ab"), "Content-Type", "text/plain")
	closing := []string{"Stream-Closed", "true", "Producer-Id", "p", "Producer-Epoch", "1", "Producer-Seq", "0"}
	e.expect(t, http.StatusNoContent, http.MethodPost, sp("s"), nil, closing...)
	for name, hdr := range map[string][]string{
		"retry of the closing request": closing,
		"without producer headers":     {"Stream-Closed", "true"},
	} {
		r := e.expect(t, http.StatusNoContent, http.MethodPost, sp("s"), nil, hdr...)
		if tail := e.tok(t, sp("s"), 2); r.get("Stream-Closed") != "true" || r.get("Stream-Next-Offset") != tail {
			t.Errorf("%s: headers %v, want Stream-Closed: true at %s", name, r.header, tail)
		}
	}
}
