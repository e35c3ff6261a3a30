// Command streambench generates load against a Durable Streams server on
// loopback and prints one JSON line of results per run.
//
//	streambench <scenario> [flags]   scenarios: append, read, longpoll, sse, streams, manystreams, ceiling
//
// Progress and diagnostics go to stderr. The exit status is 0 when the run
// completed (errors observed during the run are counted in the output),
// non-zero when the tool itself failed: bad flags, server unreachable,
// timeout. `ceiling` serves a minimal in-memory implementation of the same
// requests, a reference for what the hardware and net/http allow.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// result is the JSON line printed per run. Fields that do not apply to a
// scenario are 0, never null.
type result struct {
	Scenario       string         `json:"scenario"`
	Label          string         `json:"label"`
	Params         map[string]any `json:"params"`
	Throughput     float64        `json:"throughput"`
	ThroughputUnit string         `json:"throughput_unit"`
	P50            float64        `json:"p50_ms"`
	P99            float64        `json:"p99_ms"`
	Max            float64        `json:"max_ms"`
	Requests       int64          `json:"requests"`
	Errors         int64          `json:"errors"`
	Missing        int64          `json:"missing"`
	RSS            int64          `json:"rss_bytes"`
	RSSPerReader   int64          `json:"rss_per_reader_bytes"`
	Elapsed        float64        `json:"elapsed_s"`
	Extra          map[string]any `json:"extra"`
}

func newResult(unit string) *result {
	return &result{ThroughputUnit: unit, Extra: map[string]any{}}
}

// setLatency fills the latency fields from a summary.
func (r *result) setLatency(s summary) {
	r.P50, r.P99, r.Max = ms(s.p50), ms(s.p99), ms(s.max)
}

// runner is one load scenario.
type runner interface {
	register(fs *flag.FlagSet)
	validate() error
	fds() int // file descriptors the scenario needs
	run(ctx context.Context, e *env) (*result, error)
}

var scenarios = map[string]func() runner{
	"append":   func() runner { return &appendParams{} },
	"read":     func() runner { return &readParams{} },
	"longpoll": func() runner { return &longpollParams{} },
	"sse":      func() runner { return &sseParams{} },
	"streams":  func() runner { return &streamsParams{} },
	// manystreams starts and restarts the server itself (-server-cmd).
	"manystreams": func() runner { return &manyParams{} },
}

const usage = `usage: streambench <scenario> [flags]
scenarios: append, read, longpoll, sse, streams, manystreams, ceiling
run "streambench <scenario> -h" for the flags of a scenario`

// hardExit makes a hung run end the process shortly after -timeout; only
// main sets it, tests rely on contexts alone.
var hardExit bool

func main() {
	hardExit = true
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	name := args[0]
	fs := flag.NewFlagSet("streambench "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	if name == "ceiling" {
		addr := fs.String("addr", "127.0.0.1:0", "listen address (loopback only)")
		if fs.Parse(args[1:]) != nil || fs.NArg() > 0 {
			return 2
		}
		if err := serveCeiling(*addr, stdout, stderr); err != nil {
			fmt.Fprintf(stderr, "streambench: ceiling: %v\n", err)
			return 1
		}
		return 0
	}
	mk, ok := scenarios[name]
	if !ok {
		fmt.Fprintf(stderr, "streambench: unknown scenario %q\n%s\n", name, usage)
		return 2
	}
	var (
		rawURL  = fs.String("url", "", "server base URL, e.g. http://127.0.0.1:4437 (streams live under <url>/v1/stream/)")
		pid     = fs.Int("server-pid", 0, "PID of the server process; if >0 its RSS (VmRSS) is sampled and reported")
		label   = fs.String("label", "", "free text copied into the JSON output")
		prefix  = fs.String("prefix", "", `stream name prefix (default "bench-<unix nanos>")`)
		timeout = fs.Duration("timeout", 5*time.Minute, "hard cap on the whole run; exceeding it is a failure")
	)
	sc := mk()
	sc.register(fs)
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "streambench: unexpected arguments %q\n", fs.Args())
		return 2
	}
	if *prefix == "" {
		*prefix = fmt.Sprintf("bench-%d", time.Now().UnixNano())
	}
	base, err := checkBaseURL(*rawURL)
	if err == nil && *timeout <= 0 {
		err = errors.New("-timeout must be positive")
	}
	if err == nil {
		err = sc.validate()
	}
	if err != nil {
		fmt.Fprintf(stderr, "streambench: %v\n", err)
		return 2
	}
	raiseNoFile(sc.fds(), stderr)

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if hardExit {
		// Scenarios honour ctx; this only catches a hang in the tool itself.
		t := time.AfterFunc(*timeout+30*time.Second, func() {
			fmt.Fprintf(stderr, "streambench: %s: still running 30s after -timeout %v, exiting\n", name, *timeout)
			os.Exit(3)
		})
		defer t.Stop()
	}

	e := &env{base: base, prefix: *prefix, pid: *pid, log: stderr, start: time.Now()}
	t0 := time.Now()
	res, err := sc.run(ctx, e)
	switch {
	case errors.Is(context.Cause(ctx), context.DeadlineExceeded):
		fmt.Fprintf(stderr, "streambench: %s: -timeout %v exceeded\n", name, *timeout)
		return 1
	case ctx.Err() != nil:
		fmt.Fprintf(stderr, "streambench: %s: interrupted\n", name)
		return 1
	case err != nil:
		fmt.Fprintf(stderr, "streambench: %s: %v\n", name, err)
		return 1
	}
	res.Scenario, res.Label = name, *label
	res.Elapsed = round3(time.Since(t0).Seconds())
	res.Params = flagValues(fs)
	line, err := json.Marshal(res)
	if err != nil {
		fmt.Fprintf(stderr, "streambench: encoding result: %v\n", err)
		return 1
	}
	if _, err := fmt.Fprintf(stdout, "%s\n", line); err != nil {
		return 1
	}
	return 0
}

// flagValues returns every flag of the run with its typed value
// (durations as strings such as "10s").
func flagValues(fs *flag.FlagSet) map[string]any {
	m := map[string]any{}
	fs.VisitAll(func(f *flag.Flag) {
		var v any = f.Value.String()
		if g, ok := f.Value.(flag.Getter); ok {
			v = g.Get()
		}
		if d, ok := v.(time.Duration); ok {
			v = d.String()
		}
		m[f.Name] = v
	})
	return m
}

// raiseNoFile lifts the soft RLIMIT_NOFILE to the hard limit: thousands of
// live readers each hold a socket. It warns when even that is too low.
func raiseNoFile(need int, stderr io.Writer) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		fmt.Fprintf(stderr, "streambench: warning: getrlimit: %v\n", err)
		return
	}
	if rl.Cur < rl.Max {
		rl.Cur = rl.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
			fmt.Fprintf(stderr, "streambench: warning: setrlimit: %v\n", err)
		}
		_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl)
	}
	if rl.Cur < uint64(need) {
		fmt.Fprintf(stderr, "streambench: warning: RLIMIT_NOFILE is %d, this run needs about %d (raise the hard limit: ulimit -Hn)\n", rl.Cur, need)
	}
}
