package crashtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math/rand"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Forks (PROTOCOL.md §4.2): every cycle forks streams while the load runs,
// writes to the forks, reads them, and deletes forked sources and forks, so
// that the stop lands before, during and after fork creations, deletes and
// the collections that follow them. After every restart verifyForks checks
// the whole fork graph built so far.
//
// What is forked, each cycle (startForks):
//
//   - A new stream (binary or JSON, in some cycles with a TTL or an
//     Expires-At the forks inherit), written, and a chain of 2-3 forks of
//     it, each forked from the previous one and written, sometimes with a
//     sibling; in later cycles the deepest live fork of a recent group is
//     forked again, so chains grow past depth 3.
//   - One or two of the load's streams (plain, Stream-Seq, producer, JSON
//     producer: their forks are written the same way, and must not inherit
//     the source's Stream-Seq or producer state) and sometimes a closed
//     lifecycle stream (its fork must start open).
//   - Five small streams, each deleted while a fork of it is being created
//     (the delete sent up to 2 ms after the fork, mostly within 0.15 ms,
//     or before it); in some the fork's path is taken by a stream of
//     another content type, so the fork fails after it pinned its source.
//
// Fork points are record boundaries whose offsets the test was given
// (Stream-Next-Offset of acknowledged appends and fork creations, "-1"), or
// the tail ("now", or no Stream-Fork-Offset), with Stream-Fork-Sub-Offset
// bytes into the record that starts there (cut records of forks included)
// or JSON messages. The source's data up to there is known exactly (what the
// last restart verified, plus this cycle's acknowledged appends), so the
// data a fork inherits is known when it is requested; a fork at the tail of
// a load's stream, written meanwhile, learns it after the restart from the
// offset its creation returned. A sub-offset one past the record (or the
// messages there) must be refused with 400.
//
// What is deleted: each older group loses one live member per cycle, mostly
// its oldest (a source whose forks still read it: 204, then 410 to GET,
// HEAD, POST and DELETE and 409 to PUT and to forking it), sometimes a
// leaf; so chains of soft-deleted sources form and are collected in a
// cascade when their last fork goes, which the test waits for (HEAD 404)
// while streamd runs, and after a restart for at most forkCollectRestart.
// A collected path must then be free: PUT creates it anew, empty.
//
// The stop is aimed (harness.trigger) in half of the cycles at a fork
// creation, a delete of a forked source, a delete of the last fork of a
// soft-deleted source, or a fork racing its source's delete; half of the
// aimed deletes get the stop just after their 204, so that it lands on the
// collection that follows. A request with
// no answer (or a 5xx) leaves the operation unknown; the restart settles it
// once (HEAD), and later restarts hold it to that: a fork exists, reading
// exactly as it must, or is 404; a delete happened (410 or, if no fork
// reads the stream, eventually 404) or not (the stream reads as before).
//
// After every restart, every live fork reads exactly its inherited data
// and then exactly its own acknowledged appends (verifyContent: present
// once, at their acknowledged offsets, nothing unknown, nothing verified
// before changed), its offsets below the fork point are its source's, HEAD
// reports its content type, no close and the expiry it inherited or set; a
// deleted stream a fork still reads answers 410 and 409; one no fork reads
// is 404. Readers (catch-up, long-poll, SSE) of forks record what they saw,
// checked by verifyObservations like the other streams' readers.

// forkCollectLive bounds the wait, while streamd runs, for a soft-deleted
// stream to be collected once its last fork's delete was answered.
const forkCollectLive = 5 * time.Second

// forkCollectRestart bounds, from streamd's start, the wait after a restart
// for the collection of soft-deleted streams no fork reads any more
// (streamd offers them collection a second after it starts); the test
// polls for at least forkCollectPoll in any case.
const (
	forkCollectRestart = 6 * time.Second
	forkCollectPoll    = time.Second
)

// ownTTL is the Stream-TTL some forks set for themselves, and treeTTL and
// treeExpiry the expiry of some cycles' new streams, which their forks
// inherit: long enough never to expire during the test.
const (
	ownTTL  = "172800"
	treeTTL = "86400"
)

// nodeState is what the test knows of a stream in the fork graph.
type nodeState int

const (
	nPlanned  nodeState = iota // a fork not requested yet
	nLive                      // created and not deleted
	nCreating                  // create sent, no answer: it exists entirely or not at all
	nNever                     // refused, or unanswered and found absent: stays absent
	nDeleting                  // delete sent, no answer: it happened entirely or not at all
	nDeleted                   // delete acknowledged, or found to have happened
)

// rec is one record of a stream as its readers see it: bytes, or one JSON
// message, and the offset after it when the test was given it.
type rec struct {
	data []byte
	end  string
}

// fnode is the client-side record of one stream in the fork graph: a fork,
// a stream created to be forked, or (base) one of the load's streams or a
// closed lifecycle stream, which the test forks but never deletes (their
// content is verified with the other streams).
type fnode struct {
	s      *stream
	parent *fnode   // the stream it was forked from; nil if it is no fork
	kids   []*fnode // the forks requested of it
	tree   *ftree   // nil for base nodes
	base   bool
	// exact: recs is the whole stream, as only the test writes it. A load's
	// stream grows under its writer; its recs are a durable prefix.
	exact bool
	depth int // forks between it and a stream that is no fork
	state nodeState

	// The fork request.
	hdr      http.Header // its headers, to repeat it
	point    string      // the fork point, for messages
	atTail   bool        // no offset, or "now"
	noSource bool        // requested after its source's delete was acknowledged
	body     *entry      // initial data sent with the create
	// inh is the data inherited: the source's records up to the fork point
	// (the last one cut by a byte sub-offset). A fork at the tail of a
	// load's stream learns it after the restart (inhKnown).
	inh      []rec
	inhKnown bool
	baseOff  string // offset where its own data begins, when known
	// recs is its content as far as known: inh, then its own records.
	recs      []rec
	ttl       string    // expected Stream-TTL ("" none)
	expiresAt time.Time // expected Stream-Expires-At (zero: none)

	soft      bool // seen soft-deleted (410), or deleted while a fork read it
	gone      bool // seen 404 after its delete
	collected bool // soft-deleted, then seen 404 (counted once)
	recreated bool // its path was created anew after the collection, and deleted again
	probed    bool // probed as soft-deleted after a restart
}

// ftree is a group of nodes created from one new stream, or from one fork
// of a base stream, or for one race; it is wound down one node per cycle.
type ftree struct {
	name   string
	cycle  int
	serial int
	nodes  []*fnode // registered nodes, sources before their forks
}

// holds reports whether n holds data a fork reads: it exists, or it was
// deleted while a fork read it, and one still does (soft-deleted, not
// collectable). Unknown states count as not holding; verifyForks settles
// them first.
func holds(n *fnode) bool {
	switch n.state {
	case nLive:
		return true
	case nDeleted:
		return holdsKids(n)
	}
	return false
}

func holdsKids(n *fnode) bool {
	return slices.ContainsFunc(n.kids, holds)
}

// lastHolder reports whether deleting n (which no fork reads) leaves its
// deleted source with no fork reading it: a collection follows.
func lastHolder(n *fnode) bool {
	p := n.parent
	if p == nil || p.state != nDeleted || holdsKids(n) {
		return false
	}
	for _, k := range p.kids {
		if k != n && holds(k) {
			return false
		}
	}
	return true
}

// stepKind is a fork operation of a cycle.
type stepKind int

const (
	stAppend    stepKind = iota // append to n
	stFork                      // create fork n of n.parent
	stOvershoot                 // fork n one byte (message) past a record: 400
	stDelete                    // delete n
	stRace                      // fork n (into f, or onto taken) while deleting n
)

type fstep struct {
	kind  stepKind
	n     *fnode
	f     *fnode // stRace: the fork; nil: its path is taken
	taken string // stRace: a stream of another content type at the fork's path
	at    time.Duration
	aim   bool
	// aimAfter aims the stop just after the delete's answer, at the
	// collection it starts.
	aimAfter bool
}

func (h *harness) newTree(cycle int, name string) *ftree {
	t := &ftree{name: name, cycle: cycle}
	h.trees = append(h.trees, t)
	return t
}

// plan makes (without registering it) a fork of src in t.
func (t *ftree) plan(src *fnode) *fnode {
	t.serial++
	n := &fnode{tree: t, parent: src, exact: true, depth: src.depth + 1}
	n.s = &stream{name: fmt.Sprintf("%s-f%d", t.name, t.serial), kind: src.s.kind, maybe: map[string]bool{},
		producer: src.s.producerID(), node: n}
	return n
}

// register adds n to the graph, once its creation is requested.
func (h *harness) register(n *fnode) {
	h.fnodes = append(h.fnodes, n)
	n.tree.nodes = append(n.tree.nodes, n)
	if n.parent != nil {
		n.parent.kids = append(n.parent.kids, n)
	}
}

// createRoot creates a stream to fork, before the load (so it exists).
func (h *harness) createRoot(t *ftree, name string, k kind, hdr http.Header) *fnode {
	n := &fnode{tree: t, exact: true, inhKnown: true, state: nLive}
	n.s = &stream{name: name, kind: k, maybe: map[string]bool{}, node: n}
	hdr.Set("Content-Type", n.s.ctype())
	if code, _ := h.send(http.MethodPut, n.s, "", nil, hdr); code != http.StatusCreated {
		h.t.Fatalf("create %s: status %d", name, code)
	}
	h.register(n)
	return n
}

// baseNode returns s as a fork source, its records as the last restart
// verified them; closedAt is the offset a closed stream ends at.
func (h *harness) baseNode(s *stream, closedAt string) *fnode {
	n := h.bases[s]
	if n == nil {
		n = &fnode{s: s, base: true, state: nLive, inhKnown: true, exact: closedAt != ""}
		h.bases[s] = n
	}
	n.recs = buildRecs(s, closedAt)
	return n
}

// buildRecs returns s's records as verified after the last restart (s.prev),
// with the offsets of the acknowledged ones.
func buildRecs(s *stream, closedAt string) []rec {
	known := map[string]*entry{}
	for _, e := range s.entries {
		known[e.id] = e
	}
	recs := make([]rec, len(s.prev))
	for i, el := range s.prev {
		recs[i].data = el
		if e := known[idOf(s, el)]; e != nil && e.acked {
			recs[i].end = e.next
		}
	}
	if closedAt != "" && len(recs) > 0 {
		recs[len(recs)-1].end = closedAt
	}
	return recs
}

func appendSteps(n *fnode, k int) []*fstep {
	var out []*fstep
	for range k {
		out = append(out, &fstep{kind: stAppend, n: n})
	}
	return out
}

// startForks plans this cycle's fork operations (see the top of this file),
// creates the streams they start from, starts readers of some forks and
// the goroutine that runs the operations until stop. If aim is set, the
// stop is aimed at one of them. It runs before the load's writers start,
// as it reads their streams' records.
func (h *harness) startForks(cycle int, d time.Duration, stop <-chan struct{}, wg *sync.WaitGroup, aim bool) {
	rng := h.rng
	var chains [][]*fstep
	deleting := map[*fnode]bool{}

	// Wind-down: one member of each older group, mostly its oldest.
	for _, t := range h.trees {
		var live, leaves []*fnode
		for _, n := range t.nodes {
			if n.state == nLive {
				live = append(live, n)
				if !holdsKids(n) {
					leaves = append(leaves, n)
				}
			}
		}
		if len(live) == 0 {
			continue
		}
		n := live[0]
		if rng.Intn(4) == 0 && len(leaves) > 0 {
			n = leaves[rng.Intn(len(leaves))]
		}
		deleting[n] = true
		chains = append(chains, []*fstep{{kind: stDelete, n: n}})
	}
	olderTrees := len(h.trees)

	// Appends to live forks and sources not deleted this cycle, and readers
	// of one or two of those forks.
	var readable []*fnode
	for _, n := range h.fnodes {
		if n.state != nLive || deleting[n] {
			continue
		}
		if n.depth > 0 {
			readable = append(readable, n)
		}
		if rng.Intn(2) == 0 {
			chains = append(chains, appendSteps(n, 1+rng.Intn(2)))
		}
	}
	rng.Shuffle(len(readable), func(i, j int) { readable[i], readable[j] = readable[j], readable[i] })
	for _, n := range readable[:min(2, len(readable))] {
		seed := rng.Int63()
		wg.Add(1)
		go func() { defer wg.Done(); h.sseReader(n.s, seed, stop) }()
		if !n.s.isJSON() { // reader records bytes only
			wg.Add(2)
			go func() { defer wg.Done(); h.reader(n.s, false, stop) }()
			go func() { defer wg.Done(); h.reader(n.s, true, stop) }()
		}
		chains = append(chains, appendSteps(n, 3+rng.Intn(4)))
	}

	// Deeper chains: fork the deepest live fork of a recent group again.
	for _, t := range h.trees[:olderTrees] {
		if t.cycle < cycle-3 || len(t.nodes) >= 8 || rng.Intn(2) == 0 {
			continue
		}
		var src *fnode
		for _, n := range t.nodes {
			if n.state == nLive && n.inhKnown && n.depth > 0 && (src == nil || n.depth >= src.depth) {
				src = n
			}
		}
		if src == nil {
			continue
		}
		f := t.plan(src)
		chains = append(chains, append([]*fstep{{kind: stFork, n: f}}, appendSteps(f, rng.Intn(3))...))
	}

	// A new stream and a chain of forks of it.
	t := h.newTree(cycle, fmt.Sprintf("crash/fk-c%d", cycle))
	k := kPlain
	if cycle%2 == 1 {
		k = kJSON
	}
	hdr := http.Header{}
	var expiresAt time.Time
	switch cycle % 3 {
	case 1:
		hdr.Set("Stream-Ttl", treeTTL)
	case 2:
		expiresAt = time.Now().Add(48 * time.Hour).UTC().Truncate(time.Second)
		hdr.Set("Stream-Expires-At", expiresAt.Format(time.RFC3339))
	}
	root := h.createRoot(t, t.name, k, hdr)
	root.ttl, root.expiresAt = hdr.Get("Stream-Ttl"), expiresAt
	chain := appendSteps(root, 1+rng.Intn(3))
	planned := []*fnode{root}
	p := root
	for i, depth := 0, 2+rng.Intn(2); i < depth; i++ {
		f := t.plan(p)
		planned = append(planned, f)
		chain = append(chain, &fstep{kind: stFork, n: f})
		chain = append(chain, appendSteps(f, rng.Intn(3))...)
		p = f
	}
	if rng.Intn(2) == 0 {
		f := t.plan(planned[rng.Intn(2)])
		chain = append(chain, &fstep{kind: stFork, n: f})
		chain = append(chain, appendSteps(f, rng.Intn(2))...)
	}
	if rng.Intn(2) == 0 {
		chain = append(chain, &fstep{kind: stOvershoot, n: planned[rng.Intn(len(planned))]})
	}
	chains = append(chains, chain)

	// Forks of the load's streams, and of a closed lifecycle stream.
	var closed []*life
	for _, l := range h.lives {
		if l.kind == lClose && l.state == lClosed {
			closed = append(closed, l)
		}
	}
	for i, n := 0, 1+rng.Intn(2); i < n; i++ {
		src := h.baseNode(h.streams[rng.Intn(len(h.streams))], "")
		if i == 1 && len(closed) > 0 && rng.Intn(2) == 0 {
			l := closed[rng.Intn(len(closed))]
			src = h.baseNode(l.s, l.closeAt)
		}
		f := h.newTree(cycle, fmt.Sprintf("crash/fb-c%d-%d", cycle, i)).plan(src)
		chains = append(chains, append([]*fstep{{kind: stFork, n: f}}, appendSteps(f, rng.Intn(3))...))
	}

	// Forks racing their source's delete.
	for i := range 5 {
		t := h.newTree(cycle, fmt.Sprintf("crash/fx-c%d-%d", cycle, i))
		k := kPlain
		if rng.Intn(2) == 0 {
			k = kJSON
		}
		x := h.createRoot(t, t.name, k, http.Header{})
		for range 1 + rng.Intn(2) {
			if !h.appendNode(x, cycle, rng) {
				h.t.Fatalf("append to %s failed before the load", x.s.name)
			}
		}
		st := &fstep{kind: stRace, n: x}
		if rng.Intn(4) == 0 {
			st.taken = t.name + "-taken"
			if code, _ := h.send(http.MethodPut, &stream{name: st.taken}, "", nil, http.Header{"Content-Type": {"text/plain"}}); code != http.StatusCreated {
				h.t.Fatalf("create %s: status %d", st.taken, code)
			}
		} else {
			st.f = t.plan(x)
		}
		chains = append(chains, []*fstep{st})
	}

	// Spread over most of the cycle (a step takes 3-10 ms); the stop cuts
	// off what remains.
	steps := interleave(chains, rng)
	if aim {
		steps = aimFork(steps, d, rng)
	}
	span := d * 4 / 5
	if last := steps[len(steps)-1]; last.aim {
		span = last.at
	}
	times := make([]time.Duration, len(steps))
	for i := range times {
		times[i] = time.Duration(rng.Int63n(int64(span) + 1))
	}
	slices.Sort(times)
	for i, st := range steps {
		if !st.aim {
			st.at = times[i]
		}
	}
	h.outcomes["fork steps planned"] += len(steps)
	seed := rng.Int63()
	wg.Add(1)
	go func() { defer wg.Done(); h.runForks(steps, cycle, seed, stop) }()
}

// interleave merges chains into one sequence, keeping each chain's order.
func interleave(chains [][]*fstep, rng *rand.Rand) []*fstep {
	var out []*fstep
	left := 0
	for _, c := range chains {
		left += len(c)
	}
	for ; left > 0; left-- {
		i := rng.Intn(left)
		for c := range chains {
			if i < len(chains[c]) {
				out = append(out, chains[c][0])
				chains[c] = chains[c][1:]
				break
			}
			i -= len(chains[c])
		}
	}
	return out
}

// aimFork picks the step the stop is aimed at and moves it to the end, at
// a random moment within the cycle; the steps before it run before that.
// A step moved after steps that depend on it (a fork's appends or forks)
// leaves them nothing to do.
func aimFork(steps []*fstep, d time.Duration, rng *rand.Rand) []*fstep {
	// Fork creations, deletes of forked sources, deletes of a deleted
	// source's last fork, races, other deletes.
	var cats [5][]*fstep
	for _, st := range steps {
		switch st.kind {
		case stFork:
			cats[0] = append(cats[0], st)
		case stRace:
			cats[3] = append(cats[3], st)
		case stDelete:
			switch {
			case holdsKids(st.n):
				cats[1] = append(cats[1], st)
			case lastHolder(st.n):
				cats[2] = append(cats[2], st)
			default:
				cats[4] = append(cats[4], st)
			}
		}
	}
	weights := [5]int{3, 2, 3, 2, 1}
	total := 0
	for i, c := range cats {
		if len(c) > 0 {
			total += weights[i]
		}
	}
	if total == 0 {
		return steps
	}
	r := rng.Intn(total)
	var st *fstep
	for i, c := range cats {
		if len(c) == 0 {
			continue
		}
		if r < weights[i] {
			st = c[rng.Intn(len(c))]
			break
		}
		r -= weights[i]
	}
	st.aim = true
	st.aimAfter = st.kind == stDelete && rng.Intn(2) == 0
	st.at = d/10 + time.Duration(rng.Int63n(int64(d)*7/10))
	steps = slices.DeleteFunc(steps, func(s *fstep) bool { return s == st })
	return append(steps, st)
}

// forkRun runs a cycle's fork operations, alone: it owns the fork graph
// while the load runs.
type forkRun struct {
	h     *harness
	rng   *rand.Rand
	cycle int
	stop  <-chan struct{}
}

// runForks runs steps at their times until one finds streamd gone (or the
// stop), after which nothing is known until the restart.
func (h *harness) runForks(steps []*fstep, cycle int, seed int64, stop <-chan struct{}) {
	r := &forkRun{h: h, rng: rand.New(rand.NewSource(seed)), cycle: cycle, stop: stop}
	begin := time.Now()
	for _, st := range steps {
		if wait := time.Until(begin.Add(st.at)); wait > 0 {
			select {
			case <-stop:
				return
			case <-time.After(wait):
			}
		}
		select {
		case <-stop:
			return
		default:
		}
		var ok bool
		switch st.kind {
		case stAppend:
			ok = st.n.state != nLive || h.appendNode(st.n, cycle, r.rng)
		case stFork:
			ok = r.fork(st)
		case stOvershoot:
			ok = r.overshoot(st.n)
		case stDelete:
			ok = r.delete(st)
		case stRace:
			ok = r.race(st)
		}
		h.outcomes["fork steps run"]++
		if !ok {
			return
		}
	}
}

// Windows for the stop aimed at a fork operation: a fork's creation takes
// 0.1-1 ms here, a delete a little more; the collection that follows a
// last fork's delete starts when its answer is sent.
const (
	aimCreate  = time.Millisecond
	aimDelete  = 1500 * time.Microsecond
	aimCollect = 2 * time.Millisecond
)

// pull asks for the stop to land within window from now.
func (h *harness) pull(window time.Duration) {
	select {
	case h.trigger <- window:
	default:
	}
}

// appendNode appends to n like its kind is written and records the record.
func (h *harness) appendNode(n *fnode, cycle int, rng *rand.Rand) bool {
	if !h.appendOne(n.s, cycle, rng) {
		return false
	}
	e := n.s.entries[len(n.s.entries)-1]
	n.recs = append(n.recs, rec{data: e.body, end: e.next})
	return true
}

// pickForkPoint picks where to fork src: at its tail (without an offset),
// or at a record boundary with a known offset and a sub-offset into the
// record there (bytes) or over the messages there. It returns the offset,
// the sub-offset and the records inherited (nil if unknown: the tail of a
// stream written meanwhile).
func pickForkPoint(src *fnode, rng *rand.Rand) (off string, sub int, inh []rec, atTail bool) {
	recs := src.recs
	if rng.Intn(5) == 0 {
		if src.exact {
			return "", 0, slices.Clone(recs), true
		}
		return "", 0, nil, true
	}
	var marks []int
	for j := 0; j <= len(recs); j++ {
		if j == 0 || recs[j-1].end != "" {
			marks = append(marks, j)
		}
	}
	j := marks[rng.Intn(len(marks))]
	switch rng.Intn(5) {
	case 0:
		j = marks[len(marks)-1]
	case 1:
		j = 0
	}
	off = "-1"
	if j > 0 {
		off = recs[j-1].end
	}
	inh = slices.Clone(recs[:j])
	if j == len(recs) {
		return off, 0, inh, false
	}
	if src.s.isJSON() {
		sub = rng.Intn(min(3, len(recs)-j) + 1)
		return off, sub, append(inh, recs[j:j+sub]...), false
	}
	r := recs[j]
	switch rng.Intn(4) {
	case 0:
	case 1:
		sub = len(r.data)
	default:
		sub = 1 + rng.Intn(max(1, len(r.data)-1))
	}
	if sub == 0 {
		return off, 0, inh, false
	}
	part := rec{data: r.data[:sub]}
	if sub == len(r.data) {
		part.end = r.end
	}
	return off, sub, append(inh, part), false
}

// forkHeaders picks n's fork point in src and returns the fork request's
// headers, recording what n must then hold.
func (r *forkRun) forkHeaders(n, src *fnode) http.Header {
	rng := r.rng
	hdr := http.Header{"Stream-Forked-From": {"/v1/stream/" + src.s.name}}
	off, sub, inh, atTail := pickForkPoint(src, rng)
	n.atTail, n.inh, n.inhKnown = atTail, inh, !atTail || src.exact
	switch {
	case atTail && rng.Intn(2) == 0:
		hdr.Set("Stream-Fork-Offset", "now")
		n.point = "now"
	case atTail:
		n.point = "the tail"
	default:
		hdr.Set("Stream-Fork-Offset", off)
		if sub > 0 || rng.Intn(4) == 0 {
			hdr.Set("Stream-Fork-Sub-Offset", strconv.Itoa(sub))
		}
		n.point = fmt.Sprintf("%s+%d", off, sub)
	}
	if rng.Intn(2) == 0 {
		hdr.Set("Content-Type", src.s.ctype())
	}
	n.ttl, n.expiresAt = src.ttl, src.expiresAt
	if rng.Intn(5) == 0 {
		hdr.Set("Stream-Ttl", ownTTL)
		n.ttl, n.expiresAt = ownTTL, time.Time{}
	}
	n.hdr = hdr.Clone()
	return hdr
}

// fork creates fork n of n.parent, and reads it at once.
func (r *forkRun) fork(st *fstep) bool {
	h, n, src := r.h, st.n, st.n.parent
	switch {
	case src.state == nDeleted:
		return r.forkDeleted(st)
	case src.state != nLive || !src.inhKnown:
		return true // the source is not there to fork
	}
	h.register(n)
	n.state = nCreating
	hdr := r.forkHeaders(n, src)
	var body []byte
	if n.inhKnown && r.rng.Intn(4) == 0 {
		n.body = n.s.newEntry(r.cycle, r.rng)
		n.s.entries = append(n.s.entries, n.body)
		body = n.body.body
	}
	if st.aim {
		h.pull(aimCreate)
	}
	code, rh := h.send(http.MethodPut, n.s, "", body, hdr)
	switch {
	case code == 0 || code >= 500:
		if n.body != nil {
			n.s.maybe[n.body.id] = true
		}
		return false
	case code != http.StatusCreated:
		h.violate("%s: fork of %s at %s got %d, want 201", n.s.name, src.s.name, n.point, code)
		return false // settled after the restart
	}
	h.created(n, rh.Get("Stream-Next-Offset"))
	return r.readNow(n)
}

// created records fork n's acknowledged creation; next is the answer's
// Stream-Next-Offset.
func (h *harness) created(n *fnode, next string) {
	n.state = nLive
	h.outcomes["fork created"]++
	if n.depth > h.outcomes["longest fork chain created (forks)"] {
		h.outcomes["longest fork chain created (forks)"] = n.depth
	}
	if n.parent.base && n.parent.exact {
		h.outcomes["fork of a closed stream created"]++
	}
	if next == "" {
		h.violate("%s: fork created without Stream-Next-Offset", n.s.name)
	}
	if n.body != nil {
		n.body.acked, n.body.next = true, next
	} else {
		n.baseOff = next
		if n.inhKnown && len(n.inh) > 0 {
			last := &n.inh[len(n.inh)-1]
			if last.end != "" && last.end != next {
				h.violate("%s: fork of %s at %s answered Stream-Next-Offset %s, want %s (where the data it inherits ends)",
					n.s.name, n.parent.s.name, n.point, next, last.end)
			}
			last.end = next
		}
	}
	n.recs = slices.Clone(n.inh)
	if n.body != nil {
		n.recs = append(n.recs, rec{data: n.body.body, end: next})
	}
}

// readNow reads fork n right after its creation: exactly what it inherited
// (and its initial data). What it saw is checked again after the restart.
func (r *forkRun) readNow(n *fnode) bool {
	h := r.h
	all, msgs, next, ok := h.readLive(n.s)
	if !ok {
		return false
	}
	if n.inhKnown {
		if d := diffRecs(n.s.isJSON(), all, msgs, n.recs, true); d != "" {
			h.violate("%s: read right after it was forked from %s at %s (chain depth %d): %s", n.s.name, n.parent.s.name, n.point, n.depth, d)
		}
		h.outcomes["fork read right after its creation"]++
	}
	o := observation{s: n.s, seen: all, next: next, at: len(all)}
	if n.s.isJSON() {
		o.seen, o.msgs, o.at = nil, msgs, len(msgs)
	}
	h.record(o)
	return true
}

// forkDeleted requests a fork of a source whose delete was acknowledged:
// 409 while forks read it (soft-deleted), 404 once it is gone; either way
// the fork must not exist.
func (r *forkRun) forkDeleted(st *fstep) bool {
	h, n, src := r.h, st.n, st.n.parent
	h.register(n)
	n.state, n.noSource, n.point = nCreating, true, "the tail"
	if st.aim {
		h.pull(aimCreate)
	}
	code, _ := h.send(http.MethodPut, n.s, "", nil, http.Header{"Stream-Forked-From": {"/v1/stream/" + src.s.name}})
	if code == 0 || code >= 500 {
		return false
	}
	n.state = nNever
	want := []int{http.StatusConflict, http.StatusNotFound}
	switch {
	case holds(src):
		want = want[:1]
	case src.gone:
		want = want[1:]
	}
	if !slices.Contains(want, code) {
		h.violate("%s: fork of %s, deleted (forks reading it: %v), got %d, want %v", n.s.name, src.s.name, holds(src), code, want)
	}
	h.outcomes["fork of a deleted source refused"]++
	return h.expect(true, n.s, http.MethodHead, "", nil, nil, "a refused fork", http.StatusNotFound)
}

// overshoot forks src one byte past the record at a boundary (binary), or
// one message past its messages (JSON): 400, and nothing created.
func (r *forkRun) overshoot(src *fnode) bool {
	h := r.h
	if src.state != nLive || !src.exact || !src.inhKnown || len(src.recs) == 0 {
		return true
	}
	var marks []int
	for j := 0; j < len(src.recs); j++ {
		if j == 0 || src.recs[j-1].end != "" {
			marks = append(marks, j)
		}
	}
	j := marks[r.rng.Intn(len(marks))]
	off, sub := "-1", len(src.recs)-j+1
	if j > 0 {
		off = src.recs[j-1].end
	}
	if !src.s.isJSON() {
		sub = len(src.recs[j].data) + 1
	}
	target := h.probeStream()
	hdr := http.Header{"Stream-Forked-From": {"/v1/stream/" + src.s.name}, "Stream-Fork-Offset": {off}, "Stream-Fork-Sub-Offset": {strconv.Itoa(sub)}}
	if !h.expect(true, target, http.MethodPut, "", nil, hdr, fmt.Sprintf("fork of %s at %s+%d, past the data there", src.s.name, off, sub), http.StatusBadRequest) {
		return false
	}
	h.outcomes["fork sub-offset past the data refused"]++
	return h.expect(true, target, http.MethodHead, "", nil, nil, "a refused fork", http.StatusNotFound)
}

// delete deletes n and checks what follows: 410 and 409 while forks read
// it, else 404; and the collection of the deleted sources up the chain that
// no fork reads any more.
func (r *forkRun) delete(st *fstep) bool {
	h, n := r.h, st.n
	if n.state != nLive {
		return true
	}
	if st.aim && !st.aimAfter {
		h.pull(aimDelete)
	}
	code, _ := h.send(http.MethodDelete, n.s, "", nil, nil)
	switch {
	case code == 0 || code >= 500:
		n.state = nDeleting
		return false
	case code != http.StatusNoContent:
		h.violate("%s: DELETE got %d, want 204", n.s.name, code)
		n.state = nDeleting // settled after the restart
		return false
	}
	n.state = nDeleted
	if st.aim && st.aimAfter {
		h.pull(aimCollect)
	}
	if holdsKids(n) {
		n.soft = true
		h.outcomes["source deleted while forks read it"]++
		if !h.probeSoft(n, true, r.rng) {
			return false
		}
	} else {
		h.outcomes["deleted, no fork reading it"]++
		if !h.expect(true, n.s, http.MethodHead, "", nil, nil, "deleted, no fork reading it", http.StatusNotFound) {
			return false
		}
		n.gone = true
	}
	return r.cascade(n.parent)
}

// cascade waits for the collection of p and its deleted sources up the
// chain, as long as no fork reads them any more.
func (r *forkRun) cascade(p *fnode) bool {
	for ; p != nil && p.state == nDeleted && !p.gone && !holds(p); p = p.parent {
		if !r.awaitGone(p) {
			return false
		}
	}
	return true
}

// awaitGone waits, while streamd runs, for deleted p to be 404.
func (r *forkRun) awaitGone(p *fnode) bool {
	h := r.h
	deadline := time.Now().Add(forkCollectLive)
	for {
		code, _ := h.send(http.MethodHead, p.s, "", nil, nil)
		switch {
		case code == http.StatusNotFound:
			h.seenGone(p, "while streamd ran")
			return true
		case code == http.StatusGone:
			p.soft = true
		case code == 0 || code >= 500 && h.termSent.Load():
			return false
		default:
			h.violate("%s: deleted, no fork reading it any more: HEAD got %d, want 410 or 404", p.s.name, code)
			return false
		}
		if time.Now().After(deadline) {
			if !h.termSent.Load() {
				h.violate("%s: soft-deleted, no fork reading it any more, still 410 %v later: not collected", p.s.name, forkCollectLive)
			}
			return false
		}
		select {
		case <-r.stop:
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// seenGone records deleted n seen 404: collected, if it was soft-deleted.
func (h *harness) seenGone(n *fnode, when string) {
	n.gone = true
	if n.soft && !n.collected {
		n.collected = true
		h.collections++
		h.outcomes["soft-deleted stream collected "+when]++
	}
}

// race forks source x (into fork f, or onto a taken path) and deletes x
// concurrently, one request up to 2 ms after the other. A fork acknowledged
// pinned x first, so x must be soft-deleted; otherwise x must be collected
// and the fork must not exist.
func (r *forkRun) race(st *fstep) bool {
	h, x, f := r.h, st.n, st.f
	if x.state != nLive {
		return true
	}
	target := &stream{name: st.taken}
	hdr := http.Header{"Stream-Forked-From": {"/v1/stream/" + x.s.name}}
	if f != nil {
		h.register(f)
		f.state = nCreating
		hdr = r.forkHeaders(f, x)
		target = f.s
	}
	if st.aim {
		h.pull(aimCreate)
	}
	// A fork's creation takes little more than one fsync once its source
	// is pinned (0.1-0.2 ms on the test machine): most deletes follow the
	// fork within that, some later, some come first. A delete that reaches
	// the source after the pin and before the fork's commit must find it
	// pinned.
	forkFirst := r.rng.Intn(5) > 0
	gap := time.Duration(r.rng.Intn(150)) * time.Microsecond
	if r.rng.Intn(5) == 0 {
		gap = time.Duration(r.rng.Intn(2000)) * time.Microsecond
	}
	var fc, dc int
	var fh http.Header
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		if !forkFirst {
			time.Sleep(gap)
		}
		fc, fh = h.send(http.MethodPut, target, "", nil, hdr)
	}()
	go func() {
		defer wg.Done()
		if forkFirst {
			time.Sleep(gap)
		}
		dc, _ = h.send(http.MethodDelete, x.s, "", nil, nil)
	}()
	wg.Wait()
	unknown := false
	switch {
	case dc == http.StatusNoContent:
		x.state = nDeleted
	case dc == 0 || dc >= 500:
		x.state, unknown = nDeleting, true
	default:
		h.violate("%s: DELETE racing a fork of it got %d, want 204", x.s.name, dc)
		x.state, unknown = nDeleting, true
	}
	created := false
	switch {
	case fc == http.StatusCreated && f != nil:
		created = true
		h.created(f, fh.Get("Stream-Next-Offset"))
	case fc == http.StatusNotFound || fc == http.StatusConflict:
		if f != nil {
			f.state = nNever
		}
	case fc == 0 || fc >= 500:
		unknown = true
	default:
		h.violate("%s: fork of %s racing its delete got %d, want 201, 404 or 409", target.name, x.s.name, fc)
		unknown = true
	}
	if unknown {
		return false
	}
	switch {
	case created:
		h.outcomes["fork raced its source's delete: the fork pinned it first"]++
		x.soft = true
		if !h.probeSoft(x, true, r.rng) || !r.readNow(f) {
			return false
		}
	case f != nil:
		h.outcomes["fork raced its source's delete: the delete came first"]++
		if !r.awaitGone(x) || !h.expect(true, f.s, http.MethodHead, "", nil, nil, "a refused fork", http.StatusNotFound) {
			return false
		}
	default:
		h.outcomes["fork onto a taken path raced its source's delete"]++
		if !r.awaitGone(x) {
			return false
		}
		code, rh := h.send(http.MethodHead, target, "", nil, nil)
		if code == 0 {
			return false
		}
		if code != http.StatusOK || rh.Get("Content-Type") != "text/plain" {
			h.violate("%s: after a fork onto it was refused, HEAD got %d Content-Type %q, want 200 text/plain", target.name, code, rh.Get("Content-Type"))
		}
		h.send(http.MethodDelete, target, "", nil, nil)
	}
	return true
}

// probeStream names a path that must never be created.
func (h *harness) probeStream() *stream {
	h.probes++
	return &stream{name: fmt.Sprintf("crash/fp-%d", h.probes)}
}

// expect sends a request and checks its status. While streamd runs (live)
// a failed request or a 5xx from a draining streamd tells nothing: it
// returns false, stop checking; any other status than want is a violation.
func (h *harness) expect(live bool, s *stream, method, query string, body []byte, hdr http.Header, why string, want ...int) bool {
	code, _ := h.send(method, s, query, body, hdr)
	if slices.Contains(want, code) {
		return true
	}
	if live && (code == 0 || code >= 500 && h.termSent.Load()) {
		return false
	}
	h.violate("%s: %s%s (%s) got %d, want %v", s.name, method, query, why, code, want)
	return true
}

// probeSoft checks that n, deleted while forks read it, answers 410 to
// GET, HEAD, POST and DELETE and 409 to PUT and to forking it, and that
// the fork was not created.
func (h *harness) probeSoft(n *fnode, live bool, rng *rand.Rand) bool {
	s := n.s
	why := "deleted while forks read it"
	// Nothing else is probed if it is not soft-deleted: a PUT would
	// create it anew.
	switch code, _ := h.send(http.MethodHead, s, "", nil, nil); {
	case code == http.StatusGone:
	case live && (code == 0 || code >= 500 && h.termSent.Load()):
		return false
	default:
		h.violate("%s: HEAD (%s) got %d, want 410", s.name, why, code)
		return true
	}
	ct := http.Header{"Content-Type": {s.ctype()}}
	for _, p := range []struct {
		method, query string
		body          []byte
		hdr           http.Header
		want          int
	}{
		{http.MethodGet, "?offset=-1", nil, nil, http.StatusGone},
		{http.MethodPost, "", s.newEntry(h.cycle, rng).body, ct, http.StatusGone}, // unrecorded: must not be appended
		{http.MethodDelete, "", nil, nil, http.StatusGone},
		{http.MethodPut, "", nil, ct, http.StatusConflict},
	} {
		if !h.expect(live, s, p.method, p.query, p.body, p.hdr, why, p.want) {
			return false
		}
	}
	target := h.probeStream()
	if !h.expect(live, target, http.MethodPut, "", nil, http.Header{"Stream-Forked-From": {"/v1/stream/" + s.name}},
		"fork of "+s.name+", "+why, http.StatusConflict) {
		return false
	}
	return h.expect(live, target, http.MethodHead, "", nil, nil, "a refused fork", http.StatusNotFound)
}

// readLive reads s from -1 to its tail while streamd runs; it returns the
// bytes (messages) and the offset after them, or false if streamd is
// going or gone (a wrong status is also a violation).
func (h *harness) readLive(s *stream) ([]byte, []json.RawMessage, string, bool) {
	var all []byte
	var msgs []json.RawMessage
	off := "-1"
	for range 10000 {
		b, next, upToDate, code, err := h.getChunk(context.Background(), s, off, false)
		if err != nil || code == 0 || code >= 500 && h.termSent.Load() {
			return nil, nil, "", false
		}
		if code != http.StatusOK || next == "" {
			h.violate("%s: read at %s while streamd runs got %d (Stream-Next-Offset %q)", s.name, off, code, next)
			return nil, nil, "", false
		}
		n := len(b)
		if s.isJSON() {
			var m []json.RawMessage
			if err := json.Unmarshal(b, &m); err != nil {
				h.violate("%s: read at %s: bad JSON: %v", s.name, off, err)
				return nil, nil, "", false
			}
			msgs, n = append(msgs, m...), len(m)
		} else {
			all = append(all, b...)
		}
		if n == 0 && next == off && !upToDate {
			h.violate("%s: read at %s while streamd runs returned nothing and the same offset, not up to date", s.name, off)
			return nil, nil, "", false
		}
		off = next
		if upToDate {
			return all, msgs, off, true
		}
	}
	h.violate("%s: read did not reach the tail", s.name)
	return nil, nil, "", false
}

// sameMsg reports whether two JSON messages are the same value as written.
func sameMsg(a, b []byte) bool {
	var ca, cb bytes.Buffer
	if json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil {
		return bytes.Equal(a, b)
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

// recsLen is the length of recs in bytes, or in messages for JSON.
func recsLen(isJSON bool, recs []rec) int {
	if isJSON {
		return len(recs)
	}
	n := 0
	for _, r := range recs {
		n += len(r.data)
	}
	return n
}

// diffRecs describes how the content read (all, or msgs for JSON) differs
// from recs, or from a prefix of it unless whole; "" if it does not.
func diffRecs(isJSON bool, all []byte, msgs []json.RawMessage, recs []rec, whole bool) string {
	if isJSON {
		if len(msgs) < len(recs) || whole && len(msgs) != len(recs) {
			return fmt.Sprintf("%d messages, want %d", len(msgs), len(recs))
		}
		for i, r := range recs {
			if !sameMsg(msgs[i], r.data) {
				return fmt.Sprintf("message %d is %s, want %s", i, msgs[i], r.data)
			}
		}
		return ""
	}
	var want []byte
	for _, r := range recs {
		want = append(want, r.data...)
	}
	if len(all) < len(want) || whole && len(all) != len(want) {
		return fmt.Sprintf("%d bytes, want %d", len(all), len(want))
	}
	for i := range want {
		if all[i] != want[i] {
			return fmt.Sprintf("byte %d is %q..., want %q...", i, clip(all[i:]), clip(want[i:]))
		}
	}
	return ""
}

func clip(b []byte) []byte { return b[:min(len(b), 40)] }

// verifyForks checks the fork graph after a restart: first it settles the
// operations left unanswered (creates, then deletes, since whether forks
// exist decides what a delete must have left), then it checks every node,
// then waits, within a bound, for the collections due.
func (h *harness) verifyForks() {
	for _, n := range h.fnodes {
		if n.state == nCreating {
			h.settleCreate(n)
		}
	}
	for _, n := range h.fnodes {
		if n.state == nDeleting {
			h.settleDelete(n)
		}
	}
	var waiting []*fnode
	for _, n := range h.fnodes {
		switch n.state {
		case nLive:
			h.retryPending(n.s)
			h.verifyNode(n)
		case nNever:
			h.expect(false, n.s, http.MethodHead, "", nil, nil, "never created", http.StatusNotFound)
		case nDeleted:
			h.forkDeletes++
			switch {
			case holds(n):
				n.soft = true
				if !n.probed {
					n.probed = true
					h.probeSoft(n, false, h.rng)
				} else if h.expect(false, n.s, http.MethodHead, "", nil, nil, "deleted while forks read it", http.StatusGone) {
					h.expect(false, n.s, http.MethodGet, "?offset=-1", nil, nil, "deleted while forks read it", http.StatusGone)
				}
			case n.gone:
				h.expect(false, n.s, http.MethodHead, "", nil, nil, "deleted", http.StatusNotFound)
				if n.collected && !n.recreated {
					h.recreate(n)
				}
			default:
				waiting = append(waiting, n)
			}
		}
	}
	h.awaitCollections(waiting)
}

// settleCreate settles a fork creation that got no answer: the fork exists
// (and verifyNode checks it reads exactly as it must) or it does not, for
// good.
func (h *harness) settleCreate(n *fnode) {
	code, hdr := h.send(http.MethodHead, n.s, "", nil, nil)
	switch code {
	case http.StatusOK:
		h.outcomes["unanswered fork create happened"]++
		if n.noSource {
			h.violate("%s: a fork of %s requested after that stream's delete was acknowledged exists", n.s.name, n.parent.s.name)
			n.state = nNever
			return
		}
		n.state = nLive
		if n.body != nil {
			n.body.acked = true // present exactly once; its offset is unknown
			delete(n.s.maybe, n.body.id)
		} else {
			// Nothing was appended to it: its tail is where its own data begins.
			n.baseOff = hdr.Get("Stream-Next-Offset")
			if n.inhKnown && len(n.inh) > 0 && n.inh[len(n.inh)-1].end == "" {
				n.inh[len(n.inh)-1].end = n.baseOff
			}
		}
		if n.parent.state == nLive && !n.atTail {
			h.repeatFork(n) // as its client would
		}
	case http.StatusNotFound:
		h.outcomes["unanswered fork create did not happen"]++
		n.state = nNever
		if n.body != nil {
			delete(n.s.maybe, n.body.id)
			n.s.entries, n.body = nil, nil
		}
	default:
		h.violate("%s: HEAD after an unanswered fork create got %d", n.s.name, code)
	}
}

// settleDelete settles a delete that got no answer: 404 or 410, it
// happened (verifyForks checks which of the two it must be); 200, it did
// not, and the stream must read as before.
func (h *harness) settleDelete(n *fnode) {
	switch code, _ := h.send(http.MethodHead, n.s, "", nil, nil); code {
	case http.StatusOK:
		n.state = nLive
		h.outcomes["unanswered fork graph delete did not happen"]++
	case http.StatusGone:
		n.state, n.soft = nDeleted, true
		h.outcomes["unanswered fork graph delete happened"]++
	case http.StatusNotFound:
		n.state = nDeleted
		h.outcomes["unanswered fork graph delete happened"]++
	default:
		h.violate("%s: HEAD after an unanswered delete got %d", n.s.name, code)
	}
}

// repeatFork repeats n's fork request: an identical fork exists, 200.
func (h *harness) repeatFork(n *fnode) {
	code, _ := h.send(http.MethodPut, n.s, "", nil, n.hdr)
	if code != http.StatusOK {
		h.violate("%s: repeating its fork request (of %s at %s) got %d, want 200", n.s.name, n.parent.s.name, n.point, code)
	}
	h.outcomes["fork request repeated"]++
}

// verifyNode checks a live node after a restart: its inherited data, its
// own appends (verifyContent), HEAD, and for forks the offsets shared with
// the source.
func (h *harness) verifyNode(n *fnode) {
	s := n.s
	all, msgs, ok := h.readFrom(s, "-1")
	if !ok {
		return
	}
	if !n.inhKnown && !h.settleTail(n) {
		return
	}
	if d := diffRecs(s.isJSON(), all, msgs, n.inh, false); d != "" {
		h.violate("%s: fork of %s at %s (chain depth %d), after restart its inherited data has %s", s.name, n.parent.s.name, n.point, n.depth, d)
		return
	}
	skip := recsLen(s.isJSON(), n.inh)
	els := h.verifyContent(s, all, msgs, skip)
	known := map[string]*entry{}
	for _, e := range s.entries {
		known[e.id] = e
	}
	n.recs = slices.Clone(n.inh)
	for _, el := range els {
		r := rec{data: el}
		if e := known[idOf(s, el)]; e != nil && e.acked {
			r.end = e.next
		}
		n.recs = append(n.recs, r)
	}
	h.verifyHead(n)
	if n.depth == 0 {
		return
	}
	h.forksVerified++
	// Its own data begins where the fork point is.
	if n.baseOff != "" {
		if tail, tmsgs, ok := h.readFrom(s, n.baseOff); ok {
			if d := diffRecs(s.isJSON(), tail, tmsgs, n.recs[len(n.inh):], true); d != "" {
				h.violate("%s: read from %s, where its own data begins, has %s", s.name, n.baseOff, d)
			}
		}
	}
	// An offset of the source below the fork point names the same position.
	var marks []int
	for j := 1; j <= len(n.inh); j++ {
		if n.inh[j-1].end != "" {
			marks = append(marks, j)
		}
	}
	if len(marks) > 0 {
		j := marks[h.rng.Intn(len(marks))]
		if tail, tmsgs, ok := h.readFrom(s, n.inh[j-1].end); ok {
			if d := diffRecs(s.isJSON(), tail, tmsgs, n.recs[j:], true); d != "" {
				h.violate("%s: read from its source's offset %s (record %d of what it inherits) has %s", s.name, n.inh[j-1].end, j, d)
			}
		}
	}
	if n.parent.state == nLive && !n.atTail && h.rng.Intn(6) == 0 {
		h.repeatFork(n)
	}
}

// verifyHead checks a live node's HEAD: its content type, open, its expiry
// (inherited or its own), its tail.
func (h *harness) verifyHead(n *fnode) {
	s := n.s
	code, hdr := h.send(http.MethodHead, s, "", nil, nil)
	if code != http.StatusOK {
		h.violate("%s: HEAD of a live stream after restart got %d", s.name, code)
		return
	}
	if ct, closed := hdr.Get("Content-Type"), hdr.Get("Stream-Closed"); ct != s.ctype() || closed != "" {
		h.violate("%s: HEAD Content-Type %q Stream-Closed %q, want %q and open", s.name, ct, closed, s.ctype())
	}
	if got := hdr.Get("Stream-Ttl"); got != n.ttl {
		h.violate("%s: HEAD Stream-TTL %q, want %q", s.name, got, n.ttl)
	}
	got := hdr.Get("Stream-Expires-At")
	if n.expiresAt.IsZero() {
		if got != "" {
			h.violate("%s: HEAD Stream-Expires-At %q, want none", s.name, got)
		}
	} else if at, err := time.Parse(time.RFC3339Nano, got); err != nil || !at.Equal(n.expiresAt) {
		h.violate("%s: HEAD Stream-Expires-At %q, want %s", s.name, got, n.expiresAt.Format(time.RFC3339))
	}
	want := n.baseOff
	if len(n.recs) > 0 {
		want = n.recs[len(n.recs)-1].end
	}
	if tail := hdr.Get("Stream-Next-Offset"); want != "" && tail != want {
		h.violate("%s: HEAD Stream-Next-Offset %s, want %s", s.name, tail, want)
	}
}

// settleTail learns what a fork at the tail of a load's stream inherited:
// that stream's records up to the offset the fork's own data begins at,
// which must be a record boundary.
func (h *harness) settleTail(n *fnode) bool {
	src := n.parent
	if n.baseOff == "" {
		h.violate("%s: fork at the tail of %s without a known fork point", n.s.name, src.s.name)
		return false
	}
	tail, tmsgs, ok := h.readFrom(src.s, n.baseOff)
	if !ok {
		return false
	}
	recs := buildRecs(src.s, "")
	k := -1
	if src.s.isJSON() {
		k = len(recs) - len(tmsgs)
	} else {
		var all []byte
		for _, r := range recs {
			all = append(all, r.data...)
		}
		pos := len(all) - len(tail)
		if pos >= 0 && bytes.Equal(all[pos:], tail) {
			for i, sum := 0, 0; i <= len(recs) && sum <= pos; i++ {
				if sum == pos {
					k = i
					break
				}
				if i < len(recs) {
					sum += len(recs[i].data)
				}
			}
		}
	}
	if k < 0 {
		h.violate("%s: forked at the tail of %s, where its own data begins at %s, which is not a record boundary of %s", n.s.name, src.s.name, n.baseOff, src.s.name)
		return false
	}
	n.inh, n.inhKnown = slices.Clone(recs[:k]), true
	if k > 0 {
		n.inh[k-1].end = n.baseOff
	}
	h.outcomes["fork at a load stream's tail settled"]++
	return true
}

// awaitCollections waits for deleted streams no fork reads any more to be
// gone (404): at once if no fork read them when deleted, else after their
// collection, which must come within forkCollectRestart of streamd's start.
func (h *harness) awaitCollections(waiting []*fnode) {
	begin := time.Now()
	deadline := latest(h.downTo.Add(forkCollectRestart), begin.Add(forkCollectPoll))
	for len(waiting) > 0 {
		var still []*fnode
		for _, n := range waiting {
			switch code, _ := h.send(http.MethodHead, n.s, "", nil, nil); code {
			case http.StatusNotFound:
				if n.soft {
					h.collectWait = max(h.collectWait, time.Since(begin))
				}
				h.seenGone(n, "after a restart")
				if n.collected && !n.recreated {
					h.recreate(n)
				}
			case http.StatusGone:
				n.soft = true
				still = append(still, n)
			default:
				h.violate("%s: deleted, no fork reading it any more: HEAD after restart got %d, want 404 (or 410 until collected)", n.s.name, code)
			}
		}
		waiting = still
		if len(waiting) > 0 && time.Now().After(deadline) {
			for _, n := range waiting {
				h.violate("%s: soft-deleted, no fork reading it any more, still 410 %v after streamd started: never collected",
					n.s.name, time.Since(h.downTo).Round(time.Millisecond))
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// recreate checks that a collected stream's path is free: PUT creates a
// new, empty stream there, which is then deleted again.
func (h *harness) recreate(n *fnode) {
	n.recreated = true
	s := n.s
	ct := http.Header{"Content-Type": {s.ctype()}}
	if !h.expect(false, s, http.MethodPut, "", nil, ct, "path of a collected stream", http.StatusCreated) {
		return
	}
	if all, msgs, ok := h.readFrom(s, "-1"); ok && (len(all) > 0 || len(msgs) > 0) {
		h.violate("%s: created anew after its collection, it reads %d bytes / %d messages, want none", s.name, len(all), len(msgs))
	}
	if h.expect(false, s, http.MethodDelete, "", nil, nil, "stream created anew", http.StatusNoContent) {
		h.expect(false, s, http.MethodHead, "", nil, nil, "stream created anew, deleted", http.StatusNotFound)
	}
	h.outcomes["collected path created anew"]++
}
