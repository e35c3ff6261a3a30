package metrics

import (
	"sort"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamd/streamd/actors"
	"github.com/streamd/streamd/httpapi"
	"github.com/streamd/streamd/persistence"
)

// LimitSSEBuffer names SSE subscribers dropped from the live feed for
// falling behind (--sse-buffer-bytes, or 256 commits queued): not a
// refusal the client sees, but a bound reached all the same.
const LimitSSEBuffer = "sse-buffer-bytes"

// metric is one scrape-time metric: its description, type and how to read
// it from a snapshot of the sources.
type metric struct {
	desc  *prometheus.Desc
	typ   prometheus.ValueType
	value func(*snapshot) float64
}

// snapshot is what one scrape reads from the sources, each once.
type snapshot struct {
	src     *Sources
	api     httpapi.Stats
	counts  actors.Counters
	actors  actors.ActorStats
	dropped int64
	engine  persistence.EngineStats
}

func newDesc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(Namespace+"_"+name, help, labels, nil)
}

func counter(name, help string, v func(*snapshot) float64) metric {
	return metric{newDesc(name, help), prometheus.CounterValue, v}
}

func gauge(name, help string, v func(*snapshot) float64) metric {
	return metric{newDesc(name, help), prometheus.GaugeValue, v}
}

// sourceCollector reads the sources' own counters when scraped.
type sourceCollector struct {
	src         Sources
	stream      []metric
	engine      []metric
	rejections  *prometheus.Desc
	activations *prometheus.Desc
	engineUp    *prometheus.Desc
}

func newSourceCollector(src Sources) *sourceCollector {
	return &sourceCollector{
		src:         src,
		stream:      streamMetrics(),
		engine:      engineMetrics(),
		rejections:  newDesc("rejections_total", "Requests refused at a bound (and SSE subscribers dropped for falling behind), by the flag naming the bound.", "limit"),
		activations: newDesc("stream_activations_total", "Stream actors started, by where their state came from: storage (Pebble) or resting (the in-memory state of passivated streams).", "source"),
		engineUp:    newDesc("pebble_metrics_up", "1 if Pebble's metrics were read at this scrape, 0 if the store was closed."),
	}
}

func streamMetrics() []metric {
	return []metric{
		counter("appends_total", "Append requests acknowledged (committed and synced).", func(s *snapshot) float64 { return float64(s.counts.Appends) }),
		counter("append_messages_total", "Messages (records) appended: one per append of a byte stream, one per JSON value of a JSON stream.", func(s *snapshot) float64 { return float64(s.counts.AppendMessages) }),
		counter("append_bytes_total", "Bytes appended.", func(s *snapshot) float64 { return float64(s.counts.AppendBytes) }),
		counter("commits_total", "Synced batch commits; appends_total / commits_total is appends per batch.", func(s *snapshot) float64 { return float64(s.counts.Commits) }),
		counter("wal_fsyncs_total", "Syncs of Pebble's write-ahead log; appends_total / wal_fsyncs_total is appends per fsync.", func(s *snapshot) float64 { return float64(s.src.Store.Syncs().WAL) }),
		counter("wal_fsync_seconds_total", "Time spent in write-ahead log syncs.", func(s *snapshot) float64 { return s.src.Store.Syncs().WALTime.Seconds() }),
		counter("fsyncs_total", "Every file and directory sync Pebble issued, WAL syncs included.", func(s *snapshot) float64 { return float64(s.src.Store.Syncs().All) }),
		gauge("live_longpoll_waiters", "Long-polls waiting for data now.", func(s *snapshot) float64 { return float64(s.counts.LongPollWaiters) }),
		gauge("live_sse_subscribers", "Open SSE responses now.", func(s *snapshot) float64 { return float64(s.counts.SSEReaders) }),
		gauge("stream_actors_live", "Stream actors in memory now.", func(s *snapshot) float64 { return float64(s.actors.Live) }),
		gauge("stream_actors_resting", "Passivated streams whose state is kept in memory now.", func(s *snapshot) float64 { return float64(s.actors.Resting) }),
		counter("streams_created_total", "Streams created (forks included).", func(s *snapshot) float64 { return float64(s.counts.Created) }),
		counter("streams_deleted_total", "Streams deleted by a client (soft deletes of streams forks still read included).", func(s *snapshot) float64 { return float64(s.counts.Deleted) }),
		counter("streams_expired_total", "Streams deleted at their TTL or Expires-At.", func(s *snapshot) float64 { return float64(s.counts.Expired) }),
		counter("read_ahead_hits_total", "Catch-up chunks served from read-ahead.", func(s *snapshot) float64 { return float64(s.api.ReadAheadHits) }),
		counter("read_ahead_misses_total", "Catch-up chunks read from storage because none was read ahead.", func(s *snapshot) float64 { return float64(s.api.ReadAheadMisses) }),
		gauge("read_ahead_bytes", "Memory held by chunks read ahead now (--read-ahead-bytes bounds it).", func(s *snapshot) float64 { return float64(s.api.ReadAheadBytes) }),
		gauge("body_memory_bytes", "Request body memory reserved now (--max-body-memory bounds it).", func(s *snapshot) float64 { return float64(s.api.BodyMemoryBytes) }),
		counter("events_dropped_total", "Lifecycle events a slow event hook missed.", func(s *snapshot) float64 { return float64(s.dropped) }),
	}
}

func engineMetrics() []metric {
	return []metric{
		counter("pebble_wal_bytes_written_total", "Bytes written to Pebble's write-ahead log.", func(s *snapshot) float64 { return float64(s.engine.WALBytesWritten) }),
		gauge("pebble_wal_files", "Live write-ahead log files.", func(s *snapshot) float64 { return float64(s.engine.WALFiles) }),
		gauge("pebble_wal_size_bytes", "Size of the live write-ahead log files on disk.", func(s *snapshot) float64 { return float64(s.engine.WALSize) }),
		counter("pebble_flushes_total", "Memtable flushes.", func(s *snapshot) float64 { return float64(s.engine.Flushes) }),
		counter("pebble_compactions_total", "Compactions.", func(s *snapshot) float64 { return float64(s.engine.Compactions) }),
		gauge("pebble_compactions_running", "Compactions in progress.", func(s *snapshot) float64 { return float64(s.engine.CompactionsRunning) }),
		gauge("pebble_compaction_debt_bytes", "Bytes Pebble estimates it must compact to settle its LSM.", func(s *snapshot) float64 { return float64(s.engine.CompactionDebt) }),
		gauge("pebble_l0_files", "Files in level 0 (many slow reads and eventually stall writes).", func(s *snapshot) float64 { return float64(s.engine.L0Files) }),
		gauge("pebble_l0_sublevels", "Sublevels of level 0.", func(s *snapshot) float64 { return float64(s.engine.L0Sublevels) }),
		gauge("pebble_read_amplification", "Files or sublevels a point read may consult.", func(s *snapshot) float64 { return float64(s.engine.ReadAmp) }),
		gauge("pebble_memtable_bytes", "Memory of the memtables.", func(s *snapshot) float64 { return float64(s.engine.MemTableBytes) }),
		gauge("pebble_memtables", "Memtables (the mutable one and those waiting to flush).", func(s *snapshot) float64 { return float64(s.engine.MemTables) }),
		gauge("pebble_block_cache_bytes", "Memory used by Pebble's block cache.", func(s *snapshot) float64 { return float64(s.engine.BlockCacheBytes) }),
		counter("pebble_block_cache_hits_total", "Block cache hits.", func(s *snapshot) float64 { return float64(s.engine.BlockCacheHits) }),
		counter("pebble_block_cache_misses_total", "Block cache misses.", func(s *snapshot) float64 { return float64(s.engine.BlockCacheMisses) }),
		gauge("pebble_disk_space_bytes", "Disk space used by the database (tables, WAL, manifests).", func(s *snapshot) float64 { return float64(s.engine.DiskSpaceBytes) }),
	}
}

func (c *sourceCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, m := range append(c.stream, c.engine...) {
		ch <- m.desc
	}
	ch <- c.rejections
	ch <- c.activations
	ch <- c.engineUp
}

func (c *sourceCollector) Collect(ch chan<- prometheus.Metric) {
	s := &snapshot{src: &c.src, api: c.src.API.Stats(), counts: c.src.Streams.Counters(),
		actors: c.src.Streams.Stats(), dropped: c.src.Streams.DroppedEvents()}
	for _, m := range c.stream {
		ch <- prometheus.MustNewConstMetric(m.desc, m.typ, m.value(s))
	}
	engineUp := 1.0
	if engine, err := c.src.Store.EngineStats(); err != nil {
		// Closed (a scrape during shutdown): Pebble's metrics are left
		// out rather than reported as zeros.
		engineUp = 0
		c.src.Logger.Debug("pebble metrics unavailable", "err", err)
	} else {
		s.engine = engine
		for _, m := range c.engine {
			ch <- prometheus.MustNewConstMetric(m.desc, m.typ, m.value(s))
		}
	}
	ch <- prometheus.MustNewConstMetric(c.engineUp, prometheus.GaugeValue, engineUp)
	ch <- prometheus.MustNewConstMetric(c.activations, prometheus.CounterValue, float64(s.actors.StoreLoads), "storage")
	ch <- prometheus.MustNewConstMetric(c.activations, prometheus.CounterValue, float64(s.actors.RestingLoads), "resting")

	rejections := s.api.Rejections
	if c.src.ConnectionsRejected != nil {
		rejections[httpapi.LimitConnections] = c.src.ConnectionsRejected()
	}
	rejections[LimitSSEBuffer] = int64(s.counts.SubscribersBehind)
	limits := make([]string, 0, len(rejections))
	for l := range rejections {
		limits = append(limits, l)
	}
	sort.Strings(limits)
	for _, l := range limits {
		ch <- prometheus.MustNewConstMetric(c.rejections, prometheus.CounterValue, float64(rejections[l]), l)
	}
}
