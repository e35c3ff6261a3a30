package actors

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// These tests hold a commit in its WAL sync, the window in which Pebble
// already shows the batch to iterators but a crash could still lose it.

func TestNothingVisibleBeforeSync(t *testing.T) {
	e, ss := newSlowEnv(t)
	e.createText("/s", "abc")
	ss.hold()
	a := e.sendAppend("/s", AppendRequest{ContentType: ctText, Records: recs("def"), Producer: producer("p", 0, 0)})
	ss.awaitSync(t)

	// The append is not acknowledged, and readers still see the old tail.
	select {
	case r := <-a:
		t.Fatalf("append acknowledged before its commit was synced: %+v", r)
	case <-time.After(30 * time.Millisecond):
	}
	_, snap := e.open("/s")
	if snap.Tail != 3 {
		t.Fatalf("snapshot tail %d while the append is unsynced, want 3", snap.Tail)
	}
	if got, _ := e.readAll("/s"); string(got) != "abc" {
		t.Fatalf("reader sees %q before the sync", got)
	}
	// A long-poll at the durable tail parks instead of reading ahead.
	w := e.waitAsync(opCtx(t), "/s", 3)
	waitersParked(t, 1)
	if _, err := e.s.Wait(opCtx(t), "/s", 6, time.Minute, nil); !errors.Is(err, ErrOffsetBeyondTail) {
		t.Fatalf("Wait at the unsynced tail: %v, want ErrOffsetBeyondTail", err)
	}
	// A producer retry of the unsynced append is not acknowledged either.
	dup := e.sendAppend("/s", AppendRequest{ContentType: ctText, Records: recs("def"), Producer: producer("p", 0, 0)})
	// Nor is a create that only confirms the stream (it would report an
	// offset nobody can read yet).
	c := make(chan Result, 1)
	h, _ := e.open("/s")
	if !h.send(e.s.root, &createMsg{req: CreateRequest{ContentType: ctText}, reply: c}) {
		t.Fatal("actor retired")
	}
	select {
	case r := <-dup:
		t.Fatalf("duplicate acknowledged before the original was synced: %+v", r)
	case r := <-c:
		t.Fatalf("create acknowledged before the pending append was synced: %+v", r)
	case <-time.After(30 * time.Millisecond):
	}

	ss.release()
	r := recv(t, a, "append")
	if r.Err != nil || r.NextOffset != 6 || r.Snapshot.Tail != 6 {
		t.Fatalf("append = %+v", r)
	}
	if d := recv(t, dup, "duplicate"); d.Err != nil || d.Outcome != Duplicate || d.NextOffset != 6 {
		t.Fatalf("duplicate = %+v", d)
	}
	if cr := recv(t, c, "create"); cr.Err != nil || cr.Outcome != Existed || cr.NextOffset != 6 {
		t.Fatalf("idempotent create = %+v", cr)
	}
	if got := recv(t, w, "wait"); got.err != nil || string(got.d.Body()) != "def" {
		t.Fatalf("Wait = %+v, %v", got.d, got.err)
	}
}

func TestWritesDuringCommitFormOneBatch(t *testing.T) {
	e, ss := newSlowEnv(t)
	e.createText("/s")
	ss.hold()
	first := e.sendAppend("/s", AppendRequest{ContentType: ctText, Records: recs("0;")})
	ss.awaitSync(t)
	// Everything arriving while the first commit syncs is validated against
	// the speculative state (so the producer's seqs see each other) and
	// committed together in the next batch.
	const n = 10
	replies := make([]<-chan Result, n)
	for i := range n {
		replies[i] = e.sendAppend("/s", AppendRequest{ContentType: ctText, Records: recs(fmt.Sprintf("%d;", i+1)), Producer: producer("p", 0, uint64(i))})
	}
	// The waiter parks at the durable tail (0): the first commit wakes it.
	w0 := e.waitAsync(opCtx(t), "/s", 0)
	waitersParked(t, 1)
	ss.release()

	r0 := recv(t, first, "first append")
	if r0.Err != nil || r0.NextOffset != 2 {
		t.Fatalf("first append = %+v", r0)
	}
	got := recv(t, w0, "wait")
	if got.err != nil || got.d.Start != 0 || got.d.End != 2 {
		t.Fatalf("first delta = %+v, %v", got.d, got.err)
	}
	var last Result
	for i, ch := range replies {
		r := recv(t, ch, "batched append")
		if r.Err != nil || r.Outcome != Appended || r.ProducerSeq != uint64(i) {
			t.Fatalf("batched append %d = %+v", i, r)
		}
		// All of the batch is durable when any of it is acknowledged.
		if r.Snapshot.Tail != 2+n*2+1 {
			t.Fatalf("batched append %d: snapshot tail %d, want the whole batch (%d)", i, r.Snapshot.Tail, 2+n*2+1)
		}
		last = r
	}
	// Waiting behind the durable tail is refused: that data is in storage.
	d, err := e.s.Wait(opCtx(t), "/s", 2, time.Minute, nil)
	if !errors.Is(err, ErrBehind) || d != nil {
		t.Fatalf("Wait behind: %v", err)
	}
	if all, _ := e.readAll("/s"); string(all) != "0;1;2;3;4;5;6;7;8;9;10;" || uint64(len(all)) != last.NextOffset {
		t.Fatalf("stream = %q, last ack %d", all, last.NextOffset)
	}
}

func TestSecondBatchDeltaHoldsAllRecords(t *testing.T) {
	e, ss := newSlowEnv(t)
	e.createText("/s")
	ss.hold()
	a := e.sendAppend("/s", AppendRequest{ContentType: ctText, Records: recs("a")})
	ss.awaitSync(t)
	b := e.sendAppend("/s", AppendRequest{ContentType: ctText, Records: recs("b")})
	c := e.sendAppend("/s", AppendRequest{ContentType: ctText, Records: recs("cd", "e")})
	sub, err := e.s.Subscribe(opCtx(t), "/s", 0) // the durable tail
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	defer sub.Close()
	ss.release()
	recv(t, a, "append a")
	recv(t, b, "append b")
	recv(t, c, "append c")
	d, ok := nextDelta(t, sub)
	if !ok || d.Start != 0 || d.End != 1 || string(d.Body()) != "a" {
		t.Fatalf("first delta = %+v", d)
	}
	d, ok = nextDelta(t, sub)
	if !ok || d.Start != 1 || d.End != 5 || len(d.Records) != 3 || string(d.Body()) != "bcde" {
		t.Fatalf("second batch delta = %+v", d)
	}
}
