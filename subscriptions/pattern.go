package subscriptions

import (
	"errors"
	"fmt"
	"strings"
	"sync"
)

// ErrBadPattern reports a subscription pattern that is not a glob of
// PROTOCOL.md §6.2: segments separated by "/", each non-empty, and "*" or
// "**" only as whole segments.
var ErrBadPattern = errors.New("invalid subscription pattern")

// maxPatternBytes bounds a pattern, as stream paths are bounded.
const maxPatternBytes = 1024

// Pattern is a parsed glob over stream-root-relative paths: "*" matches
// one path segment, "**" zero or more.
type Pattern struct {
	raw  string
	segs []string
}

// ParsePattern parses and normalizes s: runs of "**" segments are one.
func ParsePattern(s string) (Pattern, error) {
	if s == "" || len(s) > maxPatternBytes {
		return Pattern{}, fmt.Errorf("%w: %q must have 1 to %d bytes", ErrBadPattern, s, maxPatternBytes)
	}
	var segs []string
	for seg := range strings.SplitSeq(s, "/") {
		switch {
		case seg == "" || seg == "." || seg == "..":
			return Pattern{}, fmt.Errorf("%w: %q has an empty, '.' or '..' segment", ErrBadPattern, s)
		case seg != "*" && seg != "**" && strings.Contains(seg, "*"):
			return Pattern{}, fmt.Errorf("%w: %q uses '*' inside a segment; '*' and '**' stand for whole segments", ErrBadPattern, s)
		case seg == "**" && len(segs) > 0 && segs[len(segs)-1] == "**":
			continue // "**/**" matches what "**" matches
		}
		segs = append(segs, seg)
	}
	return Pattern{raw: strings.Join(segs, "/"), segs: segs}, nil
}

// String returns the normalized pattern.
func (p Pattern) String() string { return p.raw }

// Match reports whether path matches p.
func (p Pattern) Match(path string) bool { return matchSegs(p.segs, path) }

func matchSegs(segs []string, path string) bool {
	if len(segs) == 0 {
		return path == ""
	}
	if segs[0] == "**" {
		for rest := path; ; {
			if matchSegs(segs[1:], rest) {
				return true
			}
			if rest == "" {
				return false
			}
			_, rest, _ = strings.Cut(rest, "/")
		}
	}
	if path == "" {
		return false
	}
	seg, rest, _ := strings.Cut(path, "/")
	if segs[0] != "*" && segs[0] != seg {
		return false
	}
	return matchSegs(segs[1:], rest)
}

// Index finds the subscriptions whose patterns match a stream path
// without looking at every subscription: patterns are kept in a trie of
// segments, so a path costs a walk proportional to its depth and to the
// wildcards along it, and a path under no subscribed prefix costs a few
// map lookups however many subscriptions exist.
//
// Index is safe for concurrent use: matches (every create and append)
// share a read lock; adding and removing patterns (subscription changes)
// take it exclusively.
type Index struct {
	mu   sync.RWMutex
	root *trieNode
	byID map[string]Pattern
}

type trieNode struct {
	literal  map[string]*trieNode
	star     *trieNode // "*": one segment
	globstar *trieNode // "**": zero or more segments
	ids      map[string]struct{}
}

// NewIndex returns an empty index.
func NewIndex() *Index { return &Index{root: &trieNode{}, byID: map[string]Pattern{}} }

// Len returns the number of subscriptions indexed.
func (x *Index) Len() int {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return len(x.byID)
}

// Add indexes subscription id under p, replacing its previous pattern.
func (x *Index) Add(id string, p Pattern) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if old, ok := x.byID[id]; ok {
		x.remove(id, old)
	}
	x.byID[id] = p
	n := x.root
	for _, seg := range p.segs {
		n = n.child(seg)
	}
	if n.ids == nil {
		n.ids = map[string]struct{}{}
	}
	n.ids[id] = struct{}{}
}

// Remove drops subscription id from the index.
func (x *Index) Remove(id string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if p, ok := x.byID[id]; ok {
		x.remove(id, p)
		delete(x.byID, id)
	}
}

func (n *trieNode) child(seg string) *trieNode {
	switch seg {
	case "*":
		if n.star == nil {
			n.star = &trieNode{}
		}
		return n.star
	case "**":
		if n.globstar == nil {
			n.globstar = &trieNode{}
		}
		return n.globstar
	}
	if n.literal == nil {
		n.literal = map[string]*trieNode{}
	}
	c := n.literal[seg]
	if c == nil {
		c = &trieNode{}
		n.literal[seg] = c
	}
	return c
}

// remove deletes id at the end of p's path and prunes nodes left empty,
// so the trie's size follows the subscriptions that exist.
func (x *Index) remove(id string, p Pattern) {
	var prune func(n *trieNode, segs []string) bool
	prune = func(n *trieNode, segs []string) bool {
		if len(segs) == 0 {
			delete(n.ids, id)
		} else {
			var c *trieNode
			switch segs[0] {
			case "*":
				c = n.star
			case "**":
				c = n.globstar
			default:
				c = n.literal[segs[0]]
			}
			if c != nil && prune(c, segs[1:]) {
				switch segs[0] {
				case "*":
					n.star = nil
				case "**":
					n.globstar = nil
				default:
					delete(n.literal, segs[0])
				}
			}
		}
		return len(n.ids) == 0 && len(n.literal) == 0 && n.star == nil && n.globstar == nil
	}
	prune(x.root, p.segs)
}

// AppendMatches appends to dst the ids of the subscriptions whose patterns
// match path, each once, in no particular order.
func (x *Index) AppendMatches(dst []string, path string) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	start := len(dst)
	return x.root.collect(dst, start, path)
}

func (n *trieNode) collect(dst []string, start int, path string) []string {
	if n.globstar != nil {
		for rest := path; ; {
			dst = n.globstar.collect(dst, start, rest)
			if rest == "" {
				break
			}
			_, rest, _ = strings.Cut(rest, "/")
		}
	}
	if path == "" {
		for id := range n.ids {
			dst = appendOnce(dst, start, id)
		}
		return dst
	}
	seg, rest, _ := strings.Cut(path, "/")
	if c := n.literal[seg]; c != nil {
		dst = c.collect(dst, start, rest)
	}
	if n.star != nil {
		dst = n.star.collect(dst, start, rest)
	}
	return dst
}

// appendOnce appends id unless dst[start:] holds it: one path matches few
// subscriptions, so a scan beats a set.
func appendOnce(dst []string, start int, id string) []string {
	for _, have := range dst[start:] {
		if have == id {
			return dst
		}
	}
	return append(dst, id)
}
