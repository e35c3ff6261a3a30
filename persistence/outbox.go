package persistence

import (
	"encoding/binary"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// The outbox holds lifecycle events (a stream created, closed, deleted,
// expired) waiting to be appended to the registry stream. An event is put
// in the batch of the change it records, by the changed stream's actor;
// the registry stream's actor later appends it to its own log and deletes
// it in one batch. Keys order events by a sequence number the actors draw
// when they build the batch (see actors.Streams.nextEventSeq), so an event
// that happened after another, as its client saw it, sorts after it:
// 'o' | seq | stream id | kind -> event. (Keys written before the sequence
// existed, 'o' | stream id | kind, sort first and drain the same way.)

const prefixOutbox = 'o'

// OutboxEntry is one event waiting in the outbox.
type OutboxEntry struct {
	Key   []byte
	Event []byte
}

// PutOutbox records an event of stream id, of kind, with sequence number
// seq (ordering events), for the registry.
func (b *Batch) PutOutbox(seq, id uint64, kind byte, event []byte) error {
	return b.b.Set(outboxKey(seq, id, kind), event, nil)
}

// LastOutboxSeq returns the highest sequence number of the events waiting
// in the outbox, 0 if none.
func (s *Store) LastOutboxSeq() (uint64, error) {
	if err := s.acquire(); err != nil {
		return 0, err
	}
	defer s.mu.RUnlock()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixOutbox}, UpperBound: []byte{prefixOutbox + 1}})
	if err != nil {
		return 0, fmt.Errorf("read the outbox: %w", err)
	}
	defer it.Close()
	if !it.Last() {
		return 0, it.Error()
	}
	if k := it.Key(); len(k) == outboxKeyLen {
		return binary.BigEndian.Uint64(k[1:]), nil
	}
	return 0, nil
}

// DeleteOutbox removes an event once it is in the registry.
func (b *Batch) DeleteOutbox(key []byte) error { return b.b.Delete(key, nil) }

// Outbox returns up to limit waiting events, in sequence order.
func (s *Store) Outbox(limit int) ([]OutboxEntry, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: []byte{prefixOutbox}, UpperBound: []byte{prefixOutbox + 1}})
	if err != nil {
		return nil, fmt.Errorf("read the outbox: %w", err)
	}
	defer it.Close()
	var out []OutboxEntry
	for ok := it.First(); ok && len(out) < limit; ok = it.Next() {
		v, err := it.ValueAndErr()
		if err != nil {
			return nil, fmt.Errorf("read the outbox: %w", err)
		}
		out = append(out, OutboxEntry{Key: append([]byte(nil), it.Key()...), Event: append([]byte(nil), v...)})
	}
	if err := it.Error(); err != nil {
		return nil, fmt.Errorf("read the outbox: %w", err)
	}
	return out, nil
}

const outboxKeyLen = 18

func outboxKey(seq, id uint64, kind byte) []byte {
	k := make([]byte, outboxKeyLen)
	k[0] = prefixOutbox
	binary.BigEndian.PutUint64(k[1:], seq)
	binary.BigEndian.PutUint64(k[9:], id)
	k[17] = kind
	return k
}
