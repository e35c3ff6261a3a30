package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// sseParams: N SSE subscribers on one text stream, one writer appending R
// messages per second; every message must reach every subscriber exactly
// once and in order.
type sseParams struct {
	subscribers, rate, bytes int
	duration                 time.Duration
}

func (p *sseParams) register(fs *flag.FlagSet) {
	fs.IntVar(&p.subscribers, "subscribers", 1000, "concurrent SSE subscribers, one connection each")
	fs.IntVar(&p.rate, "rate", 50, "appended messages per second")
	fs.IntVar(&p.bytes, "bytes", 256, "bytes per message (at least 32: sequence number and timestamp)")
	fs.DurationVar(&p.duration, "duration", 10*time.Second, "how long the writer appends")
}

// Message layout: "<10-digit seq> <19-digit send time> xxx…\n", B bytes.
const sseMsgHeader = 31

func (p *sseParams) validate() error {
	if p.subscribers < 1 || p.rate < 1 || p.duration <= 0 {
		return errors.New("sse: -subscribers, -rate and -duration must be positive")
	}
	if p.bytes < sseMsgHeader+1 {
		return fmt.Errorf("sse: -bytes must be at least %d", sseMsgHeader+1)
	}
	return nil
}

func (p *sseParams) fds() int { return p.subscribers + 64 }

// sseDrain bounds the wait for the last messages after the writer stops.
const sseDrain = 10 * time.Second

func sseMessage(seq int, sentAt int64, size int) []byte {
	b := make([]byte, 0, size)
	b = fmt.Appendf(b, "%010d %019d ", seq, sentAt)
	for len(b) < size-1 {
		b = append(b, 'x')
	}
	return append(b, '\n')
}

// subscriber is the state of one SSE client, owned by its goroutine until
// the run ends; unique is read by the coordinator meanwhile.
type subscriber struct {
	seen        []bool
	maxSeen     int
	unique      atomic.Int64
	duplicates  int64
	outOfOrder  int64
	beyondRange int64
	lats        []time.Duration
	events      int64
	reconnects  int64
	partial     []byte
}

// consume takes the payload of one data event: complete messages are
// scored, a trailing partial message waits for the next event (a catch-up
// chunk may end inside a message).
func (s *subscriber) consume(data []byte, at int64, size int, errs *errorLog) {
	s.events++
	if len(s.partial) > 0 {
		data = append(s.partial, data...)
		s.partial = nil
	}
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			s.partial = append([]byte{}, data...)
			return
		}
		line := data[:i+1]
		data = data[i+1:]
		seq, sentAt, ok := parseSSEMessage(line, size)
		if !ok {
			errs.add("sse: malformed message %.40q", line)
			continue
		}
		if seq >= len(s.seen) {
			s.beyondRange++
			continue
		}
		if s.seen[seq] {
			s.duplicates++
			continue
		}
		s.seen[seq] = true
		s.unique.Add(1)
		if seq < s.maxSeen {
			s.outOfOrder++
		}
		s.maxSeen = max(s.maxSeen, seq)
		s.lats = append(s.lats, time.Duration(at-sentAt))
	}
}

func parseSSEMessage(line []byte, size int) (int, int64, bool) {
	if len(line) != size || line[10] != ' ' || line[30] != ' ' {
		return 0, 0, false
	}
	seq, err1 := strconv.Atoi(string(line[:10]))
	at, err2 := strconv.ParseInt(string(line[11:30]), 10, 64)
	for _, c := range line[sseMsgHeader : size-1] {
		if c != 'x' {
			return 0, 0, false
		}
	}
	return seq, at, err1 == nil && err2 == nil
}

func (p *sseParams) run(ctx context.Context, e *env) (*result, error) {
	f, err := newFanoutStream(ctx, e, "sse", "text/plain")
	if err != nil {
		return nil, err
	}
	defer f.close(e)
	admin, u, ct, tail0, rssBefore, rss := f.admin, f.url, f.ct, f.tail, f.rssBefore, f.rss

	n := p.subscribers
	capacity := int(float64(p.rate)*p.duration.Seconds()) + 2*p.rate + 16
	subs := make([]*subscriber, n)
	for i := range subs {
		subs[i] = &subscriber{seen: make([]bool, capacity), maxSeen: -1}
	}
	errs := &errorLog{log: e.log}
	var connected, connects atomic.Int64
	pool := newReaderPool(n, 1, false)
	defer pool.close()

	// subscribe follows the stream over SSE, reconnecting from the last
	// control event's offset whenever the server ends the response.
	subscribe := func(sctx context.Context, i int) {
		s, client := subs[i], pool.client(i)
		offset, cursor := tail0, ""
		first := true
		for sctx.Err() == nil {
			q := u + "?" + offsetQuery(offset) + "&live=sse"
			if cursor != "" {
				q += "&cursor=" + url.QueryEscape(cursor)
			}
			req, _ := http.NewRequestWithContext(sctx, http.MethodGet, q, nil)
			connects.Add(1)
			resp, err := client.Do(req)
			if err != nil {
				if sctx.Err() == nil {
					errs.add("%s", describe("GET sse", reply{}, err))
					sleepCtx(sctx, 200*time.Millisecond)
				}
				continue
			}
			if resp.StatusCode != http.StatusOK {
				errs.add("GET sse: status %d", resp.StatusCode)
				resp.Body.Close()
				sleepCtx(sctx, 200*time.Millisecond)
				continue
			}
			if first {
				connected.Add(1)
				first = false
			}
			b64 := resp.Header.Get("Stream-Sse-Data-Encoding") == "base64"
			rd := newSSEReader(resp.Body)
			// A data event counts only with its control event: if the
			// response ends between the two, the reconnect (from the last
			// control offset) delivers the data again.
			var pending []byte
			var pendingAt int64
			havePending, closed := false, false
			for !closed {
				ev, err := rd.Next()
				if err != nil {
					if err != io.EOF && sctx.Err() == nil {
						errs.add("sse read: %v", err)
					}
					break
				}
				switch ev.Type {
				case "data":
					pendingAt = e.since()
					if pending, err = decodeSSEData(ev.Data, b64); err != nil {
						errs.add("sse data: %v", err)
						continue
					}
					havePending = true
				case "control":
					c, err := parseControl(ev.Data)
					if err == nil {
						_, err = checkOffset(c.StreamNextOffset)
					}
					if err != nil {
						errs.add("sse control %.60q: %v", ev.Data, err)
						continue
					}
					// Offsets are opaque: only their order is checked,
					// strictly after the previous one past data.
					data := havePending && len(pending) > 0
					if next := c.StreamNextOffset; (data && !offsetAfter(next, offset)) || offsetAfter(offset, next) {
						errs.add("sse control after offset %q (data %v): streamNextOffset %q", offset, data, next)
					}
					if havePending {
						s.consume(pending, pendingAt, p.bytes, errs)
						havePending = false
					}
					offset, cursor, closed = c.StreamNextOffset, c.StreamCursor, c.StreamClosed
				}
			}
			resp.Body.Close()
			if closed {
				return
			}
			if sctx.Err() == nil {
				s.reconnects++
			}
		}
	}

	sctx, stopSubs := context.WithCancel(ctx)
	defer stopSubs()
	var wg sync.WaitGroup
	e.logf("sse: opening %d subscribers", n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			subscribe(sctx, i)
		}()
	}
	deadline := time.Now().Add(120 * time.Second)
	for connected.Load() < int64(n) && time.Now().Before(deadline) {
		if !sleepCtx(ctx, 10*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
	if c := connected.Load(); c < int64(n) {
		e.logf("sse: only %d of %d subscribers connected, writing anyway", c, n)
	}
	sleepCtx(ctx, 200*time.Millisecond) // let the server subscribe the last ones
	rssConnected, _ := readRSS(e.pid)

	// The writer: one append per tick, sequential so sequence order is
	// stream order. A slow append makes the ticker drop ticks, which shows
	// as an achieved rate below -rate.
	e.logf("sse: writing %d msgs/s for %v", p.rate, p.duration)
	acked := make([]bool, 0, capacity)
	var appendLats []time.Duration
	var appendErrs int64
	tick := time.NewTicker(time.Second / time.Duration(p.rate))
	wStart := time.Now()
	wEnd := wStart.Add(p.duration)
	for seq := 0; seq < capacity; seq++ {
		select {
		case <-tick.C:
		case <-ctx.Done():
			tick.Stop()
			return nil, ctx.Err()
		}
		if !time.Now().Before(wEnd) {
			break
		}
		r, err := do(ctx, admin, http.MethodPost, u, ct, sseMessage(seq, e.since(), p.bytes), nil)
		ok := err == nil && r.status == http.StatusNoContent
		acked = append(acked, ok)
		if ok {
			appendLats = append(appendLats, r.lat)
		} else {
			appendErrs++
			errs.add("%s", describe("POST append", r, err))
		}
	}
	tick.Stop()
	wElapsed := time.Since(wStart)
	var nAcked int64
	for _, ok := range acked {
		if ok {
			nAcked++
		}
	}

	// Drain: wait until every subscriber has every acknowledged message.
	drainStart := time.Now()
	for drained := false; !drained && time.Since(drainStart) < sseDrain; {
		drained = true
		for _, s := range subs {
			if s.unique.Load() < nAcked {
				drained = false
				break
			}
		}
		if !drained && !sleepCtx(ctx, 20*time.Millisecond) {
			return nil, ctx.Err()
		}
	}
	stopSubs()
	wg.Wait()
	rssMax := rss.Stop()

	var lats []time.Duration
	var missing, dups, ooo, beyond, reconnects, events int64
	for _, s := range subs {
		for seq, ok := range acked {
			if ok && !s.seen[seq] {
				missing++
			}
		}
		dups += s.duplicates
		ooo += s.outOfOrder
		beyond += s.beyondRange
		reconnects += s.reconnects
		events += s.events
		lats = append(lats, s.lats...)
	}
	sum := summarize(lats)
	res := newResult("deliveries/s")
	res.Throughput = perSecond(float64(len(lats)), wElapsed)
	res.setLatency(sum)
	res.Requests = connects.Load() + int64(len(acked))
	res.Errors = errs.count()
	res.Missing = missing
	res.RSS = rssMax
	if e.pid > 0 {
		res.RSSPerReader = (rssConnected - rssBefore) / int64(n)
	}
	aSum := summarize(appendLats)
	res.Extra["achieved_rate"] = perSecond(float64(nAcked), wElapsed)
	res.Extra["appended"] = nAcked
	res.Extra["append_errors"] = appendErrs
	res.Extra["append_p50_ms"] = ms(aSum.p50)
	res.Extra["append_p99_ms"] = ms(aSum.p99)
	res.Extra["delivered"] = len(lats)
	res.Extra["duplicates"] = dups
	res.Extra["out_of_order"] = ooo
	res.Extra["unexpected_seq"] = beyond
	res.Extra["reconnects"] = reconnects
	res.Extra["data_events"] = events
	res.Extra["drain_s"] = round3(time.Since(drainStart).Seconds())
	res.Extra["rss_before_bytes"] = rssBefore
	res.Extra["rss_connected_bytes"] = rssConnected
	res.Extra["mean_ms"] = ms(sum.mean)
	res.Extra["error_samples"] = errs.list()
	return res, nil
}
