package metrics_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/streamd/streamd/actors"
	"github.com/streamd/streamd/httpapi"
	"github.com/streamd/streamd/metrics"
	"github.com/streamd/streamd/persistence"
)

// stack is an in-memory streamd with metrics, served over real HTTP
// through the real router, /metrics mounted as streamd mounts it.
type stack struct {
	url    string
	client *http.Client
	reg    *prometheus.Registry
}

func newStack(t *testing.T, configure func(*httpapi.Config)) *stack {
	t.Helper()
	store, err := persistence.Open(persistence.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	streams, err := actors.Start(actors.Config{Store: store, ObserveCommitLatency: m.ObserveCommitLatency})
	if err != nil {
		t.Fatal(err)
	}
	cfg := httpapi.Config{Store: store, Streams: streams, Observer: m, Compression: true, LongPollTimeout: 50 * time.Millisecond}
	if configure != nil {
		configure(&cfg)
	}
	api := httpapi.New(cfg)
	if err := m.Attach(metrics.Sources{Store: store, Streams: streams, API: api}); err != nil {
		t.Fatal(err)
	}
	if err := m.Attach(metrics.Sources{Store: store, Streams: streams, API: api}); err == nil {
		t.Error("a second Attach succeeded")
	}
	api.Mount("/metrics", m.Handler())
	ts := httptest.NewServer(api.Handler())
	tr := &http.Transport{DisableCompression: true}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		ts.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := streams.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		store.Close()
	})
	return &stack{url: ts.URL, client: &http.Client{Transport: tr}, reg: m.Registry()}
}

func (s *stack) do(t *testing.T, want int, method, path string, body []byte, hdr ...string) []byte {
	t.Helper()
	req, err := http.NewRequest(method, s.url+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := s.client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %q", method, path, res.StatusCode, want, b)
	}
	return b
}

// scrape gathers the registry into name{label="value",...} -> value;
// histograms appear as their _count and _sum.
func scrape(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(labels)
			key := f.GetName()
			if len(labels) > 0 {
				key += "{" + strings.Join(labels, ",") + "}"
			}
			switch {
			case m.Counter != nil:
				out[key] = m.Counter.GetValue()
			case m.Gauge != nil:
				out[key] = m.Gauge.GetValue()
			case m.Histogram != nil:
				name := f.GetName()
				suffix := strings.TrimPrefix(key, name)
				out[name+"_count"+suffix] = float64(m.Histogram.GetSampleCount())
				out[name+"_sum"+suffix] = m.Histogram.GetSampleSum()
			}
		}
	}
	return out
}

// TestMetricsAfterWorkload runs a known workload and checks exact values.
func TestMetricsAfterWorkload(t *testing.T) {
	s := newStack(t, nil)
	text := []string{"Content-Type", "text/plain"}
	for _, name := range []string{"a", "b", "c"} {
		s.do(t, http.StatusCreated, "PUT", "/v1/stream/"+name, nil, text...)
	}
	payload := bytes.Repeat([]byte("x"), 25)
	for range 10 {
		s.do(t, http.StatusNoContent, "POST", "/v1/stream/a", payload, text...)
	}
	for range 2 {
		if got := s.do(t, http.StatusOK, "GET", "/v1/stream/a?offset=-1", nil); len(got) != 250 {
			t.Fatalf("read %d bytes, want 250", len(got))
		}
	}
	s.do(t, http.StatusNoContent, "DELETE", "/v1/stream/c", nil)
	s.do(t, http.StatusNoContent, "GET", "/v1/stream/b?offset=now&live=long-poll", nil)

	got := scrape(t, s.reg)
	want := map[string]float64{
		`streamd_http_requests_total{code="201",method="PUT",route="create"}`:             3,
		`streamd_http_requests_total{code="204",method="POST",route="append"}`:            10,
		`streamd_http_requests_total{code="200",method="GET",route="read"}`:               2,
		`streamd_http_requests_total{code="204",method="DELETE",route="delete"}`:          1,
		`streamd_http_requests_total{code="204",method="GET",route="read_live_longpoll"}`: 1,
		`streamd_http_request_duration_seconds_count{route="create"}`:                     3,
		`streamd_http_request_duration_seconds_count{route="append"}`:                     10,
		`streamd_http_request_duration_seconds_count{route="read"}`:                       2,
		`streamd_http_request_duration_seconds_count{route="delete"}`:                     1,
		`streamd_http_request_duration_seconds_count{route="read_live_longpoll"}`:         1,
		`streamd_http_request_duration_seconds_count{route="read_sse"}`:                   0,
		`streamd_commit_latency_seconds_count`:                                            10,
		`streamd_appends_total`:                                                           10,
		`streamd_append_messages_total`:                                                   10,
		`streamd_append_bytes_total`:                                                      250,
		// 3 creates, 10 appends, 1 delete: one batch each, done one at a time.
		`streamd_commits_total`:                                 14,
		`streamd_streams_created_total`:                         3,
		`streamd_streams_deleted_total`:                         1,
		`streamd_streams_expired_total`:                         0,
		`streamd_catchup_bytes_total`:                           500,
		`streamd_read_ahead_hits_total`:                         0,
		`streamd_read_ahead_misses_total`:                       2,
		`streamd_live_longpoll_waiters`:                         0,
		`streamd_live_sse_subscribers`:                          0,
		`streamd_pebble_metrics_up`:                             1,
		`streamd_rejections_total{limit="max-pending-appends"}`: 0,
		`streamd_rejections_total{limit="sse-buffer-bytes"}`:    0,
	}
	for k, v := range want {
		if g, ok := got[k]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", k, g, ok, v)
		}
	}
	// Only the five combinations above were requested.
	var series []string
	for k := range got {
		if strings.HasPrefix(k, "streamd_http_requests_total{") {
			series = append(series, k)
		}
	}
	if len(series) != 5 {
		t.Errorf("request series %q, want the 5 of the workload", series)
	}
	for _, k := range []string{"streamd_wal_fsyncs_total", "streamd_stream_actors_live", "streamd_pebble_wal_bytes_written_total", "process_resident_memory_bytes", "go_goroutines"} {
		if got[k] <= 0 {
			t.Errorf("%s = %v, want > 0", k, got[k])
		}
	}
	// No metric carries a stream path.
	for k := range got {
		if strings.Contains(k, `"/v1/stream`) || strings.Contains(k, `"a"`) {
			t.Errorf("metric %s has a per-stream label", k)
		}
	}

	// The exposition served at /metrics (counted as route "other").
	body := string(s.do(t, http.StatusOK, "GET", "/metrics", nil))
	if !strings.Contains(body, `streamd_appends_total 10`) {
		t.Errorf("/metrics lacks streamd_appends_total 10:\n%s", body)
	}
	if got := scrape(t, s.reg)[`streamd_http_requests_total{code="200",method="GET",route="other"}`]; got != 1 {
		t.Errorf("/metrics requests counted %v, want 1", got)
	}
}

func TestRoutesAndRejections(t *testing.T) {
	s := newStack(t, func(c *httpapi.Config) { c.MaxBodyMemory = 1024 })
	text := []string{"Content-Type", "text/plain"}
	s.do(t, http.StatusCreated, "PUT", "/v1/stream/src", []byte("abc"), text...)
	cases := []struct {
		name   string
		status int
		method string
		path   string
		body   []byte
		hdr    []string
		series string
	}{
		{"fork", 201, "PUT", "/v1/stream/f", nil, []string{"Content-Type", "text/plain", "Stream-Forked-From", "/v1/stream/src"}, `{code="201",method="PUT",route="fork"}`},
		{"head", 200, "HEAD", "/v1/stream/src", nil, nil, `{code="200",method="HEAD",route="head"}`},
		{"not found", 404, "GET", "/v1/stream/none", nil, nil, `{code="404",method="GET",route="read"}`},
		{"bad offset", 400, "GET", "/v1/stream/src?offset=zz", nil, nil, `{code="400",method="GET",route="read"}`},
		{"preflight", 204, "OPTIONS", "/v1/stream/src", nil, nil, `{code="204",method="OPTIONS",route="other"}`},
		{"outside the API", 404, "GET", "/elsewhere", nil, nil, `{code="404",method="GET",route="other"}`},
		{"body memory", 503, "POST", "/v1/stream/src", bytes.Repeat([]byte("y"), 2048), text, `{code="503",method="POST",route="append"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := scrape(t, s.reg)["streamd_http_requests_total"+c.series]
			s.do(t, c.status, c.method, c.path, c.body, c.hdr...)
			if got := scrape(t, s.reg)["streamd_http_requests_total"+c.series]; got != before+1 {
				t.Errorf("streamd_http_requests_total%s = %v, want %v", c.series, got, before+1)
			}
		})
	}
	if got := scrape(t, s.reg)[`streamd_rejections_total{limit="max-body-memory"}`]; got != 1 {
		t.Errorf("max-body-memory rejections = %v, want 1", got)
	}
}
