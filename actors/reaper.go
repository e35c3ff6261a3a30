package actors

import (
	"context"
	"errors"
	"time"

	"github.com/streamd/streamd/persistence"
)

const (
	// reapBatch bounds the entries handed to actors per reaper pass.
	reapBatch = 1000
	// reapScanLimit bounds the entries a pass reads, skipped ones included.
	reapScanLimit = 20 * reapBatch
	// reapRetryAfter is how long an entry whose stream could not be
	// handled is skipped before the reaper tries it again.
	reapRetryAfter = time.Minute
	// maxSkipped bounds the entries remembered as skipped; beyond it a
	// failing entry is simply tried again on every pass.
	maxSkipped = 10_000
	// sweepInterval is how often soft-deleted streams are offered
	// collection (and once at start), in case the message that should have
	// triggered it was lost to a crash or shutdown.
	sweepInterval = 10 * time.Minute
)

// reaper periodically hands expiry index entries that came due to their
// stream actors (spawning passivated ones), so expired streams are deleted
// and their space reclaimed even if no request touches them again. There
// is no timer per stream kept in memory for this.
//
// One bad stream must not stop reaping: an entry whose stream fails to
// load (or whose actor cannot be reached) is logged and skipped for
// reapRetryAfter, and the pass reads on past skipped entries, so streams
// that really expired are still reaped on time.
type reaper struct {
	s         *Streams
	skipped   map[uint64]time.Time // stream id -> when to try again
	mem       memoryReleaser
	lastSweep time.Time
}

func (s *Streams) reap() {
	defer close(s.reaperDone)
	r := &reaper{s: s, skipped: map[uint64]time.Time{}}
	t := time.NewTicker(s.cfg.ReapInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stopReaper:
			return
		case <-t.C:
		}
		s.maybeReleaseMemory(&r.mem)
		r.pass(s.cfg.Now())
		if time.Since(r.lastSweep) >= sweepInterval {
			r.lastSweep = time.Now()
			r.sweepSoftDeleted()
		}
	}
}

// sweepSoftDeleted offers every soft-deleted stream collection: its actor
// collects it if no fork reads it any more.
func (r *reaper) sweepSoftDeleted() {
	var after uint64
	for {
		entries, err := r.s.store.SoftDeleted(after, reapBatch)
		if err != nil {
			r.s.log.Warn("scan soft-deleted streams", "err", err)
			return
		}
		for _, e := range entries {
			after = e.ID
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			h, err := r.s.locate(ctx, e.Path)
			cancel()
			if errors.Is(err, ErrShuttingDown) {
				return
			}
			if err != nil {
				r.s.log.Warn("cannot offer a soft-deleted stream collection", "path", e.Path, "err", err)
				continue
			}
			h.send(r.s.root, &collectMsg{id: e.ID, to: toldTo{s: r.s, path: e.Path}})
		}
		if len(entries) < reapBatch {
			return
		}
	}
}

// pass hands up to reapBatch due entries to their actors.
func (r *reaper) pass(now time.Time) {
	r.forgetSkipped(now)
	var after *persistence.ExpiryEntry
	handed, scanned := 0, 0
	for handed < reapBatch && scanned < reapScanLimit {
		entries, err := r.s.store.ExpiredEntries(now, after, reapBatch)
		if err != nil {
			r.s.log.Warn("scan expiry index", "err", err)
			return
		}
		for i := range entries {
			e := entries[i]
			after = &entries[i]
			scanned++
			if until, ok := r.skipped[e.ID]; ok && now.Before(until) {
				continue
			}
			if err := r.hand(e); err != nil {
				if errors.Is(err, ErrShuttingDown) {
					return
				}
				r.skip(e, now, err)
				continue
			}
			if handed++; handed == reapBatch {
				return
			}
		}
		if len(entries) < reapBatch {
			return
		}
	}
}

// hand gives e to its stream's actor.
func (r *reaper) hand(e persistence.ExpiryEntry) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	h, err := r.s.locate(ctx, e.Path)
	if err != nil {
		return err
	}
	h.send(r.s.root, &reapMsg{entry: e})
	return nil
}

// skip leaves e alone for reapRetryAfter.
func (r *reaper) skip(e persistence.ExpiryEntry, now time.Time, err error) {
	if _, known := r.skipped[e.ID]; !known {
		r.s.log.Warn("cannot reap stream; skipping it for now", "path", e.Path, "retry_in", reapRetryAfter, "err", err)
	}
	if len(r.skipped) < maxSkipped {
		r.skipped[e.ID] = now.Add(reapRetryAfter)
	}
}

// forgetSkipped drops skip records that have run out, so the next failure
// of such an entry is logged again.
func (r *reaper) forgetSkipped(now time.Time) {
	for id, until := range r.skipped {
		if !now.Before(until.Add(reapRetryAfter)) {
			delete(r.skipped, id)
		}
	}
}
