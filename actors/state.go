package actors

import (
	"bytes"
	"maps"
	"slices"
	"time"

	"github.com/streamd/streamd/persistence"
	"github.com/streamd/streamd/protocol"
)

// streamState is what a stream actor validates requests against: the
// stream's metadata, tail and producer table including every accepted
// write, committed or not (speculative state), and which parts of it the
// next batch must write. Only the stream's actor touches it.
//
// Validation is pure: planAppend and planCreate read the state and a
// request and return a decision; nothing changes until the actor applies
// an accepted decision. Pipelined writes are therefore validated against
// each other in acceptance order, exactly as if each had been committed
// before the next arrived.
type streamState struct {
	exists    bool
	meta      persistence.Meta
	producers map[string]persistence.ProducerState
	tail      uint64

	// metaDirty, dirtyProducers and forgotten name what changed since the
	// last batch was built (forgotten: producers pruned to make room).
	metaDirty      bool
	dirtyProducers map[string]struct{}
	forgotten      []string
}

// stateLimits are the bounds one stream's state is kept within.
type stateLimits struct {
	// maxProducers bounds the producer table; producerTTL is how long a
	// producer must have been idle before it may be forgotten for a new
	// one (§5.2.1, "Producer State Cleanup").
	maxProducers int
	producerTTL  time.Duration
}

// expired reports whether the stream has expired at now, given the last
// recorded access (which readers move without the actor).
func (st *streamState) expired(now, lastAccess time.Time) bool {
	if !st.exists || st.meta.SoftDeleted {
		return false // a soft-deleted stream is collected, not expired
	}
	d, ok := st.meta.Expiry().Deadline(lastAccess)
	return ok && !now.Before(d)
}

// appendPlan is the decision on one append. Exactly one of err, answer or
// a write (the remaining fields) applies.
type appendPlan struct {
	// err refuses the request; nothing changes.
	err error
	// answer is given without writing anything (a duplicate, or closing a
	// closed stream), once every write accepted before it is durable.
	answer *Result

	records  [][]byte
	producer *protocol.Producer // nil: no producer headers
	next     persistence.ProducerState
	forget   []string // idle producers to forget to make room for producer
	seq      string   // new Stream-Seq, "" if none
	close    bool
}

// planAppend decides an append against st (§5.2, §5.2.1, §5.3). It does
// not modify st.
func planAppend(st *streamState, req AppendRequest, now, lastAccess time.Time, lim stateLimits) appendPlan {
	switch {
	case !st.exists || st.expired(now, lastAccess):
		return appendPlan{err: ErrNotFound}
	case st.meta.SoftDeleted:
		return appendPlan{err: ErrGone}
	}
	p := req.Producer
	if st.meta.Closed {
		cb := st.meta.ClosedBy
		switch {
		case p != nil && cb != nil && cb.ID == p.ID && cb.Epoch == p.Epoch && cb.Seq == p.Seq:
			return appendPlan{answer: &Result{Outcome: Duplicate, NextOffset: st.tail, Offsets: st.meta.OffsetSegments(), Closed: true, ProducerEpoch: p.Epoch, ProducerSeq: p.Seq}}
		case len(req.Records) == 0 && req.Close && p == nil:
			return appendPlan{answer: &Result{Outcome: AlreadyClosed, NextOffset: st.tail, Offsets: st.meta.OffsetSegments(), Closed: true}}
		}
		// A producer's close-only that is not the retry of the closing
		// request conflicts like any other producer write: the producer
		// must learn that its close did not take effect as sent (409, as
		// the reference server answers).
		return appendPlan{err: &ClosedError{Tail: st.tail, Offsets: st.meta.OffsetSegments()}}
	}
	if len(req.Records) > 0 && !protocol.SameContentType(req.ContentType, st.meta.ContentType) {
		return appendPlan{err: ErrContentTypeMismatch}
	}
	plan := appendPlan{records: req.Records, producer: p, seq: req.Seq, close: req.Close}
	if req.Unsplit && len(req.Records) > 0 && protocol.IsJSON(st.meta.ContentType) {
		// The handler judged the stream from a snapshot taken before the
		// path was deleted and recreated as a JSON stream: split the body
		// into messages here (rare; normally handlers do this work).
		msgs, err := protocol.SplitJSON(bytes.Join(req.Records, nil), false)
		if err != nil {
			return appendPlan{err: err}
		}
		plan.records = msgs
	}
	if p != nil {
		cur, known := st.producers[p.ID]
		used := now.Unix()
		switch {
		case !known && p.Seq != 0:
			return appendPlan{err: &SeqGapError{Expected: 0, Received: p.Seq}}
		case !known:
			plan.next = persistence.ProducerState{Epoch: p.Epoch, Used: used}
			if len(st.producers) >= lim.maxProducers {
				plan.forget = st.idleProducers(now, lim.producerTTL)
				if len(plan.forget) == 0 {
					return appendPlan{err: &LimitError{Limit: LimitProducers, Max: int64(lim.maxProducers)}}
				}
			}
		case p.Epoch < cur.Epoch:
			return appendPlan{err: &StaleEpochError{Current: cur.Epoch}}
		case p.Epoch > cur.Epoch && p.Seq != 0:
			return appendPlan{err: ErrEpochSeq}
		case p.Epoch > cur.Epoch:
			plan.next = persistence.ProducerState{Epoch: p.Epoch, Used: used}
		case p.Seq <= cur.LastSeq:
			return appendPlan{answer: &Result{Outcome: Duplicate, NextOffset: st.tail, Offsets: st.meta.OffsetSegments(), Closed: st.meta.Closed, ProducerEpoch: cur.Epoch, ProducerSeq: cur.LastSeq}}
		case p.Seq == cur.LastSeq+1:
			plan.next = persistence.ProducerState{Epoch: cur.Epoch, LastSeq: p.Seq, Used: used}
		default:
			return appendPlan{err: &SeqGapError{Expected: cur.LastSeq + 1, Received: p.Seq}}
		}
	}
	if req.Seq != "" && st.meta.LastSeq != "" && req.Seq <= st.meta.LastSeq {
		return appendPlan{err: ErrSeqRegression}
	}
	return plan
}

// idleProducers lists the producers that have not written for ttl. State
// written before last use was recorded counts from the stream's creation.
func (st *streamState) idleProducers(now time.Time, ttl time.Duration) []string {
	cutoff := now.Add(-ttl).Unix()
	var idle []string
	for id, ps := range st.producers {
		used := ps.Used
		if used == 0 {
			used = st.meta.CreatedAt.Unix()
		}
		if used <= cutoff {
			idle = append(idle, id)
		}
	}
	slices.Sort(idle)
	return idle
}

// sortedKeys returns m's keys in order (without sorting a single key).
func sortedKeys(m map[string]struct{}) []string {
	if len(m) == 1 {
		for k := range m {
			return []string{k}
		}
	}
	return slices.Sorted(maps.Keys(m))
}

// applyAppend applies an accepted plan (one without err or answer) and
// returns where its records start and the answer its writer gets once they
// are durable.
func (st *streamState) applyAppend(plan appendPlan, now time.Time) (start uint64, res Result) {
	start = st.tail
	for _, r := range plan.records {
		st.tail += uint64(len(r))
	}
	if plan.seq != "" {
		st.meta.LastSeq = plan.seq
		st.metaDirty = true
	}
	if p := plan.producer; p != nil {
		for _, id := range plan.forget {
			delete(st.producers, id)
			delete(st.dirtyProducers, id)
			st.forgotten = append(st.forgotten, id)
		}
		if st.producers == nil {
			st.producers = map[string]persistence.ProducerState{}
		}
		if st.meta.NoProducers { // committed with the producer state
			st.meta.NoProducers = false
			st.metaDirty = true
		}
		if st.dirtyProducers == nil {
			st.dirtyProducers = map[string]struct{}{}
		}
		st.producers[p.ID] = plan.next
		st.dirtyProducers[p.ID] = struct{}{}
	}
	if plan.close {
		st.meta.Closed = true
		if p := plan.producer; p != nil {
			st.meta.ClosedBy = &persistence.ProducerRef{ID: p.ID, Epoch: p.Epoch, Seq: p.Seq}
		}
		st.metaDirty = true
	}
	if st.meta.HasTTL {
		st.meta.LastAccess = now
		st.metaDirty = true
	}
	res = Result{Outcome: Appended, NextOffset: st.tail, Offsets: st.meta.OffsetSegments(), Closed: st.meta.Closed}
	if plan.producer != nil {
		res.ProducerEpoch, res.ProducerSeq = plan.next.Epoch, plan.next.LastSeq
	}
	return start, res
}

// createPlan is the decision on a create (§5.1).
type createPlan struct {
	err error
	// existed: an identical, live stream is there; answer 200.
	existed bool
	// replaces is the id of an expired incarnation the create removes (0:
	// none).
	replaces uint64
}

// planCreate decides a create against st. It does not modify st.
func planCreate(st *streamState, req CreateRequest, now, lastAccess time.Time) createPlan {
	if st.exists && st.meta.SoftDeleted {
		return createPlan{err: ErrGone} // the path stays taken while forks read it
	}
	if st.exists && !st.expired(now, lastAccess) {
		if !st.sameConfig(req) {
			return createPlan{err: ErrConfigMismatch}
		}
		return createPlan{existed: true}
	}
	if st.exists {
		return createPlan{replaces: st.meta.ID}
	}
	return createPlan{}
}

func (st *streamState) sameConfig(req CreateRequest) bool {
	return protocol.SameContentType(req.ContentType, st.meta.ContentType) &&
		req.Expiry.HasTTL == st.meta.HasTTL && req.Expiry.TTL == st.meta.TTL &&
		req.Expiry.ExpiresAt.Equal(st.meta.ExpiresAt) &&
		req.Closed == st.meta.Closed && sameFork(req.Fork, st.meta.Fork)
}

// sameFork reports whether two fork points are the same request's (§4.2:
// idempotent fork creation compares Stream-Forked-From and the offsets).
func sameFork(a, b *persistence.ForkInfo) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.SourcePath == b.SourcePath && a.Offset == b.Offset && a.SubOffset == b.SubOffset
}

// applyCreate makes st a new incarnation with id holding req's records (a
// fork's after its inherited data), and returns the answer its creator gets
// once it is durable and where the records start.
func (st *streamState) applyCreate(req CreateRequest, id uint64, now time.Time) (Result, uint64) {
	*st = streamState{
		exists: true,
		meta: persistence.Meta{
			ID: id, ContentType: req.ContentType, TTL: req.Expiry.TTL, HasTTL: req.Expiry.HasTTL,
			ExpiresAt: req.Expiry.ExpiresAt, CreatedAt: now, LastAccess: now, Closed: req.Closed,
			NoProducers: true, Fork: req.Fork, Segmented: true,
		},
		metaDirty: true,
	}
	if req.Fork != nil {
		st.tail = req.Fork.Base
	}
	start := st.tail
	for _, r := range req.Records {
		st.tail += uint64(len(r))
	}
	return Result{Outcome: Created, NextOffset: st.tail, Offsets: st.meta.OffsetSegments(), Closed: st.meta.Closed}, start
}

// applyDelete removes the stream from st.
func (st *streamState) applyDelete() { *st = streamState{} }

// changed reports whether the state holds changes no batch has written.
func (st *streamState) changed() bool {
	return st.metaDirty || len(st.dirtyProducers) > 0 || len(st.forgotten) > 0
}

// writeChanges puts the state's unwritten changes into b (metadata through
// putMeta, which keeps the expiry index) and marks them written.
func (st *streamState) writeChanges(b *persistence.Batch, putMeta func(*persistence.Batch, *persistence.Meta) error) error {
	if st.exists && st.metaDirty {
		if err := putMeta(b, &st.meta); err != nil {
			return err
		}
	}
	// Deletions first: a producer forgotten and then seen again within
	// one batch must end up stored.
	for _, id := range st.forgotten {
		if err := b.DeleteProducer(st.meta.ID, id); err != nil {
			return err
		}
	}
	// In id order, so equal state changes make byte-identical batches.
	for _, id := range sortedKeys(st.dirtyProducers) {
		if err := b.PutProducer(st.meta.ID, id, st.producers[id]); err != nil {
			return err
		}
	}
	st.metaDirty = false
	clear(st.dirtyProducers)
	st.forgotten = st.forgotten[:0]
	return nil
}

// durable is the stream's state as Store.Load would return it; valid only
// while nothing is pending or in flight.
func (st *streamState) durable() *persistence.StreamState {
	if !st.exists {
		return nil
	}
	return &persistence.StreamState{Meta: st.meta, Tail: st.tail, Producers: st.producers}
}

// snapshot is the state as readers will see it once everything accepted so
// far is durable.
func (st *streamState) snapshot() *Snapshot {
	if !st.exists {
		return &Snapshot{}
	}
	snap := &Snapshot{
		Exists:      true,
		ID:          st.meta.ID,
		ContentType: st.meta.ContentType,
		JSON:        protocol.IsJSON(st.meta.ContentType),
		Expiry:      st.meta.Expiry(),
		Closed:      st.meta.Closed,
		Tail:        st.tail,
		SoftDeleted: st.meta.SoftDeleted,
		Offsets:     st.meta.OffsetSegments(),
	}
	if f := st.meta.Fork; f != nil {
		snap.Chain = f.Chain
	}
	if snap.SoftDeleted {
		snap.Expiry = protocol.Expiry{} // deleted already: collected, not expired
	}
	return snap
}
