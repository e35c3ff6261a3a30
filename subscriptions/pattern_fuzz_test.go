package subscriptions

import (
	"strings"
	"testing"
)

// FuzzPattern: parsing never panics; a parsed pattern's normal form parses
// to itself; and the index agrees with the pattern on any path.
func FuzzPattern(f *testing.F) {
	for _, s := range [][2]string{{"events/*", "events/a"}, {"a/**/z", "a/b/z"}, {"**", "x"}, {"**/**/a", "a"}, {"a*", "a"}, {"", ""}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, pattern, path string) {
		p, err := ParsePattern(pattern)
		if err != nil {
			return
		}
		again, err := ParsePattern(p.String())
		if err != nil || again.String() != p.String() {
			t.Fatalf("normal form %q of %q parses to %q, %v", p, pattern, again, err)
		}
		if strings.Contains(path, "//") || strings.HasPrefix(path, "/") || strings.HasSuffix(path, "/") || path == "" {
			return // not a stream path
		}
		x := NewIndex()
		x.Add("s", p)
		if got, want := len(x.AppendMatches(nil, path)) == 1, p.Match(path); got != want {
			t.Fatalf("%q on %q: index %v, pattern %v", p, path, got, want)
		}
	})
}
