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
// it in one batch. Keys order events of a stream incarnation by kind:
// 'o' | stream id | kind -> event.

const prefixOutbox = 'o'

// OutboxEntry is one event waiting in the outbox.
type OutboxEntry struct {
	Key   []byte
	Event []byte
}

// PutOutbox records an event of stream id, of kind (ordering the events of
// one incarnation), for the registry.
func (b *Batch) PutOutbox(id uint64, kind byte, event []byte) error {
	return b.b.Set(outboxKey(id, kind), event, nil)
}

// DeleteOutbox removes an event once it is in the registry.
func (b *Batch) DeleteOutbox(key []byte) error { return b.b.Delete(key, nil) }

// Outbox returns up to limit waiting events, oldest stream first.
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

func outboxKey(id uint64, kind byte) []byte {
	k := make([]byte, 10)
	k[0] = prefixOutbox
	binary.BigEndian.PutUint64(k[1:], id)
	k[9] = kind
	return k
}
