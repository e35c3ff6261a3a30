package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"sync/atomic"
	"time"
)

// appendParams: W writers spread round-robin over S streams, each POSTing
// B-byte bodies back to back; latency per acknowledged append.
type appendParams struct {
	writers, streams, bytes int
	duration, warmup        time.Duration
}

func (p *appendParams) register(fs *flag.FlagSet) {
	fs.IntVar(&p.writers, "writers", 16, "concurrent writers")
	fs.IntVar(&p.streams, "streams", 16, "streams the writers are spread over (round-robin)")
	fs.IntVar(&p.bytes, "bytes", 256, "bytes per append")
	fs.DurationVar(&p.duration, "duration", 10*time.Second, "measured duration")
	fs.DurationVar(&p.warmup, "warmup", time.Second, "unmeasured warm-up before the measurement")
}

func (p *appendParams) validate() error {
	if p.writers < 1 || p.streams < 1 || p.bytes < 1 || p.duration <= 0 || p.warmup < 0 {
		return errors.New("append: -writers, -streams, -bytes and -duration must be positive, -warmup not negative")
	}
	return nil
}

func (p *appendParams) fds() int { return p.writers + p.streams + 64 }

func (p *appendParams) run(ctx context.Context, e *env) (*result, error) {
	client := newClient(newTransport(p.writers+p.streams, nil, nil))
	const ct = "application/octet-stream"
	names := make([]string, p.streams)
	urls := make([]string, p.streams)
	for i := range names {
		names[i] = fmt.Sprintf("%s-append-%d", e.prefix, i)
		urls[i] = e.streamURL(names[i])
	}
	defer deleteStreams(e, client, names, 16)
	// The tail of each stream before the run: its own offset, past any
	// data a stream reused through -prefix already holds.
	initial := make([]string, p.streams)
	for i, u := range urls {
		tail, r, err := createStream(ctx, client, u, ct)
		if err != nil {
			return nil, fmt.Errorf("creating %s: %v", u, describe("PUT", r, err))
		}
		initial[i] = tail
	}
	rss := startRSSSampler(e.pid, 100*time.Millisecond)
	body := pattern(p.bytes)[:p.bytes]
	errs := &errorLog{log: e.log}
	acked := make([]atomic.Int64, p.streams) // acknowledged bytes per stream
	var sent, measured atomic.Int64
	lats := make([][]time.Duration, p.writers)

	e.logf("append: %d writers over %d streams, %d-byte bodies, warm-up %v, duration %v", p.writers, p.streams, p.bytes, p.warmup, p.duration)
	start := time.Now()
	warmEnd := start.Add(p.warmup)
	end := warmEnd.Add(p.duration)
	parallel(ctx, p.writers, p.writers, func(_, w int) {
		s := w % p.streams
		last := initial[s] // offset of this writer's last acknowledged append
		for ctx.Err() == nil && time.Now().Before(end) {
			sent.Add(1)
			r, err := do(ctx, client, http.MethodPost, urls[s], ct, body, nil)
			done := time.Now()
			if err != nil || r.status != http.StatusNoContent {
				if ctx.Err() == nil {
					errs.add("%s", describe("POST append", r, err))
				}
				continue
			}
			acked[s].Add(int64(p.bytes))
			// Appends of one writer are sequential, so each acknowledged
			// one must end after the previous.
			if next, err := r.nextOffset(); err != nil || !offsetAfter(next, last) {
				errs.add("append after offset %q answered Stream-Next-Offset %q", last, r.header.Get("Stream-Next-Offset"))
			} else {
				last = next
			}
			// Measured: acknowledgements that arrive inside the window.
			if !done.Before(warmEnd) && !done.After(end) {
				measured.Add(1)
				lats[w] = append(lats[w], r.lat)
			}
		}
	})
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	rssMax := rss.Stop()

	// Every acknowledged byte must be in the stream, and nothing else:
	// read each stream back from its tail before the run and compare the
	// bytes with the appended bodies. Not part of the measurement.
	var mismatched, missing int64
	buf := bytes.NewBuffer(make([]byte, 0, 1<<20))
	for i, u := range urls {
		n, bad, err := readBack(ctx, client, u, initial[i], body, buf)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			errs.add("read-back after run: %v", err)
			continue
		}
		if want := acked[i].Load(); n != want || bad > 0 {
			mismatched++
			e.logf("append: stream %s holds %d new bytes (%d not the appended body), %d were acknowledged", names[i], n, bad, want)
			if n < want {
				missing += (want - n) / int64(p.bytes)
			}
		}
	}

	var all []time.Duration
	for _, l := range lats {
		all = append(all, l...)
	}
	sum := summarize(all)
	res := newResult("appends/s")
	res.Throughput = perSecond(float64(measured.Load()), p.duration)
	res.setLatency(sum)
	res.Requests = sent.Load()
	res.Errors = errs.count()
	res.Missing = missing
	res.RSS = rssMax
	res.Extra["measured_appends"] = measured.Load()
	res.Extra["mean_ms"] = ms(sum.mean)
	res.Extra["mib_per_s"] = round3(res.Throughput * float64(p.bytes) / (1 << 20))
	res.Extra["tail_mismatched_streams"] = mismatched
	res.Extra["error_samples"] = errs.list()
	e.logf("append: %.0f appends/s, p50 %.2fms p99 %.2fms, %d errors", res.Throughput, res.P50, res.P99, res.Errors)
	return res, nil
}

// readBack reads u from offset to the end. Appended bodies are all body, so
// the stream after offset must repeat it. It returns the number of bytes
// read and how many of them differ from that content.
func readBack(ctx context.Context, c *http.Client, u, offset string, body []byte, buf *bytes.Buffer) (n, bad int64, err error) {
	for {
		r, err := do(ctx, c, http.MethodGet, u+"?"+offsetQuery(offset), "", nil, buf)
		if err != nil || r.status != http.StatusOK {
			return n, bad, errors.New(describe("GET", r, err))
		}
		for _, b := range buf.Bytes() {
			if b != body[n%int64(len(body))] {
				bad++
			}
			n++
		}
		next, err := r.nextOffset()
		if err != nil || (buf.Len() > 0 && !offsetAfter(next, offset)) || offsetAfter(offset, next) {
			return n, bad, fmt.Errorf("GET after offset %q: %d bytes with Stream-Next-Offset %q", offset, buf.Len(), r.header.Get("Stream-Next-Offset"))
		}
		offset = next
		if r.upToDate() {
			return n, bad, nil
		}
		if buf.Len() == 0 {
			return n, bad, fmt.Errorf("GET at offset %q: empty response without Stream-Up-To-Date", offset)
		}
	}
}
