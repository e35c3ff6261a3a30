package actors

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
)

type ack struct {
	payload string
	next    uint64
}

// checkAcksMatchStream asserts that data is exactly the acknowledged
// payloads, each once, in the order of their offsets, and that every ack's
// range [next-len, next) holds its payload.
func checkAcksMatchStream(t *testing.T, data []byte, acks []ack) {
	t.Helper()
	slices.SortFunc(acks, func(a, b ack) int { return int(a.next) - int(b.next) })
	var want []byte
	var pos uint64
	for i, a := range acks {
		if i > 0 && a.next == acks[i-1].next {
			t.Fatalf("two appends acknowledged at offset %d: %q and %q", a.next, acks[i-1].payload, a.payload)
		}
		start := a.next - uint64(len(a.payload))
		if start != pos {
			t.Fatalf("append %q acknowledged at %d: starts at %d, previous ends at %d (not contiguous)", a.payload, a.next, start, pos)
		}
		pos = a.next
		want = append(want, a.payload...)
	}
	if !bytes.Equal(data, want) {
		t.Fatalf("stream holds %d bytes, acknowledged appends make %d bytes:\n got %q\nwant %q", len(data), len(want), data, want)
	}
}

func TestConcurrentAppendsOneStream(t *testing.T) {
	e := newEnv(t)
	e.createText("/s")
	const n = 64
	var acks collector[ack]
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			// Payloads of different lengths make misplaced offsets visible.
			p := fmt.Sprintf("<%d:%s>", i, bytes.Repeat([]byte{'a' + byte(i%26)}, i%7))
			r, err := e.s.Append(opCtx(t), "/s", AppendRequest{ContentType: ctText, Records: recs(p)})
			if err != nil || r.Outcome != Appended {
				t.Errorf("append %d: %+v, %v", i, r, err)
				return
			}
			if r.Snapshot == nil || r.Snapshot.Tail < r.NextOffset {
				t.Errorf("append %d acknowledged at %d before its snapshot %+v covered it", i, r.NextOffset, r.Snapshot)
			}
			acks.add(ack{p, r.NextOffset})
		})
	}
	close(start)
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(acks.all) != n {
		t.Fatalf("%d acks for %d appends", len(acks.all), n)
	}
	data, snap := e.readAll("/s")
	checkAcksMatchStream(t, data, acks.all)
	if snap.Tail != uint64(len(data)) {
		t.Fatalf("tail %d, data %d", snap.Tail, len(data))
	}
}

func TestConcurrentAppendsManyStreams(t *testing.T) {
	e := newEnv(t)
	const streams, perStream = 8, 16
	for s := range streams {
		e.createText(fmt.Sprintf("/s%d", s))
	}
	acks := make([]collector[ack], streams)
	var wg sync.WaitGroup
	for s := range streams {
		for i := range perStream {
			wg.Go(func() {
				p := fmt.Sprintf("[%d.%d]", s, i)
				r, err := e.s.Append(opCtx(t), fmt.Sprintf("/s%d", s), AppendRequest{ContentType: ctText, Records: recs(p)})
				if err != nil {
					t.Errorf("append %s: %v", p, err)
					return
				}
				acks[s].add(ack{p, r.NextOffset})
			})
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	for s := range streams {
		data, _ := e.readAll(fmt.Sprintf("/s%d", s))
		checkAcksMatchStream(t, data, acks[s].all)
	}
}

// sendAppend queues an append on path's actor without waiting for the
// reply, as pipelining HTTP requests do: sends from one goroutine reach the
// mailbox in order.
func (e *env) sendAppend(path string, req AppendRequest) <-chan Result {
	e.t.Helper()
	h, _ := e.open(path)
	return e.sendAppendTo(h, req)
}

// sendAppendTo is sendAppend to a handle already located.
func (e *env) sendAppendTo(h *Handle, req AppendRequest) <-chan Result {
	e.t.Helper()
	ch := make(chan Result, 1)
	if !h.send(e.s.root, &appendMsg{req: req, reply: ch}) {
		e.t.Fatal("stream actor retired")
	}
	return ch
}

func TestProducerPipelinedInOrder(t *testing.T) {
	e := newEnv(t)
	e.createText("/s")
	const n = 200
	replies := make([]<-chan Result, n)
	for i := range n {
		replies[i] = e.sendAppend("/s", AppendRequest{ContentType: ctText, Records: recs(fmt.Sprintf("%d;", i)), Producer: producer("p", 0, uint64(i))})
	}
	var acks []ack
	var prev uint64
	for i, ch := range replies {
		r := recv(t, ch, fmt.Sprintf("reply to seq %d", i))
		if r.Err != nil || r.Outcome != Appended || r.ProducerSeq != uint64(i) || r.ProducerEpoch != 0 {
			t.Fatalf("seq %d: %+v", i, r)
		}
		if r.NextOffset <= prev {
			t.Fatalf("seq %d acknowledged at %d, not after %d", i, r.NextOffset, prev)
		}
		if r.Snapshot == nil || r.Snapshot.Tail < r.NextOffset {
			t.Fatalf("seq %d acknowledged before durable: %+v", i, r.Snapshot)
		}
		prev = r.NextOffset
		acks = append(acks, ack{fmt.Sprintf("%d;", i), r.NextOffset})
	}
	data, _ := e.readAll("/s")
	checkAcksMatchStream(t, data, acks)
	// State is consistent: the next seq is n, and any earlier one is a
	// duplicate reporting n-1.
	dup := e.append("/s", AppendRequest{ContentType: ctText, Records: recs("x"), Producer: producer("p", 0, 7)})
	if dup.Outcome != Duplicate || dup.ProducerSeq != n-1 {
		t.Fatalf("duplicate after pipeline = %+v", dup)
	}
	next := e.append("/s", AppendRequest{ContentType: ctText, Records: recs("x"), Producer: producer("p", 0, n)})
	if next.Outcome != Appended || next.ProducerSeq != n {
		t.Fatalf("seq %d after pipeline = %+v", n, next)
	}
}

func TestProducerPipelinedViaGoroutineHandoff(t *testing.T) {
	// Same as above through the public API: each goroutine starts its
	// Append only after the previous one's request has entered the mailbox
	// (it is parked waiting for the reply), keeping the send order.
	e := newEnv(t)
	e.createText("/s")
	const n = 32
	results := make([]chan Result, n)
	for i := range n {
		results[i] = make(chan Result, 1)
		go func() {
			r, err := e.s.Append(opCtx(t), "/s", AppendRequest{ContentType: ctText, Records: recs(fmt.Sprintf("%d;", i)), Producer: producer("p", 0, uint64(i))})
			if err != nil {
				r.Err = err
			}
			results[i] <- r
		}()
		// Wait until appends 0..i have each been sent: parked waiting for
		// their reply, or done. Done is counted first so that an append
		// finishing between the two counts is missed, never counted twice.
		eventually(t, opTimeout, "append to be sent", func() bool {
			done := 0
			for j := 0; j <= i; j++ {
				done += len(results[j])
			}
			return done+parkedIn("actors.call[") >= i+1
		})
	}
	var acks []ack
	for i := range n {
		r := recv(t, results[i], "append")
		if r.Err != nil || r.Outcome != Appended || r.ProducerSeq != uint64(i) {
			t.Fatalf("seq %d: %+v", i, r)
		}
		acks = append(acks, ack{fmt.Sprintf("%d;", i), r.NextOffset})
	}
	data, _ := e.readAll("/s")
	checkAcksMatchStream(t, data, acks)
}

func TestProducerPipelinedGapAndDuplicate(t *testing.T) {
	e := newEnv(t)
	e.createText("/s")
	P := func(seq uint64) AppendRequest {
		return AppendRequest{ContentType: ctText, Records: recs(fmt.Sprintf("%d;", seq)), Producer: producer("p", 0, seq)}
	}
	r0 := e.sendAppend("/s", P(0))
	r0dup := e.sendAppend("/s", P(0)) // retry while the original may be in flight
	r2 := e.sendAppend("/s", P(2))    // arrives before 1: a gap
	r1 := e.sendAppend("/s", P(1))
	r2b := e.sendAppend("/s", P(2))

	a0 := recv(t, r0, "seq 0")
	if a0.Err != nil || a0.Outcome != Appended {
		t.Fatalf("seq 0: %+v", a0)
	}
	d0 := recv(t, r0dup, "duplicate of seq 0")
	if d0.Err != nil || d0.Outcome != Duplicate || d0.ProducerSeq != 0 {
		t.Fatalf("duplicate of seq 0: %+v", d0)
	}
	// A duplicate is acknowledged only once the original is durable.
	if d0.Snapshot == nil || d0.Snapshot.Tail < a0.NextOffset {
		t.Fatalf("duplicate acknowledged with snapshot %+v before the original (at %d) was durable", d0.Snapshot, a0.NextOffset)
	}
	g := recv(t, r2, "seq 2 (gap)")
	var gap *SeqGapError
	if !errors.As(g.Err, &gap) || gap.Expected != 1 || gap.Received != 2 {
		t.Fatalf("seq 2 before 1: %+v, want SeqGapError{1, 2}", g)
	}
	if a := recv(t, r1, "seq 1"); a.Err != nil || a.Outcome != Appended {
		t.Fatalf("seq 1: %+v", a)
	}
	if a := recv(t, r2b, "seq 2"); a.Err != nil || a.Outcome != Appended || a.ProducerSeq != 2 {
		t.Fatalf("seq 2: %+v", a)
	}
	if got, _ := e.readAll("/s"); string(got) != "0;1;2;" {
		t.Fatalf("stream = %q", got)
	}
}

func TestPipelinedCloseOrdersAfterEarlierAppends(t *testing.T) {
	e := newEnv(t)
	e.createText("/s")
	a := e.sendAppend("/s", AppendRequest{ContentType: ctText, Records: recs("a")})
	c := e.sendAppend("/s", AppendRequest{Close: true})
	late := e.sendAppend("/s", AppendRequest{ContentType: ctText, Records: recs("b")})
	again := e.sendAppend("/s", AppendRequest{Close: true})
	if r := recv(t, a, "append"); r.Err != nil || r.NextOffset != 1 {
		t.Fatalf("append: %+v", r)
	}
	if r := recv(t, c, "close"); r.Err != nil || r.Outcome != Appended || !r.Closed || r.NextOffset != 1 {
		t.Fatalf("close: %+v", r)
	}
	var ce *ClosedError
	if r := recv(t, late, "late append"); !errors.As(r.Err, &ce) || ce.Tail != 1 {
		t.Fatalf("append after pipelined close: %+v", r)
	}
	r := recv(t, again, "second close")
	if r.Err != nil || r.Outcome != AlreadyClosed {
		t.Fatalf("second close: %+v", r)
	}
	// AlreadyClosed relies on the first close, so it must not be
	// acknowledged before that close is durable.
	if r.Snapshot == nil || !r.Snapshot.Closed {
		t.Fatalf("AlreadyClosed acknowledged with snapshot %+v", r.Snapshot)
	}
}

func TestSnapshotNeverAheadOfAcknowledgedData(t *testing.T) {
	e := newEnv(t)
	e.createText("/s")
	const writers, perWriter = 8, 25
	stop := make(chan struct{})
	var readers sync.WaitGroup
	// Readers check continuously that every published tail is backed by
	// data in the store.
	for range 2 {
		readers.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				_, snap, err := e.s.Open(opCtx(t), "/s")
				if err != nil {
					t.Errorf("open: %v", err)
					return
				}
				b, err := e.st.ReadBytes(snap.ID, 0, snap.Tail, 1<<40)
				if err != nil || uint64(len(b)) != snap.Tail {
					t.Errorf("snapshot tail %d but store has %d bytes (%v)", snap.Tail, len(b), err)
					return
				}
			}
		})
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				r, err := e.s.Append(opCtx(t), "/s", AppendRequest{ContentType: ctText, Records: recs(fmt.Sprintf("%d.%d;", w, i))})
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				// After Append returns, Open's snapshot covers it.
				_, snap, err := e.s.Open(opCtx(t), "/s")
				if err != nil || snap.Tail < r.NextOffset {
					t.Errorf("after append acknowledged at %d, Open snapshot tail is %v (%v)", r.NextOffset, snap, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	readers.Wait()
}
