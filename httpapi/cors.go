package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
)

// maxCORSOrigins bounds the origins list; browsers' Origin values are
// matched against it on every request.
const maxCORSOrigins = 1000

// ParseCORSOrigins parses a comma-separated list of browser origins
// ("https://app.example.com", "http://localhost:3000") or "*" for any
// origin. Origins are compared exactly as browsers send them, so each must
// be scheme://host[:port] with nothing after it.
func ParseCORSOrigins(list string) ([]string, error) {
	var origins []string
	for _, o := range strings.Split(list, ",") {
		o = strings.TrimSpace(o)
		if o == "" {
			continue
		}
		if o == "*" {
			origins = append(origins, o)
			continue
		}
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
			u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("CORS origin %q: want scheme://host[:port], e.g. https://app.example.com", o)
		}
		origins = append(origins, strings.ToLower(o))
	}
	if len(origins) > maxCORSOrigins {
		return nil, fmt.Errorf("more than %d CORS origins", maxCORSOrigins)
	}
	for _, o := range origins {
		if o == "*" && len(origins) > 1 {
			return nil, fmt.Errorf("CORS origin \"*\" allows every origin and cannot be combined with others")
		}
	}
	return origins, nil
}

// corsPolicy decides Access-Control-Allow-Origin. With any == true every
// origin is allowed with "*"; otherwise only the listed origins are, each
// answered with its own name (and Vary: Origin, so a cache keeps one answer
// per origin). An origin not listed gets no Allow-Origin, which a browser
// enforces by refusing the response to the page.
type corsPolicy struct {
	any     bool
	allowed map[string]struct{}
}

func newCORSPolicy(origins []string) corsPolicy {
	p := corsPolicy{allowed: make(map[string]struct{}, len(origins))}
	for _, o := range origins {
		if o == "*" {
			return corsPolicy{any: true}
		}
		p.allowed[o] = struct{}{}
	}
	return p
}

// allowListed sets the CORS origin headers for a policy with a list.
func (p corsPolicy) allowListed(h http.Header, r *http.Request) {
	h.Add(echo.HeaderVary, echo.HeaderOrigin)
	origin := r.Header.Get(echo.HeaderOrigin)
	if origin == "" {
		return
	}
	if _, ok := p.allowed[strings.ToLower(origin)]; ok {
		h.Set(echo.HeaderAccessControlAllowOrigin, origin)
		// Lets pages that fetch with credentials: "include" read answers
		// too; streamd uses no cookies, so this grants nothing else.
		h.Set(echo.HeaderAccessControlAllowCredentials, "true")
	}
}
