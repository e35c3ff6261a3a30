package persistence

import (
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// EngineStats is a summary of Pebble's own metrics (pebble.DB.Metrics),
// for monitoring. Counters are totals since Open; the rest are levels now.
type EngineStats struct {
	WALBytesWritten uint64 // counter: bytes written to the write-ahead log
	WALFiles        int64
	WALSize         uint64 // live WAL files on disk, in bytes
	Flushes         int64  // counter: memtable flushes
	Compactions     int64  // counter
	CompactionDebt  uint64 // bytes Pebble estimates it must compact to settle
	// CompactionsRunning is the number of compactions in progress.
	CompactionsRunning int64
	L0Files            int64 // files in level 0; many slow reads and stall writes
	L0Sublevels        int32
	ReadAmp            int // files a point read may consult
	MemTableBytes      uint64
	MemTables          int64
	BlockCacheBytes    int64
	BlockCacheHits     int64 // counter
	BlockCacheMisses   int64 // counter
	DiskSpaceBytes     uint64
}

// EngineStats returns Pebble's metrics now; ErrClosed once the store is
// closed. It takes a few microseconds (Pebble gathers them under its own
// locks), so call it per scrape, not per request.
func (s *Store) EngineStats() (EngineStats, error) {
	if err := s.acquire(); err != nil {
		return EngineStats{}, err
	}
	defer s.mu.RUnlock()
	m := s.db.Metrics()
	return EngineStats{
		WALBytesWritten:    m.WAL.BytesWritten,
		WALFiles:           m.WAL.Files,
		WALSize:            m.WAL.PhysicalSize,
		Flushes:            m.Flush.Count,
		Compactions:        m.Compact.Count,
		CompactionDebt:     m.Compact.EstimatedDebt,
		CompactionsRunning: m.Compact.NumInProgress,
		L0Files:            m.Levels[0].TablesCount,
		L0Sublevels:        m.Levels[0].Sublevels,
		ReadAmp:            m.ReadAmp(),
		MemTableBytes:      m.MemTable.Size,
		MemTables:          m.MemTable.Count,
		BlockCacheBytes:    m.BlockCache.Size,
		BlockCacheHits:     m.BlockCache.Hits,
		BlockCacheMisses:   m.BlockCache.Misses,
		DiskSpaceBytes:     m.DiskSpaceUsage(),
	}, nil
}

// healthKey is written by CheckWritable; nothing reads it.
var healthKey = []byte{prefixSystem, 'h', 'e', 'a', 'l', 't', 'h'}

// writeCheckInterval is how long a CheckWritable result is reused, so
// frequent readiness probes cost at most one synced write per interval.
const writeCheckInterval = time.Second

// writeCheck remembers the last CheckWritable result.
type writeCheck struct {
	mu   sync.Mutex // held across the probe: one probe write at a time
	at   time.Time
	last error
}

// CheckWritable reports whether the store accepts durable writes: it
// commits a small synced batch (the same path every acknowledged write
// takes), so a full or read-only disk, or a closed store, shows as an
// error. A result is reused for a second.
func (s *Store) CheckWritable() error {
	if err := s.acquire(); err != nil {
		return err // closed: no probe, and no stale result
	}
	s.mu.RUnlock()
	c := &s.writeCheck
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.at.IsZero() && time.Since(c.at) < writeCheckInterval {
		return c.last
	}
	c.last = s.probeWrite()
	c.at = time.Now()
	return c.last
}

func (s *Store) probeWrite() error {
	if err := s.acquire(); err != nil {
		return err
	}
	defer s.mu.RUnlock()
	var v [8]byte
	binary.BigEndian.PutUint64(v[:], uint64(time.Now().UnixNano()))
	if err := s.db.Set(healthKey, v[:], pebble.Sync); err != nil {
		return fmt.Errorf("write check: %w", err)
	}
	return nil
}
