package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/streamd/streamd/protocol"
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

// listStreams answers ListPath from storage. Expired streams the reaper has
// not collected yet are left out, as reads would answer 404 for them.
func (s *Server) listStreams(c echo.Context) error {
	q := c.QueryParams()
	limit := defaultListLimit
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxListLimit {
			return newError(http.StatusBadRequest, "limit must be an integer from 1 to 1000")
		}
		limit = n
	}
	prefix, after := q.Get("prefix"), q.Get("after")
	if len(prefix) > maxPathBytes || len(after) > maxPathBytes {
		return newError(http.StatusBadRequest, "prefix and after must be at most 1024 bytes")
	}
	listed, more, err := s.store.List(prefix, after, limit)
	if err != nil {
		return err
	}
	now := s.streams.Now()
	page := ListPage{Streams: make([]ListedStream, 0, len(listed))}
	for _, l := range listed {
		if deadline, ok := l.Meta.Deadline(); ok && !now.Before(deadline) {
			continue
		}
		ls := ListedStream{
			Path: l.Path, ContentType: l.Meta.ContentType, CreatedAt: l.Meta.CreatedAt.UTC().Format(time.RFC3339Nano),
			NextOffset: protocol.FormatOffset(l.Tail), Bytes: l.Tail, Closed: l.Meta.Closed,
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
	c.Response().Header().Set(headerCacheControl, "no-store")
	return c.JSON(http.StatusOK, page)
}
