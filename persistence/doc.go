// Package persistence stores every stream's log, metadata and producer state
// in one Pebble database, on disk or on Pebble's in-memory filesystem.
//
// Concurrency contract: Store is safe for concurrent use. Writes for one
// stream must come from a single goroutine at a time (its stream actor), which
// is what makes offsets and producer state consistent; reads (ReadBytes,
// ReadMessages, Load) may run concurrently with anything. A Batch is owned by
// one goroutine until Commit returns.
//
// Key layout (all integers big-endian so byte order is numeric order):
//
//	'm' path                  -> Meta (JSON)           one per live stream
//	'd' id(8) position(8)     -> record bytes          the log
//	'p' id(8) producerID      -> ProducerState (JSON)  idempotent producers
//	's' "ids"                 -> uint64                stream id high-water mark
//	's' "health"              -> uint64                last write check (CheckWritable)
//	's' "signing"             -> Ed25519 seed          webhook signing key (SigningKeySeed)
//
// A stream's data is keyed by its internal id, not its path: deleting a path
// and creating it again yields a new id, so the new stream can never serve the
// old stream's bytes, and a future fork can reference its source's records by
// (id, position range) without copying them.
package persistence
