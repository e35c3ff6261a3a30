package subscriptions

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestPatternMatch(t *testing.T) {
	for _, tc := range []struct {
		pattern, path string
		want          bool
	}{
		{"events/*", "events/a", true},
		{"events/*", "events/a/b", false},
		{"events/*", "events", false},
		{"events/**", "events", true},
		{"events/**", "events/a/b/c", true},
		{"events/**", "eventsx/a", false},
		{"**", "a", true},
		{"**", "a/b/c", true},
		{"**/done", "done", true},
		{"**/done", "a/b/done", true},
		{"**/done", "a/b/done/x", false},
		{"a/**/z", "a/z", true},
		{"a/**/z", "a/b/c/z", true},
		{"a/**/z", "a/b/c/y", false},
		{"*/b", "a/b", true},
		{"*/b", "b", false},
		{"a/*/**", "a", false},
		{"a/*/**", "a/x", true},
		{"a/**/**/b", "a/b", true},
		{"exact/path", "exact/path", true},
		{"exact/path", "exact/pathx", false},
	} {
		p, err := ParsePattern(tc.pattern)
		if err != nil {
			t.Fatalf("ParsePattern(%q): %v", tc.pattern, err)
		}
		if got := p.Match(tc.path); got != tc.want {
			t.Errorf("%q matches %q = %v, want %v", tc.pattern, tc.path, got, tc.want)
		}
		x := NewIndex()
		x.Add("s", p)
		if got := len(x.AppendMatches(nil, tc.path)) == 1; got != tc.want {
			t.Errorf("index: %q matches %q = %v, want %v", tc.pattern, tc.path, got, tc.want)
		}
	}
}

func TestParsePattern(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a/**/**/b", "a/**/b"},
		{"**/**", "**"},
		{"a/*", "a/*"},
	} {
		p, err := ParsePattern(tc.in)
		if err != nil || p.String() != tc.want {
			t.Errorf("ParsePattern(%q) = %q, %v; want %q", tc.in, p, err, tc.want)
		}
	}
	for _, bad := range []string{"", "/a", "a/", "a//b", "a/./b", "../a", "a*", "a/b*c", "***", strings.Repeat("a", 1025)} {
		if _, err := ParsePattern(bad); !errors.Is(err, ErrBadPattern) {
			t.Errorf("ParsePattern(%q): %v; want ErrBadPattern", bad, err)
		}
	}
}

// TestIndexAgreesWithPatterns: for random patterns and paths, the index
// returns exactly the subscriptions whose pattern matches, also after
// replacing and removing some.
func TestIndexAgreesWithPatterns(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	words := []string{"a", "b", "c"}
	randPattern := func() Pattern {
		n := 1 + rng.IntN(4)
		segs := make([]string, n)
		for i := range segs {
			switch r := rng.IntN(6); {
			case r == 0:
				segs[i] = "*"
			case r == 1:
				segs[i] = "**"
			default:
				segs[i] = words[rng.IntN(len(words))]
			}
		}
		p, err := ParsePattern(strings.Join(segs, "/"))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	x := NewIndex()
	patterns := map[string]Pattern{}
	for i := range 300 {
		id := fmt.Sprint("sub-", i%200) // some ids are replaced
		p := randPattern()
		x.Add(id, p)
		patterns[id] = p
	}
	for i := range 50 {
		id := fmt.Sprint("sub-", i*3)
		x.Remove(id)
		delete(patterns, id)
	}
	if x.Len() != len(patterns) {
		t.Fatalf("Len %d, want %d", x.Len(), len(patterns))
	}
	for range 2000 {
		n := 1 + rng.IntN(5)
		segs := make([]string, n)
		for i := range segs {
			segs[i] = words[rng.IntN(len(words))]
		}
		path := strings.Join(segs, "/")
		var want []string
		for id, p := range patterns {
			if p.Match(path) {
				want = append(want, id)
			}
		}
		got := x.AppendMatches(nil, path)
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Fatalf("%q: index %q, patterns %q", path, got, want)
		}
	}
	for id := range patterns {
		x.Remove(id)
	}
	if x.Len() != 0 || len(x.root.literal) != 0 || x.root.star != nil || x.root.globstar != nil || len(x.root.ids) != 0 {
		t.Errorf("index not empty after removing everything: %+v", x.root)
	}
}

// BenchmarkIndexMatch: the cost of finding the subscriptions of a stream
// among 10,000, for a path no subscription matches and for one some do.
func BenchmarkIndexMatch(b *testing.B) {
	x := NewIndex()
	for i := range 10_000 {
		pattern := fmt.Sprintf("tenant-%d/events/*", i)
		if i%10 == 0 {
			pattern = fmt.Sprintf("tenant-%d/**", i)
		}
		p, err := ParsePattern(pattern)
		if err != nil {
			b.Fatal(err)
		}
		x.Add(fmt.Sprint("sub-", i), p)
	}
	for _, tc := range []struct{ name, path string }{
		{"no match", "chat/room-7/messages"},
		{"one match", "tenant-42/events/e1"},
		{"two matches", "tenant-40/events/e1"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			buf := make([]string, 0, 8)
			b.ReportAllocs()
			for b.Loop() {
				buf = x.AppendMatches(buf[:0], tc.path)
			}
		})
	}
}
