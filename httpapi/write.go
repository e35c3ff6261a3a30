package httpapi

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/streamd/streamd/actors"
	"github.com/streamd/streamd/protocol"
)

// readBody reads the request body up to MaxAppendBytes (413 beyond). Its
// bytes count against MaxBodyMemory from the first read until the caller
// releases the returned reservation with s.bodies.release, once the write
// it carries has been answered: past the budget the request gets 503, so
// many slow or large uploads cannot hold unbounded memory. A body that has
// not arrived within the server's read timeout gets 408.
func (s *Server) readBody(c echo.Context) (body []byte, reserved int64, err error) {
	r := c.Request()
	limit := s.cfg.MaxAppendBytes
	if r.ContentLength > limit {
		return nil, 0, newError(http.StatusRequestEntityTooLarge, "request body too large")
	}
	// A declared length is reserved and read at once; a chunked body grows
	// its buffer (and reservation) as it arrives.
	size := r.ContentLength
	if size < 0 {
		size = min(limit, 64<<10)
	}
	if size == 0 {
		return nil, 0, nil
	}
	if !s.bodies.reserve(size) {
		return nil, 0, overloaded(LimitBodyMemory, http.StatusServiceUnavailable, "too many request bodies in memory")
	}
	reserved = size
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			if r.ContentLength >= 0 || int64(len(buf)) > limit {
				break
			}
			// One byte past the limit tells a too-large body from one of
			// exactly the limit.
			grow := min(int64(cap(buf)), limit+1-int64(cap(buf)))
			if !s.bodies.reserve(grow) {
				s.bodies.release(reserved)
				return nil, 0, overloaded(LimitBodyMemory, http.StatusServiceUnavailable, "too many request bodies in memory")
			}
			reserved += grow
			grown := make([]byte, len(buf), int64(cap(buf))+grow)
			copy(grown, buf)
			buf = grown
		}
		n, rerr := r.Body.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			s.bodies.release(reserved)
			return nil, 0, bodyReadError(rerr)
		}
	}
	if int64(len(buf)) > limit {
		s.bodies.release(reserved)
		return nil, 0, newError(http.StatusRequestEntityTooLarge, "request body too large")
	}
	return buf, reserved, nil
}

// bodyReadError maps a failed body read to its answer.
func bodyReadError(err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return newError(http.StatusRequestEntityTooLarge, "request body too large")
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		e := newError(http.StatusRequestTimeout, "request body not received in time")
		e.limit = LimitReadTimeout
		return e.with(echo.HeaderConnection, "close")
	}
	return newError(http.StatusBadRequest, "could not read request body")
}

// records splits a body into stored records: JSON bodies into messages,
// anything else into one record (none when empty).
func records(body []byte, json, create bool) ([][]byte, error) {
	if json {
		if create && len(strings.TrimSpace(string(body))) == 0 {
			return nil, nil
		}
		return protocol.SplitJSON(body, create)
	}
	if len(body) == 0 {
		return nil, nil
	}
	return [][]byte{body}, nil
}

func (s *Server) create(c echo.Context, path string) error {
	r := c.Request()
	if _, ok := r.Header[protocol.HeaderStreamForkedFrom]; ok {
		return s.fork(c, path)
	}
	for _, h := range []string{protocol.HeaderStreamForkOffset, protocol.HeaderStreamForkSubOffset} {
		if _, ok := r.Header[h]; ok {
			return newError(http.StatusBadRequest, h+" requires Stream-Forked-From")
		}
	}
	ct := protocol.ContentType{Raw: protocol.DefaultContentType, Essence: protocol.DefaultContentType}
	if v := r.Header.Get(echo.HeaderContentType); strings.TrimSpace(v) != "" {
		var err error
		if ct, err = protocol.ParseContentType(v); err != nil {
			return err
		}
	}
	expiry, err := protocol.ParseExpiry(r.Header.Get(protocol.HeaderStreamTTL), r.Header.Get(protocol.HeaderStreamExpiresAt))
	if err != nil {
		return err
	}
	body, reserved, err := s.readBody(c)
	if err != nil {
		return err
	}
	defer s.bodies.release(reserved)
	recs, err := records(body, protocol.IsJSON(ct.Raw), true)
	if err != nil {
		return err
	}
	res, err := s.streams.Create(r.Context(), path, actors.CreateRequest{
		ContentType: ct.Raw, Expiry: expiry, Closed: protocol.IsTrue(r.Header.Get(protocol.HeaderStreamClosed)), Records: recs,
	})
	if err != nil {
		return createError(err)
	}
	return writeCreated(c, res)
}

// createError maps what a create can meet: a soft-deleted stream at the
// path keeps it taken (409, not the 410 other methods get).
func createError(err error) error {
	if errors.Is(err, actors.ErrGone) {
		return newError(http.StatusConflict, "stream was deleted but still has active forks; the path cannot be reused until they are deleted")
	}
	return err
}

// writeCreated answers a create or fork (201, or 200 for one that existed).
func writeCreated(c echo.Context, res actors.Result) error {
	r := c.Request()
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, res.Snapshot.ContentType)
	h.Set(protocol.HeaderStreamNextOffset, res.Offsets.Format(res.NextOffset))
	if res.Closed {
		h.Set(protocol.HeaderStreamClosed, "true")
	}
	status := http.StatusOK
	if res.Outcome == actors.Created {
		status = http.StatusCreated
		h.Set(echo.HeaderLocation, absoluteURL(r))
	}
	return c.NoContent(status)
}

func absoluteURL(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "http" || p == "https" {
		scheme = p
	}
	return scheme + "://" + r.Host + r.URL.EscapedPath()
}

func (s *Server) appendTo(c echo.Context, path string) error {
	r := c.Request()
	hdr := r.Header
	closing := protocol.IsTrue(hdr.Get(protocol.HeaderStreamClosed))
	producer, err := protocol.ParseProducer(
		hdr.Get(protocol.HeaderProducerID), hdr.Get(protocol.HeaderProducerEpoch), hdr.Get(protocol.HeaderProducerSeq),
		len(hdr.Values(protocol.HeaderProducerID)) > 0, len(hdr.Values(protocol.HeaderProducerEpoch)) > 0, len(hdr.Values(protocol.HeaderProducerSeq)) > 0)
	if err != nil {
		return err
	}
	seq := hdr.Get(protocol.HeaderStreamSeq)
	if len(seq) > s.cfg.MaxHeaderValueBytes {
		return newError(http.StatusBadRequest, fmt.Sprintf("Stream-Seq longer than %d bytes", s.cfg.MaxHeaderValueBytes))
	}
	if producer != nil && len(producer.ID) > s.cfg.MaxHeaderValueBytes {
		return newError(http.StatusBadRequest, fmt.Sprintf("Producer-Id longer than %d bytes", s.cfg.MaxHeaderValueBytes))
	}
	body, reserved, err := s.readBody(c)
	if err != nil {
		return err
	}
	defer s.bodies.release(reserved)
	req := actors.AppendRequest{Seq: seq, Producer: producer, Close: closing}
	if len(body) == 0 && !closing {
		return newError(http.StatusBadRequest, "empty body: appends need data unless Stream-Closed: true")
	}
	if len(body) > 0 {
		v := hdr.Get(echo.HeaderContentType)
		if strings.TrimSpace(v) == "" {
			return newError(http.StatusBadRequest, "missing Content-Type")
		}
		ct, err := protocol.ParseContentType(v)
		if err != nil {
			return err
		}
		req.ContentType = ct.Raw
		// JSON validation needs the stream's mode; when the stream is
		// missing, closed or of another type the actor answers with the
		// right 404/409 instead, per the precedence of §5.2. Should the
		// path become a JSON stream after this look, the actor splits.
		_, snap, err := s.streams.Open(r.Context(), path)
		if err != nil {
			return err
		}
		if snap.JSON && !snap.Closed && protocol.SameContentType(ct.Raw, snap.ContentType) {
			if req.Records, err = records(body, true, false); err != nil {
				return err
			}
		} else {
			req.Records, req.Unsplit = [][]byte{body}, true
		}
	}
	res, err := s.streams.Append(r.Context(), path, req)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set(protocol.HeaderStreamNextOffset, res.Offsets.Format(res.NextOffset))
	if res.Closed {
		h.Set(protocol.HeaderStreamClosed, "true")
	}
	status := http.StatusNoContent
	if producer != nil {
		h.Set(protocol.HeaderProducerEpoch, strconv.FormatUint(res.ProducerEpoch, 10))
		h.Set(protocol.HeaderProducerSeq, strconv.FormatUint(res.ProducerSeq, 10))
		if res.Outcome == actors.Appended && len(req.Records) > 0 {
			status = http.StatusOK // new data from an idempotent producer (§5.2.1)
		}
	}
	return c.NoContent(status)
}

func (s *Server) remove(c echo.Context, path string) error {
	if err := s.streams.Delete(c.Request().Context(), path); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

func (s *Server) head(c echo.Context, path string) error {
	_, snap, err := s.streams.Open(c.Request().Context(), path)
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, snap.ContentType)
	h.Set(protocol.HeaderStreamNextOffset, snap.Offset(snap.Tail))
	if snap.Expiry.HasTTL {
		h.Set(protocol.HeaderStreamTTL, formatTTL(snap.Expiry.TTL))
	}
	if !snap.Expiry.ExpiresAt.IsZero() {
		h.Set(protocol.HeaderStreamExpiresAt, snap.Expiry.ExpiresAt.Format(time.RFC3339Nano))
	}
	if snap.Closed {
		h.Set(protocol.HeaderStreamClosed, "true")
	}
	h.Set(echo.HeaderCacheControl, "no-store")
	return c.NoContent(http.StatusOK)
}
