package httpapi

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/streamd/streamd/actors"
	"github.com/streamd/streamd/persistence"
	"github.com/streamd/streamd/protocol"
)

const cacheNever = "no-store"

// readQuery is a parsed GET query.
type readQuery struct {
	kind    protocol.OffsetKind
	segment uint64 // of an OffsetAt token: checked against the stream's
	pos     uint64
	live    string // "", "long-poll" or "sse"
	cursor  string
}

func parseReadQuery(c echo.Context) (readQuery, error) {
	var q readQuery
	values := c.QueryParams()
	offsets, present := values["offset"]
	switch {
	case len(offsets) > 1:
		return q, newError(http.StatusBadRequest, "offset given more than once")
	case present && offsets[0] == "":
		return q, newError(http.StatusBadRequest, "empty offset")
	case present:
		var err error
		if q.kind, q.segment, q.pos, err = protocol.ParseOffsetSegment(offsets[0]); err != nil {
			return q, newError(http.StatusBadRequest, "malformed offset")
		}
	default:
		q.kind = protocol.OffsetStart
	}
	q.live = values.Get("live")
	switch q.live {
	case "", "long-poll", "sse":
	default:
		return q, newError(http.StatusBadRequest, "live must be long-poll or sse")
	}
	if q.live != "" && !present {
		return q, newError(http.StatusBadRequest, "live reads require an offset")
	}
	q.cursor = values.Get("cursor")
	return q, nil
}

// chunk is one catch-up read result.
type chunk struct {
	body     []byte
	buf      *[]byte // pooled buffer backing body, if any; see release
	end      uint64
	upToDate bool
	closed   bool // the stream is closed and the chunk reaches its end
}

// readChunk reads from pos up to the snapshot's durable tail, bounded by
// MaxChunkBytes.
// The chunk's body lives in a pooled buffer: call release once it has been
// written out.
func (s *Server) readChunk(snap *actors.Snapshot, pos uint64) (chunk, error) {
	ch := chunk{buf: s.getBuf()}
	if snap.JSON {
		msgs, end, err := s.store.ReadMessagesLayout(snap.Layout(), pos, snap.Tail, s.cfg.MaxChunkBytes)
		if errors.Is(err, persistence.ErrNotBoundary) {
			err = newError(http.StatusBadRequest, "offset is not a message boundary")
		}
		if err != nil {
			s.release(ch)
			return chunk{}, err
		}
		*ch.buf = protocol.AppendJSONArray((*ch.buf)[:0], msgs)
		ch.end = end
	} else {
		b, err := s.store.AppendBytesLayout((*ch.buf)[:0], snap.Layout(), pos, snap.Tail, s.cfg.MaxChunkBytes)
		if err != nil {
			s.release(ch)
			return chunk{}, err
		}
		*ch.buf = b
		ch.end = pos + uint64(len(b))
	}
	ch.body = *ch.buf
	ch.upToDate = ch.end == snap.Tail
	ch.closed = ch.upToDate && snap.Closed
	return ch, nil
}

// sequentialChunk is readChunk for a reader that will likely ask for the
// following chunk next (catch-up, SSE catch-up): it serves a chunk read
// ahead for pos if there is one, and starts reading ahead the next.
func (s *Server) sequentialChunk(snap *actors.Snapshot, pos uint64) (chunk, error) {
	ch, ok := s.ahead.take(snap, pos)
	if !ok {
		var err error
		if ch, err = s.readChunk(snap, pos); err != nil {
			return chunk{}, err
		}
	}
	if !ch.upToDate {
		s.ahead.start(snap, ch.end)
		if !snap.JSON {
			// A byte stream's chunks end exactly MaxChunkBytes apart, so
			// the one after next can load too.
			s.ahead.start(snap, ch.end+uint64(s.cfg.MaxChunkBytes))
		}
	}
	return ch, nil
}

func (s *Server) read(c echo.Context, path string) error {
	q, err := parseReadQuery(c)
	if err != nil {
		return err
	}
	r := c.Request()
	h, snap, err := s.streams.Open(r.Context(), path)
	if err != nil {
		return err
	}
	s.streams.Touch(h, snap) // reads refresh a sliding TTL, live ones included
	pos := q.pos
	switch q.kind {
	case protocol.OffsetStart:
		pos = 0
	case protocol.OffsetTail:
		pos = snap.Tail
	}
	if q.kind == protocol.OffsetAt && !snap.Offsets.Accepts(q.segment, pos) {
		// A token this incarnation never issued: most likely one of a
		// stream deleted and created again at this path (§8: offsets are
		// valid for the lifetime of their stream).
		return newError(http.StatusBadRequest, "offset is from another incarnation of this stream")
	}
	if pos > snap.Tail {
		return newError(http.StatusBadRequest, "offset is beyond the tail of the stream")
	}
	switch q.live {
	case "sse":
		return s.serveSSE(c, path, snap, pos, q.cursor)
	case "long-poll":
		return s.longPoll(c, path, snap, pos, liveAnswer{cursor: s.cfg.Cursor.Next(q.cursor), fromNow: q.kind == protocol.OffsetTail})
	}
	if q.kind == protocol.OffsetTail {
		return s.writeTail(c, snap, http.StatusOK, "")
	}
	return s.writeChunk(c, snap, pos, liveAnswer{})
}

// liveAnswer is what a long-poll answer carries beyond a catch-up one: its
// cursor, and whether the request asked for offset=now, whose answers are
// never cached (the same URL means a later position at every append). The
// zero value is a catch-up answer.
type liveAnswer struct {
	cursor  string
	fromNow bool
}

// writeChunk answers with the data at pos (catch-up, or a long-poll that
// found data).
func (s *Server) writeChunk(c echo.Context, snap *actors.Snapshot, pos uint64, live liveAnswer) error {
	ch, err := s.sequentialChunk(snap, pos)
	if err != nil {
		return err
	}
	defer s.release(ch)
	return s.writeBody(c, snap, pos, ch, live)
}

// maxPooledBuffer bounds buffers kept for reuse, so one huge JSON chunk does
// not pin its memory forever.
const maxPooledBuffer = 4 << 20

func (s *Server) getBuf() *[]byte {
	if b, ok := s.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 0, 64<<10)
	return &b
}

// release returns a chunk's buffer to the pool; the body must no longer be
// referenced.
func (s *Server) release(ch chunk) {
	if ch.buf == nil || cap(*ch.buf) > maxPooledBuffer {
		return
	}
	*ch.buf = (*ch.buf)[:0]
	s.bufs.Put(ch.buf)
}

func (s *Server) writeBody(c echo.Context, snap *actors.Snapshot, pos uint64, ch chunk, live liveAnswer) error {
	h := c.Response().Header()
	enc := ""
	if live.cursor == "" {
		// Live responses are never compressed: they are latency-bound and
		// usually small, and compressing per reader would cost CPU at
		// fan-out.
		enc = s.responseEncoding(c, len(ch.body))
	}
	tag := etag(snap, pos, ch.end, enc)
	setHeader(h, headerETag, tag)
	setHeader(h, protocol.HeaderStreamNextOffset, snap.Offset(ch.end))
	if ch.upToDate {
		h[protocol.HeaderStreamUpToDate] = s.fixed.upToDate
	}
	if ch.closed {
		h[protocol.HeaderStreamClosed] = s.fixed.closed
	}
	if live.cursor != "" {
		setHeader(h, protocol.HeaderStreamCursor, live.cursor)
	}
	if (ch.end == pos && !ch.closed) || live.fromNow {
		// An empty tail answer goes stale at the next append; offset=now
		// names a different position after it.
		h[headerCacheControl] = s.fixed.noStore
	} else {
		s.setCatchUpCache(h, snap)
	}
	if inm := c.Request().Header.Get("If-None-Match"); inm != "" && etagMatches(inm, tag) {
		return c.NoContent(http.StatusNotModified)
	}
	if live.cursor != "" {
		return c.Blob(http.StatusOK, snap.ContentType, ch.body)
	}
	return s.writeEncoded(c, snap.ContentType, ch.body, enc)
}

// writeTail answers at the tail without data: offset=now catch-up reads
// (status 200) and long-polls that time out or hit a closed stream (204).
func (s *Server) writeTail(c echo.Context, snap *actors.Snapshot, status int, cursor string) error {
	h := c.Response().Header()
	setHeader(h, protocol.HeaderStreamNextOffset, snap.Offset(snap.Tail))
	h[protocol.HeaderStreamUpToDate] = s.fixed.upToDate
	if snap.Closed {
		h[protocol.HeaderStreamClosed] = s.fixed.closed
	} else if cursor != "" {
		setHeader(h, protocol.HeaderStreamCursor, cursor)
	}
	h[headerCacheControl] = s.fixed.noStore
	if status == http.StatusNoContent {
		return c.NoContent(status)
	}
	var body []byte
	if snap.JSON {
		body = []byte("[]")
	}
	return c.Blob(status, snap.ContentType, body)
}

func (s *Server) longPoll(c echo.Context, path string, snap *actors.Snapshot, pos uint64, live liveAnswer) error {
	if pos < snap.Tail {
		return s.writeChunk(c, snap, pos, live)
	}
	if snap.Closed {
		return s.writeTail(c, snap, http.StatusNoContent, live.cursor)
	}
	d, err := s.streams.Wait(c.Request().Context(), path, pos, s.cfg.LongPollTimeout, s.cfg.Draining)
	switch {
	case err == nil:
	case errors.Is(err, actors.ErrBehind):
		return s.reread(c, path, pos, live)
	case errors.Is(err, actors.ErrWaitTimeout):
		_, now, err := s.streams.Open(c.Request().Context(), path)
		if err != nil {
			return err
		}
		if now.Tail > pos {
			// Data became durable between the wait's end and this look: a
			// 204 at the new tail would make the client skip it.
			return s.writeChunk(c, now, pos, live)
		}
		return s.writeTail(c, now, http.StatusNoContent, live.cursor)
	default:
		return err
	}
	if d.Deleted {
		// Deleted, soft-deleted (410) or replaced: say which.
		if _, _, err := s.streams.Open(c.Request().Context(), path); err != nil {
			return err
		}
		return actors.ErrNotFound
	}
	after := *snap
	after.Tail, after.Closed = d.End, d.Closed
	if d.End == d.Start {
		return s.writeTail(c, &after, http.StatusNoContent, live.cursor)
	}
	if d.Start != pos || len(d.Body()) > s.cfg.MaxChunkBytes {
		return s.reread(c, path, pos, live)
	}
	// The delta is shared by every waiter woken by this commit: no storage
	// read and no re-encoding per reader.
	return s.writeBody(c, &after, pos, chunk{body: d.Body(), end: d.End, upToDate: true, closed: d.Closed}, live)
}

// reread serves a live read from storage with a fresh snapshot.
func (s *Server) reread(c echo.Context, path string, pos uint64, live liveAnswer) error {
	_, snap, err := s.streams.Open(c.Request().Context(), path)
	if err != nil {
		return err
	}
	return s.writeChunk(c, snap, pos, live)
}
