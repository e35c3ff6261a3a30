package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// manyParams: a node holding very many mostly idle streams. The scenario
// runs the server itself (-server-cmd) because restarting it is part of
// the measurement.
//
// Phases: create streams (PUT with a first body) up to each checkpoint,
// then append to random streams among all created so far for a while;
// after the last checkpoint wait for idle actors to passivate; then
// restart the server gracefully -restarts times and once after SIGKILL,
// timing each start until the first answered request and verifying a
// sample of streams byte for byte after each start; finally append to
// random streams once more, now all cold.
type manyParams struct {
	streams     int
	checkpoints string
	bytes       int
	concurrency int
	appendFor   time.Duration
	idleWait    time.Duration
	restarts    int
	verify      int
	serverCmd   string

	marks []int // parsed checkpoints, ascending, the last == streams
}

func (p *manyParams) register(fs *flag.FlagSet) {
	fs.IntVar(&p.streams, "streams", 1_000_000, "streams to create in total")
	fs.StringVar(&p.checkpoints, "checkpoints", "1000,100000", "comma-separated stream counts at which appends are measured (the total is always one)")
	fs.IntVar(&p.bytes, "bytes", 256, "bytes of each create body and each append")
	fs.IntVar(&p.concurrency, "concurrency", 64, "concurrent requests")
	fs.DurationVar(&p.appendFor, "append-duration", 5*time.Second, "how long random appends are measured at each checkpoint")
	fs.DurationVar(&p.idleWait, "idle-wait", 15*time.Second, "wait after the last phase so idle actors passivate (longer than the server's --actor-idle-timeout)")
	fs.IntVar(&p.restarts, "restarts", 5, "graceful restarts of the server on the same data (then one more after SIGKILL)")
	fs.IntVar(&p.verify, "verify", 2000, "random streams read back and checked after each restart")
	fs.StringVar(&p.serverCmd, "server-cmd", "", "command line that starts the server on -url, split on spaces (required), e.g. \"bin/streamd --data-dir /tmp/d --addr 127.0.0.1:4437\"")
}

func (p *manyParams) validate() error {
	if p.streams < 1 || p.bytes < 1 || p.concurrency < 1 || p.verify < 0 || p.restarts < 0 || p.appendFor <= 0 {
		return errors.New("manystreams: -streams, -bytes, -concurrency and -append-duration must be positive, -verify and -restarts not negative")
	}
	if strings.TrimSpace(p.serverCmd) == "" {
		return errors.New("manystreams: -server-cmd is required")
	}
	marks, err := parseCheckpoints(p.checkpoints, p.streams)
	if err != nil {
		return fmt.Errorf("manystreams: %w", err)
	}
	p.marks = marks
	return nil
}

// parseCheckpoints returns the ascending stream counts at which appends
// are measured: those of spec below total, then total.
func parseCheckpoints(spec string, total int) ([]int, error) {
	var marks []int
	for f := range strings.SplitSeq(spec, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 {
			return nil, fmt.Errorf("-checkpoints: %q is not a positive count", f)
		}
		if len(marks) > 0 && n <= marks[len(marks)-1] {
			return nil, fmt.Errorf("-checkpoints must ascend (%d after %d)", n, marks[len(marks)-1])
		}
		if n < total {
			marks = append(marks, n)
		}
	}
	return append(marks, total), nil
}

func (p *manyParams) fds() int { return p.concurrency + 64 }

// manyState is what the run knows about every stream: how many appends
// were acknowledged after the create, so any stream can be verified.
type manyState struct {
	p       *manyParams
	e       *env
	client  *http.Client
	names   []string
	appends []atomic.Int32
	created int // streams created so far (prefix of names)
	errs    *errorLog
}

const manyContentType = "application/octet-stream"

// expected is the content of stream i after its create and n appends.
func (s *manyState) expected(i int, n int32) []byte {
	return bytes.Repeat(streamBody(i, s.p.bytes), int(n)+1)
}

func (p *manyParams) run(ctx context.Context, e *env) (*result, error) {
	srv, err := startServer(ctx, p.serverCmd, e)
	if err != nil {
		return nil, err
	}
	// srv is replaced at every restart: stop whichever runs at the end.
	defer func() { _ = srv.stop(10 * time.Second) }()
	e.pid = srv.pid()

	s := &manyState{p: p, e: e, client: newClient(newTransport(p.concurrency, nil, nil)),
		names: make([]string, p.streams), appends: make([]atomic.Int32, p.streams),
		errs: &errorLog{log: e.log}}
	for i := range s.names {
		s.names[i] = fmt.Sprintf("%s-many-%d", e.prefix, i)
	}
	res := newResult("creates/s")
	var missing int64
	fdsBefore := countFDs(e.pid)
	rssBefore, _ := readRSS(e.pid)
	res.Extra["fds_start"], res.Extra["rss_start_bytes"] = fdsBefore, rssBefore
	rss := startRSSSampler(e.pid, 200*time.Millisecond)

	var createTime time.Duration
	var appendLat []time.Duration
	for _, mark := range p.marks {
		t0 := time.Now()
		if err := s.create(ctx, mark); err != nil {
			return nil, err
		}
		d := time.Since(t0)
		createTime += d
		label := strconv.Itoa(mark)
		res.Extra["creates_per_s_to_"+label] = perSecond(float64(mark-s.created), d)
		e.logf("manystreams: %d streams created (%.0f/s); appending to random ones for %v", mark, perSecond(float64(mark-s.created), d), p.appendFor)
		s.created = mark
		rate, lats, err := s.appendRandom(ctx, p.appendFor)
		if err != nil {
			return nil, err
		}
		appendLat = lats
		sum := summarize(lats)
		res.Extra["appends_per_s_at_"+label] = rate
		res.Extra["append_p50_ms_at_"+label] = ms(sum.p50)
		res.Extra["append_p99_ms_at_"+label] = ms(sum.p99)
		r, _ := readRSS(e.pid)
		res.Extra["rss_bytes_at_"+label] = r
		res.Extra["fds_at_"+label] = countFDs(e.pid)
		e.logf("manystreams: %d streams: appends %.0f/s p50 %.2fms p99 %.2fms, RSS %d MiB, fds %d",
			mark, rate, ms(sum.p50), ms(sum.p99), r>>20, countFDs(e.pid))
	}
	res.Throughput = perSecond(float64(p.streams), createTime)
	res.setLatency(summarize(appendLat))
	res.RSS = rss.Stop()

	e.logf("manystreams: waiting %v for idle stream actors to passivate", p.idleWait)
	if !sleepCtx(ctx, p.idleWait) {
		return nil, ctx.Err()
	}
	passive, _ := readRSS(e.pid)
	res.Extra["rss_passivated_bytes"] = passive
	res.Extra["fds_passivated"] = countFDs(e.pid)
	e.logf("manystreams: after %v idle: RSS %d MiB, fds %d", p.idleWait, passive>>20, countFDs(e.pid))

	// Restarts: every start must serve the same data, verified on a fresh
	// random sample each time.
	rng := rand.New(rand.NewPCG(uint64(p.streams), 42))
	var readyMS, stopMS []float64
	for r := 0; r <= p.restarts; r++ {
		crash := r == p.restarts
		t0 := time.Now()
		if crash {
			// Appends just before the kill leave work in the WAL to replay.
			if _, _, err := s.appendRandom(ctx, time.Second); err != nil {
				return nil, err
			}
			srv.kill()
		} else if err := srv.stop(30 * time.Second); err != nil {
			return nil, err
		}
		stopped := time.Since(t0)
		if srv, err = startServer(ctx, p.serverCmd, e); err != nil {
			return nil, err
		}
		e.pid = srv.pid()
		if crash {
			res.Extra["ready_after_kill_ms"] = ms(srv.ready)
		} else {
			readyMS = append(readyMS, ms(srv.ready))
			stopMS = append(stopMS, ms(stopped))
		}
		bad := s.verifySample(ctx, rng)
		missing += bad
		e.logf("manystreams: restart %d (%s): ready after %v, %d of %d sampled streams wrong",
			r+1, map[bool]string{true: "after SIGKILL", false: "graceful"}[crash], srv.ready.Round(time.Millisecond), bad, p.verify)
	}
	// Appends right after the last start: no stream state is in memory
	// yet, so every stream touched is loaded from storage.
	rate, lats, err := s.appendRandom(ctx, p.appendFor)
	if err != nil {
		return nil, err
	}
	sum := summarize(lats)
	res.Extra["appends_per_s_after_restart"] = rate
	res.Extra["append_p99_ms_after_restart"] = ms(sum.p99)
	e.logf("manystreams: after the last restart: appends %.0f/s p50 %.2fms p99 %.2fms", rate, ms(sum.p50), ms(sum.p99))
	if len(readyMS) > 0 {
		res.Extra["ready_ms"] = readyMS
		res.Extra["shutdown_ms"] = stopMS
	}
	r, _ := readRSS(e.pid)
	res.Extra["rss_after_restart_bytes"] = r
	res.Extra["fds_after_restart"] = countFDs(e.pid)
	res.Requests = int64(p.streams)
	for i := range s.appends {
		res.Requests += int64(s.appends[i].Load())
	}
	res.Errors = s.errs.count()
	res.Missing = missing
	res.Extra["verified_per_restart"] = p.verify
	res.Extra["error_samples"] = s.errs.list()
	return res, nil
}

// create creates streams [s.created, upTo), each with its first body.
func (s *manyState) create(ctx context.Context, upTo int) error {
	var ok atomic.Int64
	parallel(ctx, upTo-s.created, s.p.concurrency, func(_, k int) {
		i := s.created + k
		r, err := do(ctx, s.client, http.MethodPut, s.e.streamURL(s.names[i]), manyContentType, streamBody(i, s.p.bytes), nil)
		if err != nil || r.status != http.StatusCreated {
			s.errs.add("%s", describe("PUT", r, err))
			return
		}
		ok.Add(1)
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	if n := ok.Load(); n != int64(upTo-s.created) {
		return fmt.Errorf("%d of %d creates failed (%v)", int64(upTo-s.created)-n, upTo-s.created, s.errs.list())
	}
	return nil
}

// appendRandom appends to uniformly random streams among those created
// for d and returns the acknowledged rate and latencies.
func (s *manyState) appendRandom(ctx context.Context, d time.Duration) (float64, []time.Duration, error) {
	lats := make([][]time.Duration, s.p.concurrency)
	var acked atomic.Int64
	deadline := time.Now().Add(d)
	t0 := time.Now()
	parallel(ctx, s.p.concurrency, s.p.concurrency, func(w, _ int) {
		rng := rand.New(rand.NewPCG(uint64(w), uint64(time.Now().UnixNano())))
		for ctx.Err() == nil && time.Now().Before(deadline) {
			i := rng.IntN(s.created)
			r, err := do(ctx, s.client, http.MethodPost, s.e.streamURL(s.names[i]), manyContentType, streamBody(i, s.p.bytes), nil)
			if err != nil || r.status != http.StatusNoContent {
				// Unknown outcome: the stream can no longer be verified
				// exactly, so the run fails below.
				s.errs.add("%s", describe("POST", r, err))
				return
			}
			s.appends[i].Add(1)
			acked.Add(1)
			lats[w] = append(lats[w], r.lat)
		}
	})
	elapsed := time.Since(t0)
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	if s.errs.count() > 0 {
		return 0, nil, fmt.Errorf("appends failed: %v", s.errs.list())
	}
	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	return perSecond(float64(acked.Load()), elapsed), all, nil
}

// verifySample reads back random streams (always including the first and
// the last) and returns how many differ from what was acknowledged.
func (s *manyState) verifySample(ctx context.Context, rng *rand.Rand) int64 {
	idx := make([]int, 0, s.p.verify)
	if s.p.verify > 0 {
		idx = append(idx, 0, s.created-1)
	}
	for len(idx) < s.p.verify {
		idx = append(idx, rng.IntN(s.created))
	}
	var bad atomic.Int64
	bufs := make([]bytes.Buffer, s.p.concurrency)
	parallel(ctx, len(idx), s.p.concurrency, func(w, k int) {
		i := idx[k]
		r, err := do(ctx, s.client, http.MethodGet, s.e.streamURL(s.names[i])+"?offset=-1", "", nil, &bufs[w])
		if err != nil || r.status != http.StatusOK || !r.upToDate() || !bytes.Equal(bufs[w].Bytes(), s.expected(i, s.appends[i].Load())) {
			bad.Add(1)
			s.errs.add("stream %d after restart: %s, %d bytes, want %d", i, describe("GET", r, err), bufs[w].Len(), (s.appends[i].Load()+1)*int32(s.p.bytes))
		}
	})
	return bad.Load()
}

// countFDs returns the open file descriptors of pid (-1 if unknown).
func countFDs(pid int) int {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return -1
	}
	return len(ents)
}
