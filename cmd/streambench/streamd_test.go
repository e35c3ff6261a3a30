package main

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"github.com/streamd/streamd/httpapi"
	"github.com/streamd/streamd/streamdtest"
)

// TestScenariosAgainstStreamd runs every scenario briefly against streamd
// itself, in-process: each must finish without errors or missing
// deliveries and leave no stream behind.
func TestScenariosAgainstStreamd(t *testing.T) {
	srv := streamdtest.New(t, streamdtest.Options{SSEReconnectInterval: 300 * time.Millisecond, LongPollTimeout: 5 * time.Second})
	common := []string{"-url", srv.URL, "-label", "test", "-timeout", "60s"}
	for _, tc := range []struct {
		name string
		args []string
		// check inspects the result's extra fields.
		check func(ex map[string]any) bool
	}{
		{"append", []string{"append", "-writers", "4", "-streams", "2", "-bytes", "64", "-duration", "300ms", "-warmup", "100ms"},
			func(ex map[string]any) bool { return ex["measured_appends"].(float64) > 0 }},
		{"read", []string{"read", "-mib", "2", "-chunk-bytes", "262144", "-repeat", "2"},
			func(ex map[string]any) bool { return ex["verified_repeats"] == 2.0 }},
		{"longpoll", []string{"longpoll", "-readers", "20", "-rounds", "3", "-bytes", "100", "-settle", "50ms"},
			func(ex map[string]any) bool { return ex["delivered"] == 60.0 }},
		{"longpoll over h2c", []string{"longpoll", "-readers", "100", "-rounds", "2", "-bytes", "100", "-settle", "50ms", "-h2c"},
			func(ex map[string]any) bool { return ex["delivered"] == 200.0 }},
		{"sse", []string{"sse", "-subscribers", "10", "-rate", "50", "-bytes", "64", "-duration", "800ms"},
			func(ex map[string]any) bool {
				return ex["duplicates"] == 0.0 && ex["out_of_order"] == 0.0 && ex["appended"].(float64) >= 10 &&
					ex["delivered"] == 10*ex["appended"].(float64)
			}},
		{"streams", []string{"streams", "-streams", "50", "-bytes", "32", "-concurrency", "4"},
			func(ex map[string]any) bool { return ex["creates_per_s"].(float64) > 0 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runJSON(t, append(tc.args, common...)...)
			if res["errors"] != 0.0 || res["missing"] != 0.0 || !tc.check(res["extra"].(map[string]any)) {
				t.Errorf("%v", res)
			}
		})
	}
	resp, err := http.Get(srv.URL + httpapi.ListPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var page httpapi.ListPage
	if err := json.NewDecoder(resp.Body).Decode(&page); err != nil {
		t.Fatal(err)
	}
	if len(page.Streams) != 0 {
		t.Errorf("%d streams left after the runs, first %q", len(page.Streams), page.Streams[0].Path)
	}
	if err := srv.Clear(context.Background()); err != nil {
		t.Fatal(err)
	}
}
