package actors

import "sync/atomic"

// counters are totals kept for metrics. Each is a plain atomic add made
// once per commit or per live reader, never per waiter woken, so keeping
// them costs the write path nothing measurable.
type counters struct {
	commits, appends, appendMessages, appendBytes atomic.Uint64
	created, deleted, expired                     atomic.Uint64
	// subscribersBehind counts SSE subscribers dropped from the live feed
	// because they fell behind (SubscriberBuffer, SubscriberBufferBytes).
	subscribersBehind atomic.Uint64
	// sseReaders counts open SSE responses (LiveSlots held).
	sseReaders atomic.Int64
}

// Counters are stream activity totals since Start, and live reader
// gauges, for metrics.
type Counters struct {
	// Commits counts synced batch commits; Appends the append requests
	// they acknowledged, with their messages (records) and bytes.
	Commits, Appends, AppendMessages, AppendBytes uint64
	// Created, Deleted and Expired count stream incarnations created
	// (forks included), deleted by a client, and deleted at expiry.
	Created, Deleted, Expired uint64
	// SubscribersBehind counts SSE subscribers dropped from the live feed
	// for falling behind (they continue from storage).
	SubscribersBehind uint64
	// LongPollWaiters and SSEReaders are the live readers now: waiting
	// long-polls and open SSE responses.
	LongPollWaiters, SSEReaders int64
}

// Counters returns the current Counters; safe at any time.
func (s *Streams) Counters() Counters {
	sse := s.counters.sseReaders.Load()
	return Counters{
		Commits: s.counters.commits.Load(), Appends: s.counters.appends.Load(),
		AppendMessages: s.counters.appendMessages.Load(), AppendBytes: s.counters.appendBytes.Load(),
		Created: s.counters.created.Load(), Deleted: s.counters.deleted.Load(), Expired: s.counters.expired.Load(),
		SubscribersBehind: s.counters.subscribersBehind.Load(),
		// liveReaders counts both kinds; the two loads are not atomic
		// together, hence the clamp.
		LongPollWaiters: max(s.liveReaders.Load()-sse, 0),
		SSEReaders:      sse,
	}
}

// countCommit counts a successful commit's appends and lifecycle events,
// and reports each append's commit latency if that is observed.
func (s *Streams) countCommit(d *commitDone) {
	var appends, msgs, bytes uint64
	observe := s.cfg.ObserveCommitLatency
	for _, op := range d.ops {
		if op.kind == opAppend && op.reply != nil {
			appends++
			msgs += uint64(len(op.records))
			for _, r := range op.records {
				bytes += uint64(len(r))
			}
			if observe != nil && !op.arrived.IsZero() {
				observe(d.synced.Sub(op.arrived))
			}
		}
		if op.event == nil {
			continue
		}
		switch op.event.Type {
		case EventCreated:
			s.counters.created.Add(1)
		case EventDeleted:
			s.counters.deleted.Add(1)
		case EventExpired:
			s.counters.expired.Add(1)
		}
	}
	s.counters.commits.Add(1)
	if appends > 0 {
		s.counters.appends.Add(appends)
		s.counters.appendMessages.Add(msgs)
		s.counters.appendBytes.Add(bytes)
	}
}
