package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/streamd/streamd/protocol"
)

// Bounds on an auth file, so a mistaken path (a log file, a device) cannot
// make streamd read or hold without limit.
const (
	maxAuthFileBytes   = 4 << 20
	maxAuthTokens      = 100_000
	maxPrefixesPerRule = 1_000
)

// authChallenge is the WWW-Authenticate value of every 401 (RFC 6750 §3).
const authChallenge = `Bearer realm="streamd"`

// AuthFile is the JSON format of --auth-file:
//
//	{"tokens": [
//	  {"name": "alice", "token": "s3cret", "read": ["chat/"], "write": ["chat/alice/"]},
//	  {"name": "ops", "sha256": "<64 hex digits>", "read": [""], "write": [""]}
//	]}
//
// Each entry holds either the token itself or the hex SHA-256 of it (so
// the file need not hold secrets: `printf %s TOKEN | sha256sum`). read and
// write list stream path prefixes (the path after /v1/stream/), compared
// as plain string prefixes: "chat/" grants every stream under chat/, "chat"
// would also grant "chatter", and "" grants every stream. Write does not
// imply read.
type AuthFile struct {
	Tokens []AuthToken `json:"tokens"`
}

// AuthToken is one bearer token and its rights.
type AuthToken struct {
	// Name identifies the token in logs; optional.
	Name   string   `json:"name,omitempty"`
	Token  string   `json:"token,omitempty"`
	SHA256 string   `json:"sha256,omitempty"`
	Read   []string `json:"read,omitempty"`
	Write  []string `json:"write,omitempty"`
}

// AuthRules is a parsed, immutable auth file.
type AuthRules struct {
	// Keyed by the SHA-256 of the token: see grantFor for why this keeps
	// lookups constant-time with respect to the tokens.
	grants map[[sha256.Size]byte]*grant
}

// grant is what one token may do.
type grant struct {
	name        string
	read, write []string
}

// ParseAuthRules parses the content of an auth file (see AuthFile).
// Unknown fields, duplicate tokens and entries without a token or without
// any right are errors, so a typo cannot silently grant or deny access.
func ParseAuthRules(data []byte) (*AuthRules, error) {
	if len(data) > maxAuthFileBytes {
		return nil, fmt.Errorf("auth file larger than %d bytes", maxAuthFileBytes)
	}
	var f AuthFile
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("auth file: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("auth file: unexpected data after the JSON object")
	}
	if len(f.Tokens) > maxAuthTokens {
		return nil, fmt.Errorf("auth file: more than %d tokens", maxAuthTokens)
	}
	rules := &AuthRules{grants: make(map[[sha256.Size]byte]*grant, len(f.Tokens))}
	for i, t := range f.Tokens {
		where := fmt.Sprintf("auth file: token %d", i+1)
		if t.Name != "" {
			where += fmt.Sprintf(" (%q)", t.Name)
		}
		var digest [sha256.Size]byte
		switch {
		case t.Token != "" && t.SHA256 != "":
			return nil, fmt.Errorf("%s: give token or sha256, not both", where)
		case t.Token != "":
			if !validToken(t.Token) {
				return nil, fmt.Errorf("%s: a token must be printable ASCII without spaces", where)
			}
			digest = sha256.Sum256([]byte(t.Token))
		case t.SHA256 != "":
			b, err := hex.DecodeString(t.SHA256)
			if err != nil || len(b) != sha256.Size {
				return nil, fmt.Errorf("%s: sha256 must be 64 hex digits", where)
			}
			copy(digest[:], b)
		default:
			return nil, fmt.Errorf("%s: missing token or sha256", where)
		}
		if len(t.Read) == 0 && len(t.Write) == 0 {
			return nil, fmt.Errorf("%s: grants neither read nor write", where)
		}
		if len(t.Read) > maxPrefixesPerRule || len(t.Write) > maxPrefixesPerRule {
			return nil, fmt.Errorf("%s: more than %d prefixes", where, maxPrefixesPerRule)
		}
		for _, p := range append(append([]string(nil), t.Read...), t.Write...) {
			if strings.HasPrefix(p, "/") {
				return nil, fmt.Errorf("%s: prefix %q must be relative to %s/ (no leading '/')", where, p, StreamPrefix)
			}
		}
		if _, dup := rules.grants[digest]; dup {
			return nil, fmt.Errorf("%s: the same token appears twice", where)
		}
		rules.grants[digest] = &grant{name: t.Name, read: t.Read, write: t.Write}
	}
	return rules, nil
}

// validToken accepts the characters of an RFC 6750 b64token and more
// (any visible ASCII), but nothing a header could not carry verbatim.
func validToken(t string) bool {
	for i := 0; i < len(t); i++ {
		if t[i] <= ' ' || t[i] >= 0x7f {
			return false
		}
	}
	return true
}

// LoadAuthRules reads and parses an auth file.
func LoadAuthRules(path string) (*AuthRules, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("auth file: %w", err)
	}
	defer f.Close()
	// One byte over the bound so ParseAuthRules can tell a file that is too
	// large from one that fits exactly.
	data, err := io.ReadAll(io.LimitReader(f, maxAuthFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("auth file %s: %w", path, err)
	}
	rules, err := ParseAuthRules(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rules, nil
}

// Auth decides, for each request, whether its bearer token may do what it
// asks (PROTOCOL.md §12.1). Its rules can be replaced at any time
// (Reload, Watch) without holding up requests. A nil *Auth in Config
// turns access control off.
type Auth struct {
	rules atomic.Pointer[AuthRules]
	path  string // "" when built from rules, not a file
	log   *slog.Logger

	mu   sync.Mutex // serialises reloads
	seen fileStamp  // of the file last read, changed or not
}

// fileStamp tells whether a file changed since it was last read.
type fileStamp struct {
	size    int64
	modTime time.Time
}

// NewAuth returns an Auth with fixed rules.
func NewAuth(rules *AuthRules) *Auth {
	a := &Auth{log: slog.New(slog.DiscardHandler)}
	a.rules.Store(rules)
	return a
}

// OpenAuthFile loads the auth file at path; Reload and Watch read it again.
func OpenAuthFile(path string, log *slog.Logger) (*Auth, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	a := &Auth{path: path, log: log}
	stamp, _ := statFile(path)
	rules, err := LoadAuthRules(path)
	if err != nil {
		return nil, err
	}
	a.rules.Store(rules)
	a.seen = stamp
	return a, nil
}

func statFile(path string) (fileStamp, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}, err
	}
	return fileStamp{size: fi.Size(), modTime: fi.ModTime()}, nil
}

// Reload reads the auth file again. If it cannot be read or parsed the
// current rules stay in force and the error is returned.
func (a *Auth) Reload() error {
	if a.path == "" {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	// Stamp before reading: a change racing with the read is seen again at
	// the next poll rather than missed.
	stamp, _ := statFile(a.path)
	a.seen = stamp
	rules, err := LoadAuthRules(a.path)
	if err != nil {
		return err
	}
	a.rules.Store(rules)
	a.log.Info("auth file loaded", "path", a.path, "tokens", len(rules.grants))
	return nil
}

// Watch reloads the auth file whenever its size or modification time
// changes, checking every interval until ctx ends. A file that fails to
// load is logged once per change and the rules in force are kept.
func (a *Auth) Watch(ctx context.Context, every time.Duration) {
	if a.path == "" {
		return
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		stamp, err := statFile(a.path)
		a.mu.Lock()
		changed := err == nil && stamp != a.seen
		a.mu.Unlock()
		if !changed {
			continue
		}
		if err := a.Reload(); err != nil {
			a.log.Error("auth file not reloaded; keeping the rules in force", "err", err)
		}
	}
}

// grantFor returns the grant of the request's bearer token, or a 401.
//
// Tokens are compared by their SHA-256 digests, never byte by byte: how
// long the lookup takes depends only on the digest of the presented token,
// and what timing could reveal about digests tells an attacker nothing
// about the bytes of a valid token (finding one from its digest is a
// preimage attack). So the comparison is constant-time with respect to the
// secrets, at the cost of one map lookup however many tokens there are.
func (a *Auth) grantFor(r *http.Request) (*grant, error) {
	v := r.Header.Get(echo.HeaderAuthorization)
	if v == "" {
		return nil, unauthorized("missing bearer token")
	}
	scheme, token, ok := strings.Cut(v, " ")
	token = strings.TrimSpace(token)
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
		return nil, unauthorized("Authorization must be \"Bearer <token>\"")
	}
	digest := sha256.Sum256([]byte(token))
	rules := a.rules.Load()
	g, found := rules.grants[digest]
	if !found {
		return nil, unauthorized("invalid bearer token")
	}
	return g, nil
}

func unauthorized(msg string) *apiError {
	return newError(http.StatusUnauthorized, msg).with(echo.HeaderWWWAuthenticate, authChallenge)
}

// authorize decides a request on a stream path before anything touches a
// stream, so a refusal is the same whether or not the stream exists.
// Writes are PUT, POST and DELETE; a fork (PUT with Stream-Forked-From)
// also needs read on its source. GET and HEAD are reads.
func (a *Auth) authorize(r *http.Request, g *grant, path string) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		if !hasPrefix(g.read, path) {
			return newError(http.StatusForbidden, "this token may not read this stream")
		}
		return nil
	}
	if !hasPrefix(g.write, path) {
		return newError(http.StatusForbidden, "this token may not write this stream")
	}
	if r.Method == http.MethodPut {
		if _, ok := r.Header[protocol.HeaderStreamForkedFrom]; ok {
			// The same value fork reads.
			source, err := forkSource(r.Header.Get(protocol.HeaderStreamForkedFrom))
			if err != nil {
				return err
			}
			if !hasPrefix(g.read, source) {
				return newError(http.StatusForbidden, "this token may not read the fork's source stream")
			}
		}
	}
	return nil
}

func hasPrefix(prefixes []string, path string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(path, p) {
			return true
		}
	}
	return false
}
