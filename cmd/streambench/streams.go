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

// streamsParams: many small streams: create S, append one message to each,
// read each back.
type streamsParams struct {
	streams, bytes, concurrency int
}

func (p *streamsParams) register(fs *flag.FlagSet) {
	fs.IntVar(&p.streams, "streams", 1000, "streams to create, append to and read")
	fs.IntVar(&p.bytes, "bytes", 256, "bytes appended to each stream")
	fs.IntVar(&p.concurrency, "concurrency", 16, "concurrent requests")
}

func (p *streamsParams) validate() error {
	if p.streams < 1 || p.bytes < 1 || p.concurrency < 1 {
		return errors.New("streams: -streams, -bytes and -concurrency must be positive")
	}
	return nil
}

func (p *streamsParams) fds() int { return p.concurrency + 64 }

// streamBody is the content of stream i, distinct per stream so a read
// answered from the wrong stream is caught.
func streamBody(i, size int) []byte {
	b := make([]byte, size)
	for j := range b {
		b[j] = byte((i*131 + j*31 + 7) % 251)
	}
	return b
}

func (p *streamsParams) run(ctx context.Context, e *env) (*result, error) {
	client := newClient(newTransport(p.concurrency, nil, nil))
	const ct = "application/octet-stream"
	names := make([]string, p.streams)
	for i := range names {
		names[i] = fmt.Sprintf("%s-streams-%d", e.prefix, i)
	}
	defer deleteStreams(e, client, names, p.concurrency)
	rss := startRSSSampler(e.pid, 100*time.Millisecond)
	errs := &errorLog{log: e.log}
	var missing atomic.Int64
	res := newResult("ops/s")
	var all []time.Duration
	var total time.Duration

	// phase runs op on every stream and records its latencies; op reports
	// whether the request succeeded.
	phase := func(label string, op func(i int, buf *bytes.Buffer) (reply, bool)) error {
		lats := make([][]time.Duration, p.concurrency)
		bufs := make([]bytes.Buffer, p.concurrency)
		var okCount atomic.Int64
		t0 := time.Now()
		parallel(ctx, p.streams, p.concurrency, func(w, i int) {
			if r, ok := op(i, &bufs[w]); ok {
				okCount.Add(1)
				lats[w] = append(lats[w], r.lat)
			}
		})
		elapsed := time.Since(t0)
		if err := ctx.Err(); err != nil {
			return err
		}
		var ph []time.Duration
		for _, l := range lats {
			ph = append(ph, l...)
		}
		all = append(all, ph...)
		total += elapsed
		s := summarize(ph)
		rate := perSecond(float64(okCount.Load()), elapsed)
		res.Extra[label+"_per_s"] = rate
		res.Extra[label+"_p50_ms"] = ms(s.p50)
		res.Extra[label+"_p99_ms"] = ms(s.p99)
		e.logf("streams: %d %s in %v (%.0f/s), p50 %.2fms p99 %.2fms", okCount.Load(), label, elapsed.Round(time.Millisecond), rate, ms(s.p50), ms(s.p99))
		if okCount.Load() == 0 {
			return fmt.Errorf("no %s succeeded (%v)", label, errs.list())
		}
		return nil
	}

	// Offsets returned per stream: by the create (the empty stream's tail)
	// and by the append. Slot i is written by one worker of one phase and
	// read in a later phase.
	created, appended := make([]string, p.streams), make([]string, p.streams)
	err := phase("creates", func(i int, _ *bytes.Buffer) (reply, bool) {
		r, err := do(ctx, client, http.MethodPut, e.streamURL(names[i]), ct, nil, nil)
		if err != nil || r.status != http.StatusCreated {
			errs.add("%s", describe("PUT", r, err))
			return r, false
		}
		if created[i], err = r.nextOffset(); err != nil {
			errs.add("create answered Stream-Next-Offset %q", r.header.Get("Stream-Next-Offset"))
		}
		return r, true
	})
	if err == nil {
		err = phase("appends", func(i int, _ *bytes.Buffer) (reply, bool) {
			r, err := do(ctx, client, http.MethodPost, e.streamURL(names[i]), ct, streamBody(i, p.bytes), nil)
			if err != nil || r.status != http.StatusNoContent {
				errs.add("%s", describe("POST append", r, err))
				return r, false
			}
			next, err := r.nextOffset()
			if err != nil || !offsetAfter(next, created[i]) {
				errs.add("append after offset %q answered Stream-Next-Offset %q", created[i], r.header.Get("Stream-Next-Offset"))
			}
			appended[i] = next
			return r, true
		})
	}
	if err == nil {
		err = phase("reads", func(i int, buf *bytes.Buffer) (reply, bool) {
			r, err := do(ctx, client, http.MethodGet, e.streamURL(names[i])+"?offset=-1", "", nil, buf)
			if err != nil || r.status != http.StatusOK {
				errs.add("%s", describe("GET", r, err))
				missing.Add(1)
				return r, false
			}
			// The bytes are the check; the offset must only not be
			// before the one the append returned.
			next, err := r.nextOffset()
			if !bytes.Equal(buf.Bytes(), streamBody(i, p.bytes)) || err != nil || offsetAfter(appended[i], next) || !r.upToDate() {
				errs.add("read of stream %d: %d bytes, Stream-Next-Offset %q, up-to-date %v", i, buf.Len(), r.header.Get("Stream-Next-Offset"), r.upToDate())
				missing.Add(1)
			}
			return r, true
		})
	}
	if err != nil {
		return nil, err
	}
	rssMax := rss.Stop()
	sum := summarize(all)
	res.Throughput = perSecond(float64(len(all)), total)
	res.setLatency(sum)
	res.Requests = 3 * int64(p.streams)
	res.Errors = errs.count()
	res.Missing = missing.Load()
	res.RSS = rssMax
	res.Extra["mean_ms"] = ms(sum.mean)
	res.Extra["error_samples"] = errs.list()
	return res, nil
}
