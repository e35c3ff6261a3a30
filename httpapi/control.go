package httpapi

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// The reserved control namespace (PROTOCOL.md §6): stream paths whose
// first segment is __ds belong to the Durable Streams control APIs.
const (
	controlRoot   = "__ds"
	controlPrefix = controlRoot + "/"
)

// control answers a request under the reserved namespace; rest is the path
// after "__ds/". Only the signing key discovery is served so far: the
// subscription APIs answer 404 with a message saying so (not 501: every
// 5xx is logged as a server failure), and no request reaches a stream.
func (s *Server) control(c echo.Context, rest string) error {
	switch {
	case rest == "jwks.json":
		if s.cfg.SigningKeys == nil {
			return newError(http.StatusNotFound, "no webhook signing keys")
		}
		if m := c.Request().Method; m != http.MethodGet && m != http.MethodHead {
			return newError(http.StatusMethodNotAllowed, "jwks.json is read with GET").with(echo.HeaderAllow, "GET, HEAD")
		}
		h := c.Response().Header()
		h.Set(headerCacheControl, "public, max-age=300")
		return c.Blob(http.StatusOK, "application/jwk-set+json", s.cfg.SigningKeys.JWKS())
	case rest == "subscriptions" || strings.HasPrefix(rest, "subscriptions/"):
		return newError(http.StatusNotFound, "subscriptions are not supported by this server yet")
	}
	return newError(http.StatusNotFound, "no such control endpoint under __ds/")
}
