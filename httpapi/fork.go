package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/streamd/streamd/actors"
	"github.com/streamd/streamd/protocol"
)

// fork creates a fork (§4.2): a PUT with Stream-Forked-From.
func (s *Server) fork(c echo.Context, path string) error {
	r := c.Request()
	hdr := r.Header
	req := actors.ForkRequest{Closed: protocol.IsTrue(hdr.Get(protocol.HeaderStreamClosed))}
	source, err := forkSource(hdr.Get(protocol.HeaderStreamForkedFrom))
	if err != nil {
		return err
	}
	req.Source = source
	_, offsetSet := hdr[protocol.HeaderStreamForkOffset]
	req.AtTail = !offsetSet
	if offsetSet {
		kind, segment, pos, err := protocol.ParseOffsetSegment(hdr.Get(protocol.HeaderStreamForkOffset))
		if err != nil {
			return newError(http.StatusBadRequest, "malformed Stream-Fork-Offset")
		}
		switch kind {
		case protocol.OffsetAt:
			req.Offset, req.OffsetSegment, req.OffsetIsToken = pos, segment, true
		case protocol.OffsetTail:
			req.AtTail = true
		}
	}
	if _, ok := hdr[protocol.HeaderStreamForkSubOffset]; ok {
		if req.SubOffset, err = protocol.ParseForkSubOffset(hdr.Get(protocol.HeaderStreamForkSubOffset)); err != nil {
			return err
		}
		if req.SubOffset > 0 && !offsetSet {
			return newError(http.StatusBadRequest, "Stream-Fork-Sub-Offset requires Stream-Fork-Offset")
		}
	}
	if v := hdr.Get(echo.HeaderContentType); strings.TrimSpace(v) != "" {
		ct, err := protocol.ParseContentType(v)
		if err != nil {
			return err
		}
		req.ContentType = ct.Raw
	}
	ttl, expiresAt := hdr.Get(protocol.HeaderStreamTTL), hdr.Get(protocol.HeaderStreamExpiresAt)
	if req.Expiry, err = protocol.ParseExpiry(ttl, expiresAt); err != nil {
		return err
	}
	req.HasExpiry = ttl != "" || expiresAt != ""
	body, reserved, err := s.readBody(c)
	if err != nil {
		return err
	}
	defer s.bodies.release(reserved)
	req.Body = body
	res, err := s.streams.Fork(r.Context(), path, req)
	switch {
	case errors.Is(err, actors.ErrNotFound):
		return newError(http.StatusNotFound, "source stream not found")
	case errors.Is(err, actors.ErrGone):
		return newError(http.StatusConflict, "source stream, or a stream at this path, was deleted but still has active forks")
	case errors.Is(err, actors.ErrContentTypeMismatch):
		return newError(http.StatusConflict, "Content type mismatch with source stream")
	case err != nil:
		return err
	}
	return writeCreated(c, res)
}

// forkSource decodes Stream-Forked-From: the URL path of a stream on this
// server (§4.2), whose stream path is checked like a request's.
func forkSource(v string) (string, error) {
	raw, ok := strings.CutPrefix(strings.TrimSpace(v), StreamPrefix+"/")
	if !ok {
		return "", newError(http.StatusBadRequest, "Stream-Forked-From must be the path of a stream under "+StreamPrefix+"/")
	}
	return streamPath(raw)
}
