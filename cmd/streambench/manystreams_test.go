package main

import (
	"bytes"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseCheckpoints(t *testing.T) {
	cases := []struct {
		spec  string
		total int
		want  []int
		bad   bool
	}{
		{"1000,100000", 1_000_000, []int{1000, 100000, 1_000_000}, false},
		{"", 50, []int{50}, false},
		{" 10 , 20 ", 20, []int{10, 20}, false}, // the total is not repeated
		{"10,200", 100, []int{10, 100}, false},  // marks past the total are dropped
		{"20,10", 100, nil, true},
		{"10,10", 100, nil, true},
		{"0", 100, nil, true},
		{"x", 100, nil, true},
	}
	for _, tc := range cases {
		got, err := parseCheckpoints(tc.spec, tc.total)
		if (err != nil) != tc.bad || !slices.Equal(got, tc.want) {
			t.Errorf("parseCheckpoints(%q, %d) = %v, %v; want %v, error %v", tc.spec, tc.total, got, err, tc.want, tc.bad)
		}
	}
}

// TestManyStreamsAgainstStreamd runs the scenario end to end, restarts
// included, against a real streamd; with --memory every restart loses the
// data, which the scenario must report.
func TestManyStreamsAgainstStreamd(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "streamd")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/streamd/streamd/cmd/streamd").CombinedOutput(); err != nil {
		t.Fatalf("build streamd: %v\n%s", err, out)
	}
	args := func(addr string, server ...string) []string {
		return []string{"manystreams", "-label", "test", "-timeout", "60s", "-url", "http://" + addr,
			"-streams", "300", "-checkpoints", "100", "-concurrency", "8", "-append-duration", "300ms",
			"-idle-wait", "300ms", "-restarts", "1", "-verify", "40",
			"-server-cmd", strings.Join(append([]string{bin, "--addr", addr, "--actor-idle-timeout", "100ms"}, server...), " ")}
	}
	extra := func(res map[string]any, k string) any { return res["extra"].(map[string]any)[k] }

	t.Run("durable", func(t *testing.T) {
		res, _ := runResult(t, args(freeAddr(t), "--data-dir", filepath.Join(t.TempDir(), "data"))...)
		if res["errors"] != 0.0 || res["missing"] != 0.0 || res["throughput"].(float64) <= 0 {
			t.Errorf("%v", res)
		}
		for _, k := range []string{"appends_per_s_at_100", "appends_per_s_at_300", "creates_per_s_to_300", "rss_passivated_bytes", "fds_passivated", "ready_after_kill_ms", "appends_per_s_after_restart"} {
			if v, ok := extra(res, k).(float64); !ok || v <= 0 {
				t.Errorf("%s = %v", k, extra(res, k))
			}
		}
		if ready, ok := extra(res, "ready_ms").([]any); !ok || len(ready) != 1 {
			t.Errorf("ready_ms = %v", extra(res, "ready_ms"))
		}
	})
	t.Run("memory loses everything", func(t *testing.T) {
		// The first restart loses every stream: the sample is reported
		// wrong, and the appends before the SIGKILL restart fail the run.
		var out bytes.Buffer
		var errb lockedBuffer
		code := run(args(freeAddr(t), "--memory"), &out, &errb)
		if code != 1 || !strings.Contains(errb.String(), "40 of 40 sampled streams wrong") || !strings.Contains(errb.String(), "status 404") {
			t.Errorf("exit %d, stderr:\n%s", code, errb.String())
		}
	})
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}
