# streamd build, lint and test entry points.
#
#   make test         lint, Go tests with -race, fuzzing, conformance in durable and memory mode
#   make build        build bin/streamd
#   make test-go      Go tests with -race
#   make fuzz         each fuzz target for FUZZTIME (default 10s)
#   make conformance  conformance suite in both storage modes
#   make lint         gofmt, go vet, staticcheck
#   make stress       repeat the Go tests under -race (STRESS_COUNT, STRESS_RUN)
#   make crash-test   SIGKILL streamd under load and check durability (CRASH_CYCLES)
#   make bench        benchmark streamd against the Node reference server and
#                     the load tool's ceiling (scripts/bench.sh; BENCH_* knobs)
#   make bench-smoke  ~10 s run of every benchmark scenario against streamd;
#                     fails on errors or missing messages

GO               ?= go
BIN              := bin/streamd
STATICCHECK_VERSION := v0.8.2
STATICCHECK      := $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
# Optional prebuilt binary for the conformance runs; empty means build ./cmd/streamd.
STREAMD_BIN      ?=
STRESS_COUNT     ?= 20
STRESS_RUN       ?= .
CRASH_CYCLES     ?= 50
FUZZTIME         ?= 10s

.PHONY: all ci build test test-go race fuzz stress crash-test conformance conformance-durable conformance-memory lint fmt-check vet staticcheck clean bench bench-smoke

.NOTPARALLEL:

all: build

build:
	$(GO) build -o $(BIN) ./cmd/streamd

# The full check: lint, Go tests under the race detector, a bounded fuzzing
# run, then the conformance suite against streamd in both storage modes.
test: lint test-go fuzz conformance

ci: test

# On failure the lines that name what failed are repeated at the end, where
# a truncated CI log still shows them (a timeout's "running tests" list is
# otherwise thousands of lines above, before the goroutine dump).
test-go:
	@log=$$(mktemp); echo "$(GO) test -race -count=1 -timeout 8m ./..."; \
	$(GO) test -race -count=1 -timeout 8m ./... >$$log 2>&1; status=$$?; cat $$log; \
	if [ $$status -ne 0 ]; then echo "== what failed:"; grep -E -A3 '^(--- FAIL|panic:|FAIL|[[:space:]]+running tests:)' $$log | head -80; fi; \
	rm -f $$log; exit $$status

race: test-go

# Go fuzzes one target per invocation: $(call fuzz,FuzzName,./pkg/) runs
# go test -run '^$$' -fuzz '^FuzzName$$' -fuzztime $(FUZZTIME) ./pkg/. A failing
# input is saved under the package's testdata/fuzz/<Target>/ and from then on
# runs with the ordinary tests; commit it with the fix. With a -fuzztime
# duration, Go 1.26's fuzzing coordinator can also fail a clean run with a
# bare "context deadline exceeded" as the time runs out, writing no input (a
# race, go.dev/issue/75804, fixed in Go 1.27): only that failure is retried,
# once. (FuzzParseOffset and FuzzNext are covered by FuzzOffset and
# FuzzCursor; their seeds still run in test-go.)
define fuzz
	@log=$$(mktemp); try=1; \
	while :; do \
		echo "$(GO) test -run '^$$' -fuzz '^$(1)$$' -fuzztime $(FUZZTIME) $(2)"; \
		$(GO) test -run '^$$' -fuzz '^$(1)$$' -fuzztime $(FUZZTIME) $(2) >$$log 2>&1; status=$$?; \
		cat $$log; \
		if [ $$status -ne 0 ] && [ $$try -eq 1 ] && grep -qx '    context deadline exceeded' $$log && \
			! grep -q 'Failing input written' $$log; then \
			echo "fuzz: $(1): go test -fuzz deadline race (go.dev/issue/75804), no failing input; running it again"; \
			try=2; continue; \
		fi; \
		rm -f $$log; exit $$status; \
	done
endef

fuzz:
	$(call fuzz,FuzzOffset,./protocol/)
	$(call fuzz,FuzzParseExpiry,./protocol/)
	$(call fuzz,FuzzParseProducer,./protocol/)
	$(call fuzz,FuzzContentType,./protocol/)
	$(call fuzz,FuzzJSONMode,./protocol/)
	$(call fuzz,FuzzSplitJSON,./protocol/)
	$(call fuzz,FuzzCursor,./cursor/)
	$(call fuzz,FuzzServer,./httpapi/)
	$(call fuzz,FuzzAuthRules,./httpapi/)
	$(call fuzz,FuzzPattern,./subscriptions/)

crash-test:
	STREAMD_CRASH_CYCLES=$(CRASH_CYCLES) $(GO) test -count=1 -timeout 20m -run Crash -v ./crashtest/

stress:
	$(GO) test -race -count=$(STRESS_COUNT) -run '$(STRESS_RUN)' ./...

# Runs both modes even when the first fails, then fails if either did.
conformance:
	@status=0; \
	scripts/conformance.sh durable $(STREAMD_BIN) || status=1; \
	scripts/conformance.sh memory $(STREAMD_BIN) || status=1; \
	exit $$status

conformance-durable:
	scripts/conformance.sh durable $(STREAMD_BIN)

conformance-memory:
	scripts/conformance.sh memory $(STREAMD_BIN)

# Benchmarks (not part of make test); STREAMD_BIN, if set, is used instead of
# building bin/streamd.
bench:
	STREAMD_BIN=$(STREAMD_BIN) scripts/bench.sh

bench-smoke:
	STREAMD_BIN=$(STREAMD_BIN) scripts/bench.sh --smoke

lint: fmt-check vet staticcheck

fmt-check:
	@files="$$(find . -name '*.go' -not -path './.git/*' -not -path './conformance/node_modules/*' -not -path '*/testdata/*')"; \
	unformatted="$$(if [ -n "$$files" ]; then gofmt -l $$files; fi)"; \
	if [ -n "$$unformatted" ]; then \
		echo "gofmt: these files need formatting (run gofmt -w):"; \
		echo "$$unformatted"; \
		exit 1; \
	fi; \
	echo "gofmt: ok"

vet:
	$(GO) vet ./...

staticcheck:
	$(STATICCHECK) ./...

clean:
	rm -rf bin
