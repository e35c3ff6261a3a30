package persistence

import (
	"errors"
	"fmt"

	"github.com/cockroachdb/pebble/v2"
)

// signingKeyKey holds the seed of the server's webhook signing key.
var signingKeyKey = []byte{prefixSystem, 's', 'i', 'g', 'n', 'i', 'n', 'g'}

// SigningKeySeed returns the stored seed of the webhook signing key, or
// nil when none was stored yet.
func (s *Store) SigningKeySeed() ([]byte, error) {
	if err := s.acquire(); err != nil {
		return nil, err
	}
	defer s.mu.RUnlock()
	v, closer, err := s.db.Get(signingKeyKey)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the signing key: %w", err)
	}
	defer closer.Close()
	return append([]byte(nil), v...), nil
}

// PutSigningKeySeed stores the seed of the webhook signing key.
func (b *Batch) PutSigningKeySeed(seed []byte) error {
	return b.b.Set(signingKeyKey, seed, nil)
}
