package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"sync"
	"sync/atomic"
	"time"
)

// longpollParams: N long-poll readers parked at the tail of one stream;
// each round appends one message and measures its delivery to every reader.
type longpollParams struct {
	readers, rounds, bytes, sourceIPs int
	settle                            time.Duration
	h2c                               bool
}

func (p *longpollParams) register(fs *flag.FlagSet) {
	fs.IntVar(&p.readers, "readers", 10000, "concurrent long-poll readers, one connection each (see -h2c)")
	fs.IntVar(&p.rounds, "rounds", 5, "appends, each delivered to every reader")
	fs.IntVar(&p.bytes, "bytes", 256, "bytes per appended message")
	fs.IntVar(&p.sourceIPs, "source-ips", 1, "spread connections over source addresses 127.0.0.1..127.0.0.K")
	fs.DurationVar(&p.settle, "settle", 2*time.Second, "wait after all readers are in flight, before each append")
	fs.BoolVar(&p.h2c, "h2c", false, "readers speak HTTP/2 without TLS (prior knowledge): each group of 256 shares one connection instead of holding one each")
}

func (p *longpollParams) validate() error {
	if p.readers < 1 || p.rounds < 1 || p.bytes < 1 || p.settle < 0 {
		return errors.New("longpoll: -readers, -rounds and -bytes must be positive, -settle not negative")
	}
	if p.sourceIPs < 1 || p.sourceIPs > 254 {
		return errors.New("longpoll: -source-ips must be in 1..254")
	}
	return nil
}

func (p *longpollParams) fds() int {
	if p.h2c {
		return p.readers/readersPerTransport + 64
	}
	return p.readers + 64
}

const (
	readersPerTransport = 256
	deliveryDeadline    = 30 * time.Second // a reader without the round's data by then is missing
	liveRequestTimeout  = 90 * time.Second // well above a server's long-poll timeout (30 s)
	maxConcurrentDials  = 256
)

// readerPool holds the transports of many live readers: one transport per
// group, each connection from one of the source addresses.
type readerPool struct {
	clients []*http.Client
}

func newReaderPool(readers, sourceIPs int, h2c bool) *readerPool {
	sem := make(chan struct{}, maxConcurrentDials)
	groups := (readers + readersPerTransport - 1) / readersPerTransport
	p := &readerPool{}
	for g := range groups {
		var ip net.IP
		if sourceIPs > 1 {
			// Binding is only needed to spread ports; with one address the
			// kernel picks 127.0.0.1 and may reuse TIME_WAIT ports.
			ip = net.IPv4(127, 0, 0, byte(g%sourceIPs+1))
		}
		tr := newTransport(readersPerTransport, ip, sem)
		if h2c {
			// One connection per group, as long as the server allows
			// readersPerTransport concurrent streams on it (streamd and the
			// ceiling allow 1,000); beyond that the transport dials more.
			tr.Protocols = new(http.Protocols)
			tr.Protocols.SetUnencryptedHTTP2(true)
		}
		p.clients = append(p.clients, newClient(tr))
	}
	return p
}

func (p *readerPool) client(i int) *http.Client { return p.clients[i/readersPerTransport] }

func (p *readerPool) close() {
	for _, c := range p.clients {
		c.Transport.(*http.Transport).CloseIdleConnections()
	}
}

// inFlight counts requests fully written and not yet answered, the
// client's view of parked readers.
type inFlight struct{ n atomic.Int64 }

// track returns ctx traced so the request counts once it is written, and a
// func to call when the response (or error) is back. The trace callback may
// run after the response arrived, hence the small state machine: whichever
// of "written" and "done" comes first decides.
func (f *inFlight) track(ctx context.Context) (context.Context, func()) {
	var st atomic.Int32 // 0 pending, 1 counted, 2 done
	ctx = httptrace.WithClientTrace(ctx, &httptrace.ClientTrace{
		WroteRequest: func(i httptrace.WroteRequestInfo) {
			if i.Err == nil && st.CompareAndSwap(0, 1) {
				f.n.Add(1)
			}
		},
	})
	return ctx, func() {
		if st.Swap(2) == 1 {
			f.n.Add(-1)
		}
	}
}

// wait polls until n() requests are in flight; it reports whether that
// happened within limit.
func (f *inFlight) wait(ctx context.Context, n func() int64, limit time.Duration) bool {
	deadline := time.Now().Add(limit)
	for f.n.Load() < n() {
		if time.Now().After(deadline) || !sleepCtx(ctx, 10*time.Millisecond) {
			return false
		}
	}
	return true
}

func (p *longpollParams) run(ctx context.Context, e *env) (*result, error) {
	f, err := newFanoutStream(ctx, e, "longpoll", "application/octet-stream")
	if err != nil {
		return nil, err
	}
	defer f.close(e)
	admin, u, ct, tail0, rssBefore, rss := f.admin, f.url, f.ct, f.tail, f.rssBefore, f.rss

	n, B := p.readers, p.bytes
	msgs := make([][]byte, p.rounds)
	for i := range msgs {
		msgs[i] = make([]byte, B)
		for j := range msgs[i] {
			msgs[i][j] = byte('a' + (i*7+j)%26)
		}
	}
	// recvAt[round][reader]: e.since() when the round's data arrived, +1 so
	// 0 means "not delivered". Atomic: readers late past the deadline may
	// still write after the round was scored.
	recvAt := make([][]atomic.Int64, p.rounds)
	settled := make([]atomic.Int64, p.rounds) // readers done with the round (right or wrong data)
	wrong := make([]atomic.Int64, p.rounds)
	roundDone := make([]chan struct{}, p.rounds)
	for i := range recvAt {
		recvAt[i] = make([]atomic.Int64, n)
		roundDone[i] = make(chan struct{})
	}
	settle := func(round int) {
		if settled[round].Add(1) == int64(n) {
			close(roundDone[round])
		}
	}
	errs := &errorLog{log: e.log}
	var polls, timeouts atomic.Int64
	var flight inFlight
	pool := newReaderPool(n, p.sourceIPs, p.h2c)
	defer pool.close()

	// reader i long-polls from the tail until it has seen every round. It
	// resumes at the offset each answer returned and scores the rounds by
	// content: the k-th B bytes after the tail must be msgs[k].
	reader := func(rctx context.Context, i int) {
		client := pool.client(i)
		offset, cursor := tail0, ""
		var got []byte // bytes of the current round received so far
		round := 0
		// giveUp settles the rounds this reader can no longer score.
		giveUp := func() {
			for ; round < p.rounds; round++ {
				wrong[round].Add(1)
				settle(round)
			}
		}
		var buf bytes.Buffer
		for rctx.Err() == nil && round < p.rounds {
			polls.Add(1)
			tctx, done := flight.track(rctx)
			tctx, cancel := context.WithTimeout(tctx, liveRequestTimeout)
			q := u + "?" + offsetQuery(offset) + "&live=long-poll"
			if cursor != "" {
				q += "&cursor=" + url.QueryEscape(cursor) // echoed as clients do (§5.7)
			}
			req, _ := http.NewRequestWithContext(tctx, http.MethodGet, q, nil)
			resp, err := client.Do(req)
			done()
			if err == nil {
				buf.Reset()
				_, err = buf.ReadFrom(resp.Body)
				resp.Body.Close()
			}
			cancel()
			at := e.since()
			if rctx.Err() != nil {
				return
			}
			if err != nil {
				errs.add("%s", describe("GET long-poll", reply{}, err))
				sleepCtx(rctx, 100*time.Millisecond)
				continue
			}
			if c := resp.Header.Get("Stream-Cursor"); c != "" {
				cursor = c
			}
			switch resp.StatusCode {
			case http.StatusNoContent:
				// No new data: poll again from the same offset.
				timeouts.Add(1)
				continue
			case http.StatusOK:
			default:
				errs.add("GET long-poll: status %d", resp.StatusCode)
				sleepCtx(rctx, 100*time.Millisecond)
				continue
			}
			// One answer may carry several rounds if this reader lagged,
			// or end inside a round: the rest comes with the next one.
			for body := buf.Bytes(); len(body) > 0 && round < p.rounds; {
				n := min(len(body), B-len(got))
				got, body = append(got, body[:n]...), body[n:]
				if len(got) < B {
					break
				}
				if bytes.Equal(got, msgs[round]) {
					recvAt[round][i].Store(at + 1)
				} else {
					wrong[round].Add(1)
				}
				settle(round)
				got, round = got[:0], round+1
			}
			next, err := checkOffset(resp.Header.Get("Stream-Next-Offset"))
			if err != nil || buf.Len() == 0 || !offsetAfter(next, offset) {
				errs.add("long-poll after offset %q: %d bytes with Stream-Next-Offset %q", offset, buf.Len(), resp.Header.Get("Stream-Next-Offset"))
				giveUp()
				return
			}
			offset = next
		}
	}

	rctx, stopReaders := context.WithCancel(ctx)
	defer stopReaders()
	var wg sync.WaitGroup
	proto := "HTTP/1.1"
	if p.h2c {
		proto = "HTTP/2 (h2c)"
	}
	e.logf("longpoll: opening %d %s readers (%d source addresses)", n, proto, p.sourceIPs)
	var active atomic.Int64 // readers still running: one that gave up is not waited for
	active.Store(int64(n))
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer active.Add(-1)
			reader(rctx, i)
		}()
	}

	var lats []time.Duration
	var missing, appendErrs int64
	var rssParked int64
	var deliveryTime time.Duration
	var delivered int64
	tail := tail0 // offset returned by the last append
	for round := range p.rounds {
		limit := 30 * time.Second
		if round == 0 {
			limit = 120 * time.Second // thousands of connects
		}
		if !flight.wait(ctx, active.Load, limit) {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			e.logf("longpoll: round %d: only %d of %d readers in flight after %v, appending anyway", round, flight.n.Load(), n, limit)
		}
		if !sleepCtx(ctx, p.settle) {
			return nil, ctx.Err()
		}
		if round == 0 {
			rssParked, _ = readRSS(e.pid)
			e.logf("longpoll: %d readers parked, server RSS %d MiB (before readers %d MiB)", flight.n.Load(), rssParked>>20, rssBefore>>20)
		}
		sendAt := e.since()
		r, err := do(ctx, admin, http.MethodPost, u, ct, msgs[round], nil)
		if err != nil || r.status != http.StatusNoContent {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			appendErrs++
			errs.add("%s", describe("POST append", r, err))
		} else if next, err := r.nextOffset(); err != nil || !offsetAfter(next, tail) {
			errs.add("append of round %d after offset %q answered Stream-Next-Offset %q", round, tail, r.header.Get("Stream-Next-Offset"))
		} else {
			tail = next
		}
		t := time.NewTimer(deliveryDeadline)
		select {
		case <-roundDone[round]:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		t.Stop()
		var got int64
		var last time.Duration
		for i := range n {
			if v := recvAt[round][i].Load(); v > 0 {
				d := time.Duration(v - 1 - sendAt)
				lats = append(lats, d)
				last = max(last, d)
				got++
			}
		}
		missing += int64(n) - got
		delivered += got
		deliveryTime += last
		e.logf("longpoll: round %d: %d/%d delivered (%d wrong), last after %v", round, got, n, wrong[round].Load(), last.Round(time.Microsecond))
	}
	stopReaders()
	wg.Wait()
	rssMax := rss.Stop()

	var wrongTotal int64
	for i := range wrong {
		wrongTotal += wrong[i].Load()
	}
	sum := summarize(lats)
	res := newResult("deliveries/s")
	res.Throughput = perSecond(float64(delivered), deliveryTime)
	res.setLatency(sum)
	res.Requests = polls.Load() + int64(p.rounds)
	res.Errors = errs.count()
	res.Missing = missing
	res.RSS = rssParked
	if e.pid > 0 {
		res.RSSPerReader = (rssParked - rssBefore) / int64(n)
	}
	res.Extra["rss_before_bytes"] = rssBefore
	res.Extra["rss_max_bytes"] = rssMax
	res.Extra["delivered"] = delivered
	res.Extra["wrong_data"] = wrongTotal
	res.Extra["timeouts_204"] = timeouts.Load()
	res.Extra["append_errors"] = appendErrs
	res.Extra["mean_ms"] = ms(sum.mean)
	res.Extra["error_samples"] = errs.list()
	return res, nil
}
