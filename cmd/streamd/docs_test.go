package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestEveryFlagDocumented: docs/OPERATIONS.md is the reference of every
// flag, so each flag parseOptions defines must appear there as `--name`.
func TestEveryFlagDocumented(t *testing.T) {
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	ops, err := os.ReadFile("../../docs/OPERATIONS.md")
	if err != nil {
		t.Fatal(err)
	}
	flags := regexp.MustCompile(`fs\.\w+Var\(&o\.\w+, "([a-z0-9-]+)"`).FindAllSubmatch(src, -1)
	if len(flags) < 20 {
		t.Fatalf("found %d flags in main.go; the pattern no longer matches how flags are defined", len(flags))
	}
	for _, f := range flags {
		if name := "`--" + string(f[1]) + "`"; !strings.Contains(string(ops), name) {
			t.Errorf("flag %s is not documented in docs/OPERATIONS.md", name)
		}
	}
}
