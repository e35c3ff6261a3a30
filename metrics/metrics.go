package metrics

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/streamd/streamd/actors"
	"github.com/streamd/streamd/httpapi"
	"github.com/streamd/streamd/persistence"
)

// Namespace prefixes every streamd metric name.
const Namespace = "streamd"

// Histogram buckets, in seconds. Requests span a catch-up read (sub-
// millisecond) to a long-poll (--long-poll-timeout) or an SSE response
// (--sse-reconnect-interval); commits span an fsync.
var (
	requestBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	commitBuckets  = []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
)

// Metrics holds streamd's registry and the metrics updated as requests
// and commits happen. It implements httpapi.RequestObserver.
type Metrics struct {
	reg *prometheus.Registry

	requests      httpRequests
	latency       [httpapi.NumRoutes]prometheus.Observer // pre-resolved children by route
	commitLatency prometheus.Histogram
	catchUpBytes  atomic.Uint64
	attached      atomic.Bool
}

// New builds the registry with the request and commit metrics and the Go
// and process collectors.
func New() *Metrics {
	m := &Metrics{reg: prometheus.NewRegistry()}
	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "http_request_duration_seconds",
		Help:    "Time from a request's arrival to the end of its response, by route (live reads last until data, timeout or reconnect).",
		Buckets: requestBuckets,
	}, []string{"route"})
	for r := range m.latency {
		m.latency[r] = latency.WithLabelValues(httpapi.Route(r).String())
	}
	m.commitLatency = prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: Namespace, Name: "commit_latency_seconds",
		Help:    "Time from an append reaching its stream actor to the sync of the batch carrying it.",
		Buckets: commitBuckets,
	})
	m.reg.MustRegister(latency, m.commitLatency,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&requestCollector{m: m})
	return m
}

// ObserveRequest counts a finished request (httpapi.RequestObserver).
func (m *Metrics) ObserveRequest(r httpapi.Request) {
	m.requests.add(r.Route, r.Method, r.Status)
	route := r.Route
	if route >= httpapi.NumRoutes {
		route = httpapi.RouteOther
	}
	m.latency[route].Observe(r.Duration.Seconds())
	if route == httpapi.RouteRead && r.Status == http.StatusOK {
		m.catchUpBytes.Add(uint64(r.Bytes))
	}
}

// ObserveCommitLatency records one append's commit latency
// (actors.Config.ObserveCommitLatency).
func (m *Metrics) ObserveCommitLatency(d time.Duration) { m.commitLatency.Observe(d.Seconds()) }

// Sources are the components whose counters are read at scrape time.
type Sources struct {
	Store   *persistence.Store
	Streams *actors.Streams
	API     *httpapi.Server
	// ConnectionsRejected counts connections refused at --max-connections
	// (kept by the listener, outside httpapi); nil means none.
	ConnectionsRejected func() int64
	// Logger receives a line when Pebble's metrics cannot be read.
	Logger *slog.Logger
}

// Attach registers the scrape-time collector reading src. Call it once,
// after the components exist and before serving /metrics.
func (m *Metrics) Attach(src Sources) error {
	if src.Store == nil || src.Streams == nil || src.API == nil {
		return errors.New("metrics: Store, Streams and API are required")
	}
	if !m.attached.CompareAndSwap(false, true) {
		return errors.New("metrics: sources already attached")
	}
	if src.Logger == nil {
		src.Logger = slog.New(slog.DiscardHandler)
	}
	if err := m.reg.Register(newSourceCollector(src)); err != nil {
		return fmt.Errorf("register streamd collector: %w", err)
	}
	return nil
}

// Registry returns the private registry (for tests and embedding).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus exposition formats. At
// most a few scrapes run at once; more are answered 503, so scrapers
// cannot pile up work.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
}

// requestCollector exports the counters ObserveRequest keeps in atomics.
type requestCollector struct{ m *Metrics }

var (
	requestsDesc = prometheus.NewDesc(Namespace+"_http_requests_total",
		"HTTP requests answered, by method, route and status code (codes streamd does not use are grouped by class, e.g. 2xx).",
		[]string{"method", "route", "code"}, nil)
	catchUpBytesDesc = prometheus.NewDesc(Namespace+"_catchup_bytes_total",
		"Response body bytes of catch-up reads answered 200 (after compression).", nil, nil)
)

func (c *requestCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- requestsDesc
	ch <- catchUpBytesDesc
}

func (c *requestCollector) Collect(ch chan<- prometheus.Metric) {
	c.m.requests.collect(requestsDesc, ch)
	ch <- prometheus.MustNewConstMetric(catchUpBytesDesc, prometheus.CounterValue, float64(c.m.catchUpBytes.Load()))
}
