package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"
)

// ListPath is the operators' endpoint listing streams, paginated and by
// path prefix: GET ListPath?prefix=chat/&after=chat/41&limit=100.
const ListPath = "/admin/streams"

// defaultListLimit and maxListLimit bound one page of ListPath.
const (
	defaultListLimit = 100
	maxListLimit     = 1000
)

// ListedStream is one stream in a ListPage.
type ListedStream struct {
	Path        string `json:"path"`
	ContentType string `json:"contentType"`
	CreatedAt   string `json:"createdAt"`
	// NextOffset is the stream's tail in storage; Bytes the data it holds
	// (its own and, for a fork, what it inherits).
	NextOffset string `json:"nextOffset"`
	Bytes      uint64 `json:"bytes"`
	Closed     bool   `json:"closed,omitempty"`
	TTLSeconds *int64 `json:"ttlSeconds,omitempty"`
	ExpiresAt  string `json:"expiresAt,omitempty"`
	ForkedFrom string `json:"forkedFrom,omitempty"`
}

// ListPage is the body of a ListPath response. Next, when set, is the
// after value that fetches the following page.
type ListPage struct {
	Streams []ListedStream `json:"streams"`
	Next    string         `json:"next,omitempty"`
}

// ListHandler serves the listing of ListPath from storage: mount it on
// the main address (Mount) or an operators' one. Expired streams the
// reaper has not collected yet are left out, as reads would answer 404
// for them.
func (s *Server) ListHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(headerCacheControl, cacheNever)
		page, err := s.listPage(r)
		if err != nil {
			status, msg := http.StatusInternalServerError, "internal error"
			var ae *apiError
			if errors.As(err, &ae) {
				status, msg = ae.status, ae.msg
				for k, v := range ae.headers {
					w.Header().Set(k, v)
				}
			} else {
				s.log.Error("list streams", "error", err)
			}
			http.Error(w, msg, status)
			return
		}
		body, err := json.Marshal(page)
		if err != nil {
			s.log.Error("list streams", "error", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(body)
	})
}

// listPage reads one page. With access control, listing needs a token
// that may read every stream under the prefix, as names alone can tell
// more than a client should know.
func (s *Server) listPage(r *http.Request) (*ListPage, error) {
	q := r.URL.Query()
	if s.auth != nil {
		g, err := s.auth.grantFor(r)
		if err != nil {
			return nil, err
		}
		if !hasPrefix(g.read, q.Get("prefix")) {
			return nil, newError(http.StatusForbidden, "this token may not read every stream under this prefix")
		}
	}
	limit := defaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			return nil, newError(http.StatusBadRequest, "limit must be an integer from 1 to 1000")
		}
		limit = n
	}
	prefix, after := q.Get("prefix"), q.Get("after")
	if len(prefix) > maxPathBytes || len(after) > maxPathBytes {
		return nil, newError(http.StatusBadRequest, "prefix and after must be at most 1024 bytes")
	}
	listed, more, err := s.store.List(prefix, after, limit)
	if err != nil {
		return nil, err
	}
	now := s.streams.Now()
	page := &ListPage{Streams: make([]ListedStream, 0, len(listed))}
	for _, l := range listed {
		if deadline, ok := l.Meta.Deadline(); ok && !now.Before(deadline) {
			continue
		}
		ls := ListedStream{
			Path: l.Path, ContentType: l.Meta.ContentType, CreatedAt: l.Meta.CreatedAt.UTC().Format(time.RFC3339Nano),
			NextOffset: l.Meta.OffsetSegments().Format(l.Tail), Bytes: l.Tail, Closed: l.Meta.Closed,
		}
		if l.Meta.HasTTL {
			secs := int64(l.Meta.TTL / time.Second)
			ls.TTLSeconds = &secs
		}
		if !l.Meta.ExpiresAt.IsZero() {
			ls.ExpiresAt = l.Meta.ExpiresAt.UTC().Format(time.RFC3339)
		}
		if l.Meta.Fork != nil {
			ls.ForkedFrom = l.Meta.Fork.SourcePath
		}
		page.Streams = append(page.Streams, ls)
	}
	if more && len(listed) > 0 {
		page.Next = listed[len(listed)-1].Path
	}
	return page, nil
}
