package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/streamd/streamd/actors"
)

// HTTP caching (§5.5, §5.6, §10.1). What each response may be cached for:
//
//   - catch-up chunks and long-poll 200s: shared (or, with
//     Config.PrivateCache, private) for up to a minute, served stale while
//     revalidating for up to five more, but never past the stream's expiry,
//     so a cache cannot serve the data of a stream that no longer exists;
//   - the empty answer at the tail of an open stream, offset=now answers,
//     long-poll 204s, HEAD and errors: no-store, since each goes stale at
//     the next append, closure, or state change;
//   - SSE: no-cache (an open-ended response).
const (
	catchUpMaxAge          = 60 * time.Second
	catchUpStaleRevalidate = 300 * time.Second
)

// catchUpValue renders a cacheable Cache-Control value; stale == 0 omits
// stale-while-revalidate.
func catchUpValue(scope string, maxAge, stale time.Duration) string {
	v := scope + ", max-age=" + strconv.FormatInt(int64(maxAge/time.Second), 10)
	if stale > 0 {
		v += ", stale-while-revalidate=" + strconv.FormatInt(int64(stale/time.Second), 10)
	}
	return v
}

// cacheScope is the Cache-Control scope of cacheable answers: "private"
// with Config.PrivateCache, else "public".
func cacheScope(private bool) string {
	if private {
		return "private"
	}
	return "public"
}

// setCatchUpCache sets Cache-Control for a cacheable read answer of snap:
// the catch-up lifetime, cut to the time the stream has left. A stream with
// a TTL was just renewed by this read, so it has its full TTL left; one
// read only through caches expires that long from now.
func (s *Server) setCatchUpCache(h http.Header, snap *actors.Snapshot) {
	now := s.streams.Now()
	deadline, expires := snap.Expiry.Deadline(now)
	if !expires || deadline.Sub(now) >= catchUpMaxAge+catchUpStaleRevalidate {
		h[headerCacheControl] = s.fixed.catchUp
		return
	}
	left := deadline.Sub(now).Truncate(time.Second)
	if left <= 0 {
		h[headerCacheControl] = s.fixed.noStore
		return
	}
	maxAge := min(left, catchUpMaxAge)
	setHeader(h, headerCacheControl, catchUpValue(cacheScope(s.cfg.PrivateCache), maxAge, left-maxAge))
}

// Content codings as they appear in ETags (inside the quotes, after the
// range) and Content-Encoding.
const (
	encodingGzip    = "gzip"
	encodingDeflate = "deflate"
)

// etag is the strong entity tag of a read answer: the stream incarnation's
// id, the range, closure (which must change it, §10.1) and the content
// coding, since a gzip, a deflate and an identity body of the same range
// are different representations and a cache must never answer a request
// for one with another.
func etag(snap *actors.Snapshot, from, end uint64, encoding string) string {
	var b strings.Builder
	b.Grow(48)
	b.WriteByte('"')
	b.WriteString(strconv.FormatUint(snap.ID, 10))
	b.WriteByte(':')
	b.WriteString(strconv.FormatUint(from, 10))
	b.WriteByte(':')
	b.WriteString(strconv.FormatUint(end, 10))
	if snap.Closed {
		b.WriteString(":c")
	}
	if encoding != "" {
		b.WriteByte(':')
		b.WriteString(encoding)
	}
	b.WriteByte('"')
	return b.String()
}

// etagMatches reports whether If-None-Match names tag, the tag of the
// representation this request would get (weak comparison, RFC 9110 §13.1.2).
func etagMatches(ifNoneMatch, tag string) bool {
	for _, t := range strings.Split(ifNoneMatch, ",") {
		t = strings.TrimSpace(t)
		if t == "*" || strings.TrimPrefix(t, "W/") == tag {
			return true
		}
	}
	return false
}

// responseEncoding picks the content coding of a catch-up body of n bytes
// for this request, and marks the response as varying by Accept-Encoding
// when compression is on (also when this answer is not compressed: another
// request for the same URL may be).
func (s *Server) responseEncoding(c echo.Context, n int) string {
	if !s.cfg.Compression {
		return ""
	}
	h := c.Response().Header()
	if v := h[echo.HeaderVary]; len(v) == 0 {
		h[echo.HeaderVary] = s.fixed.varyEncoding // shared: no allocation
	} else {
		h.Add(echo.HeaderVary, echo.HeaderAcceptEncoding) // beside Origin (cors.go)
	}
	if n < minCompressBytes {
		return ""
	}
	return negotiateEncoding(c.Request().Header.Get(echo.HeaderAcceptEncoding))
}
