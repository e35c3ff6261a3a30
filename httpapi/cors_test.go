package httpapi_test

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/streamd/streamd/httpapi"
)

// TestCORSOrigins: which Access-Control-Allow-Origin each configuration
// sends, on reads, on errors and on preflights.
func TestCORSOrigins(t *testing.T) {
	const app = "https://app.example.com"
	list := []string{app, "http://localhost:3000"}
	cases := []struct {
		name        string
		origins     []string
		auth        bool
		method      string
		path        string
		origin      string
		wantAllow   string // "" means absent
		wantVary    bool
		wantCredent bool
	}{
		{name: "default allows any", method: http.MethodGet, path: "c", origin: app, wantAllow: "*"},
		{name: "default without Origin", method: http.MethodGet, path: "c", wantAllow: "*"},
		{name: "star allows any", origins: []string{"*"}, method: http.MethodGet, path: "c", origin: "https://evil.example", wantAllow: "*"},
		{name: "listed origin echoed", origins: list, method: http.MethodGet, path: "c", origin: app, wantAllow: app, wantVary: true, wantCredent: true},
		{name: "listed origin, other case", origins: list, method: http.MethodGet, path: "c", origin: "HTTPS://APP.example.com", wantAllow: "HTTPS://APP.example.com", wantVary: true, wantCredent: true},
		{name: "unlisted origin", origins: list, method: http.MethodGet, path: "c", origin: "https://evil.example", wantVary: true},
		{name: "listed origin on an error", origins: list, method: http.MethodGet, path: "missing", origin: app, wantAllow: app, wantVary: true, wantCredent: true},
		{name: "preflight, listed", origins: list, method: http.MethodOptions, path: "c", origin: app, wantAllow: app, wantVary: true, wantCredent: true},
		{name: "preflight, unlisted", origins: list, method: http.MethodOptions, path: "c", origin: "https://evil.example", wantVary: true},
		{name: "auth without a list allows no origin", auth: true, method: http.MethodGet, path: "c", origin: app, wantVary: true},
		{name: "auth without a list, preflight", auth: true, method: http.MethodOptions, path: "c", origin: app, wantVary: true},
		{name: "auth with a list", auth: true, origins: list, method: http.MethodGet, path: "c", origin: app, wantAllow: app, wantVary: true, wantCredent: true},
		{name: "auth with star", auth: true, origins: []string{"*"}, method: http.MethodGet, path: "c", origin: app, wantAllow: "*"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := []option{withAPI(func(cfg *httpapi.Config) { cfg.CORSOrigins = c.origins })}
			var auth []string
			if c.auth {
				opts = append(opts, withAuth(mustAuth(t, testAuthFile)))
				auth = bearer("admin-secret")
			}
			e := newEnv(t, opts...)
			e.expect(t, http.StatusCreated, http.MethodPut, sp("c"), nil, append([]string{"Content-Type", "text/plain"}, auth...)...)
			hdr := append([]string{}, auth...)
			if c.origin != "" {
				hdr = append(hdr, "Origin", c.origin)
			}
			r := e.do(t, c.method, sp(c.path), nil, hdr...)
			if c.wantAllow == "" {
				wantNoHeader(t, r, "Access-Control-Allow-Origin")
			} else {
				wantHeader(t, r, "Access-Control-Allow-Origin", c.wantAllow)
			}
			vary := false
			for _, v := range r.header.Values("Vary") {
				vary = vary || v == "Origin"
			}
			if vary != c.wantVary {
				t.Errorf("Vary %q; want Origin in it: %v", r.header.Values("Vary"), c.wantVary)
			}
			if c.wantCredent {
				wantHeader(t, r, "Access-Control-Allow-Credentials", "true")
			} else {
				wantNoHeader(t, r, "Access-Control-Allow-Credentials")
			}
		})
	}
}

func TestParseCORSOrigins(t *testing.T) {
	good := map[string][]string{
		"*": {"*"},
		"":  nil,
		" https://a.example , http://localhost:3000 ": {"https://a.example", "http://localhost:3000"},
		"HTTPS://A.example":                           {"https://a.example"},
		"https://a.example,":                          {"https://a.example"},
		"http://[::1]:8080":                           {"http://[::1]:8080"},
	}
	for in, want := range good {
		got, err := httpapi.ParseCORSOrigins(in)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("ParseCORSOrigins(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{
		"a.example", "https://a.example/", "https://a.example/app", "ftp://a.example",
		"https://a.example?x=1", "https://user@a.example", "*,https://a.example", "https://",
	} {
		if got, err := httpapi.ParseCORSOrigins(in); err == nil {
			t.Errorf("ParseCORSOrigins(%q) accepted: %q", in, got)
		}
	}
}
