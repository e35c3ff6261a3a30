package main

import (
	"context"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/streamd/streamd/cursor"
)

func envOf(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func defaults() options {
	return options{
		addr:                 "127.0.0.1:4437",
		dataDir:              "./data",
		longPollTimeout:      30 * time.Second,
		sseReconnectInterval: 60 * time.Second,
		cursorInterval:       cursor.DefaultInterval,
		cursorEpoch:          cursor.DefaultEpoch().Format(time.RFC3339),
		maxChunkBytes:        1 << 20,
		maxAppendBytes:       16 << 20,
		compression:          true,
		actorIdleTimeout:     60 * time.Second,
		actorSoftLimit:       100_000,
		restingStateBytes:    256 << 20,
		readAheadBytes:       32 << 20,
		h2c:                  true,
		http2MaxStreams:      1000,
		logLevel:             "info",
		logFormat:            "text",

		shutdownTimeout:         10 * time.Second,
		writeTimeout:            30 * time.Second,
		readTimeout:             60 * time.Second,
		maxConnections:          defaultMaxConnections(),
		maxBodyMemory:           256 << 20,
		maxHeaderBytes:          64 << 10,
		maxHeaderValueBytes:     1024,
		maxLiveReaders:          100_000,
		maxLiveReadersPerStream: 60_000,
		maxPendingAppends:       4096,
		maxProducers:            10_000,
		producerTTL:             7 * 24 * time.Hour,
		sseBufferBytes:          4 << 20,
		maxForkDepth:            1000,
	}
}

func TestParseOptions(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
		want func(*options)
	}{
		{name: "defaults", want: func(*options) {}},
		{
			name: "flags",
			args: []string{
				"--addr", "0.0.0.0:9000", "--data-dir", "/var/lib/streamd", "--memory",
				"--long-poll-timeout", "5s", "--sse-reconnect-interval=90s", "--cursor-interval", "10s",
				"--cursor-epoch", "2025-01-01T00:00:00Z", "--max-chunk-bytes", "4096",
				"--max-append-bytes", "1024", "--compression=false", "--actor-idle-timeout", "2m",
				"--actor-soft-limit", "5000", "--resting-state-bytes", "0", "--log-level", "debug",
				"--h2c=false", "--http2-max-streams", "50", "--read-ahead-bytes", "0",
				"--shutdown-timeout", "3s", "--write-timeout", "4s", "--read-timeout", "5s",
				"--max-connections", "100", "--max-body-memory", "1000", "--max-header-bytes", "2000",
				"--max-header-value-bytes", "64", "--max-live-readers", "10", "--max-live-readers-per-stream", "5",
				"--max-pending-appends", "6", "--max-producers-per-stream", "7", "--producer-ttl", "1h",
				"--sse-buffer-bytes", "8000", "--max-fork-depth", "9", "--registry", "--test-endpoints",
				"--log-format", "json", "--access-log", "--admin-addr", "127.0.0.1:9437",
				"--tls-cert", "c.pem", "--tls-key", "k.pem", "--auth-file", "auth.json",
				"--cors-origins", "https://a.example,http://localhost:3000",
			},
			want: func(o *options) {
				o.addr, o.dataDir, o.memory = "0.0.0.0:9000", "/var/lib/streamd", true
				o.longPollTimeout, o.sseReconnectInterval, o.cursorInterval = 5*time.Second, 90*time.Second, 10*time.Second
				o.cursorEpoch, o.maxChunkBytes, o.maxAppendBytes = "2025-01-01T00:00:00Z", 4096, 1024
				o.compression, o.actorIdleTimeout, o.logLevel = false, 2*time.Minute, "debug"
				o.actorSoftLimit, o.restingStateBytes = 5000, 0
				o.h2c, o.http2MaxStreams, o.readAheadBytes = false, 50, 0
				o.shutdownTimeout, o.writeTimeout, o.readTimeout = 3*time.Second, 4*time.Second, 5*time.Second
				o.maxConnections, o.maxBodyMemory, o.maxHeaderBytes, o.maxHeaderValueBytes = 100, 1000, 2000, 64
				o.maxLiveReaders, o.maxLiveReadersPerStream, o.maxPendingAppends = 10, 5, 6
				o.maxProducers, o.producerTTL, o.sseBufferBytes = 7, time.Hour, 8000
				o.maxForkDepth, o.registry, o.testEndpoints = 9, true, true
				o.logFormat, o.accessLog, o.adminAddr = "json", true, "127.0.0.1:9437"
				o.tlsCert, o.tlsKey, o.authFile = "c.pem", "k.pem", "auth.json"
				o.corsOrigins = "https://a.example,http://localhost:3000"
			},
		},
		{
			name: "single dash flags",
			args: []string{"-addr=:1", "-memory"},
			want: func(o *options) { o.addr, o.memory = ":1", true },
		},
		{
			name: "environment",
			env: map[string]string{
				"STREAMD_ADDR": "127.0.0.1:5000", "STREAMD_DATA_DIR": "/tmp/x", "STREAMD_MEMORY": "true",
				"STREAMD_LONG_POLL_TIMEOUT": "7s", "STREAMD_SSE_RECONNECT_INTERVAL": "11s",
				"STREAMD_CURSOR_INTERVAL": "3s", "STREAMD_CURSOR_EPOCH": "2020-02-02T00:00:00Z",
				"STREAMD_MAX_CHUNK_BYTES": "777", "STREAMD_MAX_APPEND_BYTES": "888",
				"STREAMD_COMPRESSION": "false", "STREAMD_ACTOR_IDLE_TIMEOUT": "1s", "STREAMD_LOG_LEVEL": "warn",
				"STREAMD_ACTOR_SOFT_LIMIT": "7", "STREAMD_TEST_ENDPOINTS": "true",
				"STREAMD_LOG_FORMAT": "json", "STREAMD_ACCESS_LOG": "true", "STREAMD_ADMIN_ADDR": ":9437",
				"STREAMD_TLS_CERT": "/etc/c.pem", "STREAMD_TLS_KEY": "/etc/k.pem",
				"STREAMD_AUTH_FILE": "/etc/auth.json", "STREAMD_CORS_ORIGINS": "*",
			},
			want: func(o *options) {
				o.addr, o.dataDir, o.memory = "127.0.0.1:5000", "/tmp/x", true
				o.longPollTimeout, o.sseReconnectInterval, o.cursorInterval = 7*time.Second, 11*time.Second, 3*time.Second
				o.cursorEpoch, o.maxChunkBytes, o.maxAppendBytes = "2020-02-02T00:00:00Z", 777, 888
				o.compression, o.actorIdleTimeout, o.logLevel = false, time.Second, "warn"
				o.actorSoftLimit, o.testEndpoints = 7, true
				o.logFormat, o.accessLog, o.adminAddr = "json", true, ":9437"
				o.tlsCert, o.tlsKey, o.authFile, o.corsOrigins = "/etc/c.pem", "/etc/k.pem", "/etc/auth.json", "*"
			},
		},
		{
			name: "flags override environment",
			args: []string{"--addr", "127.0.0.1:6000", "--memory=false", "--long-poll-timeout", "2s"},
			env:  map[string]string{"STREAMD_ADDR": "127.0.0.1:5000", "STREAMD_MEMORY": "true", "STREAMD_LONG_POLL_TIMEOUT": "7s", "STREAMD_MAX_CHUNK_BYTES": "99"},
			want: func(o *options) {
				o.addr, o.longPollTimeout, o.maxChunkBytes = "127.0.0.1:6000", 2*time.Second, 99
			},
		},
		{
			name: "unrelated and lower-case variables are ignored",
			env:  map[string]string{"streamd_addr": "x", "ADDR": "y", "STREAMD_UNKNOWN": "z"},
			want: func(*options) {},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := parseOptions(c.args, envOf(c.env))
			if err != nil {
				t.Fatalf("parseOptions: %v", err)
			}
			want := defaults()
			c.want(&want)
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("got  %+v\nwant %+v", *got, want)
			}
		})
	}
}

func TestParseOptionsInvalid(t *testing.T) {
	cases := []struct {
		name string
		args []string
		env  map[string]string
	}{
		{name: "bad duration", args: []string{"--long-poll-timeout", "soon"}},
		{name: "duration without unit", args: []string{"--long-poll-timeout", "30"}},
		{name: "zero long-poll timeout", args: []string{"--long-poll-timeout", "0s"}},
		{name: "negative long-poll timeout", args: []string{"--long-poll-timeout=-1s"}},
		{name: "zero sse interval", args: []string{"--sse-reconnect-interval", "0s"}},
		{name: "zero cursor interval", args: []string{"--cursor-interval", "0s"}},
		{name: "zero idle timeout", args: []string{"--actor-idle-timeout", "0s"}},
		{name: "zero chunk", args: []string{"--max-chunk-bytes", "0"}},
		{name: "zero actor limit", args: []string{"--actor-soft-limit", "0"}},
		{name: "negative resting state", args: []string{"--resting-state-bytes", "-1"}},
		{name: "zero http2 streams", args: []string{"--http2-max-streams", "0"}},
		{name: "negative read-ahead", args: []string{"--read-ahead-bytes", "-1"}},
		{name: "negative append", args: []string{"--max-append-bytes", "-5"}},
		{name: "non-numeric bytes", args: []string{"--max-append-bytes", "1MB"}},
		{name: "bad bool", args: []string{"--compression=maybe"}},
		{name: "unknown flag", args: []string{"--nope"}},
		{name: "missing value", args: []string{"--addr"}},
		{name: "extra argument", args: []string{"serve"}},
		{name: "env bad duration", env: map[string]string{"STREAMD_LONG_POLL_TIMEOUT": "soon"}},
		{name: "env zero duration", env: map[string]string{"STREAMD_SSE_RECONNECT_INTERVAL": "0s"}},
		{name: "env bad bool", env: map[string]string{"STREAMD_MEMORY": "maybe"}},
		{name: "env bad bytes", env: map[string]string{"STREAMD_MAX_CHUNK_BYTES": "lots"}},
		{name: "env negative bytes", env: map[string]string{"STREAMD_MAX_CHUNK_BYTES": "-1"}},
		{name: "zero shutdown timeout", args: []string{"--shutdown-timeout", "0s"}},
		{name: "zero write timeout", args: []string{"--write-timeout", "0s"}},
		{name: "zero read timeout", args: []string{"--read-timeout", "0s"}},
		{name: "negative connections", args: []string{"--max-connections", "-1"}},
		{name: "zero body memory", args: []string{"--max-body-memory", "0"}},
		{name: "zero header bytes", args: []string{"--max-header-bytes", "0"}},
		{name: "zero header value bytes", args: []string{"--max-header-value-bytes", "0"}},
		{name: "zero live readers", args: []string{"--max-live-readers", "0"}},
		{name: "zero live readers per stream", args: []string{"--max-live-readers-per-stream", "0"}},
		{name: "zero pending appends", args: []string{"--max-pending-appends", "0"}},
		{name: "zero producers", args: []string{"--max-producers-per-stream", "0"}},
		{name: "zero producer ttl", args: []string{"--producer-ttl", "0s"}},
		{name: "zero sse buffer", args: []string{"--sse-buffer-bytes", "0"}},
		{name: "zero fork depth", args: []string{"--max-fork-depth", "0"}},
		{name: "unknown log format", args: []string{"--log-format", "logfmt"}},
		{name: "log format in capitals", args: []string{"--log-format", "JSON"}},
		{name: "empty log format", args: []string{"--log-format="}},
		{name: "env unknown log format", env: map[string]string{"STREAMD_LOG_FORMAT": "xml"}},
		{name: "bad access-log bool", args: []string{"--access-log=sometimes"}},
		{name: "TLS certificate without key", args: []string{"--tls-cert", "c.pem"}},
		{name: "TLS key without certificate", args: []string{"--tls-key", "k.pem"}},
		{name: "env TLS key without certificate", env: map[string]string{"STREAMD_TLS_KEY": "k.pem"}},
		{name: "CORS origin with a path", args: []string{"--cors-origins", "https://a.example/app"}},
		{name: "CORS star and a list", args: []string{"--cors-origins", "*,https://a.example"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if o, err := parseOptions(c.args, envOf(c.env)); err == nil {
				t.Fatalf("parseOptions accepted %q %v: %+v", c.args, c.env, *o)
			}
		})
	}
}

// TestRunRejectsBadSettings: settings checked only by run fail before
// anything is opened or served.
func TestRunRejectsBadSettings(t *testing.T) {
	cases := map[string][]string{
		"log level":               {"--log-level", "loud"},
		"cursor epoch":            {"--cursor-epoch", "yesterday"},
		"bad flag":                {"--long-poll-timeout", "-1s"},
		"bad address":             {"--addr", "127.0.0.1:99999", "--memory"},
		"bad admin address":       {"--admin-addr", "127.0.0.1:99999", "--memory"},
		"missing TLS certificate": {"--tls-cert", "/nonexistent/c.pem", "--tls-key", "/nonexistent/k.pem"},
		"missing auth file":       {"--auth-file", "/nonexistent/auth.json"},
		"bad auth file":           {"--auth-file", "/dev/null"},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "data")
			logOut := logFile(t)
			ready := make(chan string, 1)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := run(ctx, append([]string{"--data-dir", dir}, args...), envOf(nil), logOut, ready)
			if err == nil {
				t.Fatal("run accepted bad settings")
			}
			if len(ready) > 0 {
				t.Errorf("run reported ready at %s despite failing", <-ready)
			}
			if name != "bad address" && name != "bad admin address" {
				if _, err := os.Stat(dir); !os.IsNotExist(err) {
					t.Errorf("data dir created before settings were validated: %v", err)
				}
			}
		})
	}
}
