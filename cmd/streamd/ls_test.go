package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestListCommand runs `streamd ls` against a running server: pages are
// followed, the prefix and limit hold, and errors name what went wrong.
func TestListCommand(t *testing.T) {
	in := start(t, logFile(t), "--memory")
	for i := range 25 {
		in.do(t, http.MethodPut, fmt.Sprintf("logs/%02d", i), nil, "Content-Type", "text/plain")
	}
	in.do(t, http.MethodPut, "other", nil, "Content-Type", "application/json")
	ls := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		err := listCommand(context.Background(), append([]string{"--server", in.base}, args...), envOf(nil), &out, &errOut)
		return out.String(), err
	}
	out, err := ls("--json", "logs/")
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out, `"path":"logs/`); n != 25 || strings.Contains(out, "other") {
		t.Errorf("ls --json logs/ printed %d logs/ streams (want 25) or other:\n%s", n, out)
	}
	out, err = ls("--limit", "3")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 4 || !strings.HasPrefix(lines[0], "PATH") || !strings.HasPrefix(lines[1], "logs/00") || !strings.HasPrefix(lines[3], "logs/02") {
		t.Errorf("ls --limit 3 printed:\n%s", out)
	}
	if _, err := ls("--server", "ftp://x"); err == nil || !strings.Contains(err.Error(), "not an http(s) URL") {
		t.Errorf("bad --server: err %v", err)
	}
	var errOut bytes.Buffer
	err = listCommand(context.Background(), []string{"--server", in.base + "/nothing-here"}, envOf(nil), &bytes.Buffer{}, &errOut)
	if err == nil || !strings.Contains(err.Error(), "404") {
		t.Errorf("ls against a wrong base URL: err %v; want the 404 named", err)
	}
}
