package crashtest

import (
	"fmt"
	"math/rand"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Lifecycle streams: each cycle adds a stream that is appended to and then
// closed, one that is appended to and then deleted, and one with a TTL or an
// Expires-At. Closes and deletes run concurrently with the base streams'
// writers; in some cycles the SIGKILL or SIGTERM is aimed at one of them, so
// some get no answer (or a 503). Every restart checks all of them
// (verifyLives).

// lifeKind is what happens to a lifecycle stream.
type lifeKind int

const (
	lClose   lifeKind = iota // appended to, then closed, sometimes with a final body
	lDelete                  // appended to, then deleted
	lTTL                     // created with Stream-TTL, appended to a little, then only HEADed
	lExpires                 // created with Stream-Expires-At, likewise
	lRenew                   // created with Stream-TTL, then only read (renew_test.go)
)

// lifeState is what the test knows of a lifecycle stream.
type lifeState int

const (
	lOpen          lifeState = iota
	lCloseUnknown            // close sent, no answer: all or nothing
	lClosed                  // close acknowledged, or seen after a restart
	lDeleteUnknown           // delete sent, no answer: all or nothing
	lDeleted                 // delete acknowledged, or seen after a restart
	lExpired                 // seen 404 after its deadline
)

// ttlSlack is how far around the deadline a TTL / Expires-At stream may
// still exist or already be gone (the brief allows a couple of seconds).
const ttlSlack = 2 * time.Second

// life is the client-side record of one lifecycle stream.
type life struct {
	s       *stream // content, verified with verifyStream while it exists
	kind    lifeKind
	state   lifeState
	closeAt string // Stream-Next-Offset the close was acknowledged (or seen) at
	final   *entry // body sent with the close; nil for close-only

	// Expiry. TTL and Expires-At streams are never read with GET while they
	// may exist: §5.1 says reads (not HEAD) restart the TTL countdown, and the
	// checks need a deadline known from the writes alone. Read-renewed
	// streams are the exception: their reads are recorded (reads) and folded
	// into touchLo and touchHi after each kill (foldReads).
	ttl       int       // Stream-TTL seconds (lTTL, lRenew)
	expiresAt time.Time // Stream-Expires-At (lExpires)
	// The last acknowledged write (or the create) was sent after touchLo;
	// every write the server may have processed was processed before touchHi.
	// For lRenew the reads move both too (foldReads has the rules).
	touchLo, touchHi time.Time
	tail             string // Stream-Next-Offset the stream must report
	tailUnknown      bool   // an unanswered append may have moved the tail

	// Read-renewed streams (lRenew).
	createdHi time.Time   // when the create was answered
	readUntil time.Time   // reads stop after this
	reads     []renewRead // this cycle's reads, until foldReads
}

// deadlines returns the earliest and latest moment the stream may expire.
func (l *life) deadlines() (time.Time, time.Time) {
	if l.kind == lExpires {
		return l.expiresAt, l.expiresAt
	}
	d := time.Duration(l.ttl) * time.Second
	return l.touchLo.Add(d), l.touchHi.Add(d)
}

// TTLs and Expires-At distances for the cycles' expiring streams: short ones
// expire across a few restarts, long ones only late in the run or not at all.
var (
	ttlSeconds = []int{4, 30, 8, 90, 5, 60, 15, 120}
	expiresIn  = []time.Duration{5 * time.Second, 3 * time.Minute, 12 * time.Second, 40 * time.Second, 2 * time.Minute, 8 * time.Second}
)

// newLife creates a lifecycle stream; creation happens before the kill can
// land, so it is known to exist.
func (h *harness) newLife(name string, k kind, lk lifeKind, hdr http.Header) *life {
	l := &life{s: &stream{name: name, kind: k, maybe: map[string]bool{}}, kind: lk}
	hdr.Set("Content-Type", l.s.ctype())
	sent := time.Now()
	code, rh := h.send(http.MethodPut, l.s, "", nil, hdr)
	if code != http.StatusCreated {
		h.t.Fatalf("create %s: status %d", name, code)
	}
	l.touchLo, l.touchHi, l.tail = sent, time.Now(), rh.Get("Stream-Next-Offset")
	h.lives = append(h.lives, l)
	return l
}

// startLifecycle creates this cycle's lifecycle streams and starts the
// goroutines that write, close, delete and SSE-read them until stop. If aim
// is set, the stop is aimed at one of the closes or deletes.
func (h *harness) startLifecycle(cycle int, d time.Duration, stop <-chan struct{}, wg *sync.WaitGroup, aim bool) {
	rng := h.rng
	k := kPlain
	if cycle%2 == 1 {
		k = kJSON
	}
	h.newLife(fmt.Sprintf("crash/close-c%d", cycle), k, lClose, http.Header{})
	h.newLife(fmt.Sprintf("crash/del-c%d", cycle), kPlain, lDelete, http.Header{})
	var fresh []*life // expiring streams written this cycle only
	if cycle%2 == 0 {
		ttl := ttlSeconds[cycle/2%len(ttlSeconds)]
		l := h.newLife(fmt.Sprintf("crash/ttl-c%d", cycle), kPlain, lTTL, http.Header{"Stream-Ttl": {strconv.Itoa(ttl)}})
		l.ttl = ttl
		fresh = append(fresh, l)
	} else {
		at := time.Now().Add(expiresIn[cycle/2%len(expiresIn)]).UTC().Truncate(time.Second)
		l := h.newLife(fmt.Sprintf("crash/exp-c%d", cycle), kPlain, lExpires, http.Header{"Stream-Expires-At": {at.Format(time.RFC3339)}})
		l.expiresAt = at
		fresh = append(fresh, l)
	}
	if cycle == 0 {
		// Created and never touched again; the test waits after this cycle's
		// kill until its deadline has passed, so it expires while streamd is
		// down (waitForDowntimeExpiry).
		l := h.newLife("crash/ttl-down", kPlain, lTTL, http.Header{"Stream-Ttl": {"3"}})
		l.ttl = 3
		h.downtime = l
	}

	var ops, closed []*life
	for _, l := range h.lives {
		switch {
		case (l.kind == lClose || l.kind == lDelete) && l.state == lOpen:
			ops = append(ops, l)
		case l.kind == lClose && l.state == lClosed:
			closed = append(closed, l)
		}
	}
	// In the cycles load picks for it, the kill lands on a close or delete
	// request.
	var target *life
	if len(ops) > 0 && aim {
		target = ops[rng.Intn(len(ops))]
	}
	for _, l := range ops {
		// Unaimed operations sometimes come after the kill and wait for a
		// later cycle.
		after := time.Duration(rng.Int63n(int64(d) * 3 / 2))
		if l == target {
			after = time.Duration(rng.Int63n(int64(d)))
		}
		seed := rng.Int63()
		wg.Add(1)
		go func() { defer wg.Done(); h.lifeWriter(l, cycle, seed, after, l == target, stop) }()
		if l.kind == lClose {
			seed := rng.Int63()
			wg.Add(1)
			go func() { defer wg.Done(); h.sseReader(l.s, seed, stop) }()
		}
	}
	for _, l := range fresh {
		seed := rng.Int63()
		wg.Add(1)
		go func() { defer wg.Done(); h.ttlWriter(l, cycle, seed, stop) }()
	}
	if len(closed) > 0 {
		// An SSE reader of a stream closed earlier must be told where it ends.
		l, seed := closed[rng.Intn(len(closed))], rng.Int63()
		wg.Add(1)
		go func() { defer wg.Done(); h.sseReader(l.s, seed, stop) }()
	}
}

// appendTracked appends a new entry to s and records the outcome; it reports
// whether the append was acknowledged. Any answer other than success is a
// violation; no answer leaves the entry maybe-present.
func (h *harness) appendTracked(s *stream, cycle int, rng *rand.Rand) bool {
	e := s.newEntry(cycle, rng)
	s.entries = append(s.entries, e)
	code, next := h.post(s, e, "")
	switch {
	case code == 0 || code >= 500:
		s.maybe[e.id] = true
		return false
	case code != http.StatusNoContent:
		h.violate("%s: append got status %d", s.name, code)
		return false
	case next == "":
		h.violate("%s: append without Stream-Next-Offset", s.name)
	}
	e.acked, e.next = true, next
	return true
}

// lifeWriter appends to a close or delete stream for after, then closes or
// deletes it (if streamd is still up). aim asks for the kill to land on that
// request.
func (h *harness) lifeWriter(l *life, cycle int, seed int64, after time.Duration, aim bool, stop <-chan struct{}) {
	rng := rand.New(rand.NewSource(seed))
	s := l.s
	for end := time.Now().Add(after); time.Now().Before(end); {
		select {
		case <-stop:
			return
		default:
		}
		if !h.appendTracked(s, cycle, rng) {
			return
		}
		// Lighter than the base writers: these streams are about the end.
		time.Sleep(time.Duration(rng.Intn(20)) * time.Millisecond)
	}
	select {
	case <-stop:
		return
	default:
	}
	if aim {
		select {
		case h.trigger <- 4 * time.Millisecond:
		default:
		}
	}
	if l.kind == lDelete {
		switch code, _ := h.send(http.MethodDelete, s, "", nil, nil); {
		case code == 0 || code >= 500:
			l.state = lDeleteUnknown
		case code == http.StatusNoContent:
			l.state = lDeleted
		default:
			h.violate("%s: DELETE got status %d", s.name, code)
			// Its outcome is unknown too: let the restart settle it
			// rather than report every later check of the stream.
			l.state = lDeleteUnknown
		}
		return
	}
	hdr := http.Header{"Stream-Closed": {"true"}}
	var body []byte
	if rng.Intn(2) == 0 {
		// Append-and-close (§5.2): the final body must be there exactly once.
		l.final = s.newEntry(cycle, rng)
		s.entries = append(s.entries, l.final)
		body = l.final.body
		hdr.Set("Content-Type", s.ctype())
	}
	code, rh := h.send(http.MethodPost, s, "", body, hdr)
	switch {
	case code == 0 || code >= 500:
		l.state = lCloseUnknown
		if l.final != nil {
			s.maybe[l.final.id] = true
		}
	case code == http.StatusNoContent:
		next := rh.Get("Stream-Next-Offset")
		if next == "" || rh.Get("Stream-Closed") != "true" {
			h.violate("%s: close answered without Stream-Next-Offset or Stream-Closed: %v", s.name, rh)
		}
		l.state, l.closeAt = lClosed, next
		if l.final != nil {
			l.final.acked, l.final.next = true, next
		}
	default:
		h.violate("%s: close got status %d", s.name, code)
		// Settled after the restart like an unanswered close.
		l.state = lCloseUnknown
		if l.final != nil {
			s.maybe[l.final.id] = true
		}
	}
}

// ttlWriter appends to a fresh TTL / Expires-At stream a few times, spread
// over the cycle so the TTL anchor moves, recording when the writes happened.
func (h *harness) ttlWriter(l *life, cycle int, seed int64, stop <-chan struct{}) {
	rng := rand.New(rand.NewSource(seed))
	s := l.s
	for n := rng.Intn(4); n > 0; n-- {
		select {
		case <-stop:
			return
		case <-time.After(time.Duration(rng.Intn(400)) * time.Millisecond):
		}
		sent := time.Now()
		acked := h.appendTracked(s, cycle, rng)
		if !acked {
			// The server may process it until it is down: a draining
			// streamd answers 503 to a write its actor may yet commit.
			// stop closes once it is.
			<-stop
			l.touchHi = time.Now()
			l.tailUnknown = true
			return
		}
		// Answered: the server processed it before now.
		l.touchHi = time.Now()
		l.touchLo, l.tail = sent, s.entries[len(s.entries)-1].next
	}
}

// waitForDowntimeExpiry, after the first kill, waits until the untouched
// short-TTL stream is certainly past its deadline, so the restart finds it
// expired while streamd was down.
func (h *harness) waitForDowntimeExpiry() {
	if h.downtime == nil {
		return
	}
	_, hi := h.downtime.deadlines()
	time.Sleep(time.Until(hi.Add(ttlSlack + 100*time.Millisecond)))
	h.downtime = nil
}

// verifyLives checks every lifecycle stream after a restart.
func (h *harness) verifyLives() {
	for _, l := range h.lives {
		switch l.kind {
		case lClose:
			h.verifyClose(l)
		case lDelete:
			h.verifyDelete(l)
		case lRenew: // verifyRenewals
		default:
			h.verifyExpiry(l)
		}
	}
}

// expectClosedAt checks with HEAD that s is closed and ends at next.
func (h *harness) expectClosedAt(s *stream, next, why string) {
	code, hdr := h.send(http.MethodHead, s, "", nil, nil)
	if code != http.StatusOK || hdr.Get("Stream-Closed") != "true" || hdr.Get("Stream-Next-Offset") != next {
		h.violate("%s: %s at %s, but after restart HEAD says status %d Stream-Closed %q Stream-Next-Offset %q",
			s.name, why, next, code, hdr.Get("Stream-Closed"), hdr.Get("Stream-Next-Offset"))
	}
}

// verifyClose checks a close stream: an acknowledged close stays closed at
// its offset with all acknowledged data and the final body exactly once; an
// unanswered one either happened entirely or not at all.
func (h *harness) verifyClose(l *life) {
	s := l.s
	code, hdr := h.send(http.MethodHead, s, "", nil, nil)
	if code != http.StatusOK {
		h.violate("%s: HEAD of a stream that was never deleted got %d (state %d)", s.name, code, l.state)
		return
	}
	isClosed, tail := hdr.Get("Stream-Closed") == "true", hdr.Get("Stream-Next-Offset")
	switch {
	case l.state == lOpen && isClosed:
		h.violate("%s: closed at %s, but no close was ever sent", s.name, tail)
	case l.state == lCloseUnknown && isClosed:
		// It happened: from now on it must stay closed exactly here, and
		// the final body must be the last thing before it (verifyStream
		// checks the acknowledged offset).
		l.state, l.closeAt = lClosed, tail
		if l.final != nil {
			l.final.acked, l.final.next = true, tail
			delete(s.maybe, l.final.id)
		}
		h.outcomes["unanswered close happened"]++
	case l.state == lCloseUnknown:
		// It did not happen: its final body must never show up (verifyStream
		// reports data it does not know), and appends must still work.
		if l.final != nil {
			delete(s.maybe, l.final.id)
			s.entries = s.entries[:len(s.entries)-1]
			l.final = nil
		}
		l.state = lOpen
		h.outcomes["unanswered close did not happen"]++
		h.verifyStream(s)
		if !h.appendTracked(s, h.cycle, h.rng) {
			h.violate("%s: an append after an unanswered close that did not happen failed", s.name)
		}
		return
	}
	h.verifyStream(s)
	if l.state != lClosed {
		return
	}
	h.closes++
	if !isClosed || tail != l.closeAt {
		h.violate("%s: close acknowledged at %s, but after restart HEAD says Stream-Closed %q Stream-Next-Offset %s", s.name, l.closeAt, hdr.Get("Stream-Closed"), tail)
	}
	if l.final != nil && (len(s.prev) == 0 || idOf(s, s.prev[len(s.prev)-1]) != l.final.id) {
		h.violate("%s: the close's final body %s is not the last element", s.name, l.final.id)
	}
	// §5.6: a read at the final offset is the EOF signal.
	code, rh := h.send(http.MethodGet, s, "?offset="+l.closeAt, nil, nil)
	if code != http.StatusOK || rh.Get("Stream-Closed") != "true" || rh.Get("Stream-Next-Offset") != l.closeAt {
		h.violate("%s: read at the close offset %s got status %d Stream-Closed %q Stream-Next-Offset %q",
			s.name, l.closeAt, code, rh.Get("Stream-Closed"), rh.Get("Stream-Next-Offset"))
	}
	// §5.2: an append to a closed stream gets 409 with Stream-Closed and the
	// final offset. The probe is not recorded, so if it were appended anyway
	// the next verifyStream would report it as unknown data.
	probe := s.newEntry(h.cycle, h.rng)
	code, rh = h.send(http.MethodPost, s, "", probe.body, http.Header{"Content-Type": {s.ctype()}})
	if code != http.StatusConflict || rh.Get("Stream-Closed") != "true" || rh.Get("Stream-Next-Offset") != l.closeAt {
		h.violate("%s: append to a stream closed at %s got status %d Stream-Closed %q Stream-Next-Offset %q",
			s.name, l.closeAt, code, rh.Get("Stream-Closed"), rh.Get("Stream-Next-Offset"))
	}
	// §5.3: close-only is idempotent and moves nothing.
	code, rh = h.send(http.MethodPost, s, "", nil, http.Header{"Stream-Closed": {"true"}})
	if code != http.StatusNoContent || rh.Get("Stream-Closed") != "true" || rh.Get("Stream-Next-Offset") != l.closeAt {
		h.violate("%s: repeated close of a stream closed at %s got status %d Stream-Closed %q Stream-Next-Offset %q",
			s.name, l.closeAt, code, rh.Get("Stream-Closed"), rh.Get("Stream-Next-Offset"))
	}
}

// verifyDelete checks a delete stream: an acknowledged delete stays deleted
// (the test never recreates the name); an unanswered one either happened or
// left the stream complete.
func (h *harness) verifyDelete(l *life) {
	s := l.s
	if l.state == lDeleteUnknown {
		switch code, _ := h.send(http.MethodHead, s, "", nil, nil); code {
		case http.StatusNotFound:
			l.state = lDeleted // it happened; from now on it must stay so
			h.outcomes["unanswered delete happened"]++
		case http.StatusOK:
			l.state = lOpen // it did not; verifyStream checks nothing is missing
			h.outcomes["unanswered delete did not happen"]++
		default:
			h.violate("%s: HEAD after an unanswered delete got %d", s.name, code)
			return
		}
	}
	if l.state == lOpen {
		h.verifyStream(s)
		return
	}
	h.deletes++
	probe := s.newEntry(h.cycle, h.rng)
	for _, r := range []struct {
		method, query string
		body          []byte
	}{
		{http.MethodHead, "", nil},
		{http.MethodGet, "?offset=-1", nil},
		{http.MethodPost, "", probe.body}, // must not bring it back
	} {
		if code, _ := h.send(r.method, s, r.query, r.body, http.Header{"Content-Type": {s.ctype()}}); code != http.StatusNotFound {
			h.violate("%s: %s%s of a deleted stream got %d, want 404", s.name, r.method, r.query, code)
		}
	}
}

// verifyExpiry checks a TTL / Expires-At stream with HEAD, which does not
// restart a TTL (§5.1): it exists with its configuration and tail until its
// deadline, which a restart must not move, and is gone for good after it. It
// reports whether HEAD found the stream.
func (h *harness) verifyExpiry(l *life) bool {
	s := l.s
	before := time.Now()
	code, hdr := h.send(http.MethodHead, s, "", nil, nil)
	after := time.Now()
	lo, hi := l.deadlines()
	h.ttlChecks++
	if l.state == lExpired {
		// GET of a missing stream touches nothing, so it is safe here.
		get, _ := h.send(http.MethodGet, s, "?offset=-1", nil, nil)
		if code != http.StatusNotFound || get != http.StatusNotFound {
			h.violate("%s: expired (seen 404 after its deadline %s), but after restart HEAD got %d and GET %d",
				s.name, hi.Format(time.RFC3339Nano), code, get)
		}
		return false
	}
	switch code {
	case http.StatusNotFound:
		if after.Before(lo.Add(-ttlSlack)) {
			h.violate("%s: gone at %s, %v before its earliest deadline %s (ttl %d, expires-at %s)", s.name,
				after.Format(time.RFC3339Nano), lo.Sub(after), lo.Format(time.RFC3339Nano), l.ttl, l.expiresAt.Format(time.RFC3339))
		}
		l.state = lExpired
		h.outcomes["expired"]++
		if lo.After(h.downFrom) && hi.Before(h.downTo) {
			h.outcomes["expired while streamd was down"]++
		}
		return false
	case http.StatusOK:
	default:
		h.violate("%s: HEAD got %d", s.name, code)
		return false
	}
	if before.After(hi.Add(ttlSlack)) {
		h.violate("%s: still there at %s, %v after its latest deadline %s (ttl %d, expires-at %s): the restart extended its life?",
			s.name, before.Format(time.RFC3339Nano), before.Sub(hi), hi.Format(time.RFC3339Nano), l.ttl, l.expiresAt.Format(time.RFC3339))
	}
	// §5.5: HEAD reports the TTL or the Expires-At that was set, nothing else.
	wantTTL := ""
	if l.kind != lExpires {
		wantTTL = strconv.Itoa(l.ttl)
	}
	if got := hdr.Get("Stream-Ttl"); got != wantTTL {
		h.violate("%s: HEAD Stream-TTL %q, want %q", s.name, got, wantTTL)
	}
	if got := hdr.Get("Stream-Expires-At"); l.kind != lExpires && got != "" {
		h.violate("%s: HEAD of a TTL stream has Stream-Expires-At %q", s.name, got)
	} else if l.kind == lExpires {
		if t, err := time.Parse(time.RFC3339Nano, got); err != nil || !t.Equal(l.expiresAt) {
			h.violate("%s: HEAD Stream-Expires-At %q, want %s", s.name, got, l.expiresAt.Format(time.RFC3339))
		}
	}
	if ct, closed := hdr.Get("Content-Type"), hdr.Get("Stream-Closed"); ct != s.ctype() || closed != "" {
		h.violate("%s: HEAD Content-Type %q Stream-Closed %q", s.name, ct, closed)
	}
	// Offsets are lexicographically ordered (§8): an unanswered append may
	// have moved the tail forward; once seen after a restart it is fixed.
	switch tail := hdr.Get("Stream-Next-Offset"); {
	case l.tailUnknown && tail >= l.tail:
		l.tail, l.tailUnknown = tail, false
	case tail != l.tail:
		h.violate("%s: HEAD Stream-Next-Offset %q, want %q (unanswered append: %v)", s.name, tail, l.tail, l.tailUnknown)
	}
	return true
}
