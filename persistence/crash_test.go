package persistence

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// crashPath is the stream the power-loss tests write.
const crashPath = "crash/stream"

// crashWorkload is a planned sequence of batches for one stream. Batch k
// (1-based) appends recs[k-1] and records k in both the metadata's LastSeq
// and the producer's LastSeq, so a recovered state shows which batches
// survived and whether each survived whole.
type crashWorkload struct {
	id   uint64
	recs [][]byte
}

func newCrashWorkload(rng *rand.Rand, id uint64, n int) *crashWorkload {
	w := &crashWorkload{id: id}
	for i := 0; i < n; i++ {
		// Sizes up to a few WAL blocks so records straddle 4 KiB pages.
		w.recs = append(w.recs, randBytes(rng, 1+rng.IntN(9000)))
	}
	return w
}

// commitBatch commits batch k (1-based) of the workload.
func (w *crashWorkload) commitBatch(s *Store, k int) error {
	pos := totalLen(w.recs[:k-1])
	return tryCommit(s, func(b *Batch) error {
		m := Meta{ID: w.id, ContentType: "application/octet-stream", LastSeq: strconv.Itoa(k)}
		if err := b.PutMeta(crashPath, &m); err != nil {
			return err
		}
		if err := b.Append(w.id, pos, w.recs[k-1]); err != nil {
			return err
		}
		return b.PutProducer(w.id, "writer", ProducerState{Epoch: 1, LastSeq: uint64(k)})
	})
}

// checkRecovered opens a crash image and checks that it holds exactly the
// first k batches for some k in [lo, hi], each batch whole, with no
// corrupted or foreign bytes. It returns k.
func (w *crashWorkload) checkRecovered(t *testing.T, fs vfs.FS, lo, hi int) int {
	t.Helper()
	s, err := Open(Options{FS: fs, CacheSize: testCacheSize})
	if err != nil {
		t.Fatalf("Open after crash: %v", err)
	}
	defer func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close after crash: %v", err)
		}
	}()
	st, err := s.Load(crashPath)
	if err != nil {
		t.Fatalf("Load after crash: %v", err)
	}
	k := 0
	if st != nil {
		k, err = strconv.Atoi(st.Meta.LastSeq)
		if err != nil || k < 1 || k > len(w.recs) {
			t.Fatalf("recovered metadata is not one that was written: %+v", st.Meta)
		}
		if st.Meta.ID != w.id {
			t.Fatalf("recovered id %d; want %d", st.Meta.ID, w.id)
		}
		if want := totalLen(w.recs[:k]); st.Tail != want {
			t.Fatalf("metadata of batch %d survived with tail %d; want %d (batch torn)", k, st.Tail, want)
		}
		if ps, ok := st.Producers["writer"]; !ok || ps.LastSeq != uint64(k) || len(st.Producers) != 1 {
			t.Fatalf("metadata of batch %d survived with producers %+v (batch torn)", k, st.Producers)
		}
	}
	if k < lo || k > hi {
		t.Fatalf("recovered %d batches; acknowledged %d, attempted at most %d", k, lo, hi)
	}
	tail := totalLen(w.recs[:k])
	// Read past the tail too: nothing beyond the last whole batch may exist.
	got := readBytes(t, s, w.id, 0, tail+1<<20, 1<<30)
	if !bytes.Equal(got, concat(w.recs[:k])) {
		t.Fatalf("recovered %d bytes after %d batches differ from the %d written", len(got), k, tail)
	}
	msgs, end, err := s.ReadMessages(w.id, 0, tail+1<<20, 1<<30)
	if err != nil || end != tail || !sameRecords(msgs, w.recs[:k]) {
		t.Fatalf("recovered records: %d records, end %d, %v; want %d records, end %d", len(msgs), end, err, k, tail)
	}
	// Ids allocated before the crash are never handed out again.
	if id := allocate(t, s); id <= w.id {
		t.Fatalf("AllocateID after crash = %d; want > %d", id, w.id)
	}
	return k
}

var unsyncedPercents = []int{0, 50, 100}

// TestPowerLossBetweenCommits: every Commit that returned was synced, so a
// power loss right after it keeps it, whatever happens to unsynced data.
func TestPowerLossBetweenCommits(t *testing.T) {
	for _, pct := range unsyncedPercents {
		for seed := uint64(1); seed <= 4; seed++ {
			t.Run(fmt.Sprintf("unsynced=%d/seed=%d", pct, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, uint64(pct)))
				fs := vfs.NewCrashableMem()
				h := newHarness(t, Options{FS: fs, CacheSize: testCacheSize})
				s := h.open()
				w := newCrashWorkload(rng, allocate(t, s), 60)
				crash := func(acked int) {
					t.Helper()
					clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(seed, uint64(acked)))})
					if k := w.checkRecovered(t, clone, acked, acked); k != acked {
						t.Fatalf("recovered %d batches; want %d", k, acked)
					}
				}
				crash(0)
				for k := 1; k <= len(w.recs); k++ {
					if err := w.commitBatch(s, k); err != nil {
						t.Fatal(err)
					}
					if k == len(w.recs) || rng.IntN(5) == 0 {
						crash(k)
					}
				}
			})
		}
	}
}

// TestPowerLossDuringCommits crashes at arbitrary moments while a writer
// commits: the image holds every batch acknowledged before the crash, no
// batch not yet started, and only whole batches in order.
func TestPowerLossDuringCommits(t *testing.T) {
	for _, pct := range unsyncedPercents {
		for seed := uint64(1); seed <= 3; seed++ {
			t.Run(fmt.Sprintf("unsynced=%d/seed=%d", pct, seed), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(seed, 100+uint64(pct)))
				fs := vfs.NewCrashableMem()
				h := newHarness(t, Options{FS: fs, CacheSize: testCacheSize})
				s := h.open()
				w := newCrashWorkload(rng, allocate(t, s), 150)

				var acked, started atomic.Int64
				writerErr := make(chan error, 1)
				go func() {
					for k := 1; k <= len(w.recs); k++ {
						started.Store(int64(k))
						if err := w.commitBatch(s, k); err != nil {
							writerErr <- err
							return
						}
						acked.Store(int64(k))
					}
					writerErr <- nil
				}()

				type image struct {
					fs     *vfs.MemFS
					lo, hi int
				}
				var images []image
				for i := 0; int(acked.Load()) < len(w.recs) && len(images) < 25; i++ {
					// Spread crash points over the run.
					time.Sleep(time.Duration(rng.IntN(400)) * time.Microsecond)
					lo := int(acked.Load())
					clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: pct, RNG: rand.New(rand.NewPCG(seed, uint64(i)))})
					hi := int(started.Load())
					images = append(images, image{clone, lo, hi})
				}
				if err := <-writerErr; err != nil {
					t.Fatal(err)
				}
				if len(images) == 0 {
					t.Fatal("no crash images taken")
				}
				for _, im := range images {
					k := w.checkRecovered(t, im.fs, im.lo, im.hi)
					t.Logf("crash image: %d acknowledged, %d started, %d recovered", im.lo, im.hi, k)
				}
			})
		}
	}
}

// TestPowerLossKeepsAllocatedIDs: an id handed out before a crash (and
// possibly used as a stream's data key) is never handed out after it.
func TestPowerLossKeepsAllocatedIDs(t *testing.T) {
	for _, n := range []int{1, 1023, 1024, 1025, 3000} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			fs := vfs.NewCrashableMem()
			h := newHarness(t, Options{FS: fs, CacheSize: testCacheSize})
			s := h.open()
			var max uint64
			for i := 0; i < n; i++ {
				max = allocate(t, s)
			}
			clone := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
			s2, err := Open(Options{FS: clone, CacheSize: testCacheSize})
			if err != nil {
				t.Fatal(err)
			}
			defer s2.Close()
			if id := allocate(t, s2); id <= max {
				t.Fatalf("after crash AllocateID = %d; %d was already handed out", id, max)
			}
		})
	}
}

// TestConcurrentReadersDuringCommits: readers bounded by a tail learned
// after Commit returned see exactly the committed bytes while the stream's
// writer keeps committing.
func TestConcurrentReadersDuringCommits(t *testing.T) {
	// byteAt is the content of every position of the stream, so readers can
	// check what they got without sharing the writer's state.
	byteAt := func(pos uint64) byte { return byte(pos*131 + pos>>9) }

	forEachFS(t, func(t *testing.T, h *harness) {
		s := h.open()
		id := allocate(t, s)
		const batches = 300
		var durable atomic.Uint64 // what the stream actor would publish
		var boundaries sync.Map   // record start positions, published before durable moves past them
		done := make(chan struct{})
		errs := make(chan error, 16)

		go func() {
			defer close(done)
			rng := rand.New(rand.NewPCG(1, 2))
			tail := uint64(0)
			for i := 0; i < batches; i++ {
				var recStarts []uint64
				err := tryCommit(s, func(b *Batch) error {
					for j := rng.IntN(4); j >= 0; j-- {
						n := 1 + rng.IntN(2000)
						rec := make([]byte, n)
						for k := range rec {
							rec[k] = byteAt(tail + uint64(k))
						}
						if err := b.Append(id, tail, rec); err != nil {
							return err
						}
						recStarts = append(recStarts, tail)
						tail += uint64(n)
					}
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
				for _, p := range recStarts {
					boundaries.Store(p, true)
				}
				durable.Store(tail)
			}
		}()

		var wg sync.WaitGroup
		for r := 0; r < 4; r++ {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(r), 99))
				for {
					select {
					case <-done:
						return
					default:
					}
					upto := durable.Load()
					from := rng.Uint64N(upto + 1)
					max := 1 + rng.IntN(8000)
					got, err := s.ReadBytes(id, from, upto, max)
					if err != nil {
						errs <- err
						return
					}
					if want := min(upto-from, uint64(max)); uint64(len(got)) != want {
						errs <- fmt.Errorf("ReadBytes(%d, %d, %d) returned %d bytes; want %d", from, upto, max, len(got), want)
						return
					}
					for i, c := range got {
						if c != byteAt(from+uint64(i)) {
							errs <- fmt.Errorf("ReadBytes(%d, %d): byte at %d is %d; want %d", from, upto, from+uint64(i), c, byteAt(from+uint64(i)))
							return
						}
					}
				}
			})
		}
		// A catch-up reader pages through whole records up to the tail it
		// learned, as a JSON-mode read does.
		wg.Go(func() {
			for {
				select {
				case <-done:
					return
				default:
				}
				upto := durable.Load()
				for from := uint64(0); from < upto; {
					msgs, end, err := s.ReadMessages(id, from, upto, 4096)
					if err != nil {
						errs <- fmt.Errorf("ReadMessages(%d, %d): %w", from, upto, err)
						return
					}
					if len(msgs) == 0 || end > upto {
						errs <- fmt.Errorf("ReadMessages(%d, %d) = %d records, end %d", from, upto, len(msgs), end)
						return
					}
					pos := from
					for _, m := range msgs {
						if _, ok := boundaries.Load(pos); !ok {
							errs <- fmt.Errorf("record returned at %d, which is not a record start", pos)
							return
						}
						for i, c := range m {
							if c != byteAt(pos+uint64(i)) {
								errs <- fmt.Errorf("ReadMessages: byte at %d differs", pos+uint64(i))
								return
							}
						}
						pos += uint64(len(m))
					}
					if pos != end {
						errs <- fmt.Errorf("ReadMessages(%d, %d) end %d; records end at %d", from, upto, end, pos)
						return
					}
					from = end
				}
			}
		})
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		upto := durable.Load()
		got := readBytes(t, s, id, 0, upto, int(upto))
		for i, c := range got {
			if c != byteAt(uint64(i)) {
				t.Fatalf("final read: byte at %d differs", i)
			}
		}
		s = h.reopen()
		if got := readBytes(t, s, id, 0, upto+100, int(upto)+100); uint64(len(got)) != upto {
			t.Fatalf("after reopen %d bytes; want %d", len(got), upto)
		}
	})
}

// TestConcurrentWritersOnDifferentStreams: each stream has its own writer,
// so commits of different streams overlap and share fsyncs.
func TestConcurrentWritersOnDifferentStreams(t *testing.T) {
	forEachFS(t, func(t *testing.T, h *harness) {
		s := h.open()
		const writers, batches = 6, 60
		recs := make([][][]byte, writers)
		ids := make([]uint64, writers)
		for i := range ids {
			ids[i] = allocate(t, s)
		}
		errs := make(chan error, writers)
		var wg sync.WaitGroup
		for wi := range writers {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(wi), 5))
				id, tail := ids[wi], uint64(0)
				path := fmt.Sprintf("w/%d", wi)
				for k := 1; k <= batches; k++ {
					rec := randBytes(rng, 1+rng.IntN(600))
					err := tryCommit(s, func(b *Batch) error {
						if err := b.PutMeta(path, &Meta{ID: id, LastSeq: strconv.Itoa(k)}); err != nil {
							return err
						}
						if err := b.PutProducer(id, "p", ProducerState{LastSeq: uint64(k)}); err != nil {
							return err
						}
						return b.Append(id, tail, rec)
					})
					if err != nil {
						errs <- err
						return
					}
					tail += uint64(len(rec))
					recs[wi] = append(recs[wi], rec)
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		check := func(s *Store) {
			t.Helper()
			for wi, id := range ids {
				st := load(t, s, fmt.Sprintf("w/%d", wi))
				want := &StreamState{Meta: Meta{ID: id, LastSeq: strconv.Itoa(batches)}, Tail: totalLen(recs[wi]), Producers: map[string]ProducerState{"p": {LastSeq: batches}}}
				if !sameState(st, want) {
					t.Fatalf("writer %d: Load = %+v; want %+v", wi, st, want)
				}
				if got := readBytes(t, s, id, 0, st.Tail, int(st.Tail)); !bytes.Equal(got, concat(recs[wi])) {
					t.Fatalf("writer %d: data differs", wi)
				}
			}
		}
		check(s)
		check(h.reopen())
	})
}
