package httpapi_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/streamd/streamd/httpapi"
)

func TestListStreams(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	e := newEnv(t, withClock(clock.Now))
	e.api.Mount(httpapi.ListPath, e.api.ListHandler())
	text := []string{"Content-Type", "text/plain"}
	for _, p := range []string{"chat/1", "chat/2", "chat/3", "other"} {
		e.expect(t, http.StatusCreated, http.MethodPut, sp(p), nil, text...)
	}
	e.expect(t, http.StatusNoContent, http.MethodPost, sp("chat/2"), []byte("hello"), text...)
	e.expect(t, http.StatusNoContent, http.MethodPost, sp("chat/2"), nil, "Stream-Closed", "true")
	e.expect(t, http.StatusCreated, http.MethodPut, sp("chat/ttl"), nil, "Content-Type", "text/plain", "Stream-TTL", "60")
	e.expect(t, http.StatusCreated, http.MethodPut, sp("chat/fork"), nil, "Stream-Forked-From", sp("chat/2"))
	e.expect(t, http.StatusNoContent, http.MethodDelete, sp("chat/3"), nil)

	list := func(query string) httpapi.ListPage {
		t.Helper()
		r := e.expect(t, http.StatusOK, http.MethodGet, httpapi.ListPath+query, nil)
		wantHeader(t, r, "Cache-Control", "no-store")
		var page httpapi.ListPage
		if err := json.Unmarshal(r.body, &page); err != nil {
			t.Fatalf("GET %s: %v in %s", query, err, r.body)
		}
		return page
	}
	paths := func(p httpapi.ListPage) []string {
		out := []string{}
		for _, s := range p.Streams {
			out = append(out, s.Path)
		}
		return out
	}
	for _, tc := range []struct {
		query string
		want  []string
		next  string
	}{
		{"", []string{"chat/1", "chat/2", "chat/fork", "chat/ttl", "other"}, ""},
		{"?prefix=chat/", []string{"chat/1", "chat/2", "chat/fork", "chat/ttl"}, ""},
		{"?prefix=chat/&limit=2", []string{"chat/1", "chat/2"}, "chat/2"},
		{"?prefix=chat/&limit=2&after=chat/2", []string{"chat/fork", "chat/ttl"}, ""},
		{"?prefix=nothing/", []string{}, ""},
	} {
		page := list(tc.query)
		if got := paths(page); !slices.Equal(got, tc.want) || page.Next != tc.next {
			t.Errorf("GET %s = %q next %q; want %q next %q", tc.query, got, page.Next, tc.want, tc.next)
		}
	}
	page := list("?prefix=chat/2")
	if len(page.Streams) != 1 {
		t.Fatalf("prefix chat/2: %+v", page)
	}
	if s, tail := page.Streams[0], e.tok(t, sp("chat/2"), 5); s.Bytes != 5 || !s.Closed || s.ContentType != "text/plain" || s.NextOffset != tail {
		t.Errorf("chat/2 listed as %+v; want 5 bytes, closed, text/plain, next offset %s", s, tail)
	}
	if s := list("?prefix=chat/fork").Streams[0]; s.ForkedFrom != "chat/2" || s.Bytes != 5 {
		t.Errorf("chat/fork listed as %+v; want forked from chat/2 with 5 bytes", s)
	}
	if s := list("?prefix=chat/ttl").Streams[0]; s.TTLSeconds == nil || *s.TTLSeconds != 60 {
		t.Errorf("chat/ttl listed as %+v; want ttl 60", s)
	}
	clock.Advance(2 * time.Minute) // chat/ttl expired; not listed even before the reaper runs
	if got := paths(list("?prefix=chat/t")); len(got) != 0 {
		t.Errorf("expired stream still listed: %q", got)
	}
	for _, bad := range []string{"?limit=0", "?limit=1001", "?limit=x"} {
		e.expect(t, http.StatusBadRequest, http.MethodGet, httpapi.ListPath+bad, nil)
	}
}
