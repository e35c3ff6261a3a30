package httpapi_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/streamd/streamd/httpapi"
)

func sha256Hex(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}

// testAuthFile grants, per token:
//
//	admin     read and write everything
//	reader    read chat/
//	writer    read and write chat/alice/
//	dropper   write drop/ only
//	hashed    (stored as its SHA-256) read chat/
//	forker    read src/, write fork/
var testAuthFile = `{"tokens": [
  {"name": "admin", "token": "admin-secret", "read": [""], "write": [""]},
  {"name": "reader", "token": "reader-secret", "read": ["chat/"]},
  {"name": "writer", "token": "writer-secret", "read": ["chat/alice/"], "write": ["chat/alice/"]},
  {"name": "dropper", "token": "dropper-secret", "write": ["drop/"]},
  {"name": "hashed", "sha256": "` + sha256Hex("hashed-secret") + `", "read": ["chat/"]},
  {"name": "forker", "token": "forker-secret", "read": ["src/"], "write": ["fork/"]}
]}`

func mustAuth(t *testing.T, content string) *httpapi.Auth {
	t.Helper()
	rules, err := httpapi.ParseAuthRules([]byte(content))
	if err != nil {
		t.Fatalf("ParseAuthRules: %v", err)
	}
	return httpapi.NewAuth(rules)
}

func withAuth(a *httpapi.Auth) option {
	return withAPI(func(c *httpapi.Config) { c.Auth = a })
}

func bearer(token string) []string {
	if token == "" {
		return nil
	}
	return []string{"Authorization", "Bearer " + token}
}

// TestAuthDecisions: tokens × methods × paths through the real router.
func TestAuthDecisions(t *testing.T) {
	e := newEnv(t, withAuth(mustAuth(t, testAuthFile)))
	admin := bearer("admin-secret")
	text := []string{"Content-Type", "text/plain"}
	for _, p := range []string{"chat/room", "chat/alice/s", "chat/alice/gone", "drop/box", "src/s", "other/x"} {
		e.expect(t, http.StatusCreated, http.MethodPut, sp(p), []byte("x"), append(text, admin...)...)
	}

	cases := []struct {
		name    string
		token   string // "" sends no Authorization
		rawAuth string // sent verbatim instead of a bearer token
		method  string
		path    string
		hdr     []string // besides Content-Type and Authorization
		want    int
	}{
		{name: "no token", method: http.MethodGet, path: "chat/room", want: 401},
		{name: "no token, missing stream", method: http.MethodGet, path: "chat/none", want: 401},
		{name: "no token, write", method: http.MethodPost, path: "chat/room", want: 401},
		{name: "unknown token", token: "guess", method: http.MethodGet, path: "chat/room", want: 401},
		{name: "basic scheme", rawAuth: "Basic YWRtaW46YWRtaW4=", method: http.MethodGet, path: "chat/room", want: 401},
		{name: "bearer without token", rawAuth: "Bearer ", method: http.MethodGet, path: "chat/room", want: 401},
		{name: "hash given as token", token: sha256Hex("hashed-secret"), method: http.MethodGet, path: "chat/room", want: 401},
		{name: "scheme is case-insensitive", rawAuth: "bearer reader-secret", method: http.MethodGet, path: "chat/room", want: 200},
		{name: "no token, preflight", method: http.MethodOptions, path: "chat/room", want: 204},

		{name: "reader reads", token: "reader-secret", method: http.MethodGet, path: "chat/room", want: 200},
		{name: "reader heads", token: "reader-secret", method: http.MethodHead, path: "chat/room", want: 200},
		{name: "reader reads a missing stream", token: "reader-secret", method: http.MethodGet, path: "chat/none", want: 404},
		{name: "reader appends", token: "reader-secret", method: http.MethodPost, path: "chat/room", want: 403},
		{name: "reader creates", token: "reader-secret", method: http.MethodPut, path: "chat/new", want: 403},
		{name: "reader deletes", token: "reader-secret", method: http.MethodDelete, path: "chat/room", want: 403},
		{name: "reader outside prefix", token: "reader-secret", method: http.MethodGet, path: "other/x", want: 403},
		{name: "prefix is not a path segment match", token: "reader-secret", method: http.MethodGet, path: "chatter", want: 403},

		{name: "writer creates", token: "writer-secret", method: http.MethodPut, path: "chat/alice/new", want: 201},
		{name: "writer appends", token: "writer-secret", method: http.MethodPost, path: "chat/alice/s", want: 204},
		{name: "writer reads own", token: "writer-secret", method: http.MethodGet, path: "chat/alice/s", want: 200},
		{name: "writer deletes", token: "writer-secret", method: http.MethodDelete, path: "chat/alice/gone", want: 204},
		{name: "writer appends elsewhere", token: "writer-secret", method: http.MethodPost, path: "chat/room", want: 403},
		{name: "writer reads elsewhere", token: "writer-secret", method: http.MethodGet, path: "chat/room", want: 403},

		{name: "write-only appends", token: "dropper-secret", method: http.MethodPost, path: "drop/box", want: 204},
		{name: "write-only cannot read", token: "dropper-secret", method: http.MethodGet, path: "drop/box", want: 403},
		{name: "write-only cannot head", token: "dropper-secret", method: http.MethodHead, path: "drop/box", want: 403},

		{name: "hashed token reads", token: "hashed-secret", method: http.MethodGet, path: "chat/room", want: 200},
		{name: "hashed token cannot write", token: "hashed-secret", method: http.MethodPost, path: "chat/room", want: 403},

		{name: "fork of a readable source", token: "forker-secret", method: http.MethodPut, path: "fork/a",
			hdr: []string{"Stream-Forked-From", sp("src/s")}, want: 201},
		{name: "fork of an unreadable source", token: "forker-secret", method: http.MethodPut, path: "fork/b",
			hdr: []string{"Stream-Forked-From", sp("chat/room")}, want: 403},
		{name: "fork of an unreadable missing source", token: "forker-secret", method: http.MethodPut, path: "fork/b",
			hdr: []string{"Stream-Forked-From", sp("chat/none")}, want: 403},
		{name: "fork into an unwritable path", token: "forker-secret", method: http.MethodPut, path: "src/copy",
			hdr: []string{"Stream-Forked-From", sp("src/s")}, want: 403},
		{name: "fork with a malformed source", token: "forker-secret", method: http.MethodPut, path: "fork/c",
			hdr: []string{"Stream-Forked-From", "elsewhere"}, want: 400},
		{name: "plain create needs no read", token: "dropper-secret", method: http.MethodPut, path: "drop/new", want: 201},

		{name: "admin reads anything", token: "admin-secret", method: http.MethodGet, path: "other/x", want: 200},
		{name: "admin deletes anything", token: "admin-secret", method: http.MethodDelete, path: "other/x", want: 204},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			hdr := append(append([]string{}, text...), c.hdr...)
			switch {
			case c.rawAuth != "":
				hdr = append(hdr, "Authorization", c.rawAuth)
			default:
				hdr = append(hdr, bearer(c.token)...)
			}
			var body []byte
			if c.method == http.MethodPost {
				body = []byte("y")
			}
			r := e.expect(t, c.want, c.method, sp(c.path), body, hdr...)
			if c.want == http.StatusUnauthorized {
				wantHeader(t, r, "WWW-Authenticate", `Bearer realm="streamd"`)
			} else {
				wantNoHeader(t, r, "WWW-Authenticate")
			}
		})
	}
}

// TestAuthForbiddenLeaksNoExistence: a 403 is decided before any stream is
// touched, so it reads the same for a stream that exists and one that does
// not, for every method.
func TestAuthForbiddenLeaksNoExistence(t *testing.T) {
	e := newEnv(t, withAuth(mustAuth(t, testAuthFile)))
	e.expect(t, http.StatusCreated, http.MethodPut, sp("other/exists"), nil,
		append([]string{"Content-Type", "text/plain"}, bearer("admin-secret")...)...)
	e.expect(t, http.StatusCreated, http.MethodPut, sp("chat/exists"), nil,
		append([]string{"Content-Type", "text/plain"}, bearer("admin-secret")...)...)
	cases := []struct {
		token, method, prefix string
	}{
		{"reader-secret", http.MethodGet, "other/"},
		{"reader-secret", http.MethodHead, "other/"},
		{"reader-secret", http.MethodPost, "chat/"},
		{"reader-secret", http.MethodPut, "chat/"},
		{"reader-secret", http.MethodDelete, "chat/"},
		{"dropper-secret", http.MethodGet, "other/"},
	}
	for _, c := range cases {
		t.Run(c.method+" "+c.prefix, func(t *testing.T) {
			hdr := append([]string{"Content-Type", "text/plain"}, bearer(c.token)...)
			existing := e.expect(t, http.StatusForbidden, c.method, sp(c.prefix+"exists"), []byte("z"), hdr...)
			missing := e.expect(t, http.StatusForbidden, c.method, sp(c.prefix+"missing"), []byte("z"), hdr...)
			existing.header.Del("Date")
			missing.header.Del("Date")
			if string(existing.body) != string(missing.body) || !reflect.DeepEqual(existing.header, missing.header) {
				t.Errorf("403 differs:\nexisting %v\nmissing  %v", existing, missing)
			}
		})
	}
}

// TestAuthCatchUpIsPrivate: with access control (or PrivateCache alone)
// catch-up reads are cacheable by the client only.
func TestAuthCatchUpIsPrivate(t *testing.T) {
	cases := []struct {
		name string
		opts []option
		hdr  []string
		want string
	}{
		{name: "no auth", want: "public, max-age=60, stale-while-revalidate=300"},
		{name: "private reads", opts: []option{withAPI(func(c *httpapi.Config) { c.PrivateCache = true })},
			want: "private, max-age=60, stale-while-revalidate=300"},
		{name: "auth", opts: []option{withAuth(mustAuth(t, testAuthFile))}, hdr: bearer("admin-secret"),
			want: "private, max-age=60, stale-while-revalidate=300"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := newEnv(t, c.opts...)
			e.expect(t, http.StatusCreated, http.MethodPut, sp("c"), []byte("data"), append([]string{"Content-Type", "text/plain"}, c.hdr...)...)
			r := e.expect(t, http.StatusOK, http.MethodGet, sp("c")+"?offset=-1", nil, c.hdr...)
			wantHeader(t, r, "Cache-Control", c.want)
			r = e.expect(t, http.StatusOK, http.MethodHead, sp("c"), nil, c.hdr...)
			wantHeader(t, r, "Cache-Control", "no-store")
		})
	}
}

func TestParseAuthRulesRejects(t *testing.T) {
	cases := map[string]string{
		"not json":            `tokens: []`,
		"unknown field":       `{"tokens": [{"token": "a", "read": [""], "admin": true}]}`,
		"trailing data":       `{"tokens": []} {}`,
		"no token":            `{"tokens": [{"read": [""]}]}`,
		"token and hash":      `{"tokens": [{"token": "a", "sha256": "` + sha256Hex("a") + `", "read": [""]}]}`,
		"short hash":          `{"tokens": [{"sha256": "abcd", "read": [""]}]}`,
		"non-hex hash":        `{"tokens": [{"sha256": "` + strings.Repeat("z", 64) + `", "read": [""]}]}`,
		"token with a space":  `{"tokens": [{"token": "a b", "read": [""]}]}`,
		"no rights":           `{"tokens": [{"token": "a"}]}`,
		"duplicate token":     `{"tokens": [{"token": "a", "read": [""]}, {"token": "a", "write": [""]}]}`,
		"duplicate via hash":  `{"tokens": [{"token": "a", "read": [""]}, {"sha256": "` + sha256Hex("a") + `", "write": [""]}]}`,
		"absolute prefix":     `{"tokens": [{"token": "a", "read": ["/v1/stream/chat/"]}]}`,
		"too large":           `{"tokens": [], "x": "` + strings.Repeat("a", 4<<20) + `"}`,
		"read is not a list":  `{"tokens": [{"token": "a", "read": "chat/"}]}`,
		"tokens is not array": `{"tokens": {"token": "a"}}`,
	}
	for name, content := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := httpapi.ParseAuthRules([]byte(content)); err == nil {
				t.Fatalf("ParseAuthRules accepted %.100s", content)
			}
		})
	}
	if _, err := httpapi.ParseAuthRules([]byte(`{"tokens": []}`)); err != nil {
		t.Errorf("empty token list: %v", err)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	// Write then rename, as a deployment tool would, so a reader never sees
	// a half-written file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// TestAuthFileReload: Reload picks up a new file; a bad file keeps the
// rules in force; Watch notices a changed file by itself.
func TestAuthFileReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "auth.json")
	writeFile(t, path, `{"tokens": [{"token": "old", "read": [""], "write": [""]}]}`)
	if _, err := httpapi.OpenAuthFile(filepath.Join(t.TempDir(), "none.json"), nil); err == nil {
		t.Fatal("OpenAuthFile accepted a missing file")
	}
	auth, err := httpapi.OpenAuthFile(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, withAuth(auth))
	e.expect(t, http.StatusCreated, http.MethodPut, sp("s"), nil, "Content-Type", "text/plain", "Authorization", "Bearer old")

	writeFile(t, path, `{"tokens": [{"token": "new", "read": [""]}]}`)
	if err := auth.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	e.expect(t, http.StatusUnauthorized, http.MethodGet, sp("s"), nil, "Authorization", "Bearer old")
	e.expect(t, http.StatusOK, http.MethodGet, sp("s"), nil, "Authorization", "Bearer new")

	writeFile(t, path, `{"tokens": [{"token": "broken"`)
	if err := auth.Reload(); err == nil {
		t.Fatal("Reload accepted a broken file")
	}
	e.expect(t, http.StatusOK, http.MethodGet, sp("s"), nil, "Authorization", "Bearer new")
	e.expect(t, http.StatusUnauthorized, http.MethodGet, sp("s"), nil, "Authorization", "Bearer broken")

	ctx, cancel := context.WithCancel(context.Background())
	watched := make(chan struct{})
	go func() { auth.Watch(ctx, 10*time.Millisecond); close(watched) }()
	defer func() { cancel(); <-watched }()
	writeFile(t, path, `{"tokens": [{"token": "watched", "read": [""]}]}`)
	deadline := time.Now().Add(20 * time.Second)
	for e.do(t, http.MethodGet, sp("s"), nil, "Authorization", "Bearer watched").status != http.StatusOK {
		if time.Now().After(deadline) {
			t.Fatal("Watch did not load the changed auth file")
		}
		time.Sleep(20 * time.Millisecond)
	}
	e.expect(t, http.StatusUnauthorized, http.MethodGet, sp("s"), nil, "Authorization", "Bearer new")
}

// TestAuthListing: with access control, listing streams needs a token that
// may read every stream under the prefix asked for.
func TestAuthListing(t *testing.T) {
	e := newEnv(t, withAuth(mustAuth(t, testAuthFile)))
	e.api.Mount(httpapi.ListPath, e.api.ListHandler())
	for _, tc := range []struct {
		token, query string
		want         int
	}{
		{"", "", http.StatusUnauthorized},
		{"wrong", "?prefix=chat/", http.StatusUnauthorized},
		{"admin-secret", "", http.StatusOK},
		{"reader-secret", "?prefix=chat/", http.StatusOK},
		{"reader-secret", "?prefix=chat/alice/", http.StatusOK},
		{"reader-secret", "", http.StatusForbidden},
		{"reader-secret", "?prefix=chat", http.StatusForbidden}, // would list chatter too
		{"writer-secret", "?prefix=chat/", http.StatusForbidden},
		{"dropper-secret", "?prefix=drop/", http.StatusForbidden}, // write only
	} {
		r := e.do(t, http.MethodGet, httpapi.ListPath+tc.query, nil, bearer(tc.token)...)
		if r.status != tc.want {
			t.Errorf("token %q list %q: %d %s; want %d", tc.token, tc.query, r.status, r.body, tc.want)
		}
		if tc.want == http.StatusUnauthorized && r.get("WWW-Authenticate") == "" {
			t.Errorf("token %q: 401 without WWW-Authenticate", tc.token)
		}
	}
}
