package httpapi

import (
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/streamd/streamd/actors"
	"github.com/streamd/streamd/protocol"
)

// readBody reads the request body up to the configured limit (413 beyond).
func (s *Server) readBody(c echo.Context) ([]byte, error) {
	r := c.Request()
	if r.ContentLength > s.cfg.MaxAppendBytes {
		return nil, newError(http.StatusRequestEntityTooLarge, "request body too large")
	}
	body, err := io.ReadAll(http.MaxBytesReader(c.Response(), r.Body, s.cfg.MaxAppendBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			return nil, newError(http.StatusRequestEntityTooLarge, "request body too large")
		}
		return nil, newError(http.StatusBadRequest, "could not read request body")
	}
	return body, nil
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
	if r.Header.Get(protocol.HeaderStreamForkedFrom) != "" {
		return newError(http.StatusNotImplemented, "stream forking is not supported yet")
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
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	recs, err := records(body, protocol.IsJSON(ct.Raw), true)
	if err != nil {
		return err
	}
	res, err := s.streams.Create(r.Context(), path, actors.CreateRequest{
		ContentType: ct.Raw, Expiry: expiry, Closed: protocol.IsTrue(r.Header.Get(protocol.HeaderStreamClosed)), Records: recs,
	})
	if err != nil {
		return err
	}
	h := c.Response().Header()
	h.Set(echo.HeaderContentType, res.Snapshot.ContentType)
	h.Set(protocol.HeaderStreamNextOffset, protocol.FormatOffset(res.NextOffset))
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
	body, err := s.readBody(c)
	if err != nil {
		return err
	}
	req := actors.AppendRequest{Seq: hdr.Get(protocol.HeaderStreamSeq), Producer: producer, Close: closing}
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
	h.Set(protocol.HeaderStreamNextOffset, protocol.FormatOffset(res.NextOffset))
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
	h.Set(protocol.HeaderStreamNextOffset, protocol.FormatOffset(snap.Tail))
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
