package persistence

import (
	"strings"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// SyncStats counts the file syncs Pebble issued since Open. WAL syncs are
// the ones acknowledged writes wait for, so appends per WAL sync measures
// how well concurrent writers share fsyncs (group commit).
type SyncStats struct {
	WAL uint64 // syncs of write-ahead log files
	All uint64 // every file and directory sync, WAL included
	// WALTime is the time spent in WAL syncs; WALTime / WAL is the average
	// sync latency every acknowledged write waits for at least once.
	WALTime time.Duration
}

type syncCounters struct {
	wal, all atomic.Uint64
	walNanos atomic.Int64
}

// syncCountingFS wraps a vfs.FS to count syncs; everything else passes
// through untouched.
type syncCountingFS struct {
	vfs.FS
	c *syncCounters
}

func (fs syncCountingFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return f, err
	}
	return &syncCountingFile{File: f, c: fs.c, wal: strings.HasSuffix(name, ".log")}, nil
}

func (fs syncCountingFS) Create(name string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, cat)
	return fs.wrap(name, f, err)
}

func (fs syncCountingFS) OpenReadWrite(name string, cat vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := fs.FS.OpenReadWrite(name, cat, opts...)
	return fs.wrap(name, f, err)
}

func (fs syncCountingFS) ReuseForWrite(oldname, newname string, cat vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, cat)
	return fs.wrap(newname, f, err)
}

func (fs syncCountingFS) OpenDir(name string) (vfs.File, error) {
	f, err := fs.FS.OpenDir(name)
	return fs.wrap(name, f, err)
}

func (fs syncCountingFS) Unwrap() vfs.FS { return fs.FS }

type syncCountingFile struct {
	vfs.File
	c   *syncCounters
	wal bool
}

// count records one sync that started at t0.
func (f *syncCountingFile) count(t0 time.Time) {
	f.c.all.Add(1)
	if f.wal {
		f.c.wal.Add(1)
		f.c.walNanos.Add(int64(time.Since(t0)))
	}
}

func (f *syncCountingFile) Sync() error {
	defer f.count(time.Now())
	return f.File.Sync()
}

func (f *syncCountingFile) SyncData() error {
	defer f.count(time.Now())
	return f.File.SyncData()
}

func (f *syncCountingFile) SyncTo(length int64) (bool, error) {
	defer f.count(time.Now())
	return f.File.SyncTo(length)
}
