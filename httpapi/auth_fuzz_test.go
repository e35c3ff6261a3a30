package httpapi

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// FuzzAuthRules: any auth file either fails to parse or grants a token
// exactly what its entry says: a read of path is allowed if and only if
// some entry holding the token (or its SHA-256) lists a read prefix of
// path. Parsing and checking never panic.
func FuzzAuthRules(f *testing.F) {
	f.Add([]byte(`{"tokens":[{"token":"t","read":["chat/"]}]}`), "t", "chat/a")
	f.Add([]byte(`{"tokens":[{"sha256":"`+sha256Hex("s")+`","read":[""],"write":["x/"]}]}`), "s", "y")
	f.Add([]byte(`{"tokens":[{"token":"a","write":["w/"]},{"token":"b","read":["r"]}]}`), "a", "w/1")
	f.Add([]byte(`{"tokens":[]}`), "", "p")
	f.Add([]byte(`{`), "t", "p")
	f.Fuzz(func(t *testing.T, data []byte, token, path string) {
		rules, err := ParseAuthRules(data)
		if err != nil {
			return
		}
		var file AuthFile
		if err := json.Unmarshal(data, &file); err != nil {
			t.Fatalf("parsed by ParseAuthRules but not by encoding/json: %v", err)
		}
		want := false
		for _, e := range file.Tokens {
			if e.Token == token || (e.SHA256 != "" && strings.EqualFold(e.SHA256, sha256Hex(token))) {
				for _, p := range e.Read {
					want = want || strings.HasPrefix(path, p)
				}
			}
		}
		r, err := http.NewRequest(http.MethodGet, "http://x/", nil)
		if err != nil {
			t.Fatal(err)
		}
		r.Header.Set("Authorization", "Bearer "+token)
		got := false
		if g, err := NewAuth(rules).grantFor(r); err == nil {
			got = NewAuth(rules).authorize(r, g, path) == nil
		}
		if strings.TrimSpace(token) != token || token == "" || !validToken(token) {
			return // not sendable as a bearer token as is
		}
		if got != want {
			t.Fatalf("token %q reading %q: allowed %v, want %v (file %s)", token, path, got, want, data)
		}
	})
}

func sha256Hex(s string) string {
	d := sha256.Sum256([]byte(s))
	return hex.EncodeToString(d[:])
}
