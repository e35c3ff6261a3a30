package crashtest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"strconv"
	"time"
)

// Read-renewed TTL streams: every third cycle adds a stream with a
// Stream-TTL that is created empty, never written again, and read (catch-up,
// long-poll and SSE) for a few seconds across the following cycles, then left
// alone. A read restarts the TTL countdown (§5.1); streamd renews the anchor
// in memory at once and persists it at most once a second per stream
// (DURABILITY.md, guarantee 7), so after a SIGKILL the stream must outlive
// its creation's deadline by what the reads before the kill gave it. After
// every restart verifyExpiry checks it with HEAD (which renews nothing)
// against the bounds foldReads derives from the recorded reads.
//
// The bounds, with k the moment of the SIGKILL or, in a SIGTERM cycle, the
// moment streamd exited (harness.downFrom; a graceful stop answers requests
// in progress after the signal, and persists what renewals it holds):
//
//   - Earliest deadline: touchLo + TTL, where touchLo is the latest of the
//     create's send time and the send time of every read that was answered
//     (200, 204, or SSE headers) and sent at least renewLag before k. The
//     server touched it no earlier than it was sent, and a renewal is
//     persisted at most a second after the read, with the sync taking
//     milliseconds; renewLag covers both. The check allows ttlSlack more, and
//     needs it: the implementation persists the first read of each second
//     right away and a later read of that second only with the next
//     persisted renewal (or a passivation or graceful stop), so the durable
//     anchor may trail the last read by up to a second.
//   - Latest deadline: touchHi + TTL, where touchHi is the latest of the
//     moment the create was answered, the moment each answered read was
//     answered (the server touches before it answers) and, for a read with no
//     answer (killed in flight, a long-poll the client gave up on, or a 5xx
//     from a draining streamd), k: it may or may not have renewed, but not
//     after streamd died.
//
// verifyExpiry allows ttlSlack on both sides (HEAD compares the deadline with
// the clock; the reaper runs every second). A stream seen 404 must stay 404.

// renewLag is how long before the kill a read must have been sent for its
// renewal to count as durable: the second a renewal may wait to be persisted,
// plus margin for the sync on a loaded machine.
const renewLag = 1500 * time.Millisecond

// renewTTLs are the read-renewed streams' TTLs: short enough that they expire
// from their creation within a few cycles, so most checks happen after the
// creation's deadline and only reads keep them alive.
var renewTTLs = []int{6, 10, 8, 14, 7, 20, 9, 12}

// renewRead is one GET of a read-renewed stream.
type renewRead struct {
	sent     time.Time
	answered time.Time // when the response headers arrived; zero if none did
	found    bool      // answered 200 or 204 (a 404 renews nothing)
}

// startRenewals creates this cycle's read-renewed stream, if any, and starts
// the readers of every read-renewed stream still being read; they run until
// stopRenewals, after the kill. Starting them before verify, which takes a
// while, gives reads sent long enough before the kill to count as durable.
func (h *harness) startRenewals(cycle int) {
	rng := h.rng
	if cycle%3 == 1 {
		ttl := renewTTLs[cycle/3%len(renewTTLs)]
		l := h.newLife(fmt.Sprintf("crash/renew-c%d", cycle), kPlain, lRenew, http.Header{"Stream-Ttl": {strconv.Itoa(ttl)}})
		l.ttl, l.createdHi = ttl, l.touchHi
		// Read for 4-12 s: the last reads come well after the creation's
		// deadline would have passed for the short TTLs.
		l.readUntil = time.Now().Add(time.Duration(4000+rng.Intn(8000)) * time.Millisecond)
	}
	stop := make(chan struct{})
	h.renewStop = stop
	reading := false
	for _, l := range h.lives {
		if l.kind != lRenew || l.state != lOpen || !time.Now().Before(l.readUntil) {
			continue
		}
		reading = true
		seed := rng.Int63()
		h.renewWG.Add(1)
		go func() { defer h.renewWG.Done(); h.renewReader(l, seed, stop) }()
	}
	if reading && rng.Intn(2) == 0 {
		// A read counts towards the earliest deadline only if it was sent
		// renewLag before the kill, and verify and load together are often
		// shorter than that: give half of the cycles a head start of reads.
		time.Sleep(time.Second)
	}
}

// stopRenewals, after the kill, stops the readers and moves the read-renewed
// streams' deadline bounds by their reads (foldReads).
func (h *harness) stopRenewals() {
	close(h.renewStop)
	h.renewWG.Wait()
	h.foldReads()
}

// verifyRenewals checks every read-renewed stream after a restart.
func (h *harness) verifyRenewals() {
	for _, l := range h.lives {
		if l.kind == lRenew {
			h.verifyRenewed(l)
		}
	}
}

// renewReader reads l until stop, until its reading time is over, or until
// it is gone: mostly 20-600 ms apart, within the second in which streamd
// persists only one renewal, sometimes 1-1.4 s apart, past it. It records
// every read in l.reads; nothing else of the harness is touched, as it runs
// alongside verify.
func (h *harness) renewReader(l *life, seed int64, stop <-chan struct{}) {
	rng := rand.New(rand.NewSource(seed))
	for {
		gap := time.Duration(20+rng.Intn(580)) * time.Millisecond
		if rng.Intn(5) == 0 {
			gap = time.Duration(1000+rng.Intn(400)) * time.Millisecond
		}
		select {
		case <-stop:
			return
		case <-time.After(gap):
		}
		if !time.Now().Before(l.readUntil) {
			return
		}
		r := h.readRenewed(l, rng)
		l.reads = append(l.reads, r)
		if !r.answered.IsZero() && !r.found {
			return // gone; verifyExpiry decides whether it may be
		}
	}
}

// readRenewed makes one read of l: a catch-up read from -1, a long-poll at
// the tail that the client may give up on before the server's 2 s timeout
// (leaving a read that may or may not have renewed), or an SSE connection
// held briefly.
func (h *harness) readRenewed(l *life, rng *rand.Rand) renewRead {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	query := "?offset=-1"
	mode := rng.Intn(4)
	switch mode {
	case 2:
		query = "?offset=" + l.tail + "&live=long-poll"
		giveUp := time.AfterFunc(time.Duration(300+rng.Intn(2200))*time.Millisecond, cancel)
		defer giveUp.Stop()
	case 3:
		query += "&live=sse"
	}
	r := renewRead{sent: time.Now()}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, h.url(l.s)+query, nil)
	resp, err := h.client.Do(req)
	if err != nil {
		return r
	}
	defer resp.Body.Close()
	r.answered = time.Now()
	switch resp.StatusCode {
	case http.StatusOK, http.StatusNoContent:
		r.found = true
	case http.StatusNotFound:
	default:
		if resp.StatusCode >= 500 && h.termSent.Load() {
			return renewRead{sent: r.sent} // draining: as if unanswered
		}
		h.violate("%s: GET%s got %d", l.s.name, query, resp.StatusCode)
	}
	if mode == 3 {
		// The headers are the answer; take the first event if it comes
		// soon, then hang up like a client that lost interest.
		stopSSE := time.AfterFunc(time.Duration(rng.Intn(300))*time.Millisecond, cancel)
		defer stopSSE.Stop()
		readEvent(bufio.NewReader(resp.Body))
		return r
	}
	io.Copy(io.Discard, resp.Body)
	return r
}

// foldReads, once the readers have stopped after a kill, moves the
// read-renewed streams' deadline bounds by this cycle's reads (see the rules
// at the top of this file).
func (h *harness) foldReads() {
	k := h.downFrom
	for _, l := range h.lives {
		if l.kind != lRenew {
			continue
		}
		for _, r := range l.reads {
			switch {
			case r.answered.IsZero():
				l.touchHi = latest(l.touchHi, k)
				h.outcomes["renewal read unanswered"]++
			case !r.found:
				h.outcomes["renewal read found it gone"]++
			case r.sent.After(k.Add(-renewLag)):
				l.touchHi = latest(l.touchHi, r.answered)
				h.outcomes["renewal read answered, too close to the kill to count"]++
			default:
				l.touchHi = latest(l.touchHi, r.answered)
				l.touchLo = latest(l.touchLo, r.sent)
				h.outcomes["renewal read answered and counted"]++
			}
		}
		l.reads = nil
	}
}

func latest(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// verifyRenewed checks a read-renewed stream (verifyExpiry) and counts the
// checks that found it alive only thanks to a read: after the latest
// deadline its creation alone would give it. It also counts, for the log, the
// checks that insisted on it being alive past its creation's deadline, which
// a server that lost read renewals would fail.
func (h *harness) verifyRenewed(l *life) {
	ttl := time.Duration(l.ttl) * time.Second
	lo, _ := l.deadlines()
	before := time.Now()
	alive := h.verifyExpiry(l)
	after := time.Now()
	h.renewals++
	if alive && before.After(l.createdHi.Add(ttl+ttlSlack)) {
		h.readSaved++
	}
	if before.After(l.createdHi.Add(ttl)) && after.Before(lo.Add(-ttlSlack)) {
		h.outcomes["renewal checks only a durable read renewal passes"]++
	}
}
