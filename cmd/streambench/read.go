package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"time"
)

// readParams: fill one stream with M MiB, then read it from the start to
// the end `repeat` times, verifying every byte.
type readParams struct {
	mib, chunkBytes, repeat int
}

func (p *readParams) register(fs *flag.FlagSet) {
	fs.IntVar(&p.mib, "mib", 256, "MiB to write and read back")
	fs.IntVar(&p.chunkBytes, "chunk-bytes", 1<<20, "bytes per append while filling")
	fs.IntVar(&p.repeat, "repeat", 3, "full reads of the stream")
}

func (p *readParams) validate() error {
	if p.mib < 1 || p.chunkBytes < 1 || p.repeat < 1 {
		return errors.New("read: -mib, -chunk-bytes and -repeat must be positive")
	}
	return nil
}

func (p *readParams) fds() int { return 64 }

func (p *readParams) run(ctx context.Context, e *env) (*result, error) {
	client := newClient(newTransport(4, nil, nil))
	const ct = "application/octet-stream"
	name := e.prefix + "-read"
	u := e.streamURL(name)
	tail0, r, err := createStream(ctx, client, u, ct)
	if err == nil && r.status != http.StatusCreated {
		// A stream left by an earlier run with the same -prefix: the
		// pattern is positional, so start from an empty one.
		e.logf("read: %s already exists, recreating it", name)
		if r, err = do(ctx, client, http.MethodDelete, u, "", nil, nil); err == nil && r.ok() {
			tail0, r, err = createStream(ctx, client, u, ct)
		}
		if err == nil && r.status != http.StatusCreated {
			err = fmt.Errorf("status %d after deleting it", r.status)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("creating %s: %v", u, describe("PUT", r, err))
	}
	defer deleteStreams(e, client, []string{name}, 1)
	rssBefore, _ := readRSS(e.pid)
	total := uint64(p.mib) << 20
	ref := pattern(p.chunkBytes)

	// Fill. Every append must be acknowledged with an offset after the
	// previous one, or the reads below would measure something else.
	// Offsets are opaque: the bytes are verified when reading back.
	e.logf("read: filling %s with %d MiB in %d-byte appends", name, p.mib, p.chunkBytes)
	t0 := time.Now()
	tail := tail0
	for pos := uint64(0); pos < total; {
		n := min(uint64(p.chunkBytes), total-pos)
		off := pos % 251
		r, err := do(ctx, client, http.MethodPost, u, ct, ref[off:off+n], nil)
		if err != nil || r.status != http.StatusNoContent {
			return nil, fmt.Errorf("filling: %s", describe("POST", r, err))
		}
		next, err := r.nextOffset()
		if err != nil || !offsetAfter(next, tail) {
			return nil, fmt.Errorf("filling: append after %q answered Stream-Next-Offset %q", tail, r.header.Get("Stream-Next-Offset"))
		}
		pos, tail = pos+n, next
	}
	fillTime := time.Since(t0)
	rssFilled, _ := readRSS(e.pid)

	rss := startRSSSampler(e.pid, 50*time.Millisecond)
	errs := &errorLog{log: e.log}
	var lats []time.Duration
	var rates []float64
	var requests, missing int64
	buf := bytes.NewBuffer(make([]byte, 0, 2<<20))
	for rep := range p.repeat {
		t0 := time.Now()
		// pos counts the bytes received, the position in the pattern;
		// prev is the last offset returned, starting at the empty
		// stream's tail.
		pos, offset, prev := uint64(0), "-1", tail0
		ok := true
		for {
			requests++
			r, err := do(ctx, client, http.MethodGet, u+"?"+offsetQuery(offset), "", nil, buf)
			if err != nil || r.status != http.StatusOK {
				errs.add("%s", describe("GET catch-up", r, err))
				ok = false
				break
			}
			lats = append(lats, r.lat)
			body := buf.Bytes()
			if bad := mismatches(ref, body, pos); bad > 0 {
				errs.add("repeat %d: %d wrong bytes in the %d bytes at %d", rep, bad, len(body), pos)
				missing += int64(bad)
				ok = false
			}
			pos += uint64(len(body))
			next, err := r.nextOffset()
			if err != nil || (len(body) > 0 && !offsetAfter(next, prev)) || offsetAfter(prev, next) {
				errs.add("repeat %d: %d bytes after offset %q answered Stream-Next-Offset %q", rep, len(body), prev, r.header.Get("Stream-Next-Offset"))
				ok = false
				break
			}
			offset, prev = next, next
			if r.upToDate() {
				break
			}
			if len(body) == 0 {
				errs.add("repeat %d: empty response at %q without Stream-Up-To-Date", rep, offset)
				ok = false
				break
			}
		}
		elapsed := time.Since(t0)
		if ok && offsetAfter(tail, prev) {
			errs.add("repeat %d: up to date at %q, before the tail %q of the last append", rep, prev, tail)
			ok = false
		}
		if pos != total {
			errs.add("repeat %d: read %d bytes, the stream holds %d", rep, pos, total)
			if pos < total {
				missing += int64(total - pos)
			}
			ok = false
		}
		if ok {
			rates = append(rates, round3(float64(p.mib)/elapsed.Seconds()))
			e.logf("read: repeat %d: %d MiB in %v (%.1f MiB/s)", rep, p.mib, elapsed.Round(time.Millisecond), rates[len(rates)-1])
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	rssMax := rss.Stop()

	res := newResult("MiB/s")
	best := 0.0
	for _, r := range rates {
		best = max(best, r)
	}
	each := append([]float64{}, rates...)
	res.Throughput = median(rates)
	res.setLatency(summarize(lats))
	res.Requests = requests
	res.Errors = errs.count()
	res.Missing = missing
	res.RSS = rssMax
	res.Extra["mib_best"] = best
	res.Extra["mib_median"] = res.Throughput
	res.Extra["mib_each"] = each
	res.Extra["verified_repeats"] = len(rates)
	res.Extra["fill_mib_per_s"] = perSecond(float64(p.mib), fillTime)
	res.Extra["rss_before_bytes"] = rssBefore
	res.Extra["rss_after_fill_bytes"] = rssFilled
	res.Extra["error_samples"] = errs.list()
	return res, nil
}
