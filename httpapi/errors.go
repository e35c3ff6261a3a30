package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/streamd/streamd/actors"
	"github.com/streamd/streamd/protocol"
)

// apiError is an error with an HTTP status and extra response headers.
type apiError struct {
	status  int
	msg     string
	headers map[string]string
	// limit names the bound that refused the request, if one did (counted
	// in Rejections).
	limit string
}

func (e *apiError) Error() string { return e.msg }

func newError(status int, msg string) *apiError { return &apiError{status: status, msg: msg} }

func (e *apiError) with(k, v string) *apiError {
	if e.headers == nil {
		e.headers = map[string]string{}
	}
	e.headers[k] = v
	return e
}

// toAPIError maps domain errors to protocol status codes (§5). Conflict
// bodies begin with the words the reference server uses ("Stream is closed",
// "Sequence conflict", "Content-type mismatch", ...), which clients match on
// although §5.2 tells them not to rely on bodies.
func toAPIError(err error) *apiError {
	var ae *apiError
	var closed *actors.ClosedError
	var stale *actors.StaleEpochError
	var gap *actors.SeqGapError
	var he *echo.HTTPError
	var tooBig *http.MaxBytesError
	var limit *actors.LimitError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &limit):
		status := http.StatusTooManyRequests
		if limit.Server {
			status = http.StatusServiceUnavailable
		}
		return overloaded(limit.Limit, status, limit.Error())
	case errors.As(err, &closed):
		return newError(http.StatusConflict, "Stream is closed").
			with(protocol.HeaderStreamClosed, "true").
			with(protocol.HeaderStreamNextOffset, closed.Offsets.Format(closed.Tail))
	case errors.As(err, &stale):
		return newError(http.StatusForbidden, "stale producer epoch").
			with(protocol.HeaderProducerEpoch, strconv.FormatUint(stale.Current, 10))
	case errors.As(err, &gap):
		return newError(http.StatusConflict, "Producer sequence gap").
			with(protocol.HeaderProducerExpectedSeq, strconv.FormatUint(gap.Expected, 10)).
			with(protocol.HeaderProducerReceivedSeq, strconv.FormatUint(gap.Received, 10))
	case errors.As(err, &tooBig):
		return newError(http.StatusRequestEntityTooLarge, "request body too large")
	case errors.As(err, &he):
		msg := http.StatusText(he.Code)
		if s, ok := he.Message.(string); ok {
			msg = s
		}
		return newError(he.Code, msg)
	case errors.Is(err, actors.ErrNotFound):
		return newError(http.StatusNotFound, "stream not found")
	case errors.Is(err, actors.ErrGone):
		return newError(http.StatusGone, "stream was deleted")
	case errors.Is(err, actors.ErrForkPoint):
		return newError(http.StatusBadRequest, err.Error())
	case errors.Is(err, actors.ErrConfigMismatch):
		return newError(http.StatusConflict, "Stream already exists with different configuration")
	case errors.Is(err, actors.ErrContentTypeMismatch):
		return newError(http.StatusConflict, "Content-type mismatch: the request's content type is not the stream's")
	case errors.Is(err, actors.ErrSeqRegression):
		return newError(http.StatusConflict, "Sequence conflict: Stream-Seq must be greater than the last one")
	case errors.Is(err, actors.ErrEpochSeq):
		return newError(http.StatusBadRequest, actors.ErrEpochSeq.Error())
	case errors.Is(err, actors.ErrOffsetBeyondTail):
		return newError(http.StatusBadRequest, "offset is beyond the tail of the stream")
	case protocol.IsBadRequest(err):
		return newError(http.StatusBadRequest, strings.TrimPrefix(err.Error(), protocol.ErrBadRequest.Error()+": "))
	case errors.Is(err, actors.ErrShuttingDown):
		return overloaded(LimitShutdown, http.StatusServiceUnavailable, "shutting down")
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		// The request's context ended before its answer was known: the
		// client left (and reads nothing), or shutdown ran out of time. The
		// outcome of a write is unknown either way, so never a 2xx.
		return newError(http.StatusServiceUnavailable, "request cancelled before it completed").with("Retry-After", retryAfterSeconds)
	}
	return nil
}

// errorHandler writes errors as short text/plain bodies. It writes a status
// on every path: an error never leaves net/http to send its implicit 200.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return // a live response already under way ends here
	}
	ae := toAPIError(err)
	if ae == nil {
		// Logged, with err, by finish as every 5xx is.
		ae = newError(http.StatusInternalServerError, "internal error")
	}
	if ae.limit != "" {
		s.rejections.Add(ae.limit)
	}
	s.writeError(c, ae)
}

// writeError writes ae as the response.
func (s *Server) writeError(c echo.Context, ae *apiError) {
	h := c.Response().Header()
	for k, v := range ae.headers {
		h.Set(k, v)
	}
	h.Set(echo.HeaderCacheControl, "no-store")
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(ae.status)
		return
	}
	_ = c.String(ae.status, ae.msg)
}
